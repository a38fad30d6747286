// Package stamp runs a regional deployment stamp: an ingress that
// load-balances over workload replicas, the stamp health model served at
// /health/stamp, the operator drain flag that takes the stamp out of
// global rotation without stopping it, injected brownouts (Fault) and the
// origin lock that only lets its front door's requests in (Config.FDID).
//
// A Stamp listens on one ingress address and one address per replica, all
// on Config.Host. Replicas serve Config.Handler; the ingress proxies to the
// replicas whose GET /healthz answered 200 on the last background check.
package stamp

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Headers the stamp reads or writes.
const (
	// HeaderRegion names the region that served a response. Replica
	// responses carry it through; the ingress sets it on its own responses.
	HeaderRegion = "X-Geostamp-Region"
	// HeaderFDID carries the front door's ID; see Config.FDID.
	HeaderFDID = "X-Geostamp-FDID"
)

// HealthPath is where the ingress serves the stamp health model.
const HealthPath = "/health/stamp"

// Names of the built-in checks.
const (
	CheckIngress  = "ingress"
	CheckReplicas = "replicas"
)

// Check is one part of the stamp health model, typically a data service.
// Run reports a short detail on success; an error fails the check (and the
// stamp). Run must honour ctx, which ends after Config.CheckTimeout.
type Check struct {
	Name string
	Run  func(ctx context.Context) (detail string, err error)
}

// Config configures a Stamp.
type Config struct {
	// Region names the stamp's region; required.
	Region string
	// Host is the listen host of the ingress and the replicas, e.g.
	// "127.0.1.1". Default "127.0.0.1".
	Host string
	// IngressPort is the ingress listen port. Default 0: chosen by the OS.
	IngressPort int
	// Replicas is the number of workload replicas, each on its own
	// listener on Host:0. Default 2.
	Replicas int
	// Handler is the workload served by each replica; required. It must
	// answer GET /healthz with 200 while the replica can take traffic.
	Handler http.Handler
	// Checks are extra checks (data services), run in the background with
	// the built-in "ingress" and "replicas" checks. Names must be unique.
	Checks []Check
	// CheckInterval is the time between health rounds. Default 1s.
	CheckInterval time.Duration
	// CheckTimeout bounds each check of a round. Default 800ms.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of in-flight requests
	// when Run's context ends; connections still open after it are closed.
	// Default 5s.
	ShutdownTimeout time.Duration
	// FDID, when set, locks the ingress to one front door: requests whose
	// X-Geostamp-FDID header is not FDID get 403. HealthPath is exempt so
	// any prober can read the health model. Default "": no lock.
	FDID string
	// Logger receives the stamp's logs. Default: discard.
	Logger *slog.Logger
	// Registerer, when set, receives the stamp's metrics (ingress requests,
	// health checks, drain and health state).
	Registerer prometheus.Registerer
}

// setDefaults fills the zero fields of c with their defaults.
func (c *Config) setDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Second
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 800 * time.Millisecond
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of c at once, each with its field path.
// It is meant for a Config whose defaults are filled in.
func (c Config) Validate() error {
	var errs []error
	if c.Region == "" {
		errs = append(errs, errors.New("region: required"))
	}
	if c.IngressPort < 0 || c.IngressPort > 65535 {
		errs = append(errs, fmt.Errorf("ingressPort: must be 0 to 65535, got %d", c.IngressPort))
	}
	if c.Replicas < 1 {
		errs = append(errs, fmt.Errorf("replicas: must be at least 1, got %d", c.Replicas))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler: required"))
	}
	if c.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("checkInterval: must be positive, got %s", c.CheckInterval))
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("checkTimeout: must be positive, got %s", c.CheckTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdownTimeout: must be positive, got %s", c.ShutdownTimeout))
	}
	seen := map[string]bool{CheckIngress: true, CheckReplicas: true}
	for i, ch := range c.Checks {
		switch {
		case ch.Name == "":
			errs = append(errs, fmt.Errorf("checks[%d].name: required", i))
		case seen[ch.Name]:
			errs = append(errs, fmt.Errorf("checks[%d].name: %q is already used", i, ch.Name))
		}
		seen[ch.Name] = true
		if ch.Run == nil {
			errs = append(errs, fmt.Errorf("checks[%d].run: required", i))
		}
	}
	return errors.Join(errs...)
}

// Stamp is one regional deployment stamp. Its methods are safe for
// concurrent use.
type Stamp struct {
	cfg     Config
	log     *slog.Logger
	checks  []*check // built-in checks first, then cfg.Checks
	ingress *ingress
	probe   *http.Client // replica and ingress health probes

	started atomic.Bool
	ready   chan struct{}

	mu           sync.Mutex // guards the addresses and replica readiness changes
	ingressAddr  string
	replicaAddrs []string
	replicas     []*replica

	routable atomic.Pointer[[]*replica] // ready replicas, in index order
	drained  atomic.Bool
	fault    atomic.Pointer[Fault]
	report   atomic.Pointer[Report] // last completed health round
	m        *metrics
}

// New fills cfg's defaults, validates it and returns the stamp. It has no
// side effects: nothing listens until Run.
func New(cfg Config) (*Stamp, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stamp: invalid config: %w", err)
	}
	cfg.Checks = append([]Check(nil), cfg.Checks...)
	s := &Stamp{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "stamp", "region", cfg.Region),
		ready: make(chan struct{}),
		probe: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil, // never send probes through an environment proxy
				DialContext:         (&net.Dialer{Timeout: cfg.CheckTimeout}).DialContext,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     3 * cfg.CheckInterval,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	s.routable.Store(&[]*replica{})
	s.ingress = newIngress(s)
	s.checks = append(s.checks,
		&check{Check: Check{Name: CheckIngress, Run: s.checkIngress}},
		&check{Check: Check{Name: CheckReplicas, Run: s.checkReplicas}},
	)
	for _, c := range cfg.Checks {
		s.checks = append(s.checks, &check{Check: c})
	}
	m, err := newMetrics(s)
	if err != nil {
		return nil, fmt.Errorf("stamp: metrics: %w", err)
	}
	s.m = m
	return s, nil
}

// Ready returns a channel closed once the ingress and every replica listen.
// It is never closed if Run fails before that.
func (s *Stamp) Ready() <-chan struct{} { return s.ready }

// IngressAddr returns the ingress listen address, or "" before Ready.
func (s *Stamp) IngressAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ingressAddr
}

// ReplicaAddrs returns the replicas' listen addresses, or nil before Ready.
func (s *Stamp) ReplicaAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.replicaAddrs...)
}

// SetDrained sets the operator drain flag. A drained stamp reports status
// "drained" (503) at HealthPath, so front doors and DNS take it out of
// rotation, while it keeps serving the requests that still reach it.
func (s *Stamp) SetDrained(drained bool) {
	if s.drained.Swap(drained) != drained {
		s.log.Info("drain flag changed", "drained", drained)
	}
}

// Drained reports the operator drain flag.
func (s *Stamp) Drained() bool { return s.drained.Load() }

// Run listens, serves and checks health until ctx ends, then shuts down
// gracefully within Config.ShutdownTimeout. It returns nil after a shutdown
// caused by ctx, or the error that stopped the stamp (a listen or serve
// failure); in every case all its listeners are closed when it returns.
// Run may be called once.
func (s *Stamp) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("stamp: Run called more than once")
	}
	var servers []*http.Server
	var listeners []net.Listener
	var wg sync.WaitGroup
	serveErr := make(chan error, s.cfg.Replicas+1)
	checkCtx, stopChecks := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		// Cleanup, also after a partial start: stop checks, then servers,
		// ingress first so in-flight requests can still reach replicas.
		stopChecks()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		for i := len(servers) - 1; i >= 0; i-- { // servers = replicas..., ingress
			if err := servers[i].Shutdown(shutdownCtx); err != nil {
				s.log.Warn("graceful shutdown cut short", "err", err)
				servers[i].Close()
			}
		}
		for _, ln := range listeners[len(servers):] { // never served
			ln.Close()
		}
		wg.Wait()
		s.ingress.transport.CloseIdleConnections()
		s.probe.CloseIdleConnections()
	}()

	replicas := make([]*replica, s.cfg.Replicas)
	for i := range replicas {
		ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Host, "0"))
		if err != nil {
			return fmt.Errorf("stamp %s: replica %d: %w", s.cfg.Region, i, err)
		}
		listeners = append(listeners, ln)
		replicas[i] = &replica{index: i, addr: ln.Addr().String()}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.IngressPort)))
	if err != nil {
		return fmt.Errorf("stamp %s: ingress: %w", s.cfg.Region, err)
	}
	listeners = append(listeners, ln)

	s.mu.Lock()
	s.replicas = replicas
	s.ingressAddr = ln.Addr().String()
	for _, r := range replicas {
		s.replicaAddrs = append(s.replicaAddrs, r.addr)
	}
	s.mu.Unlock()

	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	for i, ln := range listeners {
		h, name := s.cfg.Handler, "replica "+strconv.Itoa(i)
		if i == len(listeners)-1 {
			h, name = s.ingress, "ingress"
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
		}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("stamp %s: %s: %w", s.cfg.Region, name, err)
			}
		})
	}
	s.log.Info("stamp listening", "ingress", s.IngressAddr(), "replicas", s.ReplicaAddrs())
	close(s.ready)

	wg.Go(func() { s.checkLoop(checkCtx) })

	select {
	case <-ctx.Done():
		s.log.Info("stamp stopping", "cause", context.Cause(ctx))
		return nil
	case err := <-serveErr:
		return err
	}
}

// replica is one workload replica as the ingress sees it.
type replica struct {
	index int
	addr  string
	ready atomic.Bool // last health probe passed and no connect error since
}

// setReady records a replica's readiness and republishes the routable set.
func (s *Stamp) setReady(r *replica, ready bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ready.Swap(ready) == ready {
		return
	}
	routable := make([]*replica, 0, len(s.replicas))
	for _, rr := range s.replicas {
		if rr.ready.Load() {
			routable = append(routable, rr)
		}
	}
	s.routable.Store(&routable)
	s.log.Info("replica readiness changed", "replica", r.index, "addr", r.addr, "ready", ready, "why", why,
		"ready_replicas", len(routable))
}
