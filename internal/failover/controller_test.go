package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/witness"
)

// The state machine is tested here against a one-member etcd and an
// in-memory replicated log (memNet) that follows the data.Replica contract;
// the real engines are tested against it in their packages and end to end
// in e2e/.

const (
	we = "westeurope"
	ne = "northeurope"
)

// memNet is a replicated log shared by the regions of one service.
type memNet struct {
	mu   sync.Mutex
	logs map[string][]string // region -> keys in position order
	reps map[string]*memReplica
	cut  map[string]bool // region cut off from replication and writes
	// stall: region receives no replication (its link is slow)
	stall map[string]bool
	// stuck, when set, blocks every Position call until it is closed: a
	// controller stuck in a step.
	stuck chan struct{}
}

type memReplica struct {
	n         *memNet
	region    string
	role      data.Role
	epoch     uint64
	primary   string
	down      bool
	rebuildTo uint64     // data.Rebuilder
	lease     data.Lease // checked by Put, as the engines do
}

func (r *memReplica) RebuildTarget() uint64 {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	return r.rebuildTo
}

func newMemNet(regions ...string) *memNet {
	n := &memNet{logs: map[string][]string{}, reps: map[string]*memReplica{}, cut: map[string]bool{}, stall: map[string]bool{}}
	for _, r := range regions {
		n.reps[r] = &memReplica{n: n, region: r}
	}
	return n
}

// replicate copies the primary's log to every connected follower.
func (n *memNet) replicate(ctx context.Context) {
	for ctx.Err() == nil {
		n.mu.Lock()
		for _, r := range n.reps {
			p := n.reps[r.primary]
			// A fenced primary still serves its history, as the engines do.
			if r.role != data.RoleSecondary || p == nil || p == r || p.role == data.RoleSecondary || p.down || n.cut[r.region] || n.cut[p.region] || n.stall[r.region] {
				continue
			}
			src, dst := n.logs[p.region], n.logs[r.region]
			if len(dst) < len(src) && slices.Equal(src[:len(dst)], dst) {
				n.logs[r.region] = slices.Clone(src)
			}
		}
		n.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *memReplica) Put(ctx context.Context, key string, value []byte) (data.Record, error) {
	n := r.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var target string
	var epoch uint64
	switch r.role {
	case data.RolePrimary:
		target, epoch = r.region, r.epoch
	case data.RoleSecondary:
		target, epoch = r.primary, r.epoch
	case data.RoleFenced:
		return data.Record{}, data.ErrFenced
	default:
		return data.Record{}, data.ErrUnavailable
	}
	p := n.reps[target]
	if p.down || (target != r.region && (n.cut[target] || n.cut[r.region])) {
		return data.Record{}, data.ErrUnavailable
	}
	if p.role != data.RolePrimary || p.epoch != epoch || p.lease != nil && !p.lease.Valid() {
		return data.Record{}, data.ErrFenced
	}
	n.logs[target] = append(n.logs[target], key)
	return data.Record{Key: key, Seq: uint64(len(n.logs[target]))}, nil
}

func (r *memReplica) Get(ctx context.Context, key string) (data.Record, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	if i := slices.Index(r.n.logs[r.region], key); i >= 0 {
		return data.Record{Key: key, Seq: uint64(i + 1)}, nil
	}
	return data.Record{}, data.ErrNotFound
}

func (r *memReplica) List(ctx context.Context, after uint64, limit int) ([]data.Record, error) {
	return nil, nil
}

func (r *memReplica) Status(ctx context.Context) data.Status {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	return data.Status{Region: r.region, Role: r.role, Epoch: r.epoch, Primary: r.primary, LastSeq: uint64(len(r.n.logs[r.region]))}
}

func (r *memReplica) Position(ctx context.Context) (uint64, error) {
	r.n.mu.Lock()
	stuck := r.n.stuck
	r.n.mu.Unlock()
	if stuck != nil {
		<-stuck
	}
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	if r.down {
		return 0, data.ErrUnavailable
	}
	return uint64(len(r.n.logs[r.region])), nil
}

func (r *memReplica) Fence(ctx context.Context) (uint64, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.role = data.RoleFenced
	return uint64(len(r.n.logs[r.region])), nil
}

func (r *memReplica) Promote(ctx context.Context, epoch uint64, lease data.Lease) error {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	r.role, r.epoch, r.primary, r.lease = data.RolePrimary, epoch, r.region, lease
	return nil
}

func (r *memReplica) Follow(ctx context.Context, primary string, epoch uint64) (uint64, error) {
	n := r.n
	n.mu.Lock()
	defer n.mu.Unlock()
	r.primary, r.epoch = primary, epoch
	if n.cut[r.region] || n.cut[primary] || n.reps[primary].down {
		r.role = data.RoleFenced
		return 0, data.ErrUnavailable
	}
	own, src := n.logs[r.region], n.logs[primary]
	common := 0
	for common < len(own) && common < len(src) && own[common] == src[common] {
		common++
	}
	n.logs[r.region] = slices.Clone(own[:common])
	r.role = data.RoleSecondary
	return uint64(len(own) - common), nil
}

// lab is one etcd member, one controller per region and the memNet.
type lab struct {
	t       *testing.T
	n       *memNet
	cli     *clientv3.Client
	auth    *witness.Authority
	cancels map[string]context.CancelFunc
	ctls    map[string]*Controller
	cfg     Config
	// stopWitness stops the etcd member: every renewal fails from then on.
	stopWitness func()
}

func newLab(t *testing.T, cfg Config, regions ...string) *lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := witness.New(witness.Config{Name: "w", Dir: filepath.Join(t.TempDir(), "etcd"), ClientURL: "http://" + freeAddr(t), PeerURL: "http://" + freeAddr(t), LogLevel: "error", UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); m.Run(mctx) }()
	t.Cleanup(func() { cancel(); <-mdone })
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("etcd member not ready")
	}
	cli, err := witness.NewClient([]string{m.ClientURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	l := &lab{t: t, n: newMemNet(regions...), cli: cli, auth: witness.NewAuthority(cli, "", nil), cancels: map[string]context.CancelFunc{}, ctls: map[string]*Controller{}, cfg: cfg,
		stopWitness: func() { mcancel(); <-mdone }}
	go l.n.replicate(ctx)
	for _, r := range regions {
		l.start(r)
	}
	return l
}

func (l *lab) start(region string) {
	l.t.Helper()
	cfg := l.cfg
	cfg.Region, cfg.Regions, cfg.Replica, cfg.Authority, cfg.Client = region, sortedKeys(l.n.reps), l.n.reps[region], l.auth, l.cli
	slices.Reverse(cfg.Regions) // westeurope first
	cfg.Logger = slog.New(slog.DiscardHandler)
	c, err := New(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	l.cancels[region] = func() { cancel(); <-done }
	l.ctls[region] = c
	l.t.Cleanup(l.cancels[region])
}

// kill stops a region's controller without releasing anything and makes
// its replica unreachable, like a dead process.
func (l *lab) kill(region string) {
	l.cancels[region]()
	l.n.mu.Lock()
	l.n.reps[region].down = true
	l.n.mu.Unlock()
}

func (l *lab) roles() map[string]data.Role {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	out := map[string]data.Role{}
	for name, r := range l.n.reps {
		out[name] = r.role
	}
	return out
}

func (l *lab) waitRole(region string, role data.Role, within time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if l.roles()[region] == role {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.t.Fatalf("%s is not %s after %s: roles %v", region, role, within, l.roles())
	return 0
}

func (l *lab) write(writer, key string) error {
	_, err := l.n.reps[writer].Put(context.Background(), key, nil)
	return err
}

func (l *lab) log(region string) []string {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return slices.Clone(l.n.logs[region])
}

func TestBootstrapPlannedAndBack(t *testing.T) {
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 5*time.Second)

	// Writers from both regions, all the time; a ledger of acknowledged keys.
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for _, w := range []string{we, ne} {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("%s-%d", w, i)
				if l.write(w, key) == nil {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	res, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModePlanned, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.waitRole(we, data.RoleSecondary, 5*time.Second)
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()
	if res.From != we || res.To != ne || res.Epoch != 2 {
		t.Errorf("result %+v, want westeurope -> northeurope at epoch 2", res)
	}
	for _, step := range []string{StepFence, StepDecide, StepPromote, StepRejoin} {
		if !slices.ContainsFunc(res.Steps, func(e Event) bool { return e.Step == step }) {
			t.Errorf("no %s step in %+v", step, res.Steps)
		}
	}
	for _, e := range res.Steps {
		if e.Step == StepRejoin && e.Discarded != 0 {
			t.Errorf("planned failover discarded %d writes", e.Discarded)
		}
	}
	final := l.log(ne)
	for _, k := range acked {
		if !slices.Contains(final, k) {
			t.Fatalf("acknowledged write %s lost (%d acknowledged, %d on the new primary)", k, len(acked), len(final))
		}
	}
	t.Logf("planned failover: promoted after %.3fs, %d acknowledged writes, none lost", res.Seconds, len(acked))

	// Failback is a planned failover too.
	if _, err := Ask(t.Context(), l.cli, l.auth, "", "orders", we, ModePlanned, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	l.waitRole(ne, data.RoleSecondary, 5*time.Second)
	if _, err := Ask(t.Context(), l.cli, l.auth, "", "orders", we, ModePlanned, time.Second); err == nil || !strings.Contains(err.Error(), "already the primary") {
		t.Errorf("failover to the primary: err %v, want a refusal", err)
	}
}

func TestForcedLosesExactlyTheUnreplicatedTail(t *testing.T) {
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	for i := range 20 {
		if err := l.write(we, "a"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(l.log(ne)) == 20 })
	// northeurope stops receiving; westeurope acknowledges 7 more.
	l.n.mu.Lock()
	l.n.stall[ne] = true
	l.n.mu.Unlock()
	for i := range 7 {
		if err := l.write(we, "b"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The gap is counted from westeurope's last position report: wait for
	// one that holds the 7 writes (a sleep is not enough under -race).
	waitFor(t, func() bool {
		co, err := keysFor("", "orders").read(t.Context(), l.cli)
		return err == nil && co.reports[we].Position == 27
	})
	res, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModeForced, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var discarded uint64
	waitFor(t, func() bool {
		evs, _ := Events(t.Context(), l.cli, "", "orders", time.Time{})
		for _, e := range evs {
			if e.Step == StepRejoin && e.Region == we {
				discarded = e.Discarded
				return true
			}
		}
		return false
	})
	l.n.mu.Lock()
	l.n.stall[ne] = false
	l.n.mu.Unlock()
	gap := uint64(0)
	for _, e := range res.Steps {
		if e.Step == StepPromote {
			gap = e.Gap
		}
	}
	if gap != 7 {
		t.Errorf("promote event gap %d, want 7", gap)
	}
	lost := 0
	final := l.log(ne)
	for i := range 7 {
		if !slices.Contains(final, "b"+strconv.Itoa(i)) {
			lost++
		}
	}
	if lost != 7 || discarded != 7 {
		t.Errorf("forced failover: %d acknowledged writes missing, old primary discarded %d; want 7 and 7", lost, discarded)
	}
	t.Logf("forced failover: promoted after %.3fs, lost %d, steps %d", res.Seconds, lost, len(res.Steps))
}

func TestAutomaticAfterGraceOnlyWithPolicy(t *testing.T) {
	for _, policy := range []string{PolicyAutomatic, PolicyManual} {
		t.Run(policy, func(t *testing.T) {
			ttl, grace := 2*time.Second, 500*time.Millisecond
			l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: ttl, Policy: policy, Grace: grace}, we, ne)
			l.waitRole(we, data.RolePrimary, 10*time.Second)
			l.waitRole(ne, data.RoleSecondary, 10*time.Second)
			time.Sleep(300 * time.Millisecond)
			killed := time.Now()
			l.kill(we)
			if policy == PolicyManual {
				// Lease end (ttl rounded to whole seconds, plus etcd's expiry
				// scan of up to 0.5 s) + grace + a second: still no primary.
				time.Sleep(ttl + grace + 1500*time.Millisecond)
				if r := l.roles()[ne]; r == data.RolePrimary {
					t.Fatal("manual policy promoted northeurope on its own")
				}
				return
			}
			took := l.waitRole(ne, data.RolePrimary, ttl+grace+5*time.Second)
			// The lease ends ttl after its last renewal, which came up to one
			// renewal period ((ttl − margin)/3, margin ttl/5) before the kill.
			renew := (ttl - ttl/5) / 3
			if floor := ttl - renew + grace; took < floor {
				t.Errorf("promoted %s after the kill, before lease %s − renewal period %s + grace %s could have passed", took, ttl, renew, grace)
			}
			evs, _ := Events(t.Context(), l.cli, "", "orders", killed)
			var detect, decide time.Time
			for _, e := range evs {
				switch {
				case e.Step == StepDetect && e.Region == ne && detect.IsZero():
					detect = e.Time
				case e.Step == StepDecide && e.Region == ne && decide.IsZero():
					decide = e.Time
				}
			}
			if detect.IsZero() || decide.Sub(detect) < grace {
				t.Errorf("detect %v, decide %v: want decide at least grace %s after detect", detect, decide, grace)
			}
			t.Logf("automatic failover %s after the kill (lease %s, grace %s)", took.Round(time.Millisecond), ttl, grace)
		})
	}
}

// A secondary still copying back history it discarded is not promoted
// automatically: it lacks acknowledged writes. Once it has caught up, it is.
func TestNoAutomaticPromotionWhileRebuilding(t *testing.T) {
	ttl, grace := 2*time.Second, 500*time.Millisecond
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: ttl, Policy: PolicyAutomatic, Grace: grace}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	l.n.mu.Lock()
	l.n.reps[ne].rebuildTo = 1000 // far beyond its position
	l.n.mu.Unlock()
	time.Sleep(300 * time.Millisecond) // a report saying so
	l.kill(we)
	time.Sleep(ttl + grace + 1500*time.Millisecond)
	if r := l.roles()[ne]; r == data.RolePrimary {
		t.Fatal("a rebuilding replica was promoted automatically")
	}
	l.n.mu.Lock()
	l.n.reps[ne].rebuildTo = 0
	l.n.mu.Unlock()
	l.waitRole(ne, data.RolePrimary, 5*time.Second)
}

// A planned failover whose primary dies before it fences goes on only
// without loss: to a replica still rebuilding it is aborted at once with
// the reason, and the replica stays unpromoted (a forced failover is how
// to accept the loss).
func TestPlannedToRebuildingReplicaAborted(t *testing.T) {
	ttl := 2 * time.Second
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: ttl}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	l.n.mu.Lock()
	l.n.reps[ne].rebuildTo = 1000
	l.n.mu.Unlock()
	l.kill(we)
	start := time.Now()
	_, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModePlanned, 10*time.Second)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "copying back history") {
		t.Fatalf("planned failover to a rebuilding replica: err %v, want it refused naming the rebuild", err)
	}
	// Refused once the lease ended, not at the request's deadline.
	if took := time.Since(start); took > ttl+2*time.Second {
		t.Errorf("refusal took %s, after the lease %s ended", took, ttl)
	}
	if r := l.roles()[ne]; r == data.RolePrimary {
		t.Fatal("the rebuilding replica was promoted")
	}
	l.n.mu.Lock()
	l.n.reps[ne].rebuildTo = 0
	l.n.mu.Unlock()
	if _, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModeForced, 10*time.Second); err != nil {
		t.Fatalf("forced failover once rebuilt: %v", err)
	}
	l.waitRole(ne, data.RolePrimary, 5*time.Second)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestWritesRefusedWhileControllerStuck: the primary's write path refuses
// to acknowledge from its lease's deadline on, while its controller is
// stuck in a step (in a replica call) and has fenced nothing: the replica
// checks the witness Held it was promoted with before each acknowledgement.
func TestWritesRefusedWhileControllerStuck(t *testing.T) {
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second}, we)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	if err := l.write(we, "before"); err != nil {
		t.Fatalf("write with a valid lease: %v", err)
	}
	l.n.mu.Lock()
	held, _ := l.n.reps[we].lease.(*witness.Held)
	release := make(chan struct{})
	l.n.stuck = release
	l.n.mu.Unlock()
	defer close(release)
	if held == nil {
		t.Fatal("the controller promoted the replica without its witness Held")
	}
	l.stopWitness() // renewals fail: the deadline is the last one's

	var lastOK time.Time
	refusedAt := time.Time{}
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end) && refusedAt.IsZero(); time.Sleep(time.Millisecond) {
		sent := time.Now()
		err := l.write(we, fmt.Sprintf("k-%d", sent.UnixNano()))
		switch {
		case err == nil:
			lastOK = sent
		case errors.Is(err, data.ErrFenced):
			refusedAt = sent
		default:
			t.Fatalf("write: %v", err)
		}
	}
	if refusedAt.IsZero() {
		t.Fatal("writes still acknowledged 4s after the witness stopped")
	}
	// The Held has no confirmed renewal since the witness stopped.
	deadline := held.Renewed().Add(held.Timing().TTL - held.Timing().Margin)
	l.n.mu.Lock()
	role := l.n.reps[we].role
	l.n.mu.Unlock()
	t.Logf("last write acknowledged was sent %v before the deadline; first refusal sent %v after it; replica role %s (nobody fenced it)",
		deadline.Sub(lastOK).Round(time.Microsecond), refusedAt.Sub(deadline).Round(time.Microsecond), role)
	if !lastOK.Before(deadline) {
		t.Errorf("a write sent %v after the deadline was acknowledged", lastOK.Sub(deadline))
	}
	if role != data.RolePrimary {
		t.Errorf("replica is %s: the stuck controller fenced it, so the test shows nothing", role)
	}
}
