package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/geostamp/geostamp/internal/frontdoor"
	"github.com/geostamp/geostamp/internal/gslb"
	"github.com/geostamp/geostamp/internal/telemetry"
)

// global is the lab's global layer: a front door per POP and the GSLB.
type global struct {
	frontdoors map[string]*frontdoor.FrontDoor
	pops       []string
	dns        *gslb.Server

	mu      sync.Mutex
	ctx     context.Context // the global layer's life
	popRuns map[string]*popRun
}

// popRun is one running POP, so that a drill can kill it and bring it back.
type popRun struct {
	cfg    frontdoor.Config
	cancel context.CancelFunc
	done   chan struct{}
}

// startGlobal starts the front door POPs, each reaching the stamps through
// its own WAN links, and the GSLB, and returns once all listen. They stop
// when ctx ends; done is closed when they have.
func (l *Lab) startGlobal(ctx context.Context, ingressPort int) (*global, <-chan struct{}, error) {
	g := &global{frontdoors: map[string]*frontdoor.FrontDoor{}, ctx: ctx, popRuns: map[string]*popRun{}}
	host := l.topo.Lab.Host
	ca, err := newLocalCA(l.topo.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: local CA: %w", err)
	}
	if err := ca.writeCert(l.caFile()); err != nil {
		return nil, nil, fmt.Errorf("lab: %w", err)
	}
	errc := make(chan error, len(l.topo.FrontDoor.POPs)+1)
	done := make(chan struct{})
	running := 0
	runs := make(chan struct{}, len(l.topo.FrontDoor.POPs)+1)
	start := func(name string, run func(context.Context) error, ready <-chan struct{}) error {
		running++
		go func() {
			defer func() { runs <- struct{}{} }()
			if err := run(ctx); err != nil {
				l.log.Error("global component failed", "part", name, "err", err)
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return waitReady(ctx, ready, errc)
	}
	defer func() {
		go func() {
			for range running {
				<-runs
			}
			close(done)
		}()
	}()

	for _, pop := range l.topo.FrontDoor.POPs {
		var origins []frontdoor.Origin
		for _, r := range l.topo.Regions {
			addr, err := l.net.Proxy("ingress "+pop+"->"+r.Name, pop, r.Name, net.JoinHostPort(host, "0"), net.JoinHostPort(r.Address, strconv.Itoa(ingressPort)))
			if err != nil {
				return nil, done, fmt.Errorf("lab: %w", err)
			}
			origins = append(origins, frontdoor.Origin{Name: r.Name, URL: "http://" + addr})
		}
		tlsCfg, err := ca.serverConfig([]string{"localhost", pop, pop + "." + l.topo.GSLB.Zone[:len(l.topo.GSLB.Zone)-1]},
			[]net.IP{net.ParseIP(host), net.IPv6loopback})
		if err != nil {
			return nil, done, err
		}
		access, err := os.OpenFile(filepath.Join(l.dir, "logs", "access-"+pop+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, done, fmt.Errorf("lab: %w", err)
		}
		go func() { <-ctx.Done(); <-done; access.Close() }()
		cfg := frontdoor.Config{
			Topology:    l.topo,
			POP:         pop,
			Origins:     origins,
			Listen:      net.JoinHostPort(host, "0"),
			ListenTLS:   net.JoinHostPort(host, "0"),
			AdminListen: net.JoinHostPort(host, "0"),
			TLS:         tlsCfg,
			FDID:        l.fdid,
			AdminToken:  l.token,
			Logger:      l.cfg.Logger,
			AccessLog:   access,
		}
		if l.cfg.Traces != nil {
			cfg.Tracer = telemetry.Tracer("frontdoor")
		}
		fd, err := frontdoor.New(cfg)
		if err != nil {
			return nil, done, err
		}
		pctx, cancel := context.WithCancel(ctx)
		run := &popRun{cancel: cancel, done: make(chan struct{})}
		if err := start("frontdoor "+pop, func(context.Context) error { defer close(run.done); return fd.Run(pctx) }, fd.Ready()); err != nil {
			return nil, done, err
		}
		// A restarted POP listens where this one does.
		cfg.Listen, cfg.ListenTLS, cfg.AdminListen = fd.Addr(), fd.TLSAddr(), fd.AdminAddr()
		run.cfg = cfg
		g.popRuns[pop] = run
		g.frontdoors[pop] = fd
		g.pops = append(g.pops, pop)
		l.printf("front door %-11s on https://%s and http://%s\n", pop, fd.TLSAddr(), fd.Addr())
	}

	probes := map[string]string{}
	for _, r := range l.topo.Regions {
		probes[r.Name] = "http://" + net.JoinHostPort(r.Address, strconv.Itoa(ingressPort)) + l.topo.GSLB.Probe.Path
	}
	dns, err := gslb.New(gslb.Config{
		Topology:    l.topo,
		Listen:      net.JoinHostPort(host, "0"),
		AdminListen: net.JoinHostPort(host, "0"),
		AdminToken:  l.token,
		ProbeURLs:   probes,
		Logger:      l.cfg.Logger,
	})
	if err != nil {
		return nil, done, err
	}
	if err := start("gslb", dns.Run, dns.Ready()); err != nil {
		return nil, done, err
	}
	g.dns = dns
	l.printf("GSLB DNS   %-11s on %s (udp+tcp)\n", l.topo.GSLB.Zone, dns.Addr())
	return g, done, nil
}

// killPOP stops a POP as if its process died: its listeners close and
// its connections drop.
func (g *global) killPOP(name string) error {
	g.mu.Lock()
	run, ok := g.popRuns[name]
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("no POP %q (POPs: %v)", name, g.pops)
	}
	run.cancel()
	<-run.done
	return nil
}

// restartPOP starts a POP again on its addresses; a running one is killed
// first.
func (g *global) restartPOP(name string) error {
	if err := g.killPOP(name); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.popRuns[name]
	fd, err := frontdoor.New(old.cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(g.ctx)
	run := &popRun{cfg: old.cfg, cancel: cancel, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(run.done)
		errc <- fd.Run(ctx)
	}()
	select {
	case <-fd.Ready():
	case err := <-errc:
		cancel()
		return fmt.Errorf("restart POP %s: %w", name, err)
	}
	g.popRuns[name] = run
	g.frontdoors[name] = fd
	return nil
}

func (l *Lab) caFile() string { return filepath.Join(l.dir, "ca.pem") }

// addGlobal records the global layer's addresses in the endpoints.
func (g *global) addEndpoints(eps *Endpoints, l *Lab) {
	for _, pop := range g.pops {
		fd := g.frontdoors[pop]
		eps.FrontDoor = append(eps.FrontDoor, "https://"+fd.TLSAddr(), "http://"+fd.Addr())
		eps.POPs = append(eps.POPs, POPEndpoint{Name: pop, HTTPS: "https://" + fd.TLSAddr(), HTTP: "http://" + fd.Addr(), Admin: "http://" + fd.AdminAddr()})
	}
	eps.CAFile = l.caFile()
	eps.GSLB = g.dns.Addr()
	eps.GSLBAdmin = "http://" + g.dns.AdminAddr()
	eps.Zone = l.topo.GSLB.Zone
	eps.Host = l.topo.GSLB.Host + "." + l.topo.GSLB.Zone
}
