package jetstream

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/telemetry"
)

var tracer = telemetry.Tracer("jetstream")

// Put is doPut in a client span "jetstream put" with the service, the region
// and the region whose primary acknowledged.
func (s *service) Put(ctx context.Context, key string, value []byte) (data.Record, error) {
	ctx, span := tracer.Start(ctx, "jetstream put", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.AttrService.String(s.name), telemetry.AttrRegion.String(s.region)))
	defer span.End()
	rec, err := s.doPut(ctx, key, value)
	endData(span, rec, err)
	return rec, err
}

// Get is doGet in a client span "jetstream get".
func (s *service) Get(ctx context.Context, key string) (data.Record, error) {
	ctx, span := tracer.Start(ctx, "jetstream get", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(telemetry.AttrService.String(s.name), telemetry.AttrRegion.String(s.region)))
	defer span.End()
	rec, err := s.doGet(ctx, key)
	endData(span, rec, err)
	return rec, err
}

func endData(span trace.Span, rec data.Record, err error) {
	if !span.IsRecording() {
		return
	}
	switch {
	case err == nil:
		span.SetAttributes(attribute.Int64("geostamp.seq", int64(rec.Seq)))
		if rec.Region != "" {
			span.SetAttributes(attribute.String("geostamp.primary", rec.Region))
		}
	case errorIsNotFound(err):
		span.SetAttributes(attribute.Bool("geostamp.not_found", true))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

func errorIsNotFound(err error) bool { return errors.Is(err, data.ErrNotFound) }
