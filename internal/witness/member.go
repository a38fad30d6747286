package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

// Timing defaults of a member, chosen for WAN links of 10-40 ms one way
// (20-80 ms round trip) between sites.
const (
	// DefaultHeartbeat is the raft heartbeat interval. etcd's tuning guide
	// asks for about the largest round trip between members (0.5-1.5x);
	// 100 ms covers an 80 ms round trip without heartbeats piling up.
	DefaultHeartbeat = 100 * time.Millisecond
	// DefaultElection is the raft election timeout: 10 heartbeats, so a
	// follower tolerates several delayed or lost heartbeats (WAN jitter, a
	// GC pause) before it starts an election. With it, etcd's minimum lease
	// TTL is ceil(1.5 x 1 s) = 2 s, and a lost leader is replaced in about
	// 1-2 s (election timeout, randomized up to 2x, plus two round trips of
	// pre-vote and vote).
	DefaultElection = time.Second
	// DefaultClusterToken is the initial cluster token of a new cluster.
	DefaultClusterToken = "geostamp-witness"
)

// Config configures one embedded etcd member. In the lab there is one per
// region process and one at the witness site; in production the platform
// uses an external etcd cluster instead (see NewClient) and no Member.
type Config struct {
	// Name of the member, unique in the cluster; the site name. Letters,
	// digits, '.', '-' and '_'. Required.
	Name string
	// Dir is the data directory (WAL and database), created if missing. A
	// member restarted on the same Dir rejoins its cluster with its identity
	// and data; Peers and ClusterToken are then ignored. Required.
	Dir string
	// ClientURL is the URL the member listens on for clients, e.g.
	// "http://127.0.1.1:2379". The port must be explicit. Required.
	ClientURL string
	// AdvertiseClientURL is the client URL announced to the cluster.
	// Default: ClientURL.
	AdvertiseClientURL string
	// PeerURL is the URL the member listens on for raft traffic from the
	// other members. The port must be explicit. Required.
	PeerURL string
	// AdvertisePeerURL is the URL the other members dial to reach this one.
	// In the lab it is not PeerURL but the address of a PeerRouter that
	// sends each member's traffic through the WAN link from that member's
	// site. Default: PeerURL.
	AdvertisePeerURL string
	// Peers is the initial cluster: every member's name and advertised peer
	// URL, this member included. Default: this member alone.
	Peers map[string]string
	// ClusterToken tells apart clusters bootstrapped from the same peer
	// list. Default: DefaultClusterToken.
	ClusterToken string
	// Heartbeat is the raft heartbeat interval, a whole number of
	// milliseconds. Default: DefaultHeartbeat (100ms).
	Heartbeat time.Duration
	// Election is the raft election timeout, a whole number of
	// milliseconds, at least 5 heartbeats. Default: DefaultElection (1s).
	Election time.Duration
	// LogLevel is the lowest level of etcd's own records forwarded to
	// Logger: debug, info, warn or error. etcd logs every raft step at info.
	// Default: "warn".
	LogLevel string
	// Logger receives etcd's records (tagged lib=etcd) and the member's own.
	// Default: discard. Nothing is written to stdout or stderr, except by
	// gRPC's process-wide logger (see the package documentation).
	Logger *slog.Logger
	// UnsafeNoFsync disables fsync. Only for tests: a crash may then lose
	// acknowledged writes, including fencing epochs.
	UnsafeNoFsync bool
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// withDefaults returns a copy of c with every default filled in.
func (c Config) withDefaults() Config {
	if c.AdvertiseClientURL == "" {
		c.AdvertiseClientURL = c.ClientURL
	}
	if c.AdvertisePeerURL == "" {
		c.AdvertisePeerURL = c.PeerURL
	}
	if len(c.Peers) == 0 {
		c.Peers = map[string]string{c.Name: c.AdvertisePeerURL}
	} else {
		peers := make(map[string]string, len(c.Peers))
		for k, v := range c.Peers {
			peers[k] = v
		}
		c.Peers = peers
	}
	if c.ClusterToken == "" {
		c.ClusterToken = DefaultClusterToken
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Election == 0 {
		c.Election = DefaultElection
	}
	if c.LogLevel == "" {
		c.LogLevel = "warn"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c at once, each with its field path.
// It expects defaults to be filled in (New does that first).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !nameRE.MatchString(c.Name) {
		bad("name", "%q must be 1-128 letters, digits, '.', '-' or '_'", c.Name)
	}
	if c.Dir == "" {
		bad("dir", "required")
	}
	for _, u := range []struct{ field, url string }{
		{"clientURL", c.ClientURL},
		{"advertiseClientURL", c.AdvertiseClientURL},
		{"peerURL", c.PeerURL},
		{"advertisePeerURL", c.AdvertisePeerURL},
	} {
		if err := checkURL(u.url); err != nil {
			bad(u.field, "%v", err)
		}
	}
	names := make([]string, 0, len(c.Peers))
	for n := range c.Peers {
		names = append(names, n)
	}
	slices.Sort(names)
	seen := map[string]string{}
	for _, n := range names {
		field := fmt.Sprintf("peers[%s]", n)
		if !nameRE.MatchString(n) {
			bad(field, "%q is not a member name", n)
		}
		if err := checkURL(c.Peers[n]); err != nil {
			bad(field, "%v", err)
		} else if other, dup := seen[c.Peers[n]]; dup {
			bad(field, "URL %q is also member %q's", c.Peers[n], other)
		}
		seen[c.Peers[n]] = n
	}
	if u, ok := c.Peers[c.Name]; !ok {
		bad("peers", "must include this member %q", c.Name)
	} else if u != c.AdvertisePeerURL {
		bad(fmt.Sprintf("peers[%s]", c.Name), "%q differs from advertisePeerURL %q", u, c.AdvertisePeerURL)
	}
	if !nameRE.MatchString(c.ClusterToken) {
		bad("clusterToken", "%q must be 1-128 letters, digits, '.', '-' or '_'", c.ClusterToken)
	}
	if c.Heartbeat <= 0 || c.Heartbeat%time.Millisecond != 0 {
		bad("heartbeat", "%v must be a positive whole number of milliseconds", c.Heartbeat)
	}
	if c.Election%time.Millisecond != 0 || c.Election < 5*c.Heartbeat || c.Election > 50*time.Second {
		bad("election", "%v must be whole milliseconds, at least 5 heartbeats (%v) and at most 50s", c.Election, 5*c.Heartbeat)
	}
	if _, err := zapLevel(c.LogLevel); err != nil {
		bad("logLevel", "%v", err)
	}
	return errors.Join(errs...)
}

// checkURL accepts http(s)://host:port with an explicit non-zero port.
func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p <= 0 || p > 65535 || u.Hostname() == "" {
		return fmt.Errorf("%q needs a host and an explicit port", s)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%q must not have a path", s)
	}
	return nil
}

// Member is one embedded etcd member.
type Member struct {
	cfg     Config
	log     *slog.Logger
	etcdLog zapcore.Level
	ready   chan struct{}
	started atomic.Bool
	closing atomic.Bool // etcd's records are demoted to debug while it stops
}

// New checks cfg and returns a Member. It has no side effects: nothing is
// created or listens until Run.
func New(cfg Config) (*Member, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("witness: invalid member config: %w", err)
	}
	lvl, _ := zapLevel(cfg.LogLevel)
	return &Member{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "witness", "member", cfg.Name),
		etcdLog: lvl,
		ready:   make(chan struct{}),
	}, nil
}

// Name is the member's name.
func (m *Member) Name() string { return m.cfg.Name }

// ClientURL is the member's advertised client URL, for NewClient.
func (m *Member) ClientURL() string { return m.cfg.AdvertiseClientURL }

// Ready is closed once the member has joined its cluster (which needs a
// quorum of members) and serves clients.
func (m *Member) Ready() <-chan struct{} { return m.ready }

// Run starts the member and serves until ctx ends, then stops it and
// returns nil; it returns an error if the member cannot start or fails.
// All resources are released when Run returns, also after a failed start,
// so a new Member may Run on the same Dir (a restart).
func (m *Member) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("witness: member Run called twice")
	}
	cfg, err := m.embedConfig()
	if err != nil {
		return fmt.Errorf("witness: member %s: %w", m.cfg.Name, err)
	}
	e, err := embed.StartEtcd(cfg) // cleans up after itself on error
	if err != nil {
		return fmt.Errorf("witness: member %s: start: %w", m.cfg.Name, err)
	}
	defer func() {
		m.closing.Store(true)
		e.Close()
	}()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fmt.Errorf("witness: member %s: %w", m.cfg.Name, err)
	case <-e.Server.StopNotify():
		return fmt.Errorf("witness: member %s: stopped before it was ready", m.cfg.Name)
	case <-ctx.Done():
		return nil
	}
	close(m.ready)
	m.log.Info("witness member ready", "id", e.Server.MemberID().String(),
		"client", m.cfg.AdvertiseClientURL, "peer", m.cfg.AdvertisePeerURL)
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("witness: member %s: %w", m.cfg.Name, err)
	case <-e.Server.StopNotify():
		return fmt.Errorf("witness: member %s: server stopped (removed from the cluster?)", m.cfg.Name)
	}
}

// embedConfig translates the Config into etcd's.
func (m *Member) embedConfig() (*embed.Config, error) {
	c := m.cfg
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.Dir
	urls := func(s string) []url.URL {
		u, _ := url.Parse(s) // validated by New
		return []url.URL{*u}
	}
	cfg.ListenClientUrls = urls(c.ClientURL)
	cfg.AdvertiseClientUrls = urls(c.AdvertiseClientURL)
	cfg.ListenPeerUrls = urls(c.PeerURL)
	cfg.AdvertisePeerUrls = urls(c.AdvertisePeerURL)
	names := make([]string, 0, len(c.Peers))
	for n := range c.Peers {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + c.Peers[n]
	}
	cfg.InitialCluster = strings.Join(parts, ",")
	cfg.InitialClusterToken = c.ClusterToken
	cfg.ClusterState = embed.ClusterStateFlagNew // ignored once Dir holds a member
	cfg.TickMs = uint(c.Heartbeat / time.Millisecond)
	cfg.ElectionMs = uint(c.Election / time.Millisecond)
	// Lease checkpointing stays off (etcd's default): a new raft leader then
	// restarts every lease at its full TTL plus an election timeout, so a
	// leader change only ever moves an expiry later (see the package doc).
	cfg.EnableGRPCGateway = false
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{embed.StdErrLogOutput} // unused: the builder below replaces it
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newZapLogger(m.log.With("lib", "etcd"), m.etcdLog, &m.closing))
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// NewClient returns an etcd client for the given endpoints (client URLs or
// host:port), logging to logger. It keeps exactly these endpoints and never
// replaces them with the members' advertised client URLs, so lab clients
// stay on their WAN addresses. Close it when done.
func NewClient(endpoints []string, logger *slog.Logger) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("witness: client: no endpoints")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		// gRPC keepalive detects a dead connection to a member; etcd's
		// server refuses pings more often than every 5 s.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               newZapLogger(logger.With("component", "witness", "lib", "etcd-client"), zapcore.ErrorLevel, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("witness: client: %w", err)
	}
	return cli, nil
}
