// Package jetstream is the embedded engine of primary-secondary data services.
//
// Each region process embeds one NATS server with JetStream enabled in its
// own JetStream domain (the region name), storing under <Dir>/nats. Regions
// are joined by leafnode connections through the WAN links: region i
// solicits one leafnode remote whose URLs are the leaf listeners of regions
// 0..i-1, tried in that order (no randomization, discovered URLs ignored, our
// own listen address not advertised), so the connections always form a tree
// rooted at region 0 (NATS rejects leafnode loops) and a region whose parent
// dies reconnects to the next lower one.
//
// A primary-secondary service has one stream per region, all named
// gs_<service>: in the primary region a plain stream that takes the
// writes of its epoch, stored as gs.<service>.k.<base64url key>, in every
// other region a mirror of it across domains, fed by a durable consumer on
// the primary (see relay.go for how mirrors attach and why through a
// relay). Writes are JetStream publishes that cross the leafnodes to the
// primary's stream; reads are direct gets on the local stream or mirror,
// which keeps the primary's sequences and timestamps.
//
// Which region is primary, and at which epoch, is decided by the failover
// controller through data.Replica (see replica.go for epoch fencing,
// promotion and rejoining). Until its first decision a region takes no
// writes, and a stream found writable at start is fenced.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/geostamp/geostamp/internal/data"
)

// Timing of the embedded server. Leafnodes reconnect quickly so that a
// healed WAN link resumes replication at once, and pings detect a frozen
// peer (SIGSTOP, silent link) within a few seconds instead of minutes.
const (
	leafReconnectInterval = 500 * time.Millisecond
	pingInterval          = time.Second
	maxPingsOut           = 3
	startTimeout          = 15 * time.Second
	setupTimeout          = 15 * time.Second
)

// Engine runs the embedded NATS server of one region and serves its
// primary-secondary data services.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	services map[string]*service
	order    []string // service names in configuration order
	ready    chan struct{}
	started  atomic.Bool
	// life ends when the server stops (Run returns, or Crash); background
	// work of the services (sync pollers) watches it.
	life     context.Context
	stopLife context.CancelFunc

	mu         sync.RWMutex
	srv        *server.Server
	nc         *nats.Conn
	js         jetstream.JetStream // local domain
	clientAddr string
	leafAddr   string
	crashed    bool

	// testHookAfterDelete, if set, runs in Follow right after the local
	// stream was deleted; an error makes Follow fail there.
	testHookAfterDelete func() error
}

var _ data.Crasher = (*Engine)(nil)

// New validates cfg and returns an engine; it has no side effects.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream: invalid config: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		services: make(map[string]*service, len(cfg.Services)),
		ready:    make(chan struct{}),
		life:     life,
		stopLife: stop,
	}
	for _, s := range cfg.Services {
		e.services[s.Name] = newService(e, cfg.Region, s)
		e.order = append(e.order, s.Name)
	}
	return e, nil
}

// Ready is closed once the server listens and every local stream or mirror
// exists.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ClientAddr is the host:port of the NATS client listener (valid after Ready).
func (e *Engine) ClientAddr() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.clientAddr
}

// LeafAddr is the host:port of the leafnode listener (valid after Ready);
// lower-numbered regions' addresses, through the WAN, are the Remotes of
// higher-numbered ones.
func (e *Engine) LeafAddr() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.leafAddr
}

// Upstream returns the name of the region that this region's leafnode
// remote is connected to now, or "" when it is not connected (or has no
// remote).
func (e *Engine) Upstream() string {
	srv, _, _ := e.conn()
	if srv == nil {
		return ""
	}
	lz, err := srv.Leafz(nil)
	if err != nil {
		return ""
	}
	for _, l := range lz.Leafs {
		if l.IsSpoke { // we solicited it: the connection to our parent
			return l.Name
		}
	}
	return ""
}

// Store returns the named service as this region uses it. The store may be
// taken before Run; its calls fail with data.ErrUnavailable until Ready.
func (e *Engine) Store(name string) (data.Store, error) {
	s, ok := e.services[name]
	if !ok {
		return nil, fmt.Errorf("jetstream: unknown service %q", name)
	}
	return s, nil
}

// Replica returns the named service as the failover controller drives it.
// Like Store, it may be taken before Run.
func (e *Engine) Replica(name string) (data.Replica, error) {
	s, ok := e.services[name]
	if !ok {
		return nil, fmt.Errorf("jetstream: unknown service %q", name)
	}
	return s, nil
}

// Crash kills the region's NATS server at once, as the data-primary-loss
// fault: no lame-duck mode, clients and leafnodes dropped. Every call then
// fails with data.ErrUnavailable until the region restarts (a new Engine);
// Run keeps waiting for its ctx and returns nil.
func (e *Engine) Crash() error {
	e.mu.Lock()
	srv := e.srv
	if srv == nil {
		e.mu.Unlock()
		return errors.New("jetstream: crash: engine not running")
	}
	e.srv, e.nc, e.js = nil, nil, nil
	e.crashed = true
	e.mu.Unlock()
	e.stopLife()
	srv.Shutdown()
	e.log.Warn("jetstream engine crashed on request")
	return nil
}

// downReason says why conn returned nils.
func (e *Engine) downReason() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.crashed {
		return "engine crashed (down until the region restarts)"
	}
	return "engine not running"
}

// lifeContext ends when the server stops.
func (e *Engine) lifeContext() context.Context { return e.life }

// waitInterest waits, at most max or until ctx ends, until the local
// server knows a subscriber of subject (across the leafnodes).
func (e *Engine) waitInterest(ctx context.Context, subject string, max time.Duration) bool {
	deadline := time.Now().Add(max)
	for {
		srv, _, _ := e.conn()
		if srv == nil {
			return false
		}
		if srv.GlobalAccount().SubscriptionInterest(subject) {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Statuses reports the status of every service, in configuration order,
// each bounded by ctx.
func (e *Engine) Statuses(ctx context.Context) []data.Status {
	out := make([]data.Status, len(e.order))
	var wg sync.WaitGroup
	for i, name := range e.order {
		wg.Go(func() { out[i] = e.services[name].Status(ctx) })
	}
	wg.Wait()
	return out
}

// mirrorConsumerFor returns the consumer, on domain's stream named
// stream, that feeds the local mirror of it.
func (e *Engine) mirrorConsumerFor(domain, stream string) (jetstream.ConsumerConfig, bool) {
	for _, s := range e.services {
		if s.stream == stream {
			return s.mirrorConsumerConfig(domain), true
		}
	}
	return jetstream.ConsumerConfig{}, false
}

// conn returns the running server and its in-process connection, or nils
// when the engine is not running.
func (e *Engine) conn() (*server.Server, *nats.Conn, jetstream.JetStream) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.srv, e.nc, e.js
}

// Run starts the server, creates the local streams or mirrors that are
// missing (from the Primary hints) and fences a writable one, and serves
// until ctx ends; then it shuts the server down (after Crash it only
// waits for ctx). Cleanup also runs after a partial start. Run may be
// called once; to restart a region, make a new Engine on the same Dir (and
// ports).
func (e *Engine) Run(ctx context.Context) (err error) {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("jetstream: Run called twice")
	}
	dir := filepath.Join(e.cfg.Dir, "nats")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("jetstream: data dir: %w", err)
	}
	opts, err := e.serverOptions(dir)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("jetstream: new server: %w", err)
	}
	logs := &natsLogger{log: e.log.With("source", "nats-server")}
	srv.SetLoggerV2(logs, e.log.Enabled(ctx, slog.LevelDebug), false, false)

	var (
		nc    *nats.Conn
		relay *mirrorRelay
	)
	defer func() {
		e.mu.Lock()
		e.srv, e.nc, e.js = nil, nil, nil
		e.mu.Unlock()
		e.stopLife()
		if relay != nil {
			relay.stop()
		}
		if nc != nil {
			nc.Close()
		}
		srv.Shutdown()
		srv.WaitForShutdown()
	}()

	srv.Start()
	// Connect and start the mirror relay at once: mirrors recovered from
	// disk send their first API request 100-200 ms after Start.
	nc, err = nats.Connect("",
		nats.InProcessServer(srv),
		nats.Name("geostamp-"+e.cfg.Region),
		nats.NoReconnect(),
	)
	if err != nil {
		return fmt.Errorf("jetstream: connect: %w", err)
	}
	if relay, err = startRelay(nc, e.cfg.Region, e.log, e.mirrorConsumerFor); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := waitReady(ctx, srv, logs); err != nil {
		return fmt.Errorf("jetstream: start server: %w", err)
	}
	clientAddr := srv.Addr().String()
	leafAddr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(opts.LeafNode.Port))

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	for _, name := range e.order {
		if err := e.services[name].setup(setupCtx, nc, js); err != nil {
			return fmt.Errorf("jetstream: service %s: %w", name, err)
		}
	}

	e.mu.Lock()
	e.srv, e.nc, e.js = srv, nc, js
	e.clientAddr, e.leafAddr = clientAddr, leafAddr
	e.mu.Unlock()
	close(e.ready)
	e.log.Info("jetstream engine ready", "client", clientAddr, "leaf", leafAddr, "remotes", e.cfg.Remotes)

	<-ctx.Done()
	return nil
}

// serverOptions builds the embedded server's options.
func (e *Engine) serverOptions(storeDir string) (*server.Options, error) {
	port := func(p int) int {
		if p == 0 {
			return server.RANDOM_PORT
		}
		return p
	}
	opts := &server.Options{
		ServerName:             e.cfg.Region,
		Host:                   e.cfg.Host,
		Port:                   port(e.cfg.ClientPort),
		NoSigs:                 true,
		PingInterval:           pingInterval,
		MaxPingsOut:            maxPingsOut,
		JetStream:              true,
		JetStreamDomain:        e.cfg.Region,
		StoreDir:               storeDir,
		DisableJetStreamBanner: true,
		LeafNode: server.LeafNodeOpts{
			Host: e.cfg.Host,
			Port: port(e.cfg.LeafPort),
			// Do not gossip our own (direct, non-WAN) leaf address to
			// the regions that connect to us.
			NoAdvertise:       true,
			ReconnectInterval: leafReconnectInterval,
		},
	}
	if len(e.cfg.Remotes) > 0 {
		remote := &server.RemoteLeafOpts{
			// Try the remotes in the configured order: the leafnode
			// graph stays a tree and prefers the lowest region.
			NoRandomize: true,
			// Keep only the WAN addresses we were given; the hub
			// would otherwise prepend its direct listen address.
			IgnoreDiscoveredServers: true,
		}
		for _, r := range e.cfg.Remotes {
			u, err := url.Parse("nats-leaf://" + r)
			if err != nil {
				return nil, fmt.Errorf("remote %q: %w", r, err)
			}
			remote.URLs = append(remote.URLs, u)
		}
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{remote}
	}
	return opts, nil
}

// waitReady waits until srv accepts connections, a listener fails, or ctx
// ends.
func waitReady(ctx context.Context, srv *server.Server, logs *natsLogger) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if err := logs.fatal(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("not ready after " + startTimeout.String())
		}
	}
}

// natsLogger sends the NATS server's logs to slog at debug level; fatal
// errors are logged at error level and remembered, since an embedded server
// does not exit on them.
type natsLogger struct {
	log *slog.Logger

	mu       sync.Mutex
	fatalErr error
}

var _ server.Logger = (*natsLogger)(nil)

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	if l.fatalErr == nil {
		l.fatalErr = errors.New(msg)
	}
	l.mu.Unlock()
}

func (l *natsLogger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalErr
}
