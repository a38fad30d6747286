package frontdoor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/routing"
)

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("frontdoor: Run called more than once")

// refreshEvery is the period of the candidate snapshot refresh that picks
// up probe RTTs (health changes and admin changes apply at once).
const refreshEvery = 250 * time.Millisecond

// FrontDoor is one front door POP. Create it with New, then Run it.
type FrontDoor struct {
	s       *settings
	log     *slog.Logger
	checker *health.Checker
	origins []*origin // by region index, the order of the candidates
	names   map[string]int
	base    []routing.Candidate
	policy  routing.Policy
	geo     *routing.GeoTable // nil when the topology has no geoip table
	geoCode []string          // the geo codes of the table
	trusted []netip.Prefix
	m       *metrics
	reg     *prometheus.Registry
	access  *accessLog
	waf     *waf // nil when frontdoor.waf.mode is off

	// Settings used per request.
	attempts      int
	perTry        time.Duration
	budgetFrac    float64
	minRetries    int64
	maxConcurrent int64
	maxHeader     int
	maxBody       int64
	readHeader    time.Duration
	idle          time.Duration
	replayLimit   int
	affinity      bool

	active  atomic.Int64 // requests in flight
	peak    atomic.Int64 // recent peak of active, for the retry budget
	retries atomic.Int64 // retries in flight

	snap      atomic.Pointer[snapshot]
	rebuildMu sync.Mutex // serialises rebuilds and guards overrides and failOpen
	overrides map[string]Override
	failOpen  bool

	running  atomic.Bool
	closing  atomic.Bool
	ready    chan struct{}
	addrMu   sync.Mutex
	addr     string
	tlsAddr  string
	admAddr  string
	h1       h1server
	handlerV http.Handler
}

// New fills defaults, validates cfg and returns the front door. It has no
// side effects: nothing listens or probes until Run.
func New(cfg Config) (*FrontDoor, error) {
	s, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	fd := s.fd
	f := &FrontDoor{
		s:             s,
		log:           s.Logger.With("component", "frontdoor", "pop", s.POP),
		names:         map[string]int{},
		policy:        routing.FrontDoorPolicy(fd),
		attempts:      fd.Retry.Attempts,
		perTry:        fd.Retry.PerTryTimeout.D(),
		budgetFrac:    fd.Retry.Budget.Fraction(),
		minRetries:    int64(fd.Retry.MinRetries),
		maxConcurrent: int64(fd.Limits.MaxConcurrent),
		maxHeader:     fd.Limits.MaxHeaderBytes,
		maxBody:       fd.Limits.MaxBodyBytes,
		readHeader:    fd.Limits.ReadHeaderTimeout.D(),
		idle:          fd.Limits.IdleTimeout.D(),
		replayLimit:   s.ReplayLimit,
		affinity:      fd.Affinity,
		overrides:     map[string]Override{},
		ready:         make(chan struct{}),
	}
	var errs []error
	f.base, err = routing.FromRegions(s.topo.Regions)
	if err != nil {
		errs = append(errs, err)
	}
	if err := f.policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("topology.frontdoor.routing: %w", err))
	}
	if len(s.topo.GeoIP) > 0 {
		f.geo, err = routing.NewGeoTable(s.topo.GeoIP)
		if err != nil {
			errs = append(errs, fmt.Errorf("topology.geoip: %w", err))
		}
		seen := map[string]bool{}
		for _, code := range s.topo.GeoIP {
			if !seen[code] {
				seen[code] = true
				f.geoCode = append(f.geoCode, code)
			}
		}
	}
	for i, c := range fd.TrustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("topology.frontdoor.trustedProxies[%d]: %q is not a CIDR prefix", i, c))
			continue
		}
		f.trusted = append(f.trusted, p.Masked())
	}
	targets := make([]health.Target, len(s.origins))
	for i, o := range s.origins {
		org, err := newOrigin(i, o, s.OriginTLS)
		if err != nil {
			errs = append(errs, fmt.Errorf("origins[%s]: %w", o.Name, err))
			continue
		}
		f.origins = append(f.origins, org)
		f.names[o.Name] = i
		targets[i] = health.Target{Name: o.Name, URL: strings.TrimSuffix(o.URL, "/") + fd.Probe.Path}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("frontdoor: invalid config: %w", err)
	}
	hc := health.FrontDoorConfig(fd)
	hc.Clock = s.Clock
	hc.Logger = s.Logger.With("pop", s.POP)
	if s.FDID != "" {
		hc.Header = http.Header{HeaderFDID: {s.FDID}}
	}
	f.checker, err = health.New(hc, targets)
	if err != nil {
		return nil, fmt.Errorf("frontdoor: %w", err)
	}
	f.reg = s.Registry
	if f.reg == nil {
		f.reg = privateRegistry()
	}
	f.m, err = newMetrics(f.reg, s.POP, s.topo.RegionNames(), func() float64 { return float64(f.active.Load()) })
	if err != nil {
		return nil, fmt.Errorf("frontdoor: metrics: %w", err)
	}
	f.waf, err = newWAF(fd.WAF.Mode)
	if err != nil {
		return nil, fmt.Errorf("frontdoor: %w", err)
	}
	if s.AccessLog != nil {
		f.access = &accessLog{w: s.AccessLog, pop: s.POP}
	}
	f.h1.f = f
	f.h1.work = make(chan *h1conn)
	f.h1.stop = make(chan struct{})
	f.handlerV = handler{f}
	f.rebuild()
	return f, nil
}

// Handler returns the proxy as an http.Handler (the TLS listener serves
// it; tests may serve it with httptest). Without Run, regions are not
// probed, so routing fails open over every enabled region, and passive
// ejection still works.
func (f *FrontDoor) Handler() http.Handler { return f.handlerV }

// Checker returns the front door's health checker (its probes run while
// Run runs).
func (f *FrontDoor) Checker() *health.Checker { return f.checker }

// Ready is closed once Run listens on every address.
func (f *FrontDoor) Ready() <-chan struct{} { return f.ready }

// Addr returns the plain HTTP address after Ready, "" when disabled.
func (f *FrontDoor) Addr() string {
	f.addrMu.Lock()
	defer f.addrMu.Unlock()
	return f.addr
}

// TLSAddr returns the HTTPS address after Ready, "" when disabled.
func (f *FrontDoor) TLSAddr() string {
	f.addrMu.Lock()
	defer f.addrMu.Unlock()
	return f.tlsAddr
}

// AdminAddr returns the admin API address after Ready, "" when disabled.
func (f *FrontDoor) AdminAddr() string {
	f.addrMu.Lock()
	defer f.addrMu.Unlock()
	return f.admAddr
}

// Run listens, probes the regions and serves until ctx ends; then it stops
// accepting, lets requests in flight finish (up to ShutdownTimeout),
// closes every connection and returns nil. It returns an error when a
// listener cannot be opened. Run may be called once.
func (f *FrontDoor) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		// No TCP keep-alive probes on client connections (4 system calls
		// per accepted connection): idle and read timeouts end dead ones.
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("frontdoor: %w", err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	plain, err := listen(f.s.Listen)
	if err != nil {
		return err
	}
	secure, err := listen(f.s.ListenTLS)
	if err != nil {
		return err
	}
	admin, err := listen(f.s.AdminListen)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { f.checker.Run(ctx) })
	events, unsubscribe := f.checker.Subscribe(256)
	wg.Go(func() { f.watch(events) })
	stopRefresh := f.refreshLoop()

	var servers []*http.Server
	if plain != nil {
		f.h1.listen(plain)
		wg.Go(func() { f.h1.serve(plain, false) })
	}
	if secure != nil {
		tc := f.s.TLS.Clone()
		if len(tc.NextProtos) == 0 {
			tc.NextProtos = []string{"h2", "http/1.1"}
		}
		srv := &http.Server{
			Handler:           f.handlerV,
			TLSConfig:         tc,
			ReadHeaderTimeout: f.readHeader,
			IdleTimeout:       f.idle,
			MaxHeaderBytes:    f.maxHeader,
			ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
		}
		servers = append(servers, srv)
		wg.Go(func() { srv.Serve(tls.NewListener(secure, tc)) })
	}
	if admin != nil {
		srv := &http.Server{
			Handler:           f.adminHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
		}
		servers = append(servers, srv)
		wg.Go(func() { srv.Serve(admin) })
	}
	f.addrMu.Lock()
	if plain != nil {
		f.addr = plain.Addr().String()
	}
	if secure != nil {
		f.tlsAddr = secure.Addr().String()
	}
	if admin != nil {
		f.admAddr = admin.Addr().String()
	}
	f.addrMu.Unlock()
	f.rebuild()
	f.log.Info("front door listening", "http", f.Addr(), "https", f.TLSAddr(), "admin", f.AdminAddr(),
		"regions", len(f.origins), "routing", f.policy.Method, "fdid_set", f.s.FDID != "", "waf", f.s.fd.WAF.Mode)
	close(f.ready)

	<-ctx.Done()
	f.closing.Store(true)
	sctx, scancel := context.WithTimeout(context.Background(), f.s.ShutdownTimeout)
	defer scancel()
	var sw sync.WaitGroup
	for _, srv := range servers {
		sw.Go(func() {
			if srv.Shutdown(sctx) != nil {
				srv.Close()
			}
		})
	}
	sw.Go(func() { f.h1.shutdown(sctx) })
	sw.Wait()
	stopRefresh()
	unsubscribe()
	cancel()
	wg.Wait()
	for _, o := range f.origins {
		o.closeIdle()
	}
	f.log.Info("front door stopped")
	return nil
}

// watch applies health events: metrics and a new snapshot.
func (f *FrontDoor) watch(events <-chan health.Event) {
	for ev := range events {
		if ev.To == health.StatusEjected {
			f.m.ejections.WithLabelValues(ev.Target).Inc()
		}
		f.rebuild()
	}
}

// refreshLoop rebuilds the snapshot every refreshEvery on the clock (probe
// RTTs move without events) and prunes idle upstream connections; the
// returned function stops it.
func (f *FrontDoor) refreshLoop() func() {
	var mu sync.Mutex
	stopped := false
	var t health.Timer
	var tick func()
	tick = func() {
		f.decayPeak()
		f.rebuild()
		now := time.Now()
		for _, o := range f.origins {
			o.prune(now)
		}
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t = f.s.Clock.AfterFunc(refreshEvery, tick)
		}
	}
	mu.Lock()
	t = f.s.Clock.AfterFunc(refreshEvery, tick)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}
