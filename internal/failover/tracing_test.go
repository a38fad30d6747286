package failover

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/telemetry"
)

// spans records every span of the package's tests. The package's tracer
// binds to the first global provider set, so there is one, set once.
var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

func recordSpans() *tracetest.SpanRecorder {
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	})
	return spans
}

// stepSpans are the ended spans of trace tid as "name@region".
func stepSpans(rec *tracetest.SpanRecorder, tid string) map[string]bool {
	out := map[string]bool{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != tid {
			continue
		}
		region := ""
		for _, kv := range s.Attributes() {
			if kv.Key == telemetry.AttrRegion {
				region = kv.Value.AsString()
			}
		}
		out[s.Name()+"@"+region] = true
	}
	return out
}

// waitSpans waits until trace tid holds every span of want.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, tid string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := stepSpans(rec, tid)
		missing := []string{}
		for _, w := range want {
			alts, ok := strings.Split(w, "|"), false
			for _, a := range alts {
				ok = ok || got[a]
			}
			if !ok {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s lacks %v; it has %v", tid, missing, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForcedFailoverIsOneTrace: a forced failover's steps in both regions
// are spans of the trace its request started.
func TestForcedFailoverIsOneTrace(t *testing.T) {
	rec := recordSpans()
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	res, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModeForced, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TraceID) != 32 {
		t.Fatalf("result trace id %q", res.TraceID)
	}
	waitSpans(t, rec, res.TraceID, "failover promote@"+ne, "failover fence@"+we+"|failover rejoin@"+we+"|failover repoint@"+we)
	for _, e := range res.Steps {
		if e.Step == StepPromote && e.TraceID != res.TraceID {
			t.Errorf("promote event in trace %q, want %s", e.TraceID, res.TraceID)
		}
	}
}

// TestAutomaticFailoverIsOneTrace: an automatic failover's trace starts at
// the region that decides to promote itself and holds its decision and
// promotion, and the old primary's rejoin when it comes back.
func TestAutomaticFailoverIsOneTrace(t *testing.T) {
	rec := recordSpans()
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second, Policy: PolicyAutomatic, Grace: 300 * time.Millisecond}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	killed := time.Now()
	l.kill(we)
	l.waitRole(ne, data.RolePrimary, 10*time.Second)
	tid := ""
	for deadline := time.Now().Add(5 * time.Second); tid == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// The root ends once the decision's round returns, after the promotion.
		for _, s := range rec.Ended() { // other tests' spans are there too
			if s.Name() == "failover orders automatic" && !s.Parent().IsValid() && s.StartTime().After(killed) {
				tid = s.SpanContext().TraceID().String()
			}
		}
	}
	if tid == "" {
		t.Fatal("no root span of an automatic failover ended within 5 s of the promotion")
	}
	waitSpans(t, rec, tid, "failover decide@"+ne, "failover promote@"+ne)
	// westeurope comes back: it rejoins as a secondary, in the same trace.
	l.n.mu.Lock()
	l.n.reps[we].down = false
	l.n.mu.Unlock()
	l.start(we)
	l.waitRole(we, data.RoleSecondary, 10*time.Second)
	waitSpans(t, rec, tid, "failover rejoin@"+we+"|failover repoint@"+we)
}
