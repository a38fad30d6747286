package stamp

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
)

var tracer = telemetry.Tracer("stamp")

// traced wraps the ingress's proxying in a server span that continues the
// front door's traceparent; the proxy sends the span on to the replica.
// It returns the span's context; sw is the ingress's writer, which
// records the status for the span and the metrics alike.
func (in *ingress) traced(sw *statusWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) context.Context {
	ctx := telemetry.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := tracer.Start(ctx, "ingress "+r.Method+" "+route(r.URL.Path), trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrRegion.String(in.s.cfg.Region),
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route(r.URL.Path)),
			attribute.String("url.path", r.URL.Path))
	}
	next(sw, r.WithContext(ctx))
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status()))
		if sw.status() >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status()))
		}
	}
	return ctx
}

// route is the path's first segment ("/orders/7" → "/orders"): the
// ingress balances over replicas and knows no finer route.
func route(path string) string {
	if i := strings.IndexByte(path[min(1, len(path)):], '/'); i >= 0 {
		return path[:i+1]
	}
	return path
}

// injectTrace sends the request's span to the replica.
func injectTrace(out *http.Request) {
	telemetry.Propagator().Inject(out.Context(), propagation.HeaderCarrier(out.Header))
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
