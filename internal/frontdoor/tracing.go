package frontdoor

import (
	"bufio"
	"context"
	"encoding/hex"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
)

var (
	serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// reqTrace is a request's server span, when the front door traces.
type reqTrace struct {
	ctx  context.Context
	span trace.Span // nil when not tracing
}

// inCarrier reads the trace context fields the request came with.
type inCarrier struct{ in *inbound }

func (c inCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.in.traceparent
	case "tracestate":
		return c.in.tracestate
	}
	return ""
}
func (inCarrier) Set(string, string) {}
func (inCarrier) Keys() []string     { return []string{"traceparent", "tracestate"} }

var _ propagation.TextMapCarrier = inCarrier{}

// startTrace starts the request's server span, continuing an incoming
// traceparent. Without a tracer it does nothing (the hot path allocates
// nothing).
func (f *FrontDoor) startTrace(in *inbound) reqTrace {
	if f.s.Tracer == nil {
		return reqTrace{}
	}
	ctx := context.Background()
	if in.traceparent != "" {
		ctx = telemetry.Propagator().Extract(ctx, inCarrier{in})
	}
	// Attributes only on spans that record: an unsampled request costs
	// the span and its context, no more.
	ctx, span := f.s.Tracer.Start(ctx, in.method, serverSpan...)
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrPOP.String(f.s.POP),
			attribute.String("http.request.method", in.method),
			attribute.String("url.path", pathOf(in.target)))
	}
	return reqTrace{ctx: ctx, span: span}
}

func pathOf(target string) string {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' {
			return target[:i]
		}
	}
	return target
}

// attempt starts the client span of try n (from 1) to region o; reason is
// why the previous try is retried ("" for the first). An unsampled request
// gets no try spans: nothing would record them, and the region continues
// the server span's context (see parent).
func (t *reqTrace) attempt(f *FrontDoor, o *origin, n int, reason string) trace.Span {
	if t.span == nil || !t.span.IsRecording() {
		return nil
	}
	_, span := f.s.Tracer.Start(t.ctx, o.spanName, clientSpan...)
	if span.IsRecording() {
		span.SetAttributes(telemetry.AttrRegion.String(o.name), telemetry.AttrPOP.String(f.s.POP), telemetry.AttrAttempt.Int(n))
		if reason != "" {
			span.SetAttributes(telemetry.AttrRetryReason.String(reason))
		}
	}
	return span
}

// endAttempt ends a try's span with the region's status or the failure.
func endAttempt(span trace.Span, status int, outcome string) {
	if span == nil {
		return
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	if status > 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if outcome != "" {
		span.SetAttributes(attribute.String("geostamp.outcome", outcome))
		span.SetStatus(codes.Error, outcome)
	} else if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// end ends the server span with the answer's status and region.
func (t *reqTrace) end(f *FrontDoor, rec *record) {
	if t.span == nil {
		return
	}
	if !t.span.IsRecording() {
		t.span.End()
		return
	}
	t.span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
	if rec.region >= 0 {
		t.span.SetAttributes(telemetry.AttrRegion.String(f.origins[rec.region].name))
	}
	if rec.reason != "" {
		t.span.SetAttributes(attribute.String("geostamp.reason", rec.reason))
	}
	if rec.status >= 500 {
		t.span.SetStatus(codes.Error, http.StatusText(rec.status))
	}
	t.span.End()
}

// parent is the span context a try sends to its region: the try's span,
// else the unsampled server span's, else none (not tracing).
func (t *reqTrace) parent(try trace.Span) trace.SpanContext {
	switch {
	case try != nil:
		return try.SpanContext()
	case t.span != nil:
		return t.span.SpanContext()
	}
	return trace.SpanContext{}
}

// traceID is the response's HeaderTraceID field, or false when not
// tracing.
func (t *reqTrace) traceID() (field, bool) {
	if t.span == nil {
		return field{}, false
	}
	return field{HeaderTraceID, t.span.SpanContext().TraceID().String()}, true
}

// writeTraceContext writes the trace context fields of the upstream
// request: sc as parent when tracing, else the client's fields as
// received.
func writeTraceContext(bw *bufio.Writer, in *inbound, sc trace.SpanContext, scratch []byte) {
	if !sc.IsValid() {
		if in.traceparent != "" {
			writeField(bw, "traceparent", in.traceparent)
		}
		if in.tracestate != "" {
			writeField(bw, "tracestate", in.tracestate)
		}
		return
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := append(scratch[:0], "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-', '0', '0')
	if sc.IsSampled() {
		b[len(b)-1] = '1'
	}
	bw.WriteString("traceparent: ")
	bw.Write(b)
	bw.WriteString("\r\n")
	if ts := sc.TraceState(); ts.Len() > 0 {
		writeField(bw, "tracestate", ts.String())
	}
}

func writeField(bw *bufio.Writer, name, value string) {
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}
