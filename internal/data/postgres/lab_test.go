package postgres

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/wan"

	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/testlog"
)

var pgDebug = flag.Bool("pgdebug", false, "log the engines' debug output (PostgreSQL's log, tool runs)")

// requirePostgres skips the test when PostgreSQL is not installed, unless
// GEOSTAMP_REQUIRE_POSTGRES=1 (CI), which makes it fail instead.
func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := FindBinDir(""); err != nil {
		testenv.Skip(t, "POSTGRES", "PostgreSQL not installed: %v", err)
	}
}

// testLogger logs to t; debug output only with -pgdebug.
func testLogger(t *testing.T) *slog.Logger {
	if *pgDebug {
		return testlog.New(t, slog.LevelDebug)
	}
	return testlog.New(t, slog.LevelInfo)
}

// node is a running engine whose Run goroutine the test controls.
type node struct {
	*Engine
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with err set
	err    error
}

// stop ends Run and waits for it (bounded).
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	select {
	case <-n.done:
		if n.err != nil {
			t.Errorf("%s: Run: %v", n.cfg.Region, n.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("%s: Run did not return after cancel", n.cfg.Region)
	}
}

// startNode runs an engine for cfg; ready waits for it.
func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.noSync = true // fsync off and --no-sync: tests do not survive OS crashes, only process kills
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{Engine: e, cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		n.err = e.Run(ctx)
		close(n.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(40 * time.Second):
			t.Errorf("%s: Run did not return after cancel", cfg.Region)
		}
	})
	return n
}

func (n *node) ready(t *testing.T) {
	t.Helper()
	select {
	case <-n.Ready():
	case <-n.done:
		t.Fatalf("%s: Run ended before ready: %v", n.cfg.Region, n.err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: not ready after 60s", n.cfg.Region)
	}
}

// lab is a set of regions whose PostgreSQL instances reach each other
// only through WAN links (toxiproxy proxies of package wan).
type lab struct {
	t       *testing.T
	net     *wan.Net
	regions []string
	nodes   map[string]*node
}

// newLab starts one engine per region (in parallel) and waits until all
// are ready. Ports are picked up front, since each region's peers must
// know them.
func newLab(t *testing.T, services []Service, regions ...string) *lab {
	t.Helper()
	requirePostgres(t)
	log := testLogger(t)
	l := &lab{t: t, net: wan.New(log), regions: regions, nodes: map[string]*node{}}
	t.Cleanup(func() { _ = l.net.Close() })
	ports := map[string]int{}
	for _, r := range regions {
		ports[r] = testPort(t)
	}
	for _, r := range regions {
		peers := map[string]string{}
		for _, to := range regions {
			if to == r {
				continue
			}
			addr, err := l.net.Proxy("pg-"+r+"-"+to, r, to, "127.0.0.1:0", fmt.Sprintf("127.0.0.1:%d", ports[to]))
			if err != nil {
				t.Fatal(err)
			}
			peers[to] = addr
		}
		l.nodes[r] = startNode(t, Config{
			Region:   r,
			Dir:      t.TempDir(),
			Port:     ports[r],
			Peers:    peers,
			Services: services,
			Logger:   log.With("region", r),
		})
	}
	for _, r := range regions {
		l.nodes[r].ready(t)
	}
	return l
}

// restart stops region's engine and starts a new one on the same
// directory and port.
func (l *lab) restart(region string) *node {
	l.t.Helper()
	old := l.nodes[region]
	old.stop(l.t)
	n := startNode(l.t, old.cfg)
	n.ready(l.t)
	l.nodes[region] = n
	return n
}

func (l *lab) replica(region, service string) data.Replica {
	l.t.Helper()
	r, err := l.nodes[region].Replica(service)
	if err != nil {
		l.t.Fatal(err)
	}
	return r
}

func (l *lab) link(a, b string) *wan.Link {
	l.t.Helper()
	lk, ok := l.net.Find(a, b)
	if !ok {
		l.t.Fatalf("no link %s<->%s", a, b)
	}
	return lk
}

// ctxT is a context bounded by d and by the test.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20 ms until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// positionIs waits until r's position is want.
func positionIs(t *testing.T, r data.Replica, want uint64, d time.Duration) {
	t.Helper()
	eventually(t, d, fmt.Sprintf("position %d", want), func() error {
		p, err := r.Position(ctxT(t, time.Second))
		if err != nil {
			return err
		}
		if p != want {
			return fmt.Errorf("position %d", p)
		}
		return nil
	})
}

// put writes key=value through r and fails the test on error.
func put(t *testing.T, r data.Replica, key, value string) data.Record {
	t.Helper()
	rec, err := r.Put(ctxT(t, 5*time.Second), key, []byte(value))
	if err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
	return rec
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// testPort picks a free port below the ephemeral range, so that no
// outgoing connection takes it between the choice and PostgreSQL's bind
// (peers must know it before initdb) or while a region restarts.
func testPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}
