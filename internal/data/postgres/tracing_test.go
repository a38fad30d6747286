package postgres

import (
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/geostamp/geostamp/internal/telemetry"
)

// The package's tracer binds to the first global provider set: one, once.
var (
	spansOnce sync.Once
	spans     *tracetest.SpanRecorder
)

// TestTracedCalls: a write through the standby and a read are client
// spans of the caller's trace, with the service, the calling region and,
// for the write, the region whose primary acknowledged it.
func TestTracedCalls(t *testing.T) {
	t.Parallel()
	spansOnce.Do(func() {
		spans = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	})
	l := newLab(t, orders, "A", "B")
	l.bootstrap("A", orders)
	b := l.replica("B", "orders")
	ctx, parent := sdktrace.NewTracerProvider().Tracer("test").Start(ctxT(t, 10*time.Second), "request")
	rec, err := b.Put(ctx, "traced", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	positionIs(t, b, rec.Seq, 20*time.Second)
	if _, err := b.Get(ctx, "traced"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	got := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.SpanContext().TraceID() == parent.SpanContext().TraceID() {
			got[s.Name()] = s
		}
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.Emit()
			}
		}
		return ""
	}
	put, get := got["postgres put"], got["postgres get"]
	if put == nil || get == nil {
		t.Fatalf("spans under the request: %v, want postgres put and get", got)
	}
	for _, s := range []sdktrace.ReadOnlySpan{put, get} {
		if attr(s, string(telemetry.AttrService)) != "orders" || attr(s, string(telemetry.AttrRegion)) != "B" {
			t.Errorf("%s: service %q region %q, want orders and B", s.Name(), attr(s, string(telemetry.AttrService)), attr(s, string(telemetry.AttrRegion)))
		}
	}
	if p := attr(put, "geostamp.primary"); p != "A" {
		t.Errorf("postgres put acknowledged by %q, want A", p)
	}
}
