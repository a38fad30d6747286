package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
)

func TestTracingPropagatesWithoutExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := StartTracing(t.Context(), TraceConfig{Process: "region", Region: "westeurope"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	if tr.Exporting {
		t.Error("exporting without an OTLP endpoint")
	}
	// An incoming traceparent is continued: same trace id, new span.
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := Propagator().Extract(t.Context(), propagation.MapCarrier{"traceparent": parent})
	ctx, span := Tracer("stamp").Start(ctx, "request")
	defer span.End()
	if got := TraceID(ctx); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %q, want the incoming one", got)
	}
	out := propagation.MapCarrier{}
	Propagator().Inject(ctx, out)
	if tp := out["traceparent"]; !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("outgoing traceparent %q: want the same trace and this span as parent", tp)
	}
}

func TestTracingExportsWithEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tr, err := StartTracing(t.Context(), TraceConfig{Process: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting {
		t.Error("not exporting although OTEL_EXPORTER_OTLP_ENDPOINT is set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing listens: do not wait for the flush
	tr.Shutdown(ctx)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tr, err = StartTracing(t.Context(), TraceConfig{Process: "lab"})
	if err != nil || tr.Exporting {
		t.Errorf("OTEL_TRACES_EXPORTER=none: exporting %v, err %v", tr != nil && tr.Exporting, err)
	}
	if _, err := StartTracing(t.Context(), TraceConfig{}); err == nil {
		t.Error("no error without a process name")
	}
}

func TestRegistryLabelsAndExemplars(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	if _, err := StartTracing(t.Context(), TraceConfig{Process: "region"}); err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(prometheus.Labels{"region": "westeurope"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPrefix + "test_duration_seconds", Help: "test"})
	r.Registerer.MustRegister(h)
	ctx, span := Tracer("stamp").Start(t.Context(), "op")
	ObserveWithTrace(ctx, h, 0.02)
	span.End()

	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, want := range []string{
		`geostamp_test_duration_seconds_bucket{region="westeurope",le="0.025"} 1 # {trace_id="` + TraceID(ctx) + `"} 0.02`,
		`go_goroutines{region="westeurope"}`,
		`process_cpu_seconds_total{region="westeurope"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
