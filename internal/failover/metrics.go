package failover

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/data"
)

// transition is a counted step: its action and its failover's mode.
type transition struct{ action, mode string }

// Counted actions, and the modes they are counted by ("none": a step of no
// failover, such as a bootstrap or a restart that finds the lease held).
var (
	countedSteps = []string{StepPromote, StepFence, StepRejoin, StepRepoint}
	countedModes = []string{ModePlanned, ModeForced, "automatic", "none"}
)

// count records e in the controller's metrics.
func (c *Controller) count(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Step == StepDecide {
		c.decidedAt = e.Time
		return
	}
	mode := e.Mode
	if mode == "" {
		mode = "none"
	}
	for _, s := range countedSteps {
		if s == e.Step {
			if c.transitions == nil {
				c.transitions = map[transition]uint64{}
			}
			c.transitions[transition{s, mode}]++
		}
	}
	if e.Step == StepPromote && e.Mode != "" && !c.decidedAt.IsZero() {
		c.lastTook = e.Time.Sub(c.decidedAt)
	}
}

// Collector exports the failover state of a region's controllers, read at
// scrape time, and the witness renewals of their leases. The region is the
// registry's constant label.
type Collector struct {
	ctls        []*Controller
	epoch       *prometheus.Desc
	primary     *prometheus.Desc
	transitions *prometheus.Desc
	lastTook    *prometheus.Desc
	leaseHeld   *prometheus.Desc
	leaseLeft   *prometheus.Desc
	renewals    *prometheus.HistogramVec
}

// NewCollector returns the collector of ctls (one per service of a region).
// Pass ObserveRenewal to the region's witness.Authority as its renew
// observer (witness.WithRenewObserver).
func NewCollector(ctls ...*Controller) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"service"}, labels...), nil)
	}
	c := &Collector{
		epoch:       d("geostamp_failover_epoch", "Fencing epoch the region's failover controller knows."),
		primary:     d("geostamp_failover_primary", "1 while this region's replica is the service's primary."),
		transitions: d("geostamp_failover_transitions_total", "Failover steps taken in this region, by action (promote, fence, rejoin, repoint) and the failover's mode (planned, forced, automatic; none outside a failover).", "action", "mode"),
		lastTook:    d("geostamp_failover_last_duration_seconds", "Of the last failover that promoted this region: from its decision to take over to its promotion."),
		leaseHeld:   d("geostamp_witness_lease_held", "1 while this region holds a valid witness lease of the service."),
		leaseLeft:   d("geostamp_witness_lease_remaining_seconds", "Time left on the held lease as this region counts it (0 when none is held)."),
		renewals: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "geostamp_witness_renewal_duration_seconds",
			Help:    "Round trip of the confirmed renewals of the region's witness leases.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"service"}),
	}
	for _, ctl := range ctls {
		c.Add(ctl)
	}
	return c
}

// Add adds a controller; call it before the collector is registered.
func (c *Collector) Add(ctl *Controller) {
	c.ctls = append(c.ctls, ctl)
	c.renewals.WithLabelValues(ctl.cfg.Group) // a series from the start
}

// ObserveRenewal records a confirmed lease renewal.
func (c *Collector) ObserveRenewal(group string, took time.Duration) {
	c.renewals.WithLabelValues(group).Observe(took.Seconds())
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.epoch, c.primary, c.transitions, c.lastTook, c.leaseHeld, c.leaseLeft} {
		ch <- d
	}
	c.renewals.Describe(ch)
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, ctl := range c.ctls {
		svc := ctl.cfg.Group
		ctl.mu.Lock()
		st, counts, took := ctl.state, make(map[transition]uint64, len(ctl.transitions)), ctl.lastTook
		for k, v := range ctl.transitions {
			counts[k] = v
		}
		ctl.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(st.Epoch), svc)
		ch <- prometheus.MustNewConstMetric(c.primary, prometheus.GaugeValue, b2f(st.Role == data.RolePrimary), svc)
		for _, a := range countedSteps {
			for _, m := range countedModes {
				ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(counts[transition{a, m}]), svc, a, m)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.lastTook, prometheus.GaugeValue, took.Seconds(), svc)
		h, left := ctl.heldNow.Load(), 0.0
		valid := h != nil && h.Valid()
		if valid {
			left = max(0, time.Until(h.Deadline()).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.leaseHeld, prometheus.GaugeValue, b2f(valid), svc)
		ch <- prometheus.MustNewConstMetric(c.leaseLeft, prometheus.GaugeValue, left, svc)
	}
	c.renewals.Collect(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
