package frontdoor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/telemetry"
)

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestTracedRetry: a request with a traceparent, retried from a region
// answering 503 onto the next, is one trace: the front door's server span
// continues the client's trace, each try is a client span with its region,
// attempt number and retry reason, the region sees the try's span as its
// parent, and the trace id comes back in HeaderTraceID.
func TestTracedRetry(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	we.mode.Store(mode503)
	clk := health.NewFakeClock(time.Unix(1_700_000_000, 0)) // no probes: both fail open, westeurope first
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()},
		Clock: clk, POP: "ams", Tracer: tp.Tracer("github.com/geostamp/geostamp/internal/frontdoor")})
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, fd.url("/orders/7?x=1"), nil)
	req.Header.Set("traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
	resp, err := client(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(HeaderRegion) != "northeurope" {
		t.Fatalf("%d from %q, want a retry onto northeurope", resp.StatusCode, resp.Header.Get(HeaderRegion))
	}
	if got := resp.Header.Get(HeaderTraceID); got != tid {
		t.Errorf("%s %q, want the incoming trace id %s", HeaderTraceID, got, tid)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (server, two attempts)", len(spans))
	}
	var server sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != tid {
			t.Errorf("span %s in trace %s", s.Name(), s.SpanContext().TraceID())
		}
		if strings.HasPrefix(s.Name(), "attempt ") {
			attempts = append(attempts, s)
		} else {
			server = s
		}
	}
	if server == nil || server.Parent().SpanID().String() != "00f067aa0ba902b7" || attrOf(server, string(telemetry.AttrPOP)) != "ams" ||
		attrOf(server, "http.response.status_code") != "200" || attrOf(server, string(telemetry.AttrRegion)) != "northeurope" {
		t.Fatalf("server span: want the client's span as parent, pop ams, 200 from northeurope")
	}
	want := []struct{ region, attempt, reason, status string }{
		{"westeurope", "1", "", "503"},
		{"northeurope", "2", "status_503", "200"},
	}
	for i, w := range want {
		a := attempts[i]
		if a.Parent().SpanID() != server.SpanContext().SpanID() || attrOf(a, string(telemetry.AttrRegion)) != w.region ||
			attrOf(a, string(telemetry.AttrAttempt)) != w.attempt || attrOf(a, string(telemetry.AttrRetryReason)) != w.reason ||
			attrOf(a, "http.response.status_code") != w.status {
			t.Errorf("attempt %d: %s region=%s attempt=%s reason=%q status=%s, want %+v", i+1, a.Name(),
				attrOf(a, string(telemetry.AttrRegion)), attrOf(a, string(telemetry.AttrAttempt)),
				attrOf(a, string(telemetry.AttrRetryReason)), attrOf(a, "http.response.status_code"), w)
		}
	}
	// Each region saw its own try as the parent.
	for i, b := range []*backend{we, ne} {
		wantTP := "00-" + tid + "-" + attempts[i].SpanContext().SpanID().String() + "-01"
		if got := b.lastRequest().header.Get("traceparent"); got != wantTP {
			t.Errorf("%s got traceparent %q, want %q", b.name, got, wantTP)
		}
	}
}

// TestUntracedForwardsTraceContext: without a tracer the client's trace
// context goes to the region unchanged and no trace id is returned.
func TestUntracedForwardsTraceContext(t *testing.T) {
	we := newBackend(t, "westeurope")
	fd := start(t, Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, Clock: health.NewFakeClock(time.Unix(0, 0))})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodGet, fd.url("/"), nil)
	req.Header.Set("traceparent", tp)
	req.Header.Set("tracestate", "vendor=x")
	resp, err := client(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := we.lastRequest().header
	if h.Get("traceparent") != tp || h.Get("tracestate") != "vendor=x" || len(h.Values("traceparent")) != 1 {
		t.Errorf("region got traceparent %q tracestate %q, want them as sent, once", h.Values("traceparent"), h.Values("tracestate"))
	}
	if resp.Header.Get(HeaderTraceID) != "" {
		t.Errorf("trace id %q returned without tracing", resp.Header.Get(HeaderTraceID))
	}
}

// TestUnsampledTraceContext: an unsampled request records no span, yet
// its region continues the same (unsampled) trace, so that the region's
// parent-based sampler agrees with the front door, and the trace id comes
// back in HeaderTraceID and in the access log line.
func TestUnsampledTraceContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	we := newBackend(t, "westeurope")
	var alog syncBuffer
	fd := start(t, Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, Clock: health.NewFakeClock(time.Unix(0, 0)),
		Tracer: tp.Tracer("frontdoor"), AccessLog: &alog})
	resp, err := client(5 * time.Second).Get(fd.url("/orders/7"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tid := resp.Header.Get(HeaderTraceID)
	if len(tid) != 32 {
		t.Fatalf("%s %q, want a trace id", HeaderTraceID, tid)
	}
	got := we.lastRequest().header.Get("traceparent")
	if parts := strings.Split(got, "-"); len(parts) != 4 || parts[0] != "00" || parts[1] != tid || parts[3] != "00" {
		t.Errorf("region got traceparent %q, want trace %s, not sampled", got, tid)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded for an unsampled request", n)
	}
	var line map[string]any
	first, _, _ := strings.Cut(alog.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("access log line %q: %v", first, err)
	}
	if line["trace_id"] != tid || len(fmt.Sprint(line["span_id"])) != 16 {
		t.Errorf("access log line %v, want trace_id %s and a span_id", line, tid)
	}
}
