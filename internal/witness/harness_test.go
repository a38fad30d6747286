package witness

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/testlog"
)

// testLogger writes records at level and above to t.Log.
func testLogger(t *testing.T, level slog.Level) *slog.Logger { return testlog.New(t, level) }

// freePort returns a port that was free a moment ago. etcd takes listen
// URLs, not listeners, so its ports must be chosen before it starts, and a
// restarted member binds its port again. Ports come from below Linux's
// ephemeral range (32768-60999), so that neither another test's listener
// on :0 nor an outgoing connection's source port can take one meanwhile.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// link is one direction of a WAN link in a test: a TCP proxy dialed from
// site "from" that forwards to a member's peer listener. A cut closes its
// connections and refuses new ones until healed. A hold (one-way cut, as
// the lab's wan package does it) keeps the connections open but holds the
// bytes of one direction until released: held[0] the dialer's bytes
// (from -> to), held[1] the answers (to -> from).
type link struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	cut     bool
	held    [2]bool
	changed chan struct{} // closed and replaced when held changes
	conns   map[net.Conn]struct{}
}

func newLink(t *testing.T, target string) *link {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{ln: ln, target: target, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	go l.serve()
	t.Cleanup(l.close)
	return l
}

// setHeld holds (or releases) direction d of the link.
func (l *link) setHeld(d int, hold bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[d] != hold {
		l.held[d] = hold
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// waitOpen blocks while direction d is held; false once the link closes.
func (l *link) waitOpen(d int) bool {
	for {
		l.mu.Lock()
		held, ch, cut := l.held[d], l.changed, l.cut
		l.mu.Unlock()
		if !held {
			return true
		}
		if cut {
			return false
		}
		<-ch
	}
}

func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.handle(c)
	}
}

func (l *link) handle(c net.Conn) {
	up, err := net.DialTimeout("tcp", l.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	l.conns[c], l.conns[up] = struct{}{}, struct{}{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn, d int) {
		defer wg.Done()
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && (!l.waitOpen(d) || writeAll(dst, buf[:n]) != nil) {
				return
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(2)
	go pipe(up, c, 0)
	go pipe(c, up, 1)
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, up)
	l.mu.Unlock()
}

func writeAll(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
		close(l.changed) // wakes the pipes waiting on a hold
		l.changed = make(chan struct{})
	}
}

func (l *link) close() {
	l.ln.Close()
	l.setCut(true)
}

// site is one member of a test cluster with its client.
type site struct {
	name   string
	cfg    Config
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan error
	member *Member
}

// cluster is a test cluster: one member per site, each member's peer
// traffic from each other site through its own cuttable link (routed by a
// PeerRouter at the member's advertised peer URL), clients connected to
// their own site's member directly.
type cluster struct {
	t     *testing.T
	log   *slog.Logger
	sites map[string]*site
	names []string
	links map[[2]string]*link // (from, to)
}

func startCluster(t *testing.T, names ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, log: testLogger(t, slog.LevelInfo), sites: map[string]*site{}, names: names, links: map[[2]string]*link{}}
	c.log.Info("starting test cluster", "sites", names)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	root := t.TempDir()
	ingress := map[string]net.Listener{}
	peers := map[string]string{}
	for _, n := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ingress[n] = ln
		peers[n] = "http://" + ln.Addr().String()
		c.sites[n] = &site{name: n, cfg: Config{
			Name:             n,
			Dir:              filepath.Join(root, n),
			ClientURL:        "http://" + freePort(t),
			PeerURL:          "http://" + freePort(t),
			AdvertisePeerURL: peers[n],
			Peers:            peers,
			LogLevel:         "error",
			Logger:           c.log,
			UnsafeNoFsync:    true,
		}}
	}
	for _, to := range names {
		target := strings.TrimPrefix(c.sites[to].cfg.PeerURL, "http://")
		routes := map[string]string{}
		for _, from := range names {
			if from == to {
				continue
			}
			l := newLink(t, target)
			c.links[[2]string{from, to}] = l
			routes[peers[from]] = l.addr()
		}
		r, err := NewPeerRouter(PeerRouterConfig{Routes: routes, Default: target, Logger: c.log})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = r.Serve(ctx, ingress[to]) }()
	}
	t.Cleanup(c.stopAll)
	for _, n := range names {
		c.start(n)
	}
	for _, n := range names {
		c.waitReady(n)
	}
	for _, n := range names {
		cli, err := NewClient([]string{c.sites[n].cfg.ClientURL}, c.log)
		if err != nil {
			t.Fatal(err)
		}
		c.sites[n].cli = cli
		t.Cleanup(func() { cli.Close() })
	}
	t.Cleanup(c.stopAll) // runs first, while the clients are open
	return c
}

// start runs site n's member (again, on the same data dir).
func (c *cluster) start(n string) {
	c.t.Helper()
	s := c.sites[n]
	m, err := New(s.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.member, s.cancel, s.done = m, cancel, make(chan error, 1)
	go func() { s.done <- m.Run(ctx) }()
}

// stopAll stops every running member: the followers at once, then the
// raft leader, which then has no peer to hand leadership to (when members
// stop all at once, or with the links cut, the leader waits several
// seconds). Each member takes about a second to close its peer listener.
func (c *cluster) stopAll() {
	running := false
	for _, n := range c.names {
		running = running || c.sites[n].cancel != nil
	}
	if !running {
		return
	}
	leader := ""
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, n := range c.names {
		s := c.sites[n]
		if s.cli == nil || s.cancel == nil {
			continue
		}
		if st, err := s.cli.Status(ctx, s.cfg.ClientURL); err == nil && st.Leader == st.Header.MemberId {
			leader = n
		}
	}
	var wg sync.WaitGroup
	for _, n := range c.names {
		if n != leader {
			wg.Go(func() { c.stop(n) })
		}
	}
	wg.Wait()
	if leader != "" {
		c.stop(leader)
	}
	c.log.Info("test cluster stopped")
}

// stop stops site n's member and waits until it has released everything.
func (c *cluster) stop(n string) {
	s := c.sites[n]
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			c.t.Errorf("member %s: %v", n, err)
		}
	case <-time.After(30 * time.Second):
		c.t.Errorf("member %s did not stop", n)
	}
}

func (c *cluster) waitReady(n string) {
	c.t.Helper()
	s := c.sites[n]
	select {
	case <-s.member.Ready():
	case err := <-s.done:
		c.t.Fatalf("member %s: %v", n, err)
	case <-time.After(20 * time.Second):
		c.t.Fatalf("member %s not ready after 20s", n)
	}
}

// holdOneWay holds (or releases) every byte from site from to site to,
// on both links between them (the one from dials and the one to dials),
// like a one-way cut of the lab's WAN: connections stay open.
func (c *cluster) holdOneWay(from, to string, hold bool) {
	c.links[[2]string{from, to}].setHeld(0, hold)
	c.links[[2]string{to, from}].setHeld(1, hold)
}

// isolate cuts (or heals) every link to and from site n.
func (c *cluster) isolate(n string, cut bool) {
	for k, l := range c.links {
		if k[0] == n || k[1] == n {
			l.setCut(cut)
		}
	}
}

func (c *cluster) auth(n string, opts ...Option) *Authority {
	return NewAuthority(c.sites[n].cli, "", c.log.With("site", n), opts...)
}

// memberID returns the etcd member ID of site n, asked of its own member.
func (c *cluster) memberID(ctx context.Context, n string) uint64 {
	c.t.Helper()
	st, err := c.sites[n].cli.Status(ctx, c.sites[n].cfg.ClientURL)
	if err != nil {
		c.t.Fatalf("status of %s: %v", n, err)
	}
	return st.Header.MemberId
}

// leader returns the site whose member is the raft leader.
func (c *cluster) leader(ctx context.Context) string {
	c.t.Helper()
	for _, n := range c.names {
		st, err := c.sites[n].cli.Status(ctx, c.sites[n].cfg.ClientURL)
		if err == nil && st.Leader == st.Header.MemberId {
			return n
		}
	}
	c.t.Fatal("no raft leader")
	return ""
}

// moveLeader makes site n's member the raft leader.
func (c *cluster) moveLeader(ctx context.Context, n string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cur := c.leader(ctx)
		if cur == n {
			return
		}
		_, err := c.sites[cur].cli.MoveLeader(ctx, c.memberID(ctx, n))
		if err != nil {
			c.t.Logf("move leader %s -> %s: %v", cur, n, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.t.Fatalf("could not make %s the raft leader", n)
}

// eventually retries f every 50ms until it returns nil or d has passed.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
}
