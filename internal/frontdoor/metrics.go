package frontdoor

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// regionNone labels requests that reached no region (rejected, shed, no
// origin available).
const regionNone = "none"

// metrics are the front door's Prometheus metrics. Every series carries a
// constant pop label. The request path uses pre-resolved children
// (byCode, latency) so that it does no label lookup.
type metrics struct {
	requests        *prometheus.CounterVec // region, code
	latency         []prometheus.Observer  // by region index; last: none
	tries           *prometheus.CounterVec // region, outcome
	answers         []prometheus.Counter   // tries{outcome="answer"} by region index
	retries         *prometheus.CounterVec // reason
	budgetExhausted prometheus.Counter
	ejections       *prometheus.CounterVec // region
	healthy         *prometheus.GaugeVec   // region
	ejected         *prometheus.GaugeVec   // region
	failOpen        prometheus.Gauge
	failOpenReqs    prometheus.Counter
	rejected        *prometheus.CounterVec // reason
	waf             *prometheus.CounterVec // rule
	regions         []string               // by index; last: none
	byCode          [][500]atomic.Pointer[prometheus.Counter]
}

func newMetrics(reg *prometheus.Registry, pop string, regions []string, inflight func() float64) (*metrics, error) {
	cl := prometheus.Labels{"pop": pop}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_requests_total", ConstLabels: cl,
			Help: "Requests answered, by the region that answered (none: answered by the front door) and status code.",
		}, []string{"region", "code"}),
		tries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_tries_total", ConstLabels: cl,
			Help: "Tries sent to regions, by outcome (answer, connect_error, timeout, status_502, status_503, status_504).",
		}, []string{"region", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_retries_total", ConstLabels: cl,
			Help: "Retries on another region, by the failure that caused them.",
		}, []string{"reason"}),
		budgetExhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_retry_budget_exhausted_total", ConstLabels: cl,
			Help: "Retries not made because the retry budget was used up.",
		}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_ejections_total", ConstLabels: cl,
			Help: "Passive ejections of a region after failed requests.",
		}, []string{"region"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "geostamp_frontdoor_origin_healthy", ConstLabels: cl,
			Help: "1 when the region's probes pass and it is not ejected (health.Checker.Healthy).",
		}, []string{"region"}),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "geostamp_frontdoor_origin_ejected", ConstLabels: cl,
			Help: "1 while the region is passively ejected.",
		}, []string{"region"}),
		failOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "geostamp_frontdoor_fail_open", ConstLabels: cl,
			Help: "1 while no region is eligible and routing fails open (serves every region).",
		}),
		failOpenReqs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_fail_open_requests_total", ConstLabels: cl,
			Help: "Requests routed while failing open.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_rejected_total", ConstLabels: cl,
			Help: "Requests answered by the front door itself, by reason (malformed, header_too_large, body_too_large, overload, no_origin, ...).",
		}, []string{"reason"}),
		waf: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geostamp_frontdoor_waf_matches_total", ConstLabels: cl,
			Help: "Requests the WAF would block (detection) or blocked (prevention), by the rule that decided.",
		}, []string{"rule"}),
		regions: append(append([]string(nil), regions...), regionNone),
	}
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "geostamp_frontdoor_request_duration_seconds", ConstLabels: cl,
		Help:    "Time from the request head to the end of the response, by the region that answered.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"region"})
	cs := []prometheus.Collector{m.requests, m.tries, m.retries, m.budgetExhausted, m.ejections, m.healthy,
		m.ejected, m.failOpen, m.failOpenReqs, m.rejected, m.waf, hist,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "geostamp_frontdoor_requests_in_flight", ConstLabels: cl,
			Help: "Requests being served.",
		}, inflight)}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, why := range []string{"connect_error", "timeout", "status_502", "status_503", "status_504"} {
		m.retries.WithLabelValues(why)
	}
	for _, r := range m.regions {
		m.latency = append(m.latency, hist.WithLabelValues(r))
	}
	for _, r := range regions {
		m.answers = append(m.answers, m.tries.WithLabelValues(r, "answer"))
		m.healthy.WithLabelValues(r)
		m.ejected.WithLabelValues(r)
		m.ejections.WithLabelValues(r)
	}
	m.byCode = make([][500]atomic.Pointer[prometheus.Counter], len(m.regions))
	return m, nil
}

// privateRegistry is the default registry: the front door's metrics and
// the Go and process collectors.
func privateRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// count records one answered request; region is an index into m.regions.
func (m *metrics) count(region, code int) {
	if code < 100 || code > 599 {
		code = 599
	}
	slot := &m.byCode[region][code-100]
	c := slot.Load()
	if c == nil {
		v := m.requests.WithLabelValues(m.regions[region], strconv.Itoa(code))
		c = &v
		slot.Store(c)
	}
	(*c).Inc()
}
