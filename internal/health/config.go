package health

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Config configures a Checker. The zero value of every field means its
// documented default; New fills the defaults (setDefaults is the only place
// they live) and then validates.
//
// Exactly one decision rule applies: the window rule (Front Door; the
// default) or, when Consecutive is set, the consecutive rule (Traffic
// Manager). See the package documentation for both and for their bounds.
type Config struct {
	// Method of HTTP probes: HEAD (default) or GET.
	Method string
	// Expect lists the HTTP statuses that pass a probe; default [200], as
	// Front Door. Redirects are not followed: a 301 fails unless listed.
	Expect []int
	// Header is added to every HTTP probe, e.g. the front door ID header the
	// stamps check (origin lock). User-Agent defaults to geostamp-health/1.
	Header http.Header

	// Interval between the starts of two probes of a healthy (or not yet
	// probed) target; default 1s.
	Interval time.Duration
	// Timeout of one probe; default 500ms, and at most Interval. A probe
	// that has no response headers after Timeout fails.
	Timeout time.Duration
	// FastInterval replaces Interval while a target is unhealthy, so that
	// recovery is noticed sooner; default Interval/2, at least 10ms, at most
	// Interval. It never applies before a target is unhealthy, so it does not
	// change the detection bounds.
	FastInterval time.Duration
	// Jitter shortens each wait between probes by a random fraction in
	// [0, Jitter) of it, and delays the first probe of each target by a
	// random fraction in [0, Jitter) of Interval, so that many checkers
	// (front door POPs, replicas) do not probe a stamp in lock step. Jitter
	// only ever shortens waits, so the published bounds hold unchanged.
	// Default 0.1; must be below 1; a negative value disables jitter.
	Jitter float64

	// SampleSize and SuccessfulSamples set the window rule (Front Door): a
	// target is healthy when at least SuccessfulSamples of its last
	// SampleSize probes passed. Defaults 4 and 2 (unless Consecutive).
	SampleSize        int
	SuccessfulSamples int
	// Consecutive selects the consecutive rule (Traffic Manager): a healthy
	// target becomes unhealthy on its (ToleratedFailures+1)-th consecutive
	// failed probe and healthy again on its first passing probe.
	// ToleratedFailures defaults to 0 (0 is a valid setting, as in Traffic
	// Manager; FromTopology carries the topology default, 3). Setting
	// SampleSize or SuccessfulSamples together with Consecutive, or
	// ToleratedFailures without it, is an error.
	Consecutive       bool
	ToleratedFailures int

	// Outlier configures passive ejection driven by Checker.Report.
	Outlier Outlier

	// Prober runs one probe. Default: an HTTPProber built from Method,
	// Expect, Header and Client. When set, those four fields are ignored
	// and Target.URL is whatever the Prober understands.
	Prober Prober
	// Client sends HTTP probes. Default: a client without keep-alive (each
	// probe dials a fresh connection, so its latency includes the TCP
	// handshake, like Front Door's), without environment proxies and
	// without following redirects.
	Client *http.Client
	// Clock drives schedules, timeouts and ejections; default Real.
	Clock Clock
	// Logger receives state changes, tagged component=health; default:
	// discard.
	Logger *slog.Logger
	// History is the number of events kept per target (TargetState.History);
	// default 64.
	History int
}

// Outlier configures passive outlier ejection (Envoy's outlier detection):
// real traffic reports its outcomes with Checker.Report, and a target that
// fails ConsecutiveErrors requests in a row is ejected (not Healthy) for a
// while, whatever its probes say.
type Outlier struct {
	// ConsecutiveErrors ejects a target after this many failed requests in
	// a row (connect errors, 5xx, timeouts); default 1: the first failure
	// ejects. A success resets the count.
	ConsecutiveErrors int
	// EjectFor is the first ejection period; default 10s. It doubles with
	// each repeated ejection, up to MaxEjectFor (default 5m). The doubling
	// decays: each full EjectFor a target spends restored (not ejected)
	// cancels one doubling, so a target that behaves well for long returns
	// to EjectFor.
	EjectFor    time.Duration
	MaxEjectFor time.Duration
	// MaxEjectedFraction caps the share of targets ejected at the same
	// time; default 0.5. The cap is max(1, floor(MaxEjectedFraction×n)) for
	// n targets: at least one target can always be ejected (as in Envoy),
	// including the only one. Ejecting every target is harmless for routing,
	// which fails open when nothing is healthy.
	MaxEjectedFraction float64
}

// Defaults used by setDefaults.
const (
	DefaultInterval          = time.Second
	DefaultTimeout           = 500 * time.Millisecond
	DefaultJitter            = 0.1
	DefaultSampleSize        = 4
	DefaultSuccessfulSamples = 2
	DefaultEjectFor          = 10 * time.Second
	DefaultMaxEjectFor       = 5 * time.Minute
	DefaultMaxEjected        = 0.5
	DefaultHistory           = 64
	// MinFastInterval is the floor of the default FastInterval.
	MinFastInterval = 10 * time.Millisecond
	// UserAgent is sent by HTTP probes unless Header sets one.
	UserAgent = "geostamp-health/1"
)

// setDefaults fills every zero field of c with its default. It is the only
// place defaults live.
func (c *Config) setDefaults() {
	if c.Method == "" {
		c.Method = http.MethodHead
	}
	if len(c.Expect) == 0 {
		c.Expect = []int{http.StatusOK}
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultTimeout, c.Interval)
	}
	if c.FastInterval == 0 {
		c.FastInterval = min(c.Interval, max(c.Interval/2, MinFastInterval))
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if !c.Consecutive {
		if c.SampleSize == 0 {
			c.SampleSize = DefaultSampleSize
		}
		if c.SuccessfulSamples == 0 {
			c.SuccessfulSamples = min(DefaultSuccessfulSamples, c.SampleSize)
		}
	}
	o := &c.Outlier
	if o.ConsecutiveErrors == 0 {
		o.ConsecutiveErrors = 1
	}
	if o.EjectFor == 0 {
		o.EjectFor = DefaultEjectFor
	}
	if o.MaxEjectFor == 0 {
		o.MaxEjectFor = max(DefaultMaxEjectFor, o.EjectFor)
	}
	if o.MaxEjectedFraction == 0 {
		o.MaxEjectedFraction = DefaultMaxEjected
	}
	if c.Prober == nil && c.Client == nil {
		c.Client = NewProbeClient()
	}
	if c.Clock == nil {
		c.Clock = Real
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
}

// MinDetection is the least time after a target starts failing before c
// marks it unhealthy, from a steady healthy state: every probe fails at
// once (a refused connection), the first right after the failure, and each
// later one starts after the shortest wait, Interval less the largest
// jitter. The failures needed are SampleSize−SuccessfulSamples+1 (window
// rule) or ToleratedFailures+1 (consecutive rule), so the wait counts one
// time fewer. It is the lower bound matching the upper bounds of the
// package documentation.
func (c Config) MinDetection() time.Duration {
	c.setDefaults()
	waits := c.ToleratedFailures
	if !c.Consecutive {
		waits = c.SampleSize - c.SuccessfulSamples
	}
	return c.MinWait() * time.Duration(waits)
}

// MinWait is the shortest wait between the starts of two probes of a
// healthy target: Interval less the largest jitter.
func (c Config) MinWait() time.Duration {
	c.setDefaults()
	if c.Jitter <= 0 {
		return c.Interval
	}
	return c.Interval - time.Duration(float64(c.Interval)*c.Jitter)
}

// Validate reports every problem of c at once (errors.Join), each prefixed
// with its field path. It is pure and meant for a Config whose defaults are
// filled in (New does both).
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}
	if c.Prober == nil {
		if c.Method != http.MethodHead && c.Method != http.MethodGet {
			add("method", "must be HEAD or GET, got %q", c.Method)
		}
		for i, s := range c.Expect {
			if s < 100 || s > 599 {
				add(fmt.Sprintf("expect[%d]", i), "%d is not an HTTP status", s)
			}
		}
		if c.Client == nil {
			add("client", "required")
		}
	}
	if c.Interval <= 0 {
		add("interval", "must be positive, got %s", c.Interval)
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	} else if c.Interval > 0 && c.Timeout > c.Interval {
		add("timeout", "%s must not exceed interval (%s)", c.Timeout, c.Interval)
	}
	if c.FastInterval <= 0 {
		add("fastInterval", "must be positive, got %s", c.FastInterval)
	} else if c.Interval > 0 && c.FastInterval > c.Interval {
		add("fastInterval", "%s must not exceed interval (%s)", c.FastInterval, c.Interval)
	}
	if c.Jitter >= 1 {
		add("jitter", "must be below 1, got %g", c.Jitter)
	}
	if c.Consecutive {
		if c.SampleSize != 0 || c.SuccessfulSamples != 0 {
			add("sampleSize", "window rule settings (sampleSize, successfulSamples) cannot be combined with consecutive")
		}
		if c.ToleratedFailures < 0 || c.ToleratedFailures > 100 {
			add("toleratedFailures", "must be 0 to 100, got %d", c.ToleratedFailures)
		}
	} else {
		if c.ToleratedFailures != 0 {
			add("toleratedFailures", "needs consecutive: true (it is a setting of the consecutive rule)")
		}
		if c.SampleSize < 1 || c.SampleSize > 100 {
			add("sampleSize", "must be 1 to 100, got %d", c.SampleSize)
		}
		if c.SuccessfulSamples < 1 || c.SuccessfulSamples > max(c.SampleSize, 1) {
			add("successfulSamples", "must be 1 to sampleSize (%d), got %d", c.SampleSize, c.SuccessfulSamples)
		}
	}
	o := c.Outlier
	if o.ConsecutiveErrors < 1 {
		add("outlier.consecutiveErrors", "must be at least 1, got %d", o.ConsecutiveErrors)
	}
	if o.EjectFor <= 0 {
		add("outlier.ejectFor", "must be positive, got %s", o.EjectFor)
	}
	if o.MaxEjectFor < o.EjectFor {
		add("outlier.maxEjectFor", "%s must be at least ejectFor (%s)", o.MaxEjectFor, o.EjectFor)
	}
	if o.MaxEjectedFraction <= 0 || o.MaxEjectedFraction > 1 {
		add("outlier.maxEjectedFraction", "must be above 0 and at most 1, got %g", o.MaxEjectedFraction)
	}
	if c.Clock == nil {
		add("clock", "required")
	}
	if c.Logger == nil {
		add("logger", "required")
	}
	if c.History < 1 {
		add("history", "must be at least 1, got %d", c.History)
	}
	return errors.Join(errs...)
}

// Style selects how FromTopology maps the topology's probe settings.
type Style int

const (
	// FrontDoorStyle uses the window rule (sampleSize, successfulSamples),
	// as the front door does.
	FrontDoorStyle Style = iota
	// TrafficManagerStyle uses the consecutive rule (toleratedFailures), as
	// the GSLB does.
	TrafficManagerStyle
)

// FromTopology maps a topology probe and outlier policy to a Config. p.Path
// is not part of Config: it belongs in each Target's URL. Fields the
// topology does not set (Header, Clock, Logger, ...) are left for the
// caller; New fills what is still zero. p and o are expected to carry the
// topology's defaults (topology.SetDefaults).
func FromTopology(p topology.Probe, o topology.Outlier, style Style) Config {
	c := Config{
		Method:   p.Method,
		Interval: p.Interval.D(),
		Timeout:  p.Timeout.D(),
		Outlier: Outlier{
			ConsecutiveErrors:  o.ConsecutiveErrors,
			EjectFor:           o.EjectFor.D(),
			MaxEjectFor:        o.MaxEjectFor.D(),
			MaxEjectedFraction: o.MaxEjected.Fraction(),
		},
	}
	switch style {
	case TrafficManagerStyle:
		c.Consecutive = true
		c.ToleratedFailures = p.Tolerated()
	default:
		c.SampleSize = p.SampleSize
		c.SuccessfulSamples = p.SuccessfulSamples
	}
	return c
}

// FrontDoorConfig is the Config of a front door POP: the window rule and
// passive outlier ejection of fd.
func FrontDoorConfig(fd topology.FrontDoor) Config {
	return FromTopology(fd.Probe, fd.Outlier, FrontDoorStyle)
}

// GSLBConfig is the Config of the GSLB: the consecutive rule of g.Probe and
// no passive signal (DNS sees no traffic; its outlier settings are the
// defaults and unused unless Report is called).
func GSLBConfig(g topology.GSLB) Config {
	return FromTopology(g.Probe, topology.Outlier{}, TrafficManagerStyle)
}

// NewProbeClient returns the default client of HTTP probes: no keep-alive
// (each probe dials a fresh connection, so its latency includes the TCP
// handshake, as Front Door measures it), no environment proxy, and
// redirects returned rather than followed.
func NewProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // never send probes through an environment proxy
			DialContext:       (&net.Dialer{KeepAlive: -1}).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
