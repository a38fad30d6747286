package failover

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
)

// A failover is one trace: Ask starts it and carries its traceparent in
// the Request; the old primary copies it into the Handoff, the new primary
// into LastPrimary, so that every region's steps (fence, catch-up,
// promote, repoint, rejoin) are spans of it. An automatic failover's trace
// starts at the region that decides to promote itself.

var tracer = telemetry.Tracer("failover")

// traceContext is the W3C propagator, used directly: the trace context in
// the coordination keys must not depend on the process's global one.
var traceContext = propagation.TraceContext{}

// traceparentOf is ctx's span as a traceparent, "" without one.
func traceparentOf(ctx context.Context) string {
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// inTrace is a context whose remote parent is traceparent tp.
func inTrace(tp string) context.Context {
	return traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
}

// startStep starts the span of a step in the current failover's trace, a
// span that records nothing when no failover trace is known.
func (c *Controller) startStep(name string) trace.Span {
	if c.tp == "" {
		return trace.SpanFromContext(context.Background())
	}
	_, span := tracer.Start(inTrace(c.tp), "failover "+name, trace.WithAttributes(
		telemetry.AttrService.String(c.cfg.Group), telemetry.AttrRegion.String(c.cfg.Region)))
	return span
}

// endStep ends a step's span with its event.
func endStep(span trace.Span, e Event) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("geostamp.step", e.Step), attribute.Int64("geostamp.epoch", int64(e.Epoch)),
			attribute.Int64("geostamp.position", int64(e.Position)), attribute.String("geostamp.detail", e.Detail))
		if e.Mode != "" {
			span.SetAttributes(attribute.String("geostamp.mode", e.Mode))
		}
		if e.Gap > 0 {
			span.SetAttributes(attribute.Int64("geostamp.gap", int64(e.Gap)))
		}
		if e.Discarded > 0 {
			span.SetAttributes(attribute.Int64("geostamp.discarded", int64(e.Discarded)))
		}
		if e.Step == StepAbort {
			span.SetStatus(codes.Error, e.Detail)
		}
	}
	span.End()
}

// traceFor picks the trace of what this round may do: the pending
// request's, else the last promotion's when it is of the current epoch
// (the repoint and rejoin of the other regions).
func traceFor(co coordination, epoch uint64) string {
	if r := co.request; r != nil && r.Traceparent != "" && time.Now().Before(r.Deadline) {
		return r.Traceparent
	}
	if l := co.last; l != nil && l.Epoch == epoch {
		return l.Traceparent
	}
	return ""
}

// TraceID is the trace id of a traceparent, "" if it has none.
func TraceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) < 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}
