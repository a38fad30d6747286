package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/httpjson"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/tracestore"
)

// TraceReceiver is the lab's OTLP/HTTP receiver of spans.
type TraceReceiver struct {
	// Endpoint is the base URL the OTLP exporters are given.
	Endpoint string
	srv      *http.Server
	done     chan struct{}
}

// ServeTraces starts an OTLP/HTTP receiver into st on host:0 and points
// this process's exporter (and so those of the region processes it starts,
// which inherit its environment) at it: OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, and, unless the user set it,
// OTEL_BSP_SCHEDULE_DELAY=500 (ms), so that traces reach the store within
// a second rather than the SDK's 5 s. Sampling (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG) is left to the user. Call it before
// telemetry.StartTracing.
func ServeTraces(host string, st *tracestore.Store) (*TraceReceiver, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("lab: trace receiver: %w", err)
	}
	tr := &TraceReceiver{
		Endpoint: "http://" + ln.Addr().String(),
		srv:      &http.Server{Handler: st.Receiver(), ReadHeaderTimeout: 5 * time.Second},
		done:     make(chan struct{}),
	}
	go func() {
		defer close(tr.done)
		tr.srv.Serve(ln)
	}()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": tr.Endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
	} {
		os.Setenv(k, v)
	}
	// The lab's store is where its traces go: an endpoint for traces only
	// would take precedence over it.
	os.Unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if os.Getenv("OTEL_BSP_SCHEDULE_DELAY") == "" {
		os.Setenv("OTEL_BSP_SCHEDULE_DELAY", "500")
	}
	return tr, nil
}

// Close stops the receiver, after the process's own tracer provider has
// flushed.
func (tr *TraceReceiver) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tr.srv.Shutdown(ctx)
	<-tr.done
}

var labTracer = telemetry.Tracer("lab")

// traceControl records a server span for each control call that changes
// something (every method but GET and HEAD: faults, failovers, region
// actions), continuing a traceparent the caller sent. Reads are left out:
// clients poll them, and they would crowd the store.
func traceControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		ctx := telemetry.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := labTracer.Start(ctx, "control "+r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		defer span.End()
		sw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
		if sw.code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.code))
		}
	})
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (c *codeWriter) WriteHeader(code int) {
	c.code = code
	c.ResponseWriter.WriteHeader(code)
}

// handleTraces serves GET /v1/traces: the summaries of recent traces,
// newest first, filtered by service (a process's service.name such as
// geostamp-region, or a data service such as orders), component (frontdoor,
// stamp, workload, jetstream, postgres, failover, lab), region,
// min_duration (a Go duration) and limit (default 20, at most 1000).
func (l *Lab) handleTraces(w http.ResponseWriter, r *http.Request) {
	if l.cfg.Traces == nil {
		errorJSON(w, http.StatusNotFound, "this lab keeps no traces")
		return
	}
	q := r.URL.Query()
	query := tracestore.Query{Service: q.Get("service"), Component: q.Get("component"), Region: q.Get("region")}
	var errs []error
	if v := q.Get("min_duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("min_duration: %q is not a duration such as 50ms", v))
		}
		query.MinDuration = d
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("limit: %q is not a number from 1 to 1000", v))
		}
		query.Limit = n
	}
	if err := errors.Join(errs...); err != nil {
		errorJSON(w, http.StatusBadRequest, "%v", err)
		return
	}
	httpjson.Write(w, http.StatusOK, l.cfg.Traces.Find(query))
}

// TraceAnswer is the body of GET /v1/traces/{id}.
type TraceAnswer struct {
	TraceID string            `json:"trace_id"`
	Spans   []tracestore.Span `json:"spans"`
}

func (l *Lab) handleTrace(w http.ResponseWriter, r *http.Request) {
	if l.cfg.Traces == nil {
		errorJSON(w, http.StatusNotFound, "this lab keeps no traces")
		return
	}
	id := r.PathValue("id")
	spans, ok := l.cfg.Traces.Trace(id)
	if !ok {
		errorJSON(w, http.StatusNotFound, "trace %q not held (not received, not sampled, or evicted)", id)
		return
	}
	httpjson.Write(w, http.StatusOK, TraceAnswer{TraceID: id, Spans: spans})
}
