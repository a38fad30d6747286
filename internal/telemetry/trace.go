package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys shared by every component, so that one trace across
// regions can be read by region, POP and service.
const (
	AttrRegion      = attribute.Key("geostamp.region")
	AttrPOP         = attribute.Key("geostamp.pop")
	AttrService     = attribute.Key("geostamp.service")
	AttrComponent   = attribute.Key("geostamp.component")
	AttrAttempt     = attribute.Key("geostamp.attempt")
	AttrRetryReason = attribute.Key("geostamp.retry_reason")
)

// TraceConfig names the process whose spans a tracer provider records.
type TraceConfig struct {
	// Process is the OpenTelemetry service.name suffix: "region",
	// "frontdoor", "gslb", "lab"; the service name is "geostamp-"+Process.
	Process string
	// Region or POP, when the process belongs to one.
	Region, POP string
}

// Tracing is the process's tracer provider.
type Tracing struct {
	provider *sdktrace.TracerProvider
	// Exporting is true when spans leave the process over OTLP.
	Exporting bool
}

// StartTracing installs the process's tracer provider and the W3C trace
// context propagator (traceparent and tracestate) as the globals every
// component uses. It follows the OpenTelemetry environment variables:
// spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and OTEL_TRACES_EXPORTER is not
// "none" (the exporter reads the other OTEL_EXPORTER_OTLP_* variables
// itself); sampling follows OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default parentbased_always_on). Without an endpoint spans are still
// created, so trace ids propagate and come back to clients, but none is
// exported.
func StartTracing(ctx context.Context, cfg TraceConfig) (*Tracing, error) {
	if cfg.Process == "" {
		return nil, errors.New("telemetry: TraceConfig.Process is empty")
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", "geostamp-"+cfg.Process)}
	if cfg.Region != "" {
		attrs = append(attrs, AttrRegion.String(cfg.Region))
	}
	if cfg.POP != "" {
		attrs = append(attrs, AttrPOP.String(cfg.POP))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: trace resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	t := &Tracing{}
	if exportConfigured() {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		t.Exporting = true
	}
	t.provider = sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(t.provider)
	otel.SetTextMapPropagator(Propagator())
	return t, nil
}

// Shutdown flushes the spans not exported yet.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

func exportConfigured() bool {
	if strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Propagator is the W3C trace context (traceparent, tracestate) and
// baggage propagator.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Tracer returns the tracer of a geostamp package ("frontdoor", "stamp"…)
// from the global provider.
func Tracer(pkg string) trace.Tracer {
	return otel.Tracer("github.com/geostamp/geostamp/internal/" + pkg)
}

// TraceID is the trace id of ctx's span as 32 hex digits, "" without one.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
