package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/geostamp/geostamp/internal/data/memstore"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/workload"
)

// region is a real workload over in-memory stores, served by httptest,
// with a fault switch in front of it.
type region struct {
	srv      *httptest.Server
	mode     atomic.Value // "", "write-503", "read-500", "read-404", "hang", "slow-read"
	lastFDID atomic.Value
	lastTP   atomic.Value // traceparent of the last request
}

func newRegion(t *testing.T, fdid string) *region {
	t.Helper()
	app, err := workload.New(workload.Config{Region: "westeurope", Orders: memstore.New("orders", "westeurope"), Catalog: memstore.New("catalog", "westeurope")})
	if err != nil {
		t.Fatal(err)
	}
	r := &region{}
	r.mode.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.lastFDID.Store(req.Header.Get("X-Geostamp-FDID"))
		r.lastTP.Store(req.Header.Get("traceparent"))
		if fdid != "" && req.Header.Get("X-Geostamp-FDID") != fdid {
			http.Error(w, "origin lock", http.StatusForbidden)
			return
		}
		switch mode := r.mode.Load().(string); {
		case mode == "write-503" && req.Method == http.MethodPost:
			http.Error(w, "brownout", http.StatusServiceUnavailable)
			return
		case mode == "read-500" && req.Method == http.MethodGet:
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case mode == "read-404" && req.Method == http.MethodGet:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		case mode == "hang":
			// The server notices the client went away only once the body
			// is read.
			io.Copy(io.Discard, req.Body)
			select {
			case <-req.Context().Done():
			case <-time.After(time.Minute):
			}
			return
		case mode == "slow-read" && req.Method == http.MethodGet:
			time.Sleep(30 * time.Millisecond)
		}
		app.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func newProber(t *testing.T, cfg Config) (*Prober, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

// series returns the value of a counter, or the count and sum of a
// histogram, with these labels.
func series(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (v float64, count uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, want := range labels {
				if got[k] != want {
					continue next
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0, 0
}

func value(m *dto.Metric) (float64, uint64) {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue(), 0
	case m.Gauge != nil:
		return m.Gauge.GetValue(), 0
	case m.Histogram != nil:
		return m.Histogram.GetSampleSum(), m.Histogram.GetSampleCount()
	}
	return 0, 0
}

func TestFlowOutcomes(t *testing.T) {
	r := newRegion(t, "the-fdid")
	target := Target{Name: "westeurope", Path: PathStamp, URL: r.srv.URL, Header: http.Header{"X-Geostamp-Fdid": {"the-fdid"}}}
	p, _ := newProber(t, Config{Targets: []Target{target}, Timeout: 300 * time.Millisecond, ReadRetry: 10 * time.Millisecond})
	tests := []struct {
		mode, want, errHas string
		target             Target
	}{
		{"", OutcomeOK, "", target},
		{"write-503", OutcomeWriteFailed, "status 503", target},
		{"read-500", OutcomeReadFailed, "status 500", target},
		{"read-404", OutcomeReadFailed, "still not found", target},
		{"hang", OutcomeWriteFailed, "deadline exceeded", target},
		{"", OutcomeWriteFailed, "status 403", Target{Name: "westeurope", Path: PathStamp, URL: r.srv.URL}},
	}
	for _, tc := range tests {
		r.mode.Store(tc.mode)
		res := p.Flow(context.Background(), tc.target)
		if res.Outcome != tc.want || (tc.errHas == "") != (res.Err == nil) || (res.Err != nil && !strings.Contains(res.Err.Error(), tc.errHas)) {
			t.Errorf("mode %q: outcome %s, err %v; want %s with %q", tc.mode, res.Outcome, res.Err, tc.want, tc.errHas)
		}
		if tc.want == OutcomeOK && (res.ID == "" || res.Region != "westeurope") {
			t.Errorf("a passing flow: %+v", res)
		}
	}
	if got := r.lastFDID.Load(); got != "" {
		t.Errorf("the last request, to a target without the header, carried FDID %q", got)
	}
}

func TestRunCountsAndObserves(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(telemetry.Propagator())
	t.Cleanup(func() { tp.Shutdown(context.Background()) })

	good, bad := newRegion(t, ""), newRegion(t, "")
	good.mode.Store("slow-read")
	bad.mode.Store("write-503")
	var logs bytes.Buffer
	logger, _ := telemetry.NewLogger(&logs, telemetry.LogConfig{})
	p, reg := newProber(t, Config{
		Targets: []Target{
			{Name: "pop-eu", Path: PathFrontDoor, URL: good.srv.URL},
			{Name: "northeurope", Path: PathStamp, URL: bad.srv.URL},
		},
		Interval: 20 * time.Millisecond,
		Timeout:  5 * time.Second,
		Logger:   telemetry.Component(logger, "probe"),
	})
	// Every series exists at zero before the first flow.
	for _, o := range Outcomes {
		if v, _ := series(t, reg, MetricFlows, map[string]string{"target": "northeurope", "path": PathStamp, "outcome": o}); v != 0 {
			t.Fatalf("%s before any flow: %v", o, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, _ := series(t, reg, MetricFlows, map[string]string{"target": "pop-eu", "outcome": OutcomeOK})
		failed, _ := series(t, reg, MetricFlows, map[string]string{"target": "northeurope", "outcome": OutcomeWriteFailed})
		if ok >= 3 && failed >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %v ok flows of pop-eu, %v failed of northeurope", ok, failed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	ok, _ := series(t, reg, MetricFlows, map[string]string{"target": "pop-eu", "path": PathFrontDoor, "outcome": OutcomeOK})
	if v, _ := series(t, reg, MetricFlows, map[string]string{"target": "pop-eu", "outcome": OutcomeWriteFailed}); v != 0 {
		t.Errorf("pop-eu: %v failed flows", v)
	}
	if v, _ := series(t, reg, MetricFlows, map[string]string{"target": "northeurope", "outcome": OutcomeOK}); v != 0 {
		t.Errorf("northeurope answers 503 to every write, yet %v flows passed", v)
	}
	// Every passing flow is observed, with at least the read's 30 ms.
	sum, count := series(t, reg, MetricDuration, map[string]string{"target": "pop-eu"})
	if float64(count) != ok || sum < 0.030*ok {
		t.Errorf("duration histogram: %d flows, sum %.3fs; want %v flows of at least 30 ms", count, sum, ok)
	}
	if _, n := series(t, reg, MetricDuration, map[string]string{"target": "northeurope"}); n != 0 {
		t.Errorf("failed flows observed in the duration histogram: %d", n)
	}
	if last, _ := series(t, reg, MetricLastSuccess, map[string]string{"target": "pop-eu"}); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("last success %v", last)
	}
	// The requests carried the flow's trace, and the one line about the
	// failing target names its region and that trace.
	if tp := good.lastTP.Load(); tp == nil || tp == "" {
		t.Error("no traceparent on the probe's requests")
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, v)
	}
	if len(lines) != 1 || lines[0]["msg"] != "probe flow failed" || lines[0]["region"] != "northeurope" || lines[0]["outcome"] != OutcomeWriteFailed ||
		len(lines[0]["trace_id"].(string)) != 32 || lines[0]["component"] != "probe" {
		t.Errorf("log lines: %v; want one failure line for northeurope with a trace id", lines)
	}
}

// A flow the end of Run cuts short is not counted: the target did not
// fail, the prober stopped.
func TestRunStopsOnCancel(t *testing.T) {
	r := newRegion(t, "")
	r.mode.Store("hang")
	p, reg := newProber(t, Config{Targets: []Target{{Name: "pop-eu", Path: PathFrontDoor, URL: r.srv.URL}}, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended, with a flow hanging")
	}
	for _, o := range Outcomes {
		if v, _ := series(t, reg, MetricFlows, map[string]string{"outcome": o}); v != 0 {
			t.Errorf("%s: %v flows counted", o, v)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	_, err := New(Config{Targets: []Target{
		{Name: "", Path: "dns", URL: "ftp://x"},
		{Name: "a", Path: PathStamp, URL: "http://a"},
		{Name: "a", Path: PathStamp, URL: "http://a"},
	}, Interval: -1})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"targets[0].name", "targets[0].path", "targets[0].url", "targets[2]: stamp a twice", "interval"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: missing %q", err, want)
		}
	}
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Errorf("no targets: %v", err)
	}
}
