package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data/memstore"
	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/workload"
)

// stallServer answers like the orders API (every write acknowledged, every
// read found) and holds every request that arrives in [from, to) on the
// test's clock until to: a hang the open-loop schedule must not wait for.
func stallServer(t *testing.T, t0 time.Time, from, to time.Duration) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if el := time.Since(t0); el >= from && el < to {
			time.Sleep(to - el)
		}
		w.Header().Set(HeaderRegion, "westeurope")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"id": "0123456789abcdef0123456789abcdef", "region": "westeurope", "seq": n.Load()})
			return
		}
		w.Write([]byte(`{"id":"x"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestOpenLoopKeepsScheduleWhenServerStalls: the server stalls every
// request for 1.5 s; the generator keeps sending on schedule (no
// coordinated omission), and the stalled operations' latency, measured from
// their intended instant, shows the stall.
func TestOpenLoopKeepsScheduleWhenServerStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("4 s of real time")
	}
	const rate = 100.0
	stallFrom, stallTo := time.Second, 2500*time.Millisecond
	t0 := time.Now()
	srv, _ := stallServer(t, t0, stallFrom, stallTo)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	gen, err := NewLoadGenerator(LoadConfig{Rate: rate, Duration: 4 * time.Second, Timeout: 3 * time.Second, RunID: "t"},
		Targets{FrontDoor: srv.URL}, w, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&Run{Version: Version, Scenario: "stall", Rate: rate, Objectives: Objectives{RTOSeconds: 30}})
	w.Write(&Event{T: int64(stallFrom), Kind: EventFault, Name: "stall"})
	res := gen.Run(context.Background())
	w.Write(&End{T: int64(time.Since(t0)), Scheduled: res.Scheduled, GeneratorBehind: res.Behind, MaxLag: int64(res.MaxLag)})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// A generator that waited for answers would lag by the whole stall
	// (1.5 s); this one may only lag by what the machine's scheduler
	// costs. (Whether that stays under the validity limit of 25 ms depends
	// on the machine; TestGeneratorReportsFallingBehind checks the limit.)
	if res.Scheduled != 400 || len(h.Ops) != 400 || res.MaxLag > (stallTo-stallFrom)/3 {
		t.Fatalf("scheduled %d, records %d, max lag %s", res.Scheduled, len(h.Ops), res.MaxLag)
	}
	t.Logf("max lag %s, %d of 400 operations more than %s late", res.MaxLag, res.LateOps, DefaultMaxSendLag)
	stalled := 0
	for _, o := range h.Ops {
		if o.Outcome != OK {
			t.Fatalf("op %d: %s %s", o.Seq, o.Outcome, o.Error)
		}
		if want := int64(float64(o.Seq) * 1e9 / rate); o.Intended != want {
			t.Fatalf("op %d intended %d, want %d", o.Seq, o.Intended, want)
		}
		if lag := time.Duration(o.Sent - o.Intended); lag > (stallTo-stallFrom)/3 {
			t.Errorf("op %d sent %s after its intended instant: the stall delayed the schedule", o.Seq, lag)
		}
		if time.Duration(o.Intended) >= stallFrom && time.Duration(o.Intended) < stallTo-50*time.Millisecond {
			stalled++
			if time.Duration(o.Done) < stallTo {
				t.Errorf("op %d intended in the stall done at %s, before the stall ended", o.Seq, time.Duration(o.Done))
			}
		}
	}
	// Every operation intended in the stall was sent, on time (a closed
	// loop client would have sent one per connection and waited).
	if stalled != 145 {
		t.Errorf("%d operations intended in the stall, want 145", stalled)
	}
	s := Analyze(h, Options{SlowAfter: 500 * time.Millisecond, Window: 500 * time.Millisecond, Hold: time.Second})
	if g := s.Generator; g.Missing != 0 || g.OffSchedule != 0 || g.Duplicate != 0 {
		t.Errorf("the schedule was not kept: %+v", g)
	}
	// An operation intended at i is done at the stall's end (2.5 s): slow
	// (over 500 ms) when intended before 2 s. The recovery is the first
	// operation intended at 2 s, 1 s after the fault (give or take a send
	// interval and the server's own time).
	if s.RTOSeconds == nil || *s.RTOSeconds < 0.95 || *s.RTOSeconds > 1.1 {
		t.Errorf("rto %v, want 1 s (the stall's end minus SlowAfter, after the fault at 1 s)", s.RTOSeconds)
	}
	var fault *PhaseStats
	for i := range s.Phases {
		if s.Phases[i].Name == PhaseFault {
			fault = &s.Phases[i]
		}
	}
	if fault == nil || fault.Latency == nil || fault.Latency.MaxMs < 1400 {
		t.Fatalf("fault phase latency %+v: the stall must show", fault)
	}
}

// TestGeneratorReportsFallingBehind: with too few workers for a slow
// server the schedule slips; the generator says so and the run is invalid.
func TestGeneratorReportsFallingBehind(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		w.Header().Set(HeaderRegion, "westeurope")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"0123456789abcdef0123456789abcdef","seq":1}`))
	}))
	defer srv.Close()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	t0 := time.Now()
	gen, err := NewLoadGenerator(LoadConfig{Rate: 100, Duration: 500 * time.Millisecond, Workers: 1, WriteOnly: true, RunID: "t"},
		Targets{FrontDoor: srv.URL}, w, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&Run{Version: Version, Scenario: "behind", Rate: 100})
	res := gen.Run(context.Background())
	w.Write(&End{Scheduled: res.Scheduled, GeneratorBehind: res.Behind, MaxLag: int64(res.MaxLag)})
	w.Flush()
	// 50 operations of 40 ms each on one worker take 2 s for a 0.5 s schedule.
	if !res.Behind || res.MaxLag < time.Second || len(res.Writes) != 50 {
		t.Fatalf("behind %v, max lag %s, writes %d", res.Behind, res.MaxLag, len(res.Writes))
	}
	h, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	s := Analyze(h, Options{})
	if s.Valid || !s.Generator.SelfReportedBehind || s.Generator.LateOps < 40 {
		t.Fatalf("valid %v, generator %+v", s.Valid, s.Generator)
	}
}

// TestLoadAndReadBackAgainstTheWorkload drives the real orders API
// (workload on an in-memory store) on both paths' code, then reads every
// write back from two "regions" sharing one store, one of which answers
// 503: its readback carries the error.
func TestLoadAndReadBackAgainstTheWorkload(t *testing.T) {
	app, err := workload.New(workload.Config{Region: "westeurope", Orders: memstore.New("orders", "westeurope"), Catalog: memstore.New("catalog", "westeurope")})
	if err != nil {
		t.Fatal(err)
	}
	var fdids atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderFDID) == "fd-1" {
			fdids.Add(1)
		}
		app.ServeHTTP(w, r)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderRegion, "northeurope")
		http.Error(w, `{"error":"data service unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer down.Close()

	var buf bytes.Buffer
	w := NewWriter(&buf)
	t0 := time.Now()
	tg := Targets{FrontDoor: srv.URL, FDID: "fd-1", Regions: map[string]string{"westeurope": srv.URL, "northeurope": down.URL}}
	gen, err := NewLoadGenerator(LoadConfig{Rate: 200, Duration: time.Second, RunID: "wl", Seed: 7,
		Streams: []fault.Stream{{Path: fault.PathFrontDoor, Conn: fault.ConnPooled}, {Path: fault.PathFrontDoor, Conn: fault.ConnFresh}}},
		tg, w, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(&Run{Version: Version, Scenario: "steady", Rate: 200, Services: []Service{{Name: "orders", Kind: "primary-secondary", Primary: "westeurope"}}})
	res := gen.Run(context.Background())
	if err := gen.ReadBack(context.Background(), res.Writes, 0); err != nil {
		t.Fatal(err)
	}
	w.Write(&End{Scheduled: res.Scheduled})
	w.Flush()
	h, err := ReadHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	writes, reads, found := 0, 0, 0
	for _, o := range h.Ops {
		if o.Outcome != OK {
			t.Fatalf("op %+v", o)
		}
		switch o.Op {
		case OpWrite:
			writes++
			if o.ID == "" || o.Position == 0 || o.Region != "westeurope" || !strings.HasPrefix(o.Key, "drill-wl-") {
				t.Fatalf("write %+v", o)
			}
		case OpRead:
			reads++
			if o.Found != nil && *o.Found {
				found++
			}
		}
	}
	// 30 % writes (the seed fixes the mix; the share is within a few %).
	if writes < 40 || writes > 80 || writes+reads != 200 || found < reads-5 {
		t.Fatalf("writes %d reads %d found %d", writes, reads, found)
	}
	if len(h.Readbacks) != 2*writes {
		t.Fatalf("%d readbacks for %d writes in 2 regions", len(h.Readbacks), writes)
	}
	for _, rb := range h.Readbacks {
		switch rb.Region {
		case "westeurope":
			if !rb.Found || rb.Error != "" {
				t.Fatalf("westeurope readback %+v", rb)
			}
		case "northeurope":
			if rb.Found || !strings.Contains(rb.Error, "503") {
				t.Fatalf("northeurope readback %+v", rb)
			}
		default:
			t.Fatalf("readback region %q", rb.Region)
		}
	}
	if fdids.Load() < 1 {
		t.Errorf("the readback did not send the front door id")
	}
	// This test is about the load and the readback, not the schedule
	// (TestOpenLoopKeepsScheduleWhenServerStalls is): sends may lag by
	// up to the run's length (1 s) on a loaded machine or under -race.
	s := Analyze(h, Options{MaxSendLag: time.Second})
	if !s.Valid || s.LostWrites != 0 || s.AckedWrites != writes || s.StaleReads != 0 {
		t.Fatalf("summary: valid %v lost %d acked %d stale %d reasons %v", s.Valid, s.LostWrites, s.AckedWrites, s.StaleReads, s.Reasons)
	}
}

func TestUnitMix(t *testing.T) {
	n, w := 100000, 0
	for i := range n {
		if unit(42, int64(i)) < 0.3 {
			w++
		}
	}
	if share := float64(w) / float64(n); share < 0.29 || share > 0.31 {
		t.Fatalf("write share %g", share)
	}
	if unit(1, 5) != unit(1, 5) || unit(1, 5) == unit(2, 5) {
		t.Fatal("the mix must depend on the seed only")
	}
}
