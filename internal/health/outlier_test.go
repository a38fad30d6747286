package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// passive returns a Checker that is never Run (passive signals only) with
// targets t0..t(n-1).
func passive(t testing.TB, o Outlier, n int) (*Checker, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	var targets []Target
	for i := range n {
		targets = append(targets, Target{Name: fmt.Sprint("t", i)})
	}
	c, err := New(Config{Outlier: o, Clock: clk, Prober: ProberFunc(func(context.Context, Target) Result { return Result{} })}, targets)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func ejected(c *Checker, name string) bool {
	st, _ := c.State(name)
	return st.Ejected
}

func TestEjectionOnFirstConnectErrorWithDefaults(t *testing.T) {
	h := run(t, Config{Interval: time.Second}, "westeurope", "northeurope")
	defer h.stop()
	h.drain()
	if !h.c.Healthy("westeurope") {
		t.Fatal("not healthy after first probe")
	}
	h.c.Report("westeurope", Success)
	h.c.Report("westeurope", ConnectError)
	if h.c.Healthy("westeurope") {
		t.Fatal("healthy after a connect error with the default of 1 consecutive error")
	}
	st, _ := h.c.State("westeurope")
	if !st.Ejected || st.Status != StatusHealthy || st.Ejections != 1 || !st.EjectedUntil.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("state %+v, want ejected until t0+10s with probe status healthy", st)
	}
	// A passing probe does not end the ejection early.
	h.clk.Advance(9 * time.Second)
	if h.c.Healthy("westeurope") {
		t.Fatal("ejection ended early")
	}
	h.clk.Advance(time.Second)
	if !h.c.Healthy("westeurope") {
		t.Fatal("not healthy after the ejection period")
	}
	evs := h.drain()
	want := []string{"westeurope:healthy>ejected@0s", "westeurope:ejected>restored@10s"}
	if got := transitions(evs); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if r := evs[0].Reason; r != "1 consecutive failed requests (last: connect error); ejected for 10s (ejection 1)" {
		t.Errorf("ejection reason %q", r)
	}
	if r := evs[1].Reason; r != "ejection of 10s ended; probe status healthy" {
		t.Errorf("restore reason %q", r)
	}
	if evs[0].Healthy || !evs[1].Healthy {
		t.Errorf("event Healthy flags %v %v, want false true", evs[0].Healthy, evs[1].Healthy)
	}
	// An ejected target whose probes fail stays unhealthy after the
	// ejection: both signals must agree.
	h.c.Report("northeurope", ServerError)
	h.script.set("northeurope", refuse)
	h.clk.Advance(15 * time.Second)
	if h.c.Healthy("northeurope") || ejected(h.c, "northeurope") {
		t.Errorf("northeurope healthy=%v ejected=%v, want false false", h.c.Healthy("northeurope"), ejected(h.c, "northeurope"))
	}
}

func TestEjectionBackoff(t *testing.T) {
	c, clk := passive(t, Outlier{EjectFor: 10 * time.Second, MaxEjectFor: time.Minute}, 2)
	var got []time.Duration
	for range 6 {
		c.Report("t0", Timeout)
		st, _ := c.State("t0")
		if !st.Ejected {
			t.Fatalf("not ejected after %d ejections", len(got))
		}
		d := st.EjectedUntil.Sub(clk.Now())
		got = append(got, d)
		clk.Advance(d) // restored; ejected again at once: a repeated ejection
		if ejected(c, "t0") {
			t.Fatal("still ejected after its period")
		}
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute, time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("ejection periods %v, want %v (doubling, capped)", got, want)
	}
	// Each full EjectFor spent restored cancels one doubling: after 25s the
	// streak of 6 drops by 2, so the next period is 10s×2^4, capped at 1m;
	// after a long quiet spell it is back to 10s.
	clk.Advance(25 * time.Second)
	c.Report("t0", ConnectError)
	st, _ := c.State("t0")
	if d := st.EjectedUntil.Sub(clk.Now()); d != time.Minute {
		t.Errorf("after 25s restored: %s, want 1m", d)
	}
	clk.Advance(time.Minute + 10*time.Minute)
	c.Report("t0", ConnectError)
	st, _ = c.State("t0")
	if d := st.EjectedUntil.Sub(clk.Now()); d != 10*time.Second || st.Ejections != 8 {
		t.Errorf("after 10m restored: %s after %d ejections, want 10s after 8", d, st.Ejections)
	}
}

func TestConsecutiveErrorsAndReset(t *testing.T) {
	c, _ := passive(t, Outlier{ConsecutiveErrors: 3}, 2)
	for i, o := range []Outcome{ServerError, ConnectError, Success, Timeout, ServerError} {
		c.Report("t0", o)
		if ejected(c, "t0") {
			t.Fatalf("ejected after report %d (%s): a success resets the count", i, o)
		}
	}
	c.Report("t0", ServerError) // third in a row
	if !ejected(c, "t0") {
		t.Fatal("not ejected after 3 consecutive errors")
	}
	st, _ := c.State("t0")
	if !strings.HasPrefix(st.History[0].Reason, "3 consecutive failed requests (last: server error)") {
		t.Errorf("reason %q", st.History[0].Reason)
	}
	c.Report("unknown", ConnectError) // ignored
	c.Report("unknown", Success)
}

func TestMaxEjectedFraction(t *testing.T) {
	tests := []struct {
		targets  int
		fraction float64
		want     int
	}{
		{1, 0.5, 1}, // at least one, even the only target
		{2, 0.5, 1},
		{3, 0.5, 1},
		{4, 0.5, 2},
		{10, 0.29, 2},
		{10, 0.3, 3},
		{3, 1, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d targets %g", tt.targets, tt.fraction), func(t *testing.T) {
			c, clk := passive(t, Outlier{MaxEjectedFraction: tt.fraction}, tt.targets)
			for i := range tt.targets {
				c.Report(fmt.Sprint("t", i), ConnectError)
			}
			n := 0
			for _, st := range c.States() {
				if st.Ejected {
					n++
				}
			}
			if n != tt.want {
				t.Fatalf("%d ejected, want %d", n, tt.want)
			}
			if tt.want == tt.targets {
				return
			}
			// The first target not ejected keeps failing; once the others
			// are restored, it can be ejected.
			last := fmt.Sprint("t", tt.want)
			c.Report(last, ConnectError)
			if ejected(c, last) {
				t.Fatal("ejected beyond the cap")
			}
			clk.Advance(10 * time.Second)
			c.Report(last, ConnectError)
			if !ejected(c, last) {
				t.Fatal("not ejected once the cap had room")
			}
		})
	}
}

func TestReportsWhileEjectedIgnored(t *testing.T) {
	c, clk := passive(t, Outlier{ConsecutiveErrors: 2}, 2)
	c.Report("t0", ConnectError)
	c.Report("t0", ConnectError)
	for range 5 {
		c.Report("t0", ConnectError)
	}
	clk.Advance(10 * time.Second)
	if ejected(c, "t0") {
		t.Fatal("still ejected")
	}
	c.Report("t0", ConnectError) // the count restarted at the restore
	if ejected(c, "t0") {
		t.Fatal("ejected by one error after restore, want the count to start over")
	}
	if st, _ := c.State("t0"); st.Ejections != 1 {
		t.Errorf("%d ejections, want 1", st.Ejections)
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	c, clk := passive(t, Outlier{}, 2)
	slow, cancelSlow := c.Subscribe(1)
	fast, cancelFast := c.Subscribe(100)
	var got []Event
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range fast {
			got = append(got, ev)
		}
	})
	for range 10 { // 20 events
		c.Report("t0", ConnectError)
		clk.Advance(10 * time.Minute)
	}
	if d := c.Dropped(); d != 19 {
		t.Errorf("Dropped = %d, want 19 (the slow subscriber's buffer holds 1 of 20)", d)
	}
	if ev := <-slow; ev.To != StatusEjected {
		t.Errorf("slow subscriber's first event %+v", ev)
	}
	cancelSlow()
	cancelSlow() // idempotent
	if _, ok := <-slow; ok {
		t.Error("channel not closed by cancel")
	}
	cancelFast()
	wg.Wait()
	if len(got) != 20 {
		t.Errorf("fast subscriber got %d events, want 20", len(got))
	}
	c.Report("t1", ConnectError) // publishing after every cancel is fine
}

// TestConcurrentUse runs the request path (Healthy, RTT, Report)
// concurrently with probing, SetTargets and snapshots (under -race in CI),
// then checks what must hold whatever the interleaving: the probe schedule
// is untouched, the ejection cap and the restore order held, the counts in
// the snapshots match the events, and the checker still decides correctly.
func TestConcurrentUse(t *testing.T) {
	names := []string{"a", "b", "c"}
	h := run(t, Config{Interval: time.Second, Outlier: Outlier{ConsecutiveErrors: 2}}, names...)
	defer h.stop()
	h.script.setLatency("a", 3*time.Millisecond)
	// The same targets again: SetTargets must keep their state.
	same := make([]Target, len(names))
	for i, n := range names {
		same[i] = Target{Name: n, URL: "http://" + n + "/health/stamp"}
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				name := names[j%3]
				h.c.Healthy(name)
				h.c.RTT(name)
				// Only worker 0 reports on c, and fails every request
				// to it, so c gets ejected; a and b only succeed, so
				// neither can hold the one ejection slot c needs.
				switch {
				case name == "c" && i == 0:
					h.c.Report(name, ServerError)
				case name != "c":
					h.c.Report(name, Success)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			h.c.States()
			if err := h.c.SetTargets(same); err != nil {
				t.Error(err)
			}
		}
	})
	for range 20 {
		h.clk.Advance(time.Second)
	}
	wg.Wait()

	// Probing went on at its cadence: one probe a second from 0 to 20 s.
	var want []time.Duration
	for s := range 21 {
		want = append(want, time.Duration(s)*time.Second)
	}
	for _, n := range names {
		if got := h.script.startsOf(n); !slices.Equal(got, want) {
			t.Errorf("%s: probe starts %v, want every second from 0 to 20s", n, got)
		}
	}
	// Ejections: at most max(1, 0.5×3) = 1 at a time, each ended by a
	// restore before the next, and as many as the snapshots count.
	ejections := map[string]int{}
	out, open := 0, map[string]bool{}
	for _, ev := range h.drain() {
		switch ev.To {
		case StatusEjected:
			if open[ev.Target] {
				t.Errorf("%s ejected twice without a restore", ev.Target)
			}
			open[ev.Target] = true
			ejections[ev.Target]++
			if out++; out > 1 {
				t.Errorf("%d targets ejected at once at %s, above the cap of 1", out, ev.Time.Sub(t0))
			}
		case StatusRestored:
			if !open[ev.Target] {
				t.Errorf("%s restored without an ejection", ev.Target)
			}
			open[ev.Target] = false
			out--
		}
	}
	t.Logf("ejections during the concurrent phase: %v", ejections)
	if ejections["c"] == 0 {
		t.Error("c was never ejected, though worker 0 failed all its requests to it")
	}
	for _, st := range h.c.States() {
		if st.Status != StatusHealthy || st.Ejected != open[st.Name] || st.Healthy != !st.Ejected {
			t.Errorf("%s: status %s ejected %v healthy %v, want healthy probes and ejected %v", st.Name, st.Status, st.Ejected, st.Healthy, open[st.Name])
		}
		if st.Ejections != ejections[st.Name] {
			t.Errorf("%s: %d ejections in the snapshot, %d in the events", st.Name, st.Ejections, ejections[st.Name])
		}
		if !slices.Equal(st.Recent, []bool{true, true, true, true}) {
			t.Errorf("%s: recent %v, want the last 4 probes passed", st.Name, st.Recent)
		}
	}
	if rtt := h.c.RTT("a"); rtt != 3*time.Millisecond {
		t.Errorf("RTT(a) = %s, want the scripted 3ms", rtt)
	}
	// The passive rule still counts from a success: one error is
	// tolerated, the second in a row ejects (unless another target is
	// out, as the cap allows one).
	for _, n := range names {
		h.c.Report(n, Success)
		h.c.Report(n, ServerError)
		if st, _ := h.c.State(n); st.Ejected != open[n] {
			t.Errorf("%s: one error after a success changed ejected to %v", n, st.Ejected)
		}
	}
	h.clk.Advance(DefaultMaxEjectFor) // every ejection has ended
	h.drain()
	h.c.Report("b", ServerError)
	h.c.Report("b", ServerError)
	if !ejected(h.c, "b") {
		t.Error("b not ejected after two errors in a row")
	}
}

func BenchmarkHotPath(b *testing.B) {
	c, _ := passive(b, Outlier{}, 3)
	b.Run("Healthy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Healthy("t1")
		}
	})
	b.Run("RTT", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.RTT("t1")
		}
	})
	b.Run("ReportSuccess", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Report("t1", Success)
		}
	})
	b.Run("Healthy/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Healthy("t1")
				c.Report("t1", Success)
			}
		})
	})
}

// When the other regions are down, the last one in rotation is not ejected
// for its errors: its 503s (writes waiting for a data failover) are the
// platform's state, and ejecting it would leave nothing to route to.
func TestLastTargetInRotationIsNotEjected(t *testing.T) {
	h := run(t, Config{Interval: time.Second}, "westeurope", "northeurope")
	defer h.stop()
	h.drain()
	h.script.set("westeurope", refuse)
	h.clk.Advance(5 * time.Second)
	if h.c.Healthy("westeurope") {
		t.Fatal("westeurope still healthy with its probes refused")
	}
	h.c.Report("northeurope", ServerError)
	if ejected(h.c, "northeurope") || !h.c.Healthy("northeurope") {
		t.Fatal("the last region in rotation was ejected")
	}
	// With westeurope back, northeurope's errors eject it again.
	h.script.set("westeurope", up)
	h.clk.Advance(5 * time.Second)
	h.c.Report("northeurope", ServerError)
	if !ejected(h.c, "northeurope") {
		t.Fatal("northeurope not ejected with westeurope in rotation")
	}
}
