package stamp

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/telemetry"
)

// Route classes of the ingress's metrics: the health model, or the
// workload behind it. The ingress knows no finer route, and a label from
// the request path would let any client add series.
const (
	routeHealth = "health"
	routeApp    = "app"
)

// metrics are the stamp's series (see docs/observability.md). The region
// is the registry's constant label.
type metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	inFlight prometheus.Gauge
	checkUp  *prometheus.GaugeVec     // check
	checkDur *prometheus.HistogramVec // check
}

func newMetrics(s *Stamp) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_stamp_requests_total",
			Help: "Requests the stamp ingress answered, by route class (health, app) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "geostamp_stamp_request_duration_seconds",
			Help:    "Time the stamp ingress took to answer, by route class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "geostamp_stamp_requests_in_flight",
			Help: "Requests the stamp ingress is serving.",
		}),
		checkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "geostamp_stamp_health_check_up",
			Help: "1 when the health check passed in the last round.",
		}, []string{"check"}),
		checkDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "geostamp_stamp_health_check_duration_seconds",
			Help:    "Duration of each health check.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"check"}),
	}
	for _, c := range s.checks {
		m.checkUp.WithLabelValues(c.Name)
		m.checkDur.WithLabelValues(c.Name)
	}
	if reg := s.cfg.Registerer; reg != nil {
		cs := []prometheus.Collector{m.requests, m.duration, m.inFlight, m.checkUp, m.checkDur,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "geostamp_stamp_drained",
				Help: "1 while the operator drain flag is set.",
			}, func() float64 { return b2f(s.Drained()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "geostamp_stamp_healthy",
				Help: "1 while the health model says healthy (every check passes and the stamp is not drained).",
			}, func() float64 { return b2f(s.Health().Status == StatusHealthy) }),
		}
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe records one answered request; ctx holds its span, for the
// exemplar.
func (m *metrics) observe(ctx context.Context, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	telemetry.ObserveWithTrace(ctx, m.duration.WithLabelValues(route), d.Seconds())
}

func (m *metrics) checked(r CheckResult) {
	m.checkUp.WithLabelValues(r.Name).Set(b2f(r.Status == CheckPass))
	m.checkDur.WithLabelValues(r.Name).Observe(r.DurationMS / 1000)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
