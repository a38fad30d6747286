package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// behaviour is what a scripted target does when probed.
type behaviour int

const (
	up      behaviour = iota // 200 at once
	refuse                   // connection refused at once
	hang                     // no answer until the probe is cancelled
	fail503                  // 503 at once
)

// script is a Prober whose targets behave as told; it records probe starts.
type script struct {
	clk *FakeClock

	mu      sync.Mutex
	mode    map[string]behaviour
	latency map[string]time.Duration
	starts  map[string][]time.Time
	hanging map[context.Context]bool // contexts of the probes hanging now
}

func newScript(clk *FakeClock) *script {
	return &script{clk: clk, mode: map[string]behaviour{}, latency: map[string]time.Duration{}, starts: map[string][]time.Time{},
		hanging: map[context.Context]bool{}}
}

func (s *script) set(name string, b behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode[name] = b
}

func (s *script) setLatency(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency[name] = d
}

// startsOf returns the probe start times of name as offsets from t0.
func (s *script) startsOf(name string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, at := range s.starts[name] {
		out = append(out, at.Sub(t0))
	}
	return out
}

// held returns the number of probes hanging on purpose and not cancelled
// yet (FakeClock.SettleProbes): a cancelled one is about to return.
func (s *script) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ctx := range s.hanging {
		if ctx.Err() == nil {
			n++
		}
	}
	return n
}

func (s *script) Probe(ctx context.Context, t Target) Result {
	s.mu.Lock()
	m, lat := s.mode[t.Name], s.latency[t.Name]
	s.starts[t.Name] = append(s.starts[t.Name], s.clk.Now())
	s.mu.Unlock()
	switch m {
	case refuse:
		return Result{Err: errors.New("dial tcp 127.0.1.1:8080: connect: connection refused")}
	case hang:
		s.mu.Lock()
		s.hanging[ctx] = true
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		delete(s.hanging, ctx)
		s.mu.Unlock()
		return Result{Err: ctx.Err()}
	case fail503:
		return Result{Status: 503, Err: &StatusError{Status: 503, Expect: []int{200}}}
	}
	return Result{Status: 200, Latency: lat}
}

// harness runs a Checker on a FakeClock.
type harness struct {
	t      *testing.T
	c      *Checker
	clk    *FakeClock
	script *script
	events <-chan Event
	cancel context.CancelFunc
	errc   chan error
}

// run starts a Checker with cfg (jitter off unless set) on targets named
// names, all up, and fires their first probes at t0; stop ends it.
func run(t *testing.T, cfg Config, names ...string) *harness {
	t.Helper()
	clk := NewFakeClock(t0)
	sc := newScript(clk)
	cfg.Clock, cfg.Prober = clk, sc
	if cfg.Jitter == 0 {
		cfg.Jitter = -1
	}
	var targets []Target
	for _, n := range names {
		targets = append(targets, Target{Name: n, URL: "http://" + n + "/health/stamp"})
	}
	c, err := New(cfg, targets)
	if err != nil {
		t.Fatal(err)
	}
	clk.SettleProbes(c, sc.held)
	events, _ := c.Subscribe(1000)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, c: c, clk: clk, script: sc, events: events, cancel: cancel, errc: make(chan error, 1)}
	go func() { h.errc <- c.Run(ctx) }()
	clk.WaitPending(len(names)) // Run has scheduled the first probes
	clk.Advance(0)
	return h
}

func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.errc; err != nil {
		h.t.Fatalf("Run returned %v, want nil", err)
	}
}

// drain returns the events published so far.
func (h *harness) drain() []Event {
	var out []Event
	for {
		select {
		case ev := <-h.events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// transitions formats events as "name:from>to@offset".
func transitions(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s:%s>%s@%s", ev.Target, ev.From, ev.To, ev.Time.Sub(t0)))
	}
	return out
}

func secs(ds ...float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d * float64(time.Second))
	}
	return out
}

func TestDetectionBound(t *testing.T) {
	window := Config{Interval: time.Second, Timeout: 500 * time.Millisecond, SampleSize: 4, SuccessfulSamples: 2}
	tm := Config{Interval: 10 * time.Second, Timeout: 5 * time.Second, Consecutive: true, ToleratedFailures: 3}
	tests := []struct {
		name     string
		cfg      Config
		fail     behaviour
		jitter   bool
		failures int           // failed probes started after D up to and including the detecting one
		want     time.Duration // detection delay after D; 0 with jitter (only the bound is known)
		reason   string
	}{
		{"window/hang", window, hang, false, 3, 3500 * time.Millisecond, "3 of last 4 probes failed: timeout: no response after 500ms"},
		{"window/refused", window, refuse, false, 3, 3 * time.Second, "3 of last 4 probes failed: dial tcp 127.0.1.1:8080: connect: connection refused"},
		{"window/503", window, fail503, false, 3, 3 * time.Second, "3 of last 4 probes failed: status 503, want 200"},
		{"window/hang/jitter", window, hang, true, 3, 0, "3 of last 4 probes failed: timeout"},
		{"window/1of1", Config{Interval: time.Second, Timeout: 200 * time.Millisecond, SampleSize: 1, SuccessfulSamples: 1}, hang, false, 1, 1200 * time.Millisecond, "1 of last 1 probes failed"},
		{"window/3of3", Config{Interval: time.Second, Timeout: 200 * time.Millisecond, SampleSize: 3, SuccessfulSamples: 3}, refuse, false, 1, time.Second, "1 of last 3 probes failed"},
		{"consecutive/hang", tm, hang, false, 4, 45 * time.Second, "4 consecutive probes failed (3 tolerated): timeout: no response after 5s"},
		{"consecutive/refused", tm, refuse, false, 4, 40 * time.Second, "4 consecutive probes failed (3 tolerated): dial tcp"},
		{"consecutive/hang/jitter", tm, hang, true, 4, 0, "4 consecutive probes failed (3 tolerated)"},
		{"consecutive/0 tolerated", Config{Interval: 10 * time.Second, Timeout: 5 * time.Second, Consecutive: true}, hang, false, 1, 15 * time.Second, "1 consecutive probes failed (0 tolerated)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.jitter {
				cfg.Jitter = 0.1
			}
			h := run(t, cfg, "westeurope")
			defer h.stop()
			// The first probe runs within Interval×Jitter (0 without
			// jitter); the second not before Interval×(1-Jitter).
			h.clk.Advance(cfg.Interval / 10)
			evs := h.drain()
			if len(evs) != 1 || evs[0].To != StatusHealthy || !h.c.Healthy("westeurope") {
				t.Fatalf("after the first probe: events %v healthy %v, want unknown>healthy", transitions(evs), h.c.Healthy("westeurope"))
			}
			// The target dies just after the probe that made it healthy
			// started: the worst case of the bound.
			d := evs[0].Time
			h.script.set("westeurope", tt.fail)

			// Published bounds.
			var bound time.Duration
			if cfg.Consecutive {
				bound = cfg.Interval*time.Duration(cfg.ToleratedFailures+1) + cfg.Timeout
				if tmBound := (cfg.Interval + cfg.Timeout) * time.Duration(cfg.ToleratedFailures+1); bound > tmBound {
					t.Fatalf("bound %s above Traffic Manager's formula %s", bound, tmBound)
				}
			} else {
				bound = cfg.Interval*time.Duration(cfg.SampleSize-cfg.SuccessfulSamples+1) + cfg.Timeout
			}

			for h.c.Healthy("westeurope") && h.clk.Now().Sub(d) <= 2*bound {
				h.clk.Advance(cfg.Interval / 20)
			}
			evs = h.drain()
			if len(evs) != 1 || evs[0].From != StatusHealthy || evs[0].To != StatusUnhealthy || evs[0].Healthy {
				t.Fatalf("events %v, want one healthy>unhealthy", transitions(evs))
			}
			delay := evs[0].Time.Sub(d)
			if delay > bound {
				t.Errorf("detected after %s, above the documented bound %s", delay, bound)
			}
			if least := cfg.MinDetection(); delay < least {
				t.Errorf("detected after %s, below MinDetection %s", delay, least)
			}
			if tt.want != 0 && delay != tt.want {
				t.Errorf("detected after %s, want exactly %s", delay, tt.want)
			}
			if !strings.Contains(evs[0].Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", evs[0].Reason, tt.reason)
			}
			// Detection happens at the probe that makes it: it is the
			// `failures`-th probe started after D, and it started at the
			// event (immediate failure) or Timeout before it (hang).
			detecting := evs[0].Time
			if tt.fail == hang {
				detecting = detecting.Add(-cfg.Timeout)
			}
			n, found := 0, false
			for _, s := range h.script.startsOf("westeurope") {
				if at := t0.Add(s); at.After(d) && !at.After(detecting) {
					n++
					found = found || at.Equal(detecting)
				}
			}
			if !found {
				t.Errorf("no probe started at %s, the detecting probe's start", detecting.Sub(t0))
			}
			if n != tt.failures {
				t.Errorf("%d probes started between death and detection, want %d (starts %v)", n, tt.failures, h.script.startsOf("westeurope"))
			}
			st, _ := h.c.State("westeurope")
			if st.Status != StatusUnhealthy || st.Healthy || st.LastError == "" {
				t.Errorf("state %+v, want unhealthy with an error", st)
			}
		})
	}
}

// TestMinDetection: MinDetection is reached, not only respected, when the
// target starts refusing just before a probe starts (the best case).
func TestMinDetection(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want time.Duration
	}{
		{"window", Config{Interval: time.Second, Timeout: 500 * time.Millisecond, SampleSize: 4, SuccessfulSamples: 2}, 2 * time.Second},
		{"consecutive", Config{Interval: 10 * time.Second, Timeout: 5 * time.Second, Consecutive: true, ToleratedFailures: 3}, 30 * time.Second},
		{"consecutive/0 tolerated", Config{Interval: 10 * time.Second, Timeout: 5 * time.Second, Consecutive: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Jitter = -1 // as run sets it
			if got := cfg.MinDetection(); got != tt.want {
				t.Fatalf("MinDetection = %s, want %s", got, tt.want)
			}
			jittered := tt.cfg
			jittered.Jitter = 0.1
			if got, want := jittered.MinDetection(), tt.want*9/10; got != want {
				t.Errorf("MinDetection with jitter 0.1 = %s, want %s", got, want)
			}
			h := run(t, tt.cfg, "a")
			defer h.stop()
			const early = time.Millisecond
			h.clk.Advance(cfg.Interval - early) // the second probe starts at Interval
			d := h.clk.Now()
			h.script.set("a", refuse)
			for h.c.Healthy("a") && h.clk.Now().Sub(d) <= 2*tt.want+cfg.Interval {
				h.clk.Advance(cfg.Interval / 20)
			}
			var down []Event
			for _, ev := range h.drain() {
				if ev.To == StatusUnhealthy {
					down = append(down, ev)
				}
			}
			if len(down) != 1 {
				t.Fatalf("%d healthy>unhealthy events, want 1", len(down))
			}
			if got := down[0].Time.Sub(d); got != tt.want+early {
				t.Errorf("detected %s after the failure, want MinDetection %s + %s", got, tt.want, early)
			}
		})
	}
}

func TestScheduleAndRecovery(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		starts []time.Duration // probe starts, offsets from t0
		events []string
	}{
		{
			name: "window",
			cfg:  Config{Interval: time.Second, Timeout: 500 * time.Millisecond, FastInterval: 250 * time.Millisecond},
			// up at 0; refused from 0.1 (3 failures at 1,2,3); up again from
			// 3.6: passes at 3.75 and 4.0 (FastInterval while unhealthy),
			// then back to Interval.
			starts: secs(0, 1, 2, 3, 3.25, 3.5, 3.75, 4, 5, 6),
			events: []string{"a:unknown>healthy@0s", "a:healthy>unhealthy@3s", "a:unhealthy>healthy@4s"},
		},
		{
			name: "consecutive",
			cfg:  Config{Interval: time.Second, Timeout: 500 * time.Millisecond, FastInterval: 250 * time.Millisecond, Consecutive: true, ToleratedFailures: 2},
			// Recovery on the first pass, at 3.75.
			starts: secs(0, 1, 2, 3, 3.25, 3.5, 3.75, 4.75, 5.75),
			events: []string{"a:unknown>healthy@0s", "a:healthy>unhealthy@3s", "a:unhealthy>healthy@3.75s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := run(t, tt.cfg, "a")
			defer h.stop()
			h.clk.Advance(100 * time.Millisecond)
			h.script.set("a", refuse)
			h.clk.Advance(3500 * time.Millisecond) // to 3.6
			if h.c.Healthy("a") {
				t.Fatal("still healthy at 3.6s")
			}
			h.script.set("a", up)
			h.clk.Advance(6*time.Second - 3600*time.Millisecond)
			if got := h.script.startsOf("a"); !slices.Equal(got, tt.starts) {
				t.Errorf("probe starts %v, want %v", got, tt.starts)
			}
			if got := transitions(h.drain()); !slices.Equal(got, tt.events) {
				t.Errorf("events %v, want %v", got, tt.events)
			}
			if !h.c.Healthy("a") {
				t.Error("not healthy after recovery")
			}
		})
	}
}

func TestRecoveryBound(t *testing.T) {
	// A hanging target that comes back: the probe hanging when it returns
	// delays the next one until its timeout (documented bound).
	cfg := Config{Interval: time.Second, Timeout: 800 * time.Millisecond, FastInterval: 250 * time.Millisecond, SampleSize: 4, SuccessfulSamples: 2}
	h := run(t, cfg, "a")
	defer h.stop()
	h.script.set("a", hang)
	for h.c.Healthy("a") {
		h.clk.Advance(50 * time.Millisecond)
	}
	h.clk.Advance(100 * time.Millisecond) // a probe is hanging now
	u := h.clk.Now()
	h.script.set("a", up)
	for !h.c.Healthy("a") {
		h.clk.Advance(50 * time.Millisecond)
	}
	evs := h.drain()
	last := evs[len(evs)-1]
	bound := time.Duration(cfg.SuccessfulSamples)*max(cfg.FastInterval, cfg.Timeout) + cfg.Timeout
	if last.To != StatusHealthy || last.Time.Sub(u) > bound {
		t.Errorf("recovered %s after U (event %v), bound %s", last.Time.Sub(u), transitions(evs[len(evs)-1:]), bound)
	}
}

func TestFirstProbeFails(t *testing.T) {
	for _, consecutive := range []bool{false, true} {
		t.Run(fmt.Sprint("consecutive=", consecutive), func(t *testing.T) {
			cfg := Config{Interval: time.Second, Consecutive: consecutive}
			if consecutive {
				cfg.ToleratedFailures = 3
			}
			clk := NewFakeClock(t0)
			sc := newScript(clk)
			sc.set("a", refuse)
			cfg.Clock, cfg.Prober, cfg.Jitter = clk, sc, -1
			c, err := New(cfg, []Target{{Name: "a"}})
			if err != nil {
				t.Fatal(err)
			}
			clk.SettleProbes(c, sc.held)
			if st, _ := c.State("a"); st.Status != StatusUnknown || st.Healthy || c.Healthy("a") {
				t.Fatalf("before probing: %+v, want unknown and not healthy", st)
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error)
			go func() { errc <- c.Run(ctx) }()
			clk.WaitPending(1)
			clk.Advance(0)
			st, _ := c.State("a")
			if st.Status != StatusUnhealthy || len(st.History) != 1 || st.History[0].Reason != "first probe failed: dial tcp 127.0.1.1:8080: connect: connection refused" {
				t.Errorf("after a failed first probe: %+v", st)
			}
			// Window rule: R passes needed; consecutive: one.
			sc.set("a", up)
			clk.Advance(cfg.Interval/2 + 1) // FastInterval: one pass
			if got, want := c.Healthy("a"), consecutive; got != want {
				t.Errorf("after one pass: healthy %v, want %v", got, want)
			}
			clk.Advance(time.Second)
			if !c.Healthy("a") {
				t.Error("not healthy after two passes")
			}
			cancel()
			<-errc
		})
	}
}

func TestRTT(t *testing.T) {
	h := run(t, Config{Interval: time.Second}, "a", "b")
	defer h.stop()
	if rtt := h.c.RTT("a"); rtt != 0 {
		t.Fatalf("RTT without latency = %s, want 0 (unknown)", rtt)
	}
	h.script.setLatency("a", 10*time.Millisecond)
	h.clk.Advance(time.Second) // first sample taken as is
	if rtt := h.c.RTT("a"); rtt != 10*time.Millisecond {
		t.Errorf("RTT after 10ms = %s, want 10ms", rtt)
	}
	h.script.setLatency("a", 20*time.Millisecond)
	h.clk.Advance(time.Second) // 10 + 0.3×10
	if rtt := h.c.RTT("a"); rtt != 13*time.Millisecond {
		t.Errorf("RTT after 10ms, 20ms = %s, want 13ms", rtt)
	}
	h.clk.Advance(time.Second) // 13 + 0.3×7
	if rtt := h.c.RTT("a"); rtt != 15100*time.Microsecond {
		t.Errorf("RTT after 10, 20, 20ms = %s, want 15.1ms", rtt)
	}
	h.script.set("a", refuse) // failures do not count
	h.clk.Advance(time.Second)
	if rtt := h.c.RTT("a"); rtt != 15100*time.Microsecond {
		t.Errorf("RTT after a failure = %s, want 15.1ms", rtt)
	}
	if st, _ := h.c.State("a"); st.RTT.D() != 15100*time.Microsecond {
		t.Errorf("State RTT = %s", st.RTT)
	}
	if rtt := h.c.RTT("nope"); rtt != 0 {
		t.Errorf("RTT of unknown target = %s", rtt)
	}
}

func TestRunLifecycle(t *testing.T) {
	h := run(t, Config{Interval: time.Second, Timeout: time.Second}, "a")
	h.script.set("a", hang)
	h.clk.Advance(time.Second) // a probe is in flight and hanging
	if err := h.c.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	h.stop() // returns although a probe hangs: it is cancelled
	n := len(h.script.startsOf("a"))
	pending := h.clk.Pending()
	h.clk.Advance(time.Minute)
	if got := len(h.script.startsOf("a")); got != n {
		t.Errorf("%d probes after Run returned, want none", got-n)
	}
	if pending != 0 {
		t.Errorf("%d timers pending after Run returned, want 0", pending)
	}
	// The last verdict stays readable.
	if !h.c.Healthy("a") {
		t.Error("verdict lost after Run returned")
	}
}

func TestSetTargets(t *testing.T) {
	h := run(t, Config{Interval: time.Second}, "a", "b")
	defer h.stop()
	h.c.Report("b", ConnectError) // ejected; removal must release the cap
	if err := h.c.SetTargets([]Target{{Name: "a", URL: "http://a/health/stamp"}, {Name: "c", URL: "http://c/"}}); err != nil {
		t.Fatal(err)
	}
	if h.c.Healthy("c") {
		t.Error("new target healthy before its first probe")
	}
	h.clk.Advance(0)
	if !h.c.Healthy("c") || !h.c.Healthy("a") || h.c.Healthy("b") {
		t.Errorf("healthy a=%v b=%v c=%v, want true false true", h.c.Healthy("a"), h.c.Healthy("b"), h.c.Healthy("c"))
	}
	if _, ok := h.c.State("b"); ok {
		t.Error("removed target still has a state")
	}
	nb := len(h.script.startsOf("b"))
	h.clk.Advance(5 * time.Second)
	if len(h.script.startsOf("b")) != nb {
		t.Error("removed target still probed")
	}
	if got := len(h.script.startsOf("a")); got != 6 {
		t.Errorf("kept target probed %d times in 5s, want 6 (its schedule is kept)", got)
	}
	var names []string
	for _, st := range h.c.States() {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"a", "c"}) {
		t.Errorf("States names %v, want [a c]", names)
	}
	h.c.Report("a", ConnectError) // the cap (1 of 2) is free again
	if st, _ := h.c.State("a"); !st.Ejected {
		t.Error("a not ejected after b's removal freed the cap")
	}
	err := h.c.SetTargets([]Target{{Name: "a", URL: "http://a/"}, {Name: "a", URL: "x"}})
	if err == nil || !strings.Contains(err.Error(), `targets[1].name: "a" is already used`) {
		t.Errorf("invalid SetTargets: %v", err)
	}
}

func TestEventsAndHistory(t *testing.T) {
	h := run(t, Config{Interval: time.Second, SampleSize: 1, SuccessfulSamples: 1, History: 3}, "a")
	defer h.stop()
	for range 3 {
		h.script.set("a", fail503)
		h.clk.Advance(time.Second)
		h.script.set("a", up)
		h.clk.Advance(time.Second)
	}
	got := transitions(h.drain())
	want := []string{"a:unknown>healthy@0s",
		"a:healthy>unhealthy@1s", "a:unhealthy>healthy@1.5s",
		"a:healthy>unhealthy@2.5s", "a:unhealthy>healthy@3.5s",
		"a:healthy>unhealthy@4.5s", "a:unhealthy>healthy@5.5s"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	st, _ := h.c.State("a")
	if got := transitions(st.History); !slices.Equal(got, want[len(want)-3:]) {
		t.Errorf("history %v, want the last 3 events", got)
	}
	if st.History[1].Reason != "1 of last 1 probes failed: status 503, want 200" || st.History[2].Reason != "1 of last 1 probes passed (status 200)" {
		t.Errorf("reasons %q, %q", st.History[1].Reason, st.History[2].Reason)
	}
}

func TestTargetStateJSON(t *testing.T) {
	st := TargetState{Name: "a", URL: "http://a/", Status: StatusHealthy, Healthy: true, RTT: topology.Duration(3200 * time.Microsecond),
		LastProbe: t0, LastStatus: 200, Recent: []bool{true, false},
		History: []Event{{Time: t0, Target: "a", From: StatusUnknown, To: StatusHealthy, Reason: "first probe passed (status 200)", Healthy: true}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"rtt":"3.2ms"`, `"last_probe":"2025-01-01T12:00:00Z"`, `"last_status":200`, `"recent":[true,false]`, `"status":"healthy"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("JSON %s does not contain %s", b, w)
		}
	}
	for _, absent := range []string{"ejected_until", "last_error", "RTT"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("JSON %s contains %s", b, absent)
		}
	}
	var back TargetState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.RTT != st.RTT || back.Name != "a" || len(back.History) != 1 || !back.LastProbe.Equal(t0) {
		t.Errorf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"rtt":"fast"}`), &back); err == nil || !strings.Contains(err.Error(), `"fast" is not a duration`) {
		t.Errorf("bad rtt: %v", err)
	}
}
