package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/data/jetstream"
	"github.com/geostamp/geostamp/internal/data/postgres"
	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/testlog"
	"github.com/geostamp/geostamp/internal/wan"
	"github.com/geostamp/geostamp/internal/witness"
)

// Asymmetric faults against the real pieces, in one process: an etcd
// member per site (two regions and the witness site "wi", which leads the
// raft group as in the lab), each member's raft traffic through the WAN
// link from the sender's site (package wan, whose cuts hold bytes like a
// partition with TCP retransmits), a real engine per region whose
// replication crosses the WAN too, and a controller per region. Sync
// replication, automatic failover.

const wi = "witness"

const (
	asymLease = 2 * time.Second // etcd's minimum with the default election timeout
	asymGrace = time.Second
)

// group is one failover group in the test topology.
type group struct {
	t      *testing.T
	net    *wan.Net
	cli    map[string]*clientv3.Client // per site, to its own member
	reps   map[string]data.Replica
	ctls   map[string]*Controller
	margin time.Duration
	log    *slog.Logger
	root   string // data directories

	crash map[string]data.Crasher
	stop  map[string]func() // stops a region's controller

	mu     sync.Mutex
	events []Event
	onStep func(Event) // called with every event, if set
}

// kill stops a region's controller without releasing anything and crashes
// its engine, like a dead region process.
func (g *group) kill(r string) {
	g.stop[r]()
	if err := g.crash[r].Crash(); err != nil {
		g.t.Errorf("crash %s: %v", r, err)
	}
}

func (g *group) eventsSince(t time.Time) []Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Event
	for _, e := range g.events {
		if !e.Time.Before(t) {
			out = append(out, e)
		}
	}
	return out
}

func newGroup(t *testing.T, engine string) *group {
	t.Helper()
	if engine == "postgres" {
		if _, err := postgres.FindBinDir(""); err != nil {
			testenv.Skip(t, "POSTGRES", "PostgreSQL not installed: %v", err)
		}
	}
	root := t.TempDir() // first, so that it is removed after everything stopped
	log := testlog.New(t, slog.LevelWarn)
	g := &group{t: t, net: wan.New(log), cli: map[string]*clientv3.Client{}, reps: map[string]data.Replica{}, ctls: map[string]*Controller{},
		crash: map[string]data.Crasher{}, stop: map[string]func(){}, log: log, root: root}
	t.Cleanup(func() { g.net.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	g.startWitness(ctx, &wg)

	regions := []string{we, ne}
	switch engine {
	case "jetstream":
		var leaf string
		for _, r := range regions {
			cfg := jetstream.Config{Region: r, Dir: filepath.Join(root, "js-"+r), Host: "127.0.0.1", Logger: log.With("region", r),
				Services: []jetstream.Service{{Name: "orders", Kind: data.KindPrimarySecondary, Primary: we, Replication: jetstream.ReplicationSync, Regions: regions}}}
			if leaf != "" {
				addr, err := g.net.Proxy("nats-leaf "+r+"->"+we, r, we, "127.0.0.1:0", leaf)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Remotes = []string{addr}
			}
			e, err := jetstream.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { e.Run(ctx) })
			waitReady(t, e.Ready())
			leaf = e.LeafAddr()
			if g.reps[r], err = e.Replica("orders"); err != nil {
				t.Fatal(err)
			}
			g.crash[r] = e
		}
	case "postgres":
		ports := map[string]string{we: freeAddr(t), ne: freeAddr(t)}
		var engines []*postgres.Engine
		for _, r := range regions {
			peers := map[string]string{}
			for _, to := range regions {
				if to != r {
					addr, err := g.net.Proxy("postgres "+r+"->"+to, r, to, "127.0.0.1:0", ports[to])
					if err != nil {
						t.Fatal(err)
					}
					peers[to] = addr
				}
			}
			_, port, _ := net.SplitHostPort(ports[r])
			var p int
			fmt.Sscan(port, &p)
			e, err := postgres.New(postgres.Config{Region: r, Dir: filepath.Join(root, "pg-"+r), Host: "127.0.0.1", Port: p, Peers: peers,
				Services: []postgres.Service{{Name: "orders", Replication: postgres.ReplicationSync}}, Logger: log.With("region", r)})
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { e.Run(ctx) })
			engines = append(engines, e)
		}
		for i, r := range regions {
			waitReady(t, engines[i].Ready())
			var err error
			if g.reps[r], err = engines[i].Replica("orders"); err != nil {
				t.Fatal(err)
			}
			g.crash[r] = engines[i]
		}
	}
	for _, r := range regions {
		auth := witness.NewAuthority(g.cli[r], "", log)
		tm, err := auth.Timing(asymLease)
		if err != nil {
			t.Fatal(err)
		}
		g.margin = tm.Margin
		c, err := New(Config{Group: "orders", Region: r, Regions: regions, Initial: we, Policy: PolicyAutomatic, Grace: asymGrace, LeaseTTL: asymLease,
			Replica: g.reps[r], Authority: auth, Client: g.cli[r], Logger: log.With("region", r),
			OnEvent: func(e Event) {
				g.mu.Lock()
				g.events = append(g.events, e)
				f := g.onStep
				g.mu.Unlock()
				if f != nil {
					f(e)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		g.ctls[r] = c
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); c.Run(cctx) }()
		var once sync.Once
		g.stop[r] = func() { once.Do(func() { ccancel(); <-done }) }
		t.Cleanup(g.stop[r])
	}
	g.waitStable(we, 90*time.Second)
	return g
}

func waitReady(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatal("engine not ready after 60s")
	}
}

// startWitness runs one etcd member per site, raft traffic through the
// WAN as the lab wires it, and moves the raft leadership to the witness.
func (g *group) startWitness(ctx context.Context, wg *sync.WaitGroup) {
	t := g.t
	sites := []string{we, ne, wi}
	type spec struct {
		client, peer string
		router       net.Listener
		routes       map[string]string
	}
	specs := map[string]*spec{}
	peers := map[string]string{}
	for _, s := range sites {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		specs[s] = &spec{client: "http://" + freeAddr(t), peer: "http://" + freeAddr(t), router: ln, routes: map[string]string{}}
		peers[s] = "http://" + ln.Addr().String()
	}
	for _, to := range sites {
		for _, from := range sites {
			if from == to {
				continue
			}
			addr, err := g.net.Proxy("etcd "+from+"->"+to, from, to, "127.0.0.1:0", strings.TrimPrefix(specs[to].peer, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			specs[to].routes[peers[from]] = addr
		}
	}
	dir := filepath.Join(g.root, "etcd")
	members := map[string]*witness.Member{}
	for _, s := range sites {
		sp := specs[s]
		m, err := witness.New(witness.Config{Name: s, Dir: filepath.Join(dir, s), ClientURL: sp.client, PeerURL: sp.peer, AdvertisePeerURL: peers[s],
			Peers: peers, LogLevel: "error", Logger: g.log, UnsafeNoFsync: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err := witness.NewPeerRouter(witness.PeerRouterConfig{Routes: sp.routes, Default: strings.TrimPrefix(sp.peer, "http://"), Logger: g.log})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { r.Serve(ctx, sp.router) })
		wg.Go(func() { m.Run(ctx) })
		members[s] = m
	}
	for _, s := range sites {
		select {
		case <-members[s].Ready():
		case <-time.After(30 * time.Second):
			t.Fatalf("etcd member %s not ready", s)
		}
		cli, err := witness.NewClient([]string{specs[s].client}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		g.cli[s] = cli
	}
	g.leadFromWitness(specs[wi].client)
}

// leadFromWitness moves the raft leadership to the witness site's member.
func (g *group) leadFromWitness(self string) {
	g.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := g.cli[wi].Status(ctx, self)
		if err == nil && st.Leader == st.Header.MemberId {
			cancel()
			return
		}
		if err == nil && st.Leader != 0 {
			for _, s := range []string{we, ne} {
				if ls, err := g.cli[s].Status(ctx, g.cli[s].Endpoints()[0]); err == nil && ls.Header.MemberId == st.Leader {
					g.cli[s].MoveLeader(ctx, st.Header.MemberId)
				}
			}
		}
		cancel()
	}
	g.t.Fatal("raft leadership not at the witness site")
}

// roles returns each region's controller role and epoch.
func (g *group) roles() string {
	var b strings.Builder
	for _, r := range []string{we, ne} {
		s := g.ctls[r].State()
		fmt.Fprintf(&b, "%s=%s@%d ", r, s.Role, s.Epoch)
	}
	return b.String()
}

// waitStable waits until primary is the primary and the other region
// follows it at the same epoch.
func (g *group) waitStable(primary string, within time.Duration) uint64 {
	g.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p, s := g.ctls[primary].State(), g.ctls[other(primary)].State()
		if p.Role == data.RolePrimary && s.Role == data.RoleSecondary && s.Primary == primary && s.Epoch == p.Epoch {
			return p.Epoch
		}
	}
	g.t.Fatalf("%s not the primary with %s following within %v: %s", primary, other(primary), within, g.roles())
	return 0
}

func other(r string) string {
	if r == we {
		return ne
	}
	return we
}

// ack is one acknowledged write.
type ack struct {
	key    string
	via    string    // region whose Put acknowledged
	by     string    // region whose primary stored it
	sent   time.Time // before Put was called
	acked  time.Time
	failed bool
}

// writers put a write every 10 ms through each region, recording every
// outcome, until stop is closed.
func (g *group) writers(stop <-chan struct{}) func() []ack {
	var mu sync.Mutex
	var out []ack
	var wg sync.WaitGroup
	for _, r := range []string{we, ne} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				key := fmt.Sprintf("%s-%d-%d", r, time.Now().UnixNano(), i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				sent := time.Now()
				rec, err := g.reps[r].Put(ctx, key, []byte("x"))
				cancel()
				a := ack{key: key, via: r, by: rec.Region, sent: sent, acked: time.Now(), failed: err != nil}
				mu.Lock()
				out = append(out, a)
				mu.Unlock()
			}
		})
	}
	return func() []ack { wg.Wait(); mu.Lock(); defer mu.Unlock(); return out }
}

// checkNoLoss reads every acknowledged write back from primary's replica.
func (g *group) checkNoLoss(primary string, acks []ack) {
	g.t.Helper()
	lost, n := 0, 0
	for _, a := range acks {
		if a.failed {
			continue
		}
		n++
		var err error
		for try := 0; try < 50; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = g.reps[primary].Get(ctx, a.key)
			cancel()
			if err == nil || errors.Is(err, data.ErrNotFound) && try > 10 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			lost++
			if lost <= 3 {
				g.t.Errorf("acknowledged write %s (via %s, stored by %s at %s) missing at %s: %v", a.key, a.via, a.by, a.acked.Format(time.RFC3339Nano), primary, err)
			}
		}
	}
	if lost > 0 {
		g.t.Errorf("%d of %d acknowledged writes lost", lost, n)
	}
	g.t.Logf("%d acknowledged writes, all held by %s", n, primary)
}

// fault is one asymmetric fault applied for a while and then healed.
type fault struct {
	name     string
	failover bool // the secondary must take over
	apply    func(g *group, primary string) error
	heal     func(g *group, primary string) error
}

func oneWay(from, to func(primary string) string) (func(*group, string) error, func(*group, string) error) {
	cut := func(g *group, p string) error { return g.net.Link(from(p), to(p)).Cut(from(p), to(p)) }
	heal := func(g *group, p string) error { return g.net.Link(from(p), to(p)).Heal(from(p), to(p)) }
	return cut, heal
}

func primaryOf(p string) string   { return p }
func secondaryOf(p string) string { return other(p) }
func witnessOf(string) string     { return wi }

func asymmetricFaults() []fault {
	var fs []fault
	add := func(name string, failover bool, from, to func(string) string) {
		c, h := oneWay(from, to)
		fs = append(fs, fault{name: name, failover: failover, apply: c, heal: h})
	}
	add("primary to witness", true, primaryOf, witnessOf)
	add("witness to primary", true, witnessOf, primaryOf)
	add("primary to secondary", false, primaryOf, secondaryOf)
	add("secondary to primary", false, secondaryOf, primaryOf)
	both := func(name string, a, b fault) {
		fs = append(fs, fault{name: name, failover: true,
			apply: func(g *group, p string) error { return errors.Join(a.apply(g, p), b.apply(g, p)) },
			heal:  func(g *group, p string) error { return errors.Join(a.heal(g, p), b.heal(g, p)) }})
	}
	both("primary to witness and to secondary", fs[0], fs[2])
	both("witness and secondary to primary", fs[1], fs[3])
	spike := func(d time.Duration) func(*group, string) error {
		return func(g *group, p string) error {
			l := g.net.Link(p, other(p))
			return errors.Join(l.SetLatency(p, other(p), d, 0), l.SetLatency(other(p), p, d, 0))
		}
	}
	fs = append(fs, fault{name: "300ms latency spike between the regions", apply: spike(300 * time.Millisecond), heal: spike(0)})
	return fs
}

func TestAsymmetricFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd members and data engines; skipped with -short")
	}
	for _, engine := range []string{"jetstream", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			g := newGroup(t, engine)
			primary := we
			for _, f := range asymmetricFaults() {
				ok := t.Run(f.name, func(t *testing.T) {
					g.t = t
					primary = g.runFault(f, primary)
				})
				if !ok {
					return // the group's state is unknown
				}
			}
		})
	}
}

// runFault applies f for three leases with writes through both regions,
// heals it and checks the outcome; it returns the primary afterwards.
func (g *group) runFault(f fault, primary string) string {
	t := g.t
	sec := other(primary)
	epoch := g.waitStable(primary, 60*time.Second)
	stop := make(chan struct{})
	collect := g.writers(stop)
	time.Sleep(300 * time.Millisecond)

	cutAt := time.Now()
	if err := f.apply(g, primary); err != nil {
		t.Fatalf("inject %s: %v", f.name, err)
	}
	var promotedAt time.Time
	twoPrimaries := false
	for time.Since(cutAt) < 3*asymLease {
		p, s := g.ctls[primary].State(), g.ctls[sec].State()
		if p.Role == data.RolePrimary && s.Role == data.RolePrimary {
			twoPrimaries = true
		}
		if promotedAt.IsZero() && s.Role == data.RolePrimary && s.Epoch > epoch {
			promotedAt = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.heal(g, primary); err != nil {
		t.Fatalf("heal %s: %v", f.name, err)
	}
	close(stop)
	acks := collect()

	// The controllers' states are sampled: two primaries at once by their
	// own account. (The replicas' writes are checked below.)
	var steps []string
	for _, e := range g.eventsSince(cutAt) {
		steps = append(steps, fmt.Sprintf("%s %s@+%v", e.Region, e.Step, e.Time.Sub(cutAt).Round(time.Millisecond)))
	}
	t.Logf("steps: %s", strings.Join(steps, ", "))
	if twoPrimaries {
		t.Errorf("both regions primary at once: %s", g.roles())
	}
	next := primary
	// etcd revokes expired leases in a scan every 500 ms (not
	// configurable), which the secondary waits for before its grace starts.
	const etcdExpiryScan = 500 * time.Millisecond
	bound := asymLease + asymGrace + g.margin + etcdExpiryScan
	if f.failover {
		if promotedAt.IsZero() {
			t.Fatalf("%s not promoted within %v of the cut: %s", sec, 3*asymLease, g.roles())
		}
		dec := lastDecide(g.eventsSince(cutAt), sec)
		took, decided := promotedAt.Sub(cutAt), dec.Sub(cutAt)
		t.Logf("%s decided %v and was promoted %v after the cut (lease + grace + margin = %v; bound with etcd's expiry scan %v)", sec, decided.Round(time.Millisecond), took.Round(time.Millisecond), bound-etcdExpiryScan, bound)
		// The configuration bounds the decision; the promotion then takes
		// the engine's time (pg_promote: up to ~0.7 s).
		if dec.IsZero() || decided > bound {
			t.Errorf("%s decided to promote %v after the cut, later than lease + grace + margin + etcd's expiry scan = %v", sec, decided.Round(time.Millisecond), bound)
		}
		next = sec
	} else if !promotedAt.IsZero() {
		t.Errorf("%s promoted at cut+%v although %s reached the witness", sec, promotedAt.Sub(cutAt), primary)
	}

	// The old primary acknowledges nothing it was asked after its
	// deadline (at the latest cut + lease - margin: its last confirmed
	// renewal was sent before the cut); writes from the other region
	// reach a fenced stream or instance once the lease ended.
	deadline := cutAt.Add(asymLease - g.margin)
	var lastLocal, lastRemote, firstRefused time.Time
	for _, a := range acks {
		if a.failed {
			if a.via == primary && firstRefused.IsZero() && !a.sent.Before(deadline) {
				firstRefused = a.acked
			}
			continue
		}
		if a.by != primary {
			continue
		}
		if a.via == primary && a.sent.After(lastLocal) {
			lastLocal = a.sent
		}
		if a.via != primary && a.sent.After(lastRemote) {
			lastRemote = a.sent
		}
		if f.failover && a.via == primary && !a.sent.Before(deadline) {
			t.Errorf("old primary %s acknowledged a write sent at cut+%v, after its deadline cut+%v", primary, a.sent.Sub(cutAt), deadline.Sub(cutAt))
		}
		if f.failover && a.via != primary && !a.sent.Before(cutAt.Add(asymLease)) {
			t.Errorf("old primary %s acknowledged a write from %s sent at cut+%v, after its lease could expire (cut+%v)", primary, a.via, a.sent.Sub(cutAt), asymLease)
		}
	}
	if f.failover {
		t.Logf("old primary: last local write acknowledged was sent at cut+%v, last remote at cut+%v; deadline cut+%v; first local refusal after it at deadline+%v",
			lastLocal.Sub(cutAt).Round(time.Millisecond), lastRemote.Sub(cutAt).Round(time.Millisecond), deadline.Sub(cutAt), firstRefused.Sub(deadline).Round(time.Millisecond))
	}

	g.waitStable(next, 60*time.Second)
	g.checkNoLoss(next, acks)
	return next
}

// TestPrimaryKilledDuringPlannedFailover: the primary dies during a planned
// failover, before it fenced (the request finds it dead) or right after it
// fenced and published its final position, as the target starts catching
// up to it (which it may never reach). The target takes over once the dead primary's lease ended,
// without waiting for the request's deadline; no acknowledged write is lost.
func TestPrimaryKilledDuringPlannedFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd members and data engines; skipped with -short")
	}
	for _, engine := range []string{"jetstream", "postgres"} {
		for _, when := range []string{"before its fence", "after its fence"} {
			t.Run(engine+"/"+when, func(t *testing.T) {
				g := newGroup(t, engine)
				stop := make(chan struct{})
				collect := g.writers(stop)
				time.Sleep(300 * time.Millisecond)
				var killedAt time.Time
				killed := make(chan struct{})
				if when == "after its fence" {
					var once sync.Once
					g.mu.Lock()
					g.onStep = func(e Event) {
						// The target saw the fenced primary's final position.
						if e.Region == ne && e.Step == StepDecide && e.Mode == ModePlanned {
							once.Do(func() {
								go func() { killedAt = time.Now(); g.kill(we); close(killed) }()
							})
						}
					}
					g.mu.Unlock()
				} else {
					killedAt = time.Now()
					g.kill(we)
					close(killed)
				}
				const timeout = 20 * time.Second
				askErr := make(chan error, 1)
				go func() {
					_, err := Ask(context.Background(), g.cli[ne], witness.NewAuthority(g.cli[ne], "", nil), "", "orders", ne, ModePlanned, timeout)
					askErr <- err
				}()
				select {
				case <-killed:
				case <-time.After(10 * time.Second):
					t.Fatal("the primary never fenced for the planned failover")
				}
				var promotedAt time.Time
				for time.Since(killedAt) < timeout && promotedAt.IsZero() {
					if s := g.ctls[ne].State(); s.Role == data.RolePrimary {
						promotedAt = time.Now()
					}
					time.Sleep(5 * time.Millisecond)
				}
				close(stop)
				acks := collect()
				var steps []string
				for _, e := range g.eventsSince(killedAt.Add(-time.Second)) {
					steps = append(steps, fmt.Sprintf("%s %s@%+v", e.Region, e.Step, e.Time.Sub(killedAt).Round(time.Millisecond)))
				}
				t.Logf("steps (from the kill): %s", strings.Join(steps, ", "))
				if promotedAt.IsZero() {
					t.Fatalf("%s not promoted within %v of the kill: %s", ne, timeout, g.roles())
				}
				const etcdExpiryScan = 500 * time.Millisecond
				bound := asymLease + asymGrace + g.margin + etcdExpiryScan
				// The target may have decided before the kill (after the fence).
				dec := lastDecide(g.eventsSince(killedAt.Add(-time.Second)), ne)
				took, decided := promotedAt.Sub(killedAt), dec.Sub(killedAt)
				t.Logf("%s decided %v and was promoted %v after the kill (bound %v); ask: %v", ne, decided.Round(time.Millisecond), took.Round(time.Millisecond), bound, <-askErr)
				if dec.IsZero() || decided > bound {
					t.Errorf("%s decided to promote %v after the kill, later than lease + grace + margin + etcd's expiry scan = %v", ne, decided, bound)
				}
				g.checkNoLoss(ne, acks)
			})
		}
	}
}

// lastDecide is the time of region's last decide event (zero if none):
// the bounds from the configuration end there, the engine's promotion
// follows.
func lastDecide(evs []Event, region string) time.Time {
	var at time.Time
	for _, e := range evs {
		if e.Region == region && e.Step == StepDecide {
			at = e.Time
		}
	}
	return at
}
