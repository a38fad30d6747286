package jetstream

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/geostamp/geostamp/internal/data"
)

// threeRegions starts A, B and C with A promoted at epoch 1 and B, C
// following it. B reaches A through ab only, so cutting ab isolates B; C
// reaches A through its own link.
func threeRegions(t *testing.T) (a, b, c *running, ab *linkProxy) {
	t.Helper()
	a = start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	ab = newLinkProxy(t, a.LeafAddr())
	b = start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{ab.Addr()}, Services: services("A")})
	c = start(t, Config{Region: "C", Dir: t.TempDir(), Remotes: []string{newLinkProxy(t, a.LeafAddr()).Addr()}, Services: services("A")})
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	eventually(t, 5*time.Second, "C linked to A", upstream(c, "A"))
	promote(t, a, 1)
	follow(t, b, "A", 1)
	follow(t, c, "A", 1)
	return a, b, c, ab
}

func fence(t *testing.T, e *running) uint64 {
	t.Helper()
	began := time.Now()
	pos, err := replica(t, e).Fence(ctxT(t, time.Second))
	if err != nil {
		t.Fatalf("%s: Fence: %v", e.cfg.Region, err)
	}
	t.Logf("%s: Fence took %v, position %d", e.cfg.Region, time.Since(began), pos)
	return pos
}

// history is the full list of records of s.
func history(t *testing.T, s data.Store) []data.Record {
	t.Helper()
	got, err := s.List(ctxT(t, 2*time.Second), 0, 1000)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

func sameHistory(a, b []data.Record) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d records, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Seq != b[i].Seq || !a[i].Time.Equal(b[i].Time) || string(a[i].Value) != string(b[i].Value) {
			return fmt.Errorf("[%d] = %+v, want %+v", i, a[i], b[i])
		}
	}
	return nil
}

func TestNoWritesBeforeDecision(t *testing.T) {
	t.Parallel()
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	b := start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{a.LeafAddr()}, Services: services("A")})
	for _, e := range []*running{a, b} {
		_, err := store(t, e).Put(ctxT(t, time.Second), "k", []byte("v"))
		if !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "no primary known yet") {
			t.Errorf("%s: Put before the first decision: %v", e.cfg.Region, err)
		}
	}
	if st := store(t, a).Status(ctxT(t, time.Second)); st.Role != data.RoleFenced || st.Writable || !st.Readable || st.Epoch != 0 {
		t.Errorf("A status before the first decision: %+v", st)
	}
	if st := store(t, b).Status(ctxT(t, time.Second)); st.Role != data.RoleSecondary || st.Writable || st.Primary != "A" {
		t.Errorf("B status before the first decision: %+v", st)
	}

	// Without a primary hint there is no stream until the controller says.
	d := start(t, Config{Region: "D", Dir: t.TempDir(), Services: []Service{{Name: "orders"}}})
	if st := store(t, d).Status(ctxT(t, time.Second)); st.Readable || !strings.Contains(st.Detail, "stream not found") {
		t.Errorf("D status without a stream: %+v", st)
	}
	if pos, err := replica(t, d).Position(ctxT(t, time.Second)); pos != 0 || err != nil {
		t.Errorf("D position without a stream: %d, %v", pos, err)
	}
	promote(t, d, 1)
	if r := putN(t, store(t, d), "d", 1)[0]; r.Seq != 1 {
		t.Errorf("first write at D: %+v", r)
	}
}

func TestDecisionErrors(t *testing.T) {
	t.Parallel()
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	r := replica(t, a)
	promote(t, a, 3)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"promote epoch 0", func() error { return r.Promote(ctxT(t, time.Second), 0, nil) }, "epoch 0 is not a valid epoch"},
		{"promote stale", func() error { return r.Promote(ctxT(t, time.Second), 2, nil) }, "stale epoch 2: epoch 3 already seen"},
		{"follow itself", func() error { _, err := r.Follow(ctxT(t, time.Second), "A", 4); return err }, "cannot follow itself"},
		{"follow stale", func() error { _, err := r.Follow(ctxT(t, time.Second), "B", 2); return err }, "stale epoch 2"},
		{"follow another primary at our epoch", func() error { _, err := r.Follow(ctxT(t, time.Second), "B", 3); return err }, "epoch 3 belongs to A, not B"},
		{"follow a bad name", func() error { _, err := r.Follow(ctxT(t, time.Second), "b.c", 4); return err }, `"b.c" is not a region name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// None of them changed anything.
	if st := store(t, a).Status(ctxT(t, time.Second)); st.Role != data.RolePrimary || st.Epoch != 3 || !st.Writable {
		t.Fatalf("status after refused decisions: %+v", st)
	}
	if _, err := a.Replica("nope"); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Fatalf("Replica(nope): %v", err)
	}
}

func TestFenceRefusesWrites(t *testing.T) {
	t.Parallel()
	a, b, _ := twoRegions(t)
	sa, sb := store(t, a), store(t, b)

	// Writes race the fence from both regions: every acknowledged write is
	// at or below the position Fence returns, and none lands after it.
	var (
		mu    sync.Mutex
		acked []uint64
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	for i := range 8 {
		s := []data.Store{sa, sb}[i%2]
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Put(ctxT(t, time.Second), fmt.Sprintf("w%d-%d", i, n), []byte("x"))
				if err == nil {
					mu.Lock()
					acked = append(acked, r.Seq)
					mu.Unlock()
				}
			}
		})
	}
	eventually(t, 10*time.Second, "writes flowing", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 30 {
			return fmt.Errorf("%d acked", len(acked))
		}
		return nil
	})
	pos := fence(t, a)
	time.Sleep(100 * time.Millisecond) // let refused writes keep trying
	close(stop)
	wg.Wait()
	if m := slices.Max(acked); m > pos {
		t.Fatalf("write acknowledged at seq %d after Fence returned position %d", m, pos)
	}
	if got, err := replica(t, a).Position(ctxT(t, time.Second)); err != nil || got != pos {
		t.Fatalf("A position after the fence: %d, %v; want %d", got, err, pos)
	}
	t.Logf("%d writes acknowledged before the fence at %d", len(acked), pos)

	if again := fence(t, a); again != pos {
		t.Fatalf("second Fence returned %d, want %d", again, pos)
	}
	if _, err := sa.Put(ctxT(t, time.Second), "k", nil); !errors.Is(err, data.ErrFenced) {
		t.Fatalf("Put through fenced A: %v, want ErrFenced", err)
	}
	if _, err := sb.Put(ctxT(t, time.Second), "k", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through B to fenced A: %v, want ErrUnavailable", err)
	}
	if st := sa.Status(ctxT(t, time.Second)); st.Role != data.RoleFenced || st.Writable || st.LastSeq != pos || !st.Readable {
		t.Fatalf("A status when fenced: %+v", st)
	}
	if st := sb.Status(ctxT(t, 3*time.Second)); st.Role != data.RoleSecondary || st.Writable || !strings.Contains(st.Detail, "does not take writes of epoch 1") {
		t.Fatalf("B status with A fenced: %+v", st)
	}
	if _, err := sa.Get(ctxT(t, time.Second), "w0-0"); err != nil {
		t.Fatalf("Get through fenced A: %v", err)
	}

	// The planned failover is called off: A is promoted again at the same
	// epoch and takes writes, from both regions.
	promote(t, a, 1)
	if r, err := sa.Put(ctxT(t, time.Second), "after", nil); err != nil || r.Seq != pos+1 {
		t.Fatalf("Put through A after unfencing: %+v, %v", r, err)
	}
	if !b.waitInterest(t.Context(), a.services["orders"].writeSubject(1, "x"), 5*time.Second) {
		t.Fatal("B does not see A's subscription again")
	}
	if r, err := sb.Put(ctxT(t, time.Second), "after-b", nil); err != nil || r.Seq != pos+2 {
		t.Fatalf("Put through B after unfencing: %+v, %v", r, err)
	}
}

func TestPromoteMirrorAndFollowBack(t *testing.T) {
	t.Parallel()
	a, b, _ := twoRegions(t)
	sa, sb := store(t, a), store(t, b)
	acked := putN(t, sb, "before", 5)
	caughtUp(t, sb, 10*time.Second, 5)

	// Planned failover: fence A, B catches up, B is promoted.
	pos := fence(t, a)
	if pos != 5 {
		t.Fatalf("A fenced at %d, want 5", pos)
	}
	promote(t, b, 2)
	if err := replica(t, b).Promote(ctxT(t, time.Second), 2, nil); err != nil {
		t.Fatalf("second Promote(2): %v", err)
	}
	st := sb.Status(ctxT(t, time.Second))
	if st.Role != data.RolePrimary || st.Epoch != 2 || st.Primary != "B" || !st.Writable || st.LastSeq != 5 {
		t.Fatalf("B status after its promotion: %+v", st)
	}
	r, err := sb.Put(ctxT(t, time.Second), "on-b", []byte("x"))
	if err != nil || r.Seq != 6 {
		t.Fatalf("Put through promoted B: %+v, %v", r, err)
	}
	acked = append(acked, r)

	if d := follow(t, a, "B", 2); d != 0 {
		t.Fatalf("A rejoining after a planned failover discarded %d", d)
	}
	if d := follow(t, a, "B", 2); d != 0 {
		t.Fatalf("second Follow discarded %d", d)
	}
	acked = append(acked, putN(t, sa, "via-a", 2)...)
	caughtUp(t, sa, 10*time.Second, 8)
	if err := holdsAll(t, sa, acked); err != nil {
		t.Fatalf("A after rejoining: %v", err)
	}
	if err := sameHistory(history(t, sa), history(t, sb)); err != nil {
		t.Fatalf("A's history differs from B's: %v", err)
	}
	if st := sa.Status(ctxT(t, time.Second)); st.Role != data.RoleSecondary || st.Primary != "B" || st.Epoch != 2 || !st.Writable {
		t.Fatalf("A status after rejoining: %+v", st)
	}
}

// The old primary and a third region that copied writes the promoted
// region lacks both rejoin the new primary, discarding exactly those.
func TestRejoinDiscardsDivergentTail(t *testing.T) {
	t.Parallel()
	a, b, c, ab := threeRegions(t)
	sa, sb, sc := store(t, a), store(t, b), store(t, c)
	const n, k = 5, 3
	putN(t, sa, "common", n)
	caughtUp(t, sb, 10*time.Second, n)
	caughtUp(t, sc, 10*time.Second, n)

	ab.Cut()
	eventually(t, 5*time.Second, "B unlinked", upstream(b, ""))
	putN(t, sa, "lost", k)
	caughtUp(t, sc, 10*time.Second, n+k)

	// A's lease ends: it fences. B, cut off, is promoted and writes.
	if pos := fence(t, a); pos != n+k {
		t.Fatalf("A fenced at %d, want %d", pos, n+k)
	}
	promote(t, b, 2)
	newer := putN(t, sb, "new", 2)

	ab.Heal()
	eventually(t, 5*time.Second, "B relinked", upstream(b, "A"))
	if d := follow(t, a, "B", 2); d != k {
		t.Fatalf("A discarded %d writes, want %d", d, k)
	}
	// C's first attempt fails right after deleting its stream; the retry
	// still reports what was discarded.
	var once sync.Once
	c.testHookAfterDelete = func() (err error) {
		once.Do(func() { err = fmt.Errorf("%w: injected failure", data.ErrUnavailable) })
		return err
	}
	if _, err := replica(t, c).Follow(ctxT(t, 5*time.Second), "B", 2); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("C's first Follow: %v, want the injected failure", err)
	}
	if d := follow(t, c, "B", 2); d != k {
		t.Fatalf("C discarded %d writes, want %d", d, k)
	}
	newer = append(newer, putN(t, sc, "via-c", 1)...)
	last := newer[len(newer)-1].Seq
	if last != n+3 {
		t.Fatalf("last write at seq %d, want %d", last, n+3)
	}
	want := history(t, sb)
	for name, s := range map[string]data.Store{"A": sa, "C": sc} {
		caughtUp(t, s, 10*time.Second, last)
		if err := sameHistory(history(t, s), want); err != nil {
			t.Fatalf("%s's history differs from B's: %v", name, err)
		}
		if _, err := s.Get(ctxT(t, time.Second), "lost-0"); !errors.Is(err, data.ErrNotFound) {
			t.Fatalf("%s still serves a discarded write: %v", name, err)
		}
		if err := holdsAll(t, s, newer); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// Writes are addressed to an epoch; a primary stores only its own epoch's,
// even while the leafnodes connect an old and a new primary.
func TestEpochFencing(t *testing.T) {
	t.Parallel()
	a, b, link := twoRegions(t)
	putN(t, store(t, a), "e1", 2)
	caughtUp(t, store(t, b), 10*time.Second, 2)
	promote(t, b, 2) // A is not fenced yet: both take writes, each of its epoch

	sa := a.services["orders"]
	publish := func(from *running, epoch uint64, key string) (*jetstream.PubAck, error) {
		_, _, js := from.conn()
		tok, _ := sa.keyToken(key)
		return js.Publish(ctxT(t, 5*time.Second), sa.writeSubject(epoch, tok), []byte(key), jetstream.WithExpectStream(sa.stream))
	}
	for _, e := range []*running{a, b} {
		eventually(t, 3*time.Second, e.cfg.Region+" sees both epochs' subscribers", func() error {
			for _, ep := range []uint64{1, 2} {
				if !e.waitInterest(t.Context(), sa.writeSubject(ep, "x"), 0) {
					return fmt.Errorf("no subscriber of epoch %d", ep)
				}
			}
			return nil
		})
	}
	ack, err := publish(b, 1, "old-epoch")
	if err != nil || ack.Domain != "A" {
		t.Fatalf("write of epoch 1 from B: %+v, %v; want stored by A", ack, err)
	}
	ack, err = publish(a, 2, "new-epoch")
	if err != nil || ack.Domain != "B" {
		t.Fatalf("write of epoch 2 from A: %+v, %v; want stored by B", ack, err)
	}
	if _, err := publish(a, 3, "future-epoch"); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("write of epoch 3: %v, want no stream response", err)
	}
	for _, c := range []struct {
		e        *running
		has, not string
	}{{a, "old-epoch", "new-epoch"}, {b, "new-epoch", "old-epoch"}} {
		if _, err := store(t, c.e).Get(ctxT(t, time.Second), c.has); err != nil {
			t.Errorf("%s lacks %s: %v", c.e.cfg.Region, c.has, err)
		}
		if _, err := store(t, c.e).Get(ctxT(t, time.Second), c.not); !errors.Is(err, data.ErrNotFound) {
			t.Errorf("%s stored %s: %v", c.e.cfg.Region, c.not, err)
		}
	}

	// A is told to follow B while it cannot reach B: Follow fails, but A
	// is unwritable at once and routes its writes to epoch 2.
	link.Cut()
	eventually(t, 5*time.Second, "B unlinked", upstream(b, ""))
	if _, err := replica(t, a).Follow(ctxT(t, time.Second), "B", 2); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Follow(B, 2) with B unreachable: %v, want ErrUnavailable", err)
	}
	if _, err := publish(a, 1, "after-follow"); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("write of epoch 1 in A after Follow(B, 2): %v, want no stream response", err)
	}
	if _, err := store(t, a).Put(ctxT(t, time.Second), "k", nil); !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "epoch 2") {
		t.Fatalf("Put through A after a failed Follow: %v, want ErrUnavailable at epoch 2", err)
	}
	if st := store(t, a).Status(ctxT(t, time.Second)); st.Role != data.RoleSecondary || st.Primary != "B" || st.Epoch != 2 || st.Writable || st.LastSeq != 3 {
		t.Fatalf("A status after a failed Follow: %+v", st)
	}
	if got, _ := replica(t, b).Position(ctxT(t, time.Second)); got != 3 { // 2 mirrored, 1 of its own
		t.Fatalf("B at %d, want 3", got)
	}
	link.Heal()
	if d := follow(t, a, "B", 2); d != 1 { // old-epoch
		t.Fatalf("A discarded %d, want 1", d)
	}
	caughtUp(t, store(t, a), 10*time.Second, 3)
	if _, err := store(t, a).Get(ctxT(t, time.Second), "new-epoch"); err != nil {
		t.Fatalf("A after rejoining: %v", err)
	}
}

func syncServices(primary string, regions ...string) []Service {
	return []Service{{Name: "orders", Primary: primary, Replication: ReplicationSync, Regions: regions}}
}

// syncPair starts A and B with a sync service whose initial primary is A,
// B reaching A through link.
func syncPair(t *testing.T) (a, b *running, link *linkProxy) {
	a = start(t, Config{Region: "A", Dir: t.TempDir(), Services: syncServices("A", "A", "B")})
	link = newLinkProxy(t, a.LeafAddr())
	b = start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{link.Addr()}, Services: syncServices("A", "A", "B")})
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	return a, b, link
}

func TestSyncReplication(t *testing.T) {
	t.Parallel()
	a, b, link := syncPair(t)
	promote(t, a, 1)
	follow(t, b, "A", 1)
	sa, sb, rb := store(t, a), store(t, b), replica(t, b)

	// Every acknowledged write is in B's mirror when the Put returns.
	const writers, each = 16, 10
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails []string
		took  time.Duration
	)
	began := time.Now()
	for w := range writers {
		s := []data.Store{sa, sb}[w%2]
		wg.Go(func() {
			for i := range each {
				t0 := time.Now()
				r, err := s.Put(ctxT(t, 10*time.Second), fmt.Sprintf("w%d-%d", w, i), []byte("x"))
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				d := time.Since(t0)
				pos, err := rb.Position(ctxT(t, 5*time.Second))
				mu.Lock()
				took += d
				if err != nil || pos < r.Seq {
					fails = append(fails, fmt.Sprintf("seq %d acknowledged, B at %d (%v)", r.Seq, pos, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d sync writes failed, e.g. %s", len(fails), writers*each, fails[0])
	}
	t.Logf("%d sync writes from %d writers in %v, %v per write on average", writers*each, writers, time.Since(began), took/(writers*each))
	if st := sa.Status(ctxT(t, time.Second)); strings.Contains(st.Detail, "degraded") {
		t.Fatalf("A status: %+v", st)
	}

	// B cut off: the write is stored at A, but not acknowledged.
	link.Cut()
	eventually(t, 5*time.Second, "B unlinked", upstream(b, ""))
	before, _ := replica(t, a).Position(ctxT(t, time.Second))
	t0 := time.Now()
	_, err := sa.Put(ctxT(t, 700*time.Millisecond), "unconfirmed", []byte("x"))
	if !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "no secondary confirmed") {
		t.Fatalf("sync Put with the secondary cut off: %v, want ErrUnavailable", err)
	}
	t.Logf("sync Put with the secondary cut off failed after %v: %v", time.Since(t0), err)
	if after, _ := replica(t, a).Position(ctxT(t, time.Second)); after != before+1 {
		t.Fatalf("A at %d after an unconfirmed write, want %d", after, before+1)
	}

	link.Heal()
	eventually(t, 5*time.Second, "B relinked", upstream(b, "A"))
	r, err := sa.Put(ctxT(t, 5*time.Second), "confirmed", []byte("x"))
	if err != nil {
		t.Fatalf("sync Put after the heal: %v", err)
	}
	if pos, _ := rb.Position(ctxT(t, time.Second)); pos < r.Seq {
		t.Fatalf("seq %d acknowledged, B at %d", r.Seq, pos)
	}
}

func TestSyncSingleRegion(t *testing.T) {
	t.Parallel()
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: syncServices("A")})
	promote(t, a, 1)
	r, err := store(t, a).Put(ctxT(t, time.Second), "k", []byte("v"))
	if err != nil || r.Seq != 1 {
		t.Fatalf("sync Put with no secondary: %+v, %v", r, err)
	}
	if st := store(t, a).Status(ctxT(t, time.Second)); !strings.Contains(st.Detail, "sync replication degraded to async") {
		t.Fatalf("status: %+v", st)
	}
}

func TestCrash(t *testing.T) {
	t.Parallel()
	a, b, _ := twoRegions(t)
	putN(t, store(t, a), "k", 2)
	caughtUp(t, store(t, b), 10*time.Second, 2)
	ra := replica(t, a)
	crasher, ok := ra.(data.Crasher)
	if !ok {
		t.Fatal("the replica is not a data.Crasher")
	}
	if err := crasher.Crash(); err != nil {
		t.Fatalf("Crash: %v", err)
	}
	ctx := ctxT(t, time.Second)
	calls := map[string]error{}
	_, calls["Put"] = ra.Put(ctx, "k", nil)
	_, calls["Get"] = ra.Get(ctx, "k-0")
	_, calls["List"] = ra.List(ctx, 0, 10)
	_, calls["Position"] = ra.Position(ctx)
	_, calls["Fence"] = ra.Fence(ctx)
	calls["Promote"] = ra.Promote(ctx, 2, nil)
	_, calls["Follow"] = ra.Follow(ctx, "B", 2)
	for name, err := range calls {
		if !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "crashed") {
			t.Errorf("%s after Crash: %v, want ErrUnavailable (crashed)", name, err)
		}
	}
	if st := ra.Status(ctx); st.Readable || !strings.Contains(st.Detail, "crashed") {
		t.Errorf("status after Crash: %+v", st)
	}
	if err := a.Crash(); err == nil {
		t.Error("second Crash: no error")
	}
	if _, err := store(t, b).Put(ctxT(t, time.Second), "k", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Errorf("Put through B with A crashed: %v, want ErrUnavailable", err)
	}
	if _, err := store(t, b).Get(ctxT(t, time.Second), "k-1"); err != nil {
		t.Errorf("Get through B with A crashed: %v", err)
	}
	a.stop(t) // Run returns nil
}

// Without Service.Regions, a primary finds its secondaries from their
// mirror consumers on its stream.
func TestSyncDiscoversSecondaries(t *testing.T) {
	t.Parallel()
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: syncServices("A")})
	link := newLinkProxy(t, a.LeafAddr())
	b := start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{link.Addr()}, Services: syncServices("A")})
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	promote(t, a, 1)
	follow(t, b, "A", 1)
	sa := store(t, a)
	eventually(t, 10*time.Second, "A finds B", func() error {
		if st := sa.Status(ctxT(t, time.Second)); strings.Contains(st.Detail, "degraded") {
			return errors.New(st.Detail)
		}
		return nil
	})
	link.Cut()
	eventually(t, 5*time.Second, "B unlinked", upstream(b, ""))
	if _, err := sa.Put(ctxT(t, 500*time.Millisecond), "k", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("sync Put with the discovered secondary cut off: %v, want ErrUnavailable", err)
	}
}
