package drill

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data/memstore"
	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/topology"
	"github.com/geostamp/geostamp/internal/workload"
)

// fakeLab is a control API over an in-process "platform": a front door
// that fails every request while westeurope is down, until northeurope is
// promoted 800 ms after the kill.
type fakeLab struct {
	mu      sync.Mutex
	calls   []string
	killed  time.Time
	promote time.Time
}

func (f *fakeLab) Do(_ context.Context, method, path string, body, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method+" "+path)
	var v any
	switch method + " " + path {
	case "GET /v1/data":
		v = fault.Data{
			"westeurope":  {Data: []fault.Replica{{Service: "orders", Role: "primary"}}},
			"northeurope": {Data: []fault.Replica{{Service: "orders", Role: "secondary"}}},
		}
	case "POST /v1/regions/westeurope/kill":
		f.killed = time.Now()
		f.promote = f.killed.Add(800 * time.Millisecond)
		v = map[string]any{"state": "killed"}
	case "POST /v1/regions/westeurope/restart":
		v = map[string]any{"state": "running", "pid": 42}
	case "GET /v1/events":
		var evs []map[string]any
		if !f.promote.IsZero() && time.Now().After(f.promote) {
			evs = append(evs, map[string]any{"time": f.promote, "kind": "failover", "step": "promote", "region": "northeurope", "service": "orders", "epoch": 2, "gap": 0},
				map[string]any{"time": f.promote, "kind": "failover", "step": "unfence", "region": "westeurope", "service": "orders", "epoch": 1},
				map[string]any{"time": f.killed, "kind": "region-kill", "region": "westeurope"})
		}
		v = evs
	default:
		return nil
	}
	if out != nil {
		b, _ := json.Marshal(v)
		return json.Unmarshal(b, out)
	}
	return nil
}

func (f *fakeLab) down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.killed.IsZero() && time.Now().Before(f.promote)
}

// TestExecute runs a whole drill in process: the plan's kill at T through
// the control API, the outage, the failover step the lab reports, the
// readback from both regions, the cleanup, and the three output files.
func TestExecute(t *testing.T) {
	if testing.Short() {
		t.Skip("4 s of real time")
	}
	store := memstore.New("orders", "northeurope")
	app, err := workload.New(workload.Config{Region: "northeurope", Orders: store, Catalog: memstore.New("catalog", "northeurope")})
	if err != nil {
		t.Fatal(err)
	}
	lab := &fakeLab{}
	fd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lab.down() {
			http.Error(w, `{"error":"no region answered"}`, http.StatusBadGateway)
			return
		}
		app.ServeHTTP(w, r)
	}))
	defer fd.Close()
	var listed atomic.Int64
	region := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		listed.Add(1)
		app.ServeHTTP(w, r)
	}))
	defer region.Close()

	topo := topology.Default()
	s, _ := fault.LookupScenario("region-outage")
	pl, err := s.Plan(fault.Params{Region: "westeurope", FaultAt: time.Second, Duration: 3 * time.Second}, topo)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var progress []Progress
	var pmu sync.Mutex
	sum, err := Execute(context.Background(), Config{
		Plan: pl, Topology: topo, Control: lab, Out: out, Target: "lab:test",
		Targets:  Targets{FrontDoor: fd.URL, Regions: map[string]string{"westeurope": region.URL, "northeurope": region.URL}},
		Load:     LoadConfig{Rate: 100},
		Analysis: Options{Hold: time.Second},
		Progress: func(p Progress) { pmu.Lock(); progress = append(progress, p); pmu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{HistoryFile, SummaryFile, ReportFile} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if sum.Ops != 300 || sum.Scenario != "region-outage" || sum.FaultAtSeconds == nil || *sum.FaultAtSeconds < 1.1 || *sum.FaultAtSeconds > 1.15 {
		t.Fatalf("ops %d, fault at %v", sum.Ops, sum.FaultAtSeconds)
	}
	// 800 ms of 502s from T: the RTO is 0.8 s (plus the control API call),
	// resolved to one send interval.
	if sum.RTOSeconds == nil || *sum.RTOSeconds < 0.75 || *sum.RTOSeconds > 0.9 || sum.RTOResolutionSeconds != 0.01 {
		t.Errorf("rto %v ± %g", sum.RTOSeconds, sum.RTOResolutionSeconds)
	}
	if sum.FailedRequests < 70 || sum.FailedRequests > 90 || sum.LostWrites != 0 || sum.UnverifiedWrites != 0 || sum.AckedWrites < 50 {
		t.Errorf("failed %d lost %d unverified %d acked %d", sum.FailedRequests, sum.LostWrites, sum.UnverifiedWrites, sum.AckedWrites)
	}
	// The killed region refuses connections (front door: 0 s), in parallel
	// with orders' promotion: lease 5 s less one renewal period 4/3 s, then
	// grace 10 s.
	if sum.FloorRTOSeconds == nil || *sum.FloorRTOSeconds != 13.666 {
		t.Errorf("floor %v, want 13.666", sum.FloorRTOSeconds)
	}
	if len(sum.FailoverSteps) != 1 || sum.FailoverSteps[0].Step != StepPromote || sum.PositionGap == nil || *sum.PositionGap != 0 {
		t.Errorf("steps %+v gap %v", sum.FailoverSteps, sum.PositionGap)
	}
	calls := strings.Join(lab.calls, "\n")
	for _, c := range []string{"GET /v1/data", "POST /v1/regions/westeurope/kill", "GET /v1/events", "POST /v1/regions/westeurope/restart"} {
		if !strings.Contains(calls, c) {
			t.Errorf("no %s in the control API calls:\n%s", c, calls)
		}
	}
	if listed.Load() < 2 {
		t.Errorf("the readback did not list both regions")
	}
	h, err := ReadFile(filepath.Join(out, HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h.Events {
		kinds = append(kinds, e.Kind+":"+e.Name+e.Step)
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "fault:kill-region") || !strings.Contains(got, "failover-step:promote") ||
		!strings.Contains(got, "note:failover-unfence") || strings.Contains(got, "region-kill") {
		t.Errorf("events %s: want the fault, the promote step, the unknown step as a note, and no echo of the lab's own kill event", got)
	}
	if h.Run.Services[0].Primary != "westeurope" || h.End == nil || h.End.Scheduled != 300 {
		t.Errorf("header services %+v, end %+v", h.Run.Services, h.End)
	}
	pmu.Lock()
	defer pmu.Unlock()
	var msgs []string
	for _, p := range progress {
		if p.Message != "" {
			msgs = append(msgs, p.Phase+": "+p.Message)
		}
	}
	if m := strings.Join(msgs, "\n"); !strings.Contains(m, "fault: fault: region kill: killed") || !strings.Contains(m, "failover promote: orders northeurope") ||
		!strings.Contains(m, "cleanup: restart-region region=westeurope") {
		t.Errorf("progress messages:\n%s", m)
	}
}

// TestExecuteRefusesLabFaultsWithoutALab: a plan that needs the control
// API cannot run against real endpoints.
func TestExecuteRefusesLabFaultsWithoutALab(t *testing.T) {
	s, _ := fault.LookupScenario("region-outage")
	pl, _ := s.Plan(fault.Params{}, topology.Default())
	_, err := Execute(context.Background(), Config{Plan: pl, Topology: topology.Default(), Out: t.TempDir(), Targets: Targets{FrontDoor: "http://127.0.0.1:9"}})
	if err == nil || !strings.Contains(err.Error(), "lab's control API") {
		t.Fatalf("err = %v", err)
	}
}
