package gslb

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/routing"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/topology"
)

// AdminOff as Config.AdminListen disables the admin API.
const AdminOff = "off"

// Config configures a Server. Every zero field means its documented
// default; New fills them (setDefaults is the only place defaults live).
type Config struct {
	// Topology is the platform, with defaults filled in (topology.Load);
	// required. The server reads its gslb section and its regions.
	Topology *topology.Topology
	// Listen is the DNS address, UDP and TCP on the same port; default
	// topology gslb.listen. Port 0 picks a free port (see Server.Addr).
	Listen string
	// AdminListen is the address of the admin API (explain, health,
	// metrics); default topology gslb.admin.listen; AdminOff disables it.
	AdminListen string
	// AdminToken is the bearer token of the admin API; required unless the
	// admin API is off.
	AdminToken string
	// ProbeURLs maps a region name to the URL of its health probe (the lab
	// passes each stamp's /health/stamp). Regions not listed are probed at
	// Region.Origin + gslb.probe.path, or, without an origin, at
	// http://<Region.Address>[:<lab.ingressPort>]<gslb.probe.path>.
	ProbeURLs map[string]string
	// Logger receives the server's logs (tagged component=gslb) and, with
	// topology gslb.queryLog, one line per query; default: discard.
	Logger *slog.Logger
	// Registry receives the server's metrics while Run runs; nil: a
	// private registry. The admin API's /metrics serves it either way.
	Registry *prometheus.Registry
	// Clock drives the health checker and the explain timestamps; default
	// health.Real.
	Clock health.Clock
}

func (c *Config) setDefaults() {
	t := c.Topology
	if c.Listen == "" {
		c.Listen = t.GSLB.Listen
	}
	if c.AdminListen == "" {
		c.AdminListen = t.GSLB.Admin.Listen
	}
	if c.Logger == nil {
		c.Logger = telemetry.Discard()
	}
	if c.Clock == nil {
		c.Clock = health.Real
	}
}

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("gslb: Run called more than once")

// Server is the authoritative DNS server. Create it with New, then Run it.
type Server struct {
	cfg      Config
	topo     *topology.Topology
	log      *slog.Logger
	clock    health.Clock
	listen   netip.AddrPort
	token    string
	queryLog bool

	checker *health.Checker
	policy  routing.Policy
	base    []routing.Candidate // from the topology; Healthy and RTT unset
	zone    *zone
	cls     *classifier
	state   atomic.Pointer[state]
	last    *lastTable
	stats   *stats

	registry *prometheus.Registry

	running   atomic.Bool
	ready     chan struct{}
	addr      string // set before ready is closed
	adminAddr string

	// forceSlow sends every query through the general (miekg/dns) parser;
	// tests use it to compare both parsers.
	forceSlow bool
}

// New validates cfg, fills its defaults and prepares the zone, the routing
// classes and the health checker. It has no side effects: nothing listens
// and nothing is probed until Run.
func New(cfg Config) (*Server, error) {
	if cfg.Topology == nil {
		return nil, errors.New("gslb: invalid config: topology: required")
	}
	cfg.setDefaults()
	t := cfg.Topology
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}

	listen, err := netip.ParseAddrPort(cfg.Listen)
	if err != nil {
		add("listen", "%q is not an address:port such as 127.0.0.1:5353", cfg.Listen)
	}
	if cfg.AdminListen != AdminOff {
		if _, port, err := net.SplitHostPort(cfg.AdminListen); err != nil || port == "" {
			add("adminListen", "%q is not a host:port address", cfg.AdminListen)
		}
		if cfg.AdminToken == "" {
			add("adminToken", "required for the admin API (or set adminListen to %q)", AdminOff)
		}
	}
	policy := routing.GSLBPolicy(t.GSLB)
	if err := policy.Validate(); err != nil {
		add("topology.gslb.routing", "%v", err)
	}
	if policy.Method == routing.Latency {
		add("topology.gslb.routing", "latency is a front door method; the GSLB offers priority, weighted, performance, geographic and multivalue")
	}
	base, err := routing.FromRegions(t.Regions)
	if err != nil {
		errs = append(errs, err)
	}

	var targets []health.Target
	for name := range cfg.ProbeURLs {
		if _, ok := t.Region(name); !ok {
			add("probeURLs", "%q is not a region of the topology", name)
		}
	}
	for i, r := range t.Regions {
		if r.Disabled {
			continue
		}
		u := cfg.ProbeURLs[r.Name]
		if u == "" {
			u = defaultProbeURL(t, r)
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add(fmt.Sprintf("probeURLs[%q]", r.Name), "%q is not an http(s) URL (regions[%d])", u, i)
		}
		targets = append(targets, health.Target{Name: r.Name, URL: u})
	}

	z, zerr := newZone(t, listen, cfg.Clock.Now())
	if zerr != nil {
		errs = append(errs, zerr)
	}
	cls, cerr := newClassifier(t, policy.Method, base)
	if cerr != nil {
		errs = append(errs, cerr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("gslb: invalid config: %w", err)
	}

	hc := health.GSLBConfig(t.GSLB)
	hc.Clock = cfg.Clock
	hc.Logger = cfg.Logger
	checker, err := health.New(hc, targets)
	if err != nil {
		return nil, fmt.Errorf("gslb: %w", err)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:      cfg,
		topo:     t,
		log:      telemetry.Component(cfg.Logger, "gslb"),
		clock:    cfg.Clock,
		listen:   listen,
		token:    cfg.AdminToken,
		queryLog: t.GSLB.QueryLog,
		checker:  checker,
		policy:   policy,
		base:     base,
		zone:     z,
		cls:      cls,
		last:     new(lastTable),
		registry: reg,
		ready:    make(chan struct{}),
	}
	s.stats = newStats(s)
	s.rebuild()
	return s, nil
}

// defaultProbeURL is the probe URL of a region without Config.ProbeURLs.
func defaultProbeURL(t *topology.Topology, r topology.Region) string {
	path := t.GSLB.Probe.Path
	if r.Origin != "" {
		return strings.TrimSuffix(r.Origin, "/") + path
	}
	host := r.Address
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]"
	}
	if t.Lab.IngressPort != 0 {
		host = net.JoinHostPort(r.Address, strconv.Itoa(t.Lab.IngressPort))
	}
	return "http://" + host + path
}

// Ready is closed once the server listens (DNS and admin API); Addr and
// AdminAddr are valid from then on.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the DNS address (UDP and TCP) the server listens on, as
// host:port, once Ready is closed.
func (s *Server) Addr() string {
	select {
	case <-s.ready:
		return s.addr
	default:
		return ""
	}
}

// AdminAddr returns the admin API's address once Ready is closed, "" when
// the admin API is off.
func (s *Server) AdminAddr() string {
	select {
	case <-s.ready:
		return s.adminAddr
	default:
		return ""
	}
}

// Checker returns the health checker, for callers that want its events.
func (s *Server) Checker() *health.Checker { return s.checker }

// Zone returns the zone served, fully qualified.
func (s *Server) Zone() string { return s.zone.origin }

// FailoverBound is the published bound on how long after a region stops
// answering its records leave the answers of g (see the package
// documentation): (interval + timeout) × (toleratedFailures + 1) +
// interval. Clients that cached the previous answer may keep it one
// normal TTL longer: ClientFailoverBound.
func FailoverBound(g topology.GSLB) time.Duration {
	p := g.Probe
	return (p.Interval.D()+p.Timeout.D())*time.Duration(p.Tolerated()+1) + p.Interval.D()
}

// ClientFailoverBound is FailoverBound plus the TTL of answers given
// before the failure: when a client that respects TTLs stops using the
// failed region at the latest.
func ClientFailoverBound(g topology.GSLB) time.Duration {
	return FailoverBound(g) + g.TTL.D()
}
