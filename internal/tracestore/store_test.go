package tracestore

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestReceiveFromSDK exports spans with the OpenTelemetry SDK's own
// OTLP/HTTP exporter (gzip on) to the receiver and reads them back.
func TestReceiveFromSDK(t *testing.T) {
	st := New(0, 0)
	srv := httptest.NewServer(st.Receiver())
	defer srv.Close()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(srv.URL+ReceivePath), otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "geostamp-region"), attribute.String("geostamp.region", "westeurope"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
	ctx, root := tp.Tracer("github.com/geostamp/geostamp/internal/stamp").Start(context.Background(), "ingress", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tp.Tracer("github.com/geostamp/geostamp/internal/jetstream").Start(ctx, "put",
		trace.WithAttributes(attribute.String("geostamp.service", "orders"), attribute.String("geostamp.region", "northeurope")))
	time.Sleep(2 * time.Millisecond)
	child.End()
	root.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := root.SpanContext().TraceID().String()
	spans, ok := st.Trace(strings.ToUpper(id))
	if !ok || len(spans) != 2 {
		t.Fatalf("trace %s: %d spans (held %v), want 2", id, len(spans), ok)
	}
	r, c := spans[0], spans[1]
	if r.Name != "ingress" || r.Kind != "server" || r.Component != "stamp" || r.Region != "westeurope" || r.Service != "geostamp-region" || r.ParentID != "" {
		t.Errorf("root span %+v", r)
	}
	if c.Name != "put" || c.ParentID != r.SpanID || c.Component != "jetstream" || c.Region != "northeurope" || c.Duration < 2 {
		t.Errorf("child span %+v (the span's own region attribute wins over the resource's)", c)
	}
	for _, tc := range []struct {
		name string
		q    Query
		want int
	}{
		{"all", Query{}, 1},
		{"service name", Query{Service: "geostamp-region"}, 1},
		{"data service", Query{Service: "orders"}, 1},
		{"other service", Query{Service: "catalog"}, 0},
		{"component", Query{Component: "jetstream"}, 1},
		{"region of a child", Query{Region: "northeurope"}, 1},
		{"region and component", Query{Region: "eastus", Component: "stamp"}, 0},
		{"long enough", Query{MinDuration: time.Millisecond}, 1},
		{"too short", Query{MinDuration: time.Hour}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := st.Find(tc.q)
			if len(got) != tc.want {
				t.Fatalf("%d traces, want %d", len(got), tc.want)
			}
			if tc.want == 1 && (got[0].TraceID != id || got[0].Root != "ingress" || got[0].Spans != 2) {
				t.Errorf("summary %+v", got[0])
			}
		})
	}
	var b strings.Builder
	WriteTree(&b, spans)
	if !strings.Contains(b.String(), "ingress  +0.0ms") || !strings.Contains(b.String(), "\n  put  +") || !strings.Contains(b.String(), "[jetstream northeurope] service=orders") {
		t.Errorf("tree:\n%s", b.String())
	}
}

func TestBounds(t *testing.T) {
	st := New(3, 2)
	sp := func(trace, span string) Span { return Span{TraceID: trace, SpanID: span, Start: time.Unix(1, 0)} }
	st.Add([]Span{sp("a", "1"), sp("a", "2"), sp("a", "3")}) // the third is over the span bound
	st.Add([]Span{sp("b", "1")})
	st.Add([]Span{sp("c", "1")})
	st.Add([]Span{sp("b", "2")}) // b is now more recent than a
	st.Add([]Span{sp("d", "1")}) // evicts a, the least recently updated
	if st.Len() != 3 {
		t.Errorf("%d traces held, want 3", st.Len())
	}
	if _, ok := st.Trace("a"); ok {
		t.Error("a was kept, want it evicted")
	}
	if s, ok := st.Trace("b"); !ok || len(s) != 2 {
		t.Errorf("b: %d spans, held %v", len(s), ok)
	}
	got := st.Find(Query{Limit: 2})
	if len(got) != 2 || got[0].TraceID != "d" || got[1].TraceID != "b" {
		t.Errorf("newest two: %+v", got)
	}
}

func TestReceiverRejects(t *testing.T) {
	srv := httptest.NewServer(New(0, 0).Receiver())
	defer srv.Close()
	for _, tc := range []struct {
		ct, body string
		want     int
	}{
		{"application/json", "{}", 415},
		{"application/x-protobuf", "\xff\xff\xff", 400},
	} {
		resp, err := srv.Client().Post(srv.URL+ReceivePath, tc.ct, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.ct, resp.StatusCode, tc.want)
		}
	}
}
