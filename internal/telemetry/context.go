package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Keys of the span a log line was written in.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// WithTraceContext wraps h so that a record logged with a context that
// holds a span (log.InfoContext(ctx, …), log.LogAttrs(ctx, …)) carries
// the span's trace_id and span_id, sampled or not, so that a log line
// can be found from a trace and the other way round (geostamp logs
// --trace ID). A record without a span is passed on unchanged. Loggers
// from NewLogger have it; the ids are added at the record's level, so
// inside a group the logger opened with WithGroup.
func WithTraceContext(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ h slog.Handler }

func (t traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.h.Enabled(ctx, l) }

func (t traceHandler) WithAttrs(as []slog.Attr) slog.Handler { return traceHandler{t.h.WithAttrs(as)} }

func (t traceHandler) WithGroup(g string) slog.Handler { return traceHandler{t.h.WithGroup(g)} }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	return t.h.Handle(ctx, r)
}
