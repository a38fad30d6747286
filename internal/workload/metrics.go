package workload

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/telemetry"
)

// Outcomes of an operation, from its answer's status.
const (
	OutcomeOK          = "ok"
	OutcomeNotFound    = "not_found"
	OutcomeRejected    = "rejected"    // the request was wrong (other 4xx)
	OutcomeUnavailable = "unavailable" // 503: no writable primary, fenced, engine down
	OutcomeTimeout     = "timeout"     // 504: the data call ran out of time
	OutcomeError       = "error"       // any other 5xx
)

func outcomeOf(status int) string {
	switch {
	case status < 400:
		return OutcomeOK
	case status == http.StatusNotFound:
		return OutcomeNotFound
	case status < 500:
		return OutcomeRejected
	case status == http.StatusServiceUnavailable:
		return OutcomeUnavailable
	case status == http.StatusGatewayTimeout:
		return OutcomeTimeout
	}
	return OutcomeError
}

// metrics are the workload's series; the region is the registry's
// constant label.
type metrics struct {
	ops      *prometheus.CounterVec   // service, kind, outcome
	duration *prometheus.HistogramVec // service, kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_workload_operations_total",
			Help: "Operations of the sample workload, by data service, kind (read, write) and outcome (ok, not_found, rejected, unavailable, timeout, error).",
		}, []string{"service", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "geostamp_workload_operation_duration_seconds",
			Help:    "Duration of the workload's operations, data calls included, by data service and kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "kind"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.ops, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// opMetrics are one route's pre-resolved series.
type opMetrics struct {
	outcomes map[string]prometheus.Counter
	duration prometheus.Observer
}

func (m *metrics) forOp(service, kind string) *opMetrics {
	o := &opMetrics{outcomes: map[string]prometheus.Counter{}, duration: m.duration.WithLabelValues(service, kind)}
	for _, oc := range []string{OutcomeOK, OutcomeNotFound, OutcomeRejected, OutcomeUnavailable, OutcomeTimeout, OutcomeError} {
		o.outcomes[oc] = m.ops.WithLabelValues(service, kind, oc)
	}
	return o
}

func (o *opMetrics) observe(ctx context.Context, status int, d time.Duration) {
	o.outcomes[outcomeOf(status)].Inc()
	telemetry.ObserveWithTrace(ctx, o.duration, d.Seconds())
}
