package workload

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
)

var tracer = telemetry.Tracer("workload")

// startSpan starts the server span of one operation.
func startSpan(r *http.Request, name, service, region string) (context.Context, trace.Span) {
	ctx := telemetry.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(telemetry.AttrService.String(service), telemetry.AttrRegion.String(region)))
}

// endSpan records the operation's outcome: its status, or the error and
// the status it maps to.
func endSpan(span trace.Span, code int, err error) {
	if err != nil {
		code, _ = status(err)
		span.RecordError(err)
		if code >= 500 {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.SetAttributes(attribute.Int("http.response.status_code", code))
}
