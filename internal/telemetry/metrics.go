package telemetry

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Metric conventions, for every component:
//
//   - names start with MetricPrefix and end in the base unit
//     (_seconds, _bytes) or _total for counters;
//   - the process's place is a constant label on every series: "region"
//     for a region process, "pop" for a front door POP; components add
//     "component" where one process hosts several;
//   - latency histograms carry exemplars with the trace id (see
//     ObserveWithTrace), served in the OpenMetrics format.
const MetricPrefix = "geostamp_"

// Registry is a process's metrics: components register on Registerer,
// which adds the process's constant labels; Gatherer serves them.
type Registry struct {
	reg *prometheus.Registry
	// Registerer adds the process's labels to what it registers.
	Registerer prometheus.Registerer
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, whose series all carry labels (for example region).
func NewRegistry(labels prometheus.Labels) *Registry {
	reg := prometheus.NewRegistry()
	r := &Registry{reg: reg, Registerer: prometheus.WrapRegistererWith(labels, reg)}
	r.Registerer.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Gatherer returns what the registry collects.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the registry on /metrics, in the OpenMetrics format when
// the scraper asks for it (exemplars need it), else the text format.
func (r *Registry) Handler() http.Handler { return Handler(r.reg) }

// Handler serves g as Registry.Handler does.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// ObserveWithTrace observes v on o, with the trace id of ctx's span as the
// exemplar when that span is sampled (a histogram is an ExemplarObserver).
func ObserveWithTrace(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(v)
}
