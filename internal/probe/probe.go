// Package probe runs synthetic user flows against the platform: for each
// target (a front door POP, or a stamp's ingress directly), at a low fixed
// rate, it writes an order and reads it back, and exports the outcome and
// the latency of every flow. That is the availability SLI behind the
// topology's availability objective and its burn-rate alerts
// (docs/observability.md, "Probes").
//
// Probe orders have the item Item, so that they can be told apart from a
// user's; they are real writes (they take replication positions, and a
// forced failover can lose them like any other).
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/telemetry"
)

// Paths a flow takes.
const (
	// PathFrontDoor: through a front door POP.
	PathFrontDoor = "frontdoor"
	// PathStamp: directly at a region's stamp ingress, with the front
	// door's id (the origin lock).
	PathStamp = "stamp"
)

// Outcomes of a flow.
const (
	OutcomeOK = "ok"
	// OutcomeWriteFailed: the write got no 201 (an error status, no
	// answer, or the flow's timeout).
	OutcomeWriteFailed = "write_failed"
	// OutcomeReadFailed: the read got an error status or no answer, or the
	// order was still not found when the flow's timeout came.
	OutcomeReadFailed = "read_failed"
)

// Outcomes lists every outcome, in the order of the constants.
var Outcomes = []string{OutcomeOK, OutcomeWriteFailed, OutcomeReadFailed}

// Item is the item of every order a probe writes.
const Item = "geostamp-probe"

// Metric names (see docs/observability.md).
const (
	MetricFlows       = telemetry.MetricPrefix + "probe_flows_total"
	MetricDuration    = telemetry.MetricPrefix + "probe_flow_duration_seconds"
	MetricLastSuccess = telemetry.MetricPrefix + "probe_last_success_timestamp_seconds"
)

// Target is where flows go.
type Target struct {
	// Name is the POP or the region; the metrics' target label.
	Name string
	// Path is PathFrontDoor or PathStamp; the metrics' path label.
	Path string
	// URL is the base URL: the POP's, or the stamp ingress's.
	URL string
	// Header is added to every request (X-Geostamp-FDID for a stamp). It
	// is never logged.
	Header http.Header
	// Client sends the requests; default a client of its own. Its timeout
	// does not need to be set: the flow's timeout bounds every request.
	Client *http.Client
}

// Config configures a Prober.
type Config struct {
	// Targets: at least one; names unique per path.
	Targets []Target
	// Interval is the time between the starts of two flows of a target;
	// default 2s. A flow that takes longer delays the next one: flows of
	// a target never overlap.
	Interval time.Duration
	// Timeout bounds one flow, the write and the reads; default 5s.
	Timeout time.Duration
	// ReadRetry is the pause before reading again an order not found yet
	// (a secondary region reads its replica, which may lag); default 50ms.
	ReadRetry time.Duration
	// Registerer receives the metrics; nil: a registry of the prober's
	// own (see Gatherer).
	Registerer prometheus.Registerer
	// Logger receives a line when a target's flows start failing and when
	// they pass again; default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = 2 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ReadRetry == 0 {
		c.ReadRetry = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = telemetry.Discard()
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("targets: at least one"))
	}
	seen := map[[2]string]bool{}
	for i, t := range c.Targets {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("targets[%d].name: required", i))
		}
		if t.Path != PathFrontDoor && t.Path != PathStamp {
			errs = append(errs, fmt.Errorf("targets[%d].path: %q must be %s or %s", i, t.Path, PathFrontDoor, PathStamp))
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("targets[%d].url: %q must be an http or https URL", i, t.URL))
		}
		if k := [2]string{t.Name, t.Path}; seen[k] {
			errs = append(errs, fmt.Errorf("targets[%d]: %s %s twice", i, t.Path, t.Name))
		} else {
			seen[k] = true
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", c.Interval}, {"timeout", c.Timeout}, {"readRetry", c.ReadRetry}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// Prober runs the flows of its targets.
type Prober struct {
	cfg      Config
	reg      *prometheus.Registry // when the config gave no Registerer
	flows    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	last     *prometheus.GaugeVec
	tracer   trace.Tracer
}

// New checks cfg and registers the metrics, every target's series at zero
// so that rates exist from the start; it starts nothing.
func New(cfg Config) (*Prober, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("probe: invalid config: %w", err)
	}
	p := &Prober{
		cfg: cfg,
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFlows,
			Help: "Synthetic user flows (write an order, read it back) by target, path and outcome (ok, write_failed, read_failed).",
		}, []string{"target", "path", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "Duration of the successful synthetic flows, write and read back, by target and path.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"target", "path"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricLastSuccess,
			Help: "Unix time of the last successful synthetic flow, by target and path.",
		}, []string{"target", "path"}),
		tracer: telemetry.Tracer("probe"),
	}
	r := cfg.Registerer
	if r == nil {
		p.reg = prometheus.NewRegistry()
		r = p.reg
	}
	for _, c := range []prometheus.Collector{p.flows, p.duration, p.last} {
		if err := r.Register(c); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
	}
	for _, t := range cfg.Targets {
		for _, o := range Outcomes {
			p.flows.WithLabelValues(t.Name, t.Path, o)
		}
		p.duration.WithLabelValues(t.Name, t.Path)
	}
	return p, nil
}

// Gatherer is the prober's own registry when the config gave no
// Registerer, nil otherwise.
func (p *Prober) Gatherer() prometheus.Gatherer {
	if p.reg == nil {
		return nil
	}
	return p.reg
}

// Run runs every target's flows, the first at once, until ctx ends; it
// returns once every flow in progress has stopped.
func (p *Prober) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range p.cfg.Targets {
		wg.Go(func() { p.loop(ctx, t) })
	}
	wg.Wait()
	return nil
}

func (p *Prober) loop(ctx context.Context, t Target) {
	log := p.cfg.Logger.With("target", t.Name, "path", t.Path)
	if t.Path == PathStamp {
		log = log.With(telemetry.RegionKey, t.Name)
	} else {
		log = log.With("pop", t.Name)
	}
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	failing := 0
	for {
		res := p.Flow(ctx, t)
		if ctx.Err() != nil {
			return // a flow cut short by the end is not counted
		}
		p.record(t, res)
		switch {
		case res.Outcome != OutcomeOK && failing == 0:
			log.WarnContext(res.ctx, "probe flow failed", "outcome", res.Outcome, "err", res.Err, "ms", res.Duration.Milliseconds())
			failing++
		case res.Outcome != OutcomeOK:
			failing++
		case failing > 0:
			log.InfoContext(res.ctx, "probe flow passes again", "failed_flows", failing, "ms", res.Duration.Milliseconds())
			failing = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (p *Prober) record(t Target, res Result) {
	p.flows.WithLabelValues(t.Name, t.Path, res.Outcome).Inc()
	if res.Outcome == OutcomeOK {
		telemetry.ObserveWithTrace(res.ctx, p.duration.WithLabelValues(t.Name, t.Path), res.Duration.Seconds())
		p.last.WithLabelValues(t.Name, t.Path).Set(float64(time.Now().UnixNano()) / 1e9)
	}
}

// Result is the outcome of one flow.
type Result struct {
	Outcome  string
	Duration time.Duration
	// Err says why a flow failed.
	Err error
	// ID is the order written, "" when the write failed.
	ID string
	// Region is the region that answered the read (X-Geostamp-Region).
	Region string

	ctx context.Context // the flow's span, for exemplars and log lines
}

// Flow runs one flow against t: POST /orders, then GET /orders/{id} until
// the order is found (the read of a secondary region may lag the write),
// all within the timeout. It records nothing; Run does.
func (p *Prober) Flow(ctx context.Context, t Target) Result {
	start := time.Now()
	ctx, span := p.tracer.Start(ctx, "probe flow", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("geostamp.probe.target", t.Name), attribute.String("geostamp.probe.path", t.Path)))
	defer span.End()
	res := p.flow(ctx, t)
	res.Duration, res.ctx = time.Since(start), ctx
	span.SetAttributes(attribute.String("geostamp.probe.outcome", res.Outcome))
	if res.Err != nil {
		span.SetStatus(codes.Error, res.Err.Error())
	}
	return res
}

func (p *Prober) flow(ctx context.Context, t Target) Result {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"item": Item, "qty": 1})
	code, _, b, err := p.send(ctx, t, http.MethodPost, "/orders", body)
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("POST /orders: status %d: %s", code, snippet(b))
	}
	var created struct{ ID string }
	if err == nil {
		if json.Unmarshal(b, &created) != nil || created.ID == "" {
			err = fmt.Errorf("POST /orders: status 201 without an order id: %s", snippet(b))
		}
	}
	if err != nil {
		return Result{Outcome: OutcomeWriteFailed, Err: err}
	}
	res := Result{ID: created.ID}
	notVisible := fmt.Errorf("GET /orders/%s: still not found after %s", created.ID, p.cfg.Timeout)
	for reads := 0; ; reads++ {
		code, h, b, err := p.send(ctx, t, http.MethodGet, "/orders/"+url.PathEscape(created.ID), nil)
		switch {
		case err != nil && reads > 0 && ctx.Err() != nil:
			// The timeout came during a read again of an order not found.
			res.Outcome, res.Err = OutcomeReadFailed, notVisible
			return res
		case err != nil:
			res.Outcome, res.Err = OutcomeReadFailed, err
			return res
		case code == http.StatusOK:
			var got struct{ ID, Item string }
			if json.Unmarshal(b, &got) != nil || got.ID != created.ID || got.Item != Item {
				res.Outcome, res.Err = OutcomeReadFailed, fmt.Errorf("GET /orders/%s: another order: %s", created.ID, snippet(b))
				return res
			}
			res.Outcome, res.Region = OutcomeOK, h.Get("X-Geostamp-Region")
			return res
		case code != http.StatusNotFound:
			res.Outcome, res.Err = OutcomeReadFailed, fmt.Errorf("GET /orders/%s: status %d: %s", created.ID, code, snippet(b))
			return res
		}
		select {
		case <-ctx.Done():
			res.Outcome, res.Err = OutcomeReadFailed, notVisible
			return res
		case <-time.After(p.cfg.ReadRetry):
		}
	}
}

var defaultClient = &http.Client{}

func (p *Prober) send(ctx context.Context, t Target, method, path string, body []byte) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(t.URL, "/")+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range t.Header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "geostamp-probe")
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	c := t.Client
	if c == nil {
		c = defaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, unwrapURL(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// unwrapURL drops the URL from a client error: the message then names
// the request, not an address with the target's query.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// snippet is the start of an answer, on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
