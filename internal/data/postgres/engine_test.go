package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
)

var orders = []Service{{Name: "orders"}}

// bootstrap makes primary the primary of every service at epoch 1 and the
// other regions its standbys.
func (l *lab) bootstrap(primary string, services []Service) {
	l.t.Helper()
	for _, s := range services {
		d := timed(func() {
			if err := l.replica(primary, s.Name).Promote(ctxT(l.t, 30*time.Second), 1, nil); err != nil {
				l.t.Fatalf("Promote %s in %s: %v", s.Name, primary, err)
			}
		})
		l.t.Logf("bootstrap: promote %s in %s: %d ms", s.Name, primary, d.Milliseconds())
	}
	for _, r := range l.regions {
		if r == primary {
			continue
		}
		for _, s := range services {
			var n uint64
			d := timed(func() {
				var err error
				if n, err = l.replica(r, s.Name).Follow(ctxT(l.t, 60*time.Second), primary, 1); err != nil {
					l.t.Fatalf("Follow %s in %s: %v", s.Name, r, err)
				}
			})
			if n != 0 {
				l.t.Fatalf("Follow %s in %s: %d discarded on a fresh instance", s.Name, r, n)
			}
			l.t.Logf("bootstrap: %s follows %s (%s): %d ms", r, primary, s.Name, d.Milliseconds())
		}
	}
}

func wantRecord(t *testing.T, r data.Replica, key, value string, seq uint64) error {
	t.Helper()
	rec, err := r.Get(ctxT(t, 2*time.Second), key)
	if err != nil {
		return err
	}
	if rec.Key != key || !bytes.Equal(rec.Value, []byte(value)) || rec.Seq != seq {
		return fmt.Errorf("got %q=%q seq %d, want %q=%q seq %d", rec.Key, rec.Value, rec.Seq, key, value, seq)
	}
	return nil
}

func TestFreshInstanceHasNoRole(t *testing.T) {
	t.Parallel()
	requirePostgres(t)
	n := startNode(t, Config{Region: "A", Dir: t.TempDir(), Services: orders, Logger: testLogger(t)}) // Port 0: the engine picks one
	n.ready(t)
	if _, port, err := net.SplitHostPort(n.Addr()); err != nil || port == "0" {
		t.Fatalf("Addr() = %q, %v", n.Addr(), err)
	}
	a := n.replicaT(t)
	_, err := a.Put(ctxT(t, 2*time.Second), "k", []byte("v"))
	if !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put before any role: got %v, want ErrUnavailable", err)
	}
	if _, err := a.Get(ctxT(t, 2*time.Second), "k"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("Get: got %v, want ErrNotFound", err)
	}
	st := a.Status(ctxT(t, 2*time.Second))
	if st.Role != data.RoleFenced || st.Writable || !st.Readable || st.Primary != "" {
		t.Fatalf("Status before any role: %+v", st)
	}
	if err := a.Promote(ctxT(t, 10*time.Second), 1, nil); err != nil {
		t.Fatal(err)
	}
	rec := put(t, a, "k", "v")
	if rec.Seq != 1 || rec.Time.IsZero() {
		t.Fatalf("first write: %+v", rec)
	}
	st = a.Status(ctxT(t, 2*time.Second))
	if st.Role != data.RolePrimary || !st.Writable || st.LastSeq != 1 || st.PrimarySeq != 1 || st.Epoch != 1 {
		t.Fatalf("Status of the primary: %+v", st)
	}
}

func TestReplicationAndFence(t *testing.T) {
	t.Parallel()
	l := newLab(t, orders, "A", "B")
	l.bootstrap("A", orders)
	a, b := l.replica("A", "orders"), l.replica("B", "orders")

	// Writes from both regions land on A, in one sequence.
	var recs []data.Record
	for i := range 6 {
		via := a
		if i%2 == 1 {
			via = b
		}
		recs = append(recs, put(t, via, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("write %d: seq %d, want %d", i, r.Seq, i+1)
		}
	}
	positionIs(t, b, 6, 20*time.Second)
	for i, r := range recs {
		if err := wantRecord(t, b, r.Key, fmt.Sprintf("v%d", i), r.Seq); err != nil {
			t.Fatalf("read on the standby: %v", err)
		}
	}
	list, err := b.List(ctxT(t, 2*time.Second), 2, 3)
	if err != nil || len(list) != 3 || list[0].Seq != 3 || list[2].Seq != 5 {
		t.Fatalf("List(2, 3) on the standby: %v %+v", err, list)
	}
	st := b.Status(ctxT(t, 2*time.Second))
	if st.Role != data.RoleSecondary || st.Primary != "A" || st.LastSeq != 6 || st.PrimarySeq != 6 || !st.Writable || !st.Readable {
		t.Fatalf("Status of the standby: %+v", st)
	}
	t.Logf("standby status: %s", st.Detail)

	var pos uint64
	d := timed(func() {
		if pos, err = a.Fence(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Fence: %v", err)
		}
	})
	t.Logf("fence: %d ms", d.Milliseconds())
	if pos != 6 {
		t.Fatalf("Fence returned position %d, want 6", pos)
	}
	if _, err := a.Put(ctxT(t, 2*time.Second), "x", nil); !errors.Is(err, data.ErrFenced) {
		t.Fatalf("Put on the fenced primary: %v, want ErrFenced", err)
	}
	if _, err := b.Put(ctxT(t, 2*time.Second), "x", nil); !errors.Is(err, data.ErrFenced) {
		t.Fatalf("Put through the standby to the fenced primary: %v, want ErrFenced", err)
	}
	if pos, err := a.Fence(ctxT(t, 10*time.Second)); err != nil || pos != 6 {
		t.Fatalf("Fence again: %d, %v", pos, err)
	}
	if st := a.Status(ctxT(t, 2*time.Second)); st.Role != data.RoleFenced || st.Writable || !st.Readable {
		t.Fatalf("Status of the fenced primary: %+v", st)
	}
	if err := wantRecord(t, a, "k5", "v5", 6); err != nil {
		t.Fatalf("read on the fenced primary: %v", err)
	}
}

func TestPlannedSwitchover(t *testing.T) {
	t.Parallel()
	l := newLab(t, orders, "A", "B")
	l.bootstrap("A", orders)
	a, b := l.replica("A", "orders"), l.replica("B", "orders")
	for i := range 5 {
		via := a
		if i%2 == 1 {
			via = b
		}
		put(t, via, fmt.Sprintf("k%d", i), "before")
	}

	// Fence A, let B catch up, promote B, A follows B.
	var pos uint64
	fence := timed(func() {
		var err error
		if pos, err = a.Fence(ctxT(t, 10*time.Second)); err != nil {
			t.Fatalf("Fence A: %v", err)
		}
	})
	if pos != 5 {
		t.Fatalf("Fence A: position %d, want 5", pos)
	}
	catchUp := timed(func() { positionIs(t, b, pos, 20*time.Second) })
	promote := timed(func() {
		if err := b.Promote(ctxT(t, 30*time.Second), 2, nil); err != nil {
			t.Fatalf("Promote B: %v", err)
		}
	})
	if err := b.Promote(ctxT(t, 30*time.Second), 2, nil); err != nil {
		t.Fatalf("Promote B again (idempotent): %v", err)
	}
	var n uint64
	rejoin := timed(func() {
		var err error
		if n, err = a.Follow(ctxT(t, 60*time.Second), "B", 2); err != nil {
			t.Fatalf("A.Follow(B, 2): %v", err)
		}
	})
	if n != 0 {
		t.Fatalf("planned switchover discarded %d writes, want 0", n)
	}
	if n, err := a.Follow(ctxT(t, 10*time.Second), "B", 2); err != nil || n != 0 {
		t.Fatalf("A.Follow(B, 2) again: %d, %v", n, err)
	}
	t.Logf("planned switchover: fence %d ms, catch-up %d ms, promote %d ms, rejoin %d ms",
		fence.Milliseconds(), catchUp.Milliseconds(), promote.Milliseconds(), rejoin.Milliseconds())

	// Writes from both regions go to B and continue the sequence.
	r1 := put(t, a, "after-a", "1")
	r2 := put(t, b, "after-b", "2")
	if r1.Seq != 6 || r2.Seq != 7 {
		t.Fatalf("writes after the switchover: seqs %d, %d, want 6, 7", r1.Seq, r2.Seq)
	}
	positionIs(t, a, 7, 20*time.Second)
	if err := wantRecord(t, a, "after-b", "2", 7); err != nil {
		t.Fatalf("read on A: %v", err)
	}
	if err := wantRecord(t, a, "k0", "before", 1); err != nil {
		t.Fatalf("read on A: %v", err)
	}
	if st := b.Status(ctxT(t, 2*time.Second)); st.Role != data.RolePrimary || st.Epoch != 2 || !st.Writable {
		t.Fatalf("Status of B: %+v", st)
	}
	if st := a.Status(ctxT(t, 2*time.Second)); st.Role != data.RoleSecondary || st.Primary != "B" || st.Epoch != 2 || !st.Writable || st.LastSeq != 7 {
		t.Fatalf("Status of A: %+v", st)
	}

	// A stale controller addresses epoch 1: B refuses it.
	if _, err := a.Follow(ctxT(t, 10*time.Second), "B", 1); err != nil {
		t.Fatalf("A.Follow(B, 1): %v", err)
	}
	if _, err := a.Put(ctxT(t, 5*time.Second), "stale", nil); !errors.Is(err, data.ErrFenced) {
		t.Fatalf("write addressed to epoch 1 at B: %v, want ErrFenced", err)
	}
	if err := b.Promote(ctxT(t, 5*time.Second), 1, nil); err == nil {
		t.Fatal("Promote B at the older epoch 1 succeeded")
	}
	if pos, _ := b.Position(ctxT(t, 2*time.Second)); pos != 7 {
		t.Fatalf("B's position after refused writes: %d, want 7", pos)
	}

	// Failback is another planned switchover; B's pg_rewind fails, so B
	// is copied from A with pg_basebackup instead, and loses nothing.
	if pos, err := b.Fence(ctxT(t, 10*time.Second)); err != nil || pos != 7 {
		t.Fatalf("Fence B: %d, %v", pos, err)
	}
	if err := a.Promote(ctxT(t, 30*time.Second), 3, nil); err != nil {
		t.Fatalf("Promote A: %v", err)
	}
	l.nodes["B"].failRewind = true
	rejoin = timed(func() {
		var err error
		if n, err = b.Follow(ctxT(t, 60*time.Second), "A", 3); err != nil || n != 0 {
			t.Fatalf("B.Follow(A, 3): %d, %v", n, err)
		}
	})
	t.Logf("failback: B rejoins by pg_basebackup in %d ms", rejoin.Milliseconds())
	if r := put(t, b, "failback", "3"); r.Seq != 8 {
		t.Fatalf("write after the failback: seq %d, want 8", r.Seq)
	}
	positionIs(t, b, 8, 20*time.Second)
	if err := wantRecord(t, b, "after-a", "1", 6); err != nil {
		t.Fatalf("read on B after its base backup: %v", err)
	}
}

func TestForcedFailover(t *testing.T) {
	t.Parallel()
	l := newLab(t, orders, "A", "B", "C")
	l.bootstrap("A", orders)
	a, b, c := l.replica("A", "orders"), l.replica("B", "orders"), l.replica("C", "orders")
	for i := range 3 {
		put(t, a, fmt.Sprintf("k%d", i), "replicated")
	}
	positionIs(t, b, 3, 20*time.Second)
	positionIs(t, c, 3, 20*time.Second)

	// A is cut off and keeps taking local writes until its lease ends.
	l.link("A", "B").CutBoth()
	l.link("A", "C").CutBoth()
	const k = 4
	for i := range k {
		put(t, a, fmt.Sprintf("lost%d", i), "only on A")
	}
	if pos, err := a.Fence(ctxT(t, 10*time.Second)); err != nil || pos != 3+k {
		t.Fatalf("Fence A: %d, %v; want %d", pos, err, 3+k)
	}

	// B takes over; C follows it; writes resume from B's position.
	promote := timed(func() {
		if err := b.Promote(ctxT(t, 30*time.Second), 2, nil); err != nil {
			t.Fatalf("Promote B: %v", err)
		}
	})
	var n uint64
	follow := timed(func() {
		var err error
		if n, err = c.Follow(ctxT(t, 60*time.Second), "B", 2); err != nil {
			t.Fatalf("C.Follow(B, 2): %v", err)
		}
	})
	if n != 0 {
		t.Fatalf("C discarded %d writes, want 0", n)
	}
	if r := put(t, c, "new0", "after"); r.Seq != 4 {
		t.Fatalf("first write after the failover: seq %d, want 4", r.Seq)
	}
	put(t, b, "new1", "after")

	// A, still cut off, cannot rejoin yet.
	if _, err := a.Follow(ctxT(t, 2*time.Second), "B", 2); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("A.Follow(B) while cut off: %v, want ErrUnavailable", err)
	}
	if _, err := a.Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through A while cut off from B: %v, want ErrUnavailable", err)
	}
	if st := a.Status(ctxT(t, 3*time.Second)); st.Role != data.RoleFenced || st.Writable {
		t.Fatalf("Status of A before rejoin: %+v", st)
	}

	// The link heals; A rejoins and discards its k writes.
	l.link("A", "B").HealBoth()
	l.link("A", "C").HealBoth()
	rejoin := timed(func() {
		var err error
		if n, err = a.Follow(ctxT(t, 60*time.Second), "B", 2); err != nil {
			t.Fatalf("A.Follow(B, 2): %v", err)
		}
	})
	if n != k {
		t.Fatalf("A discarded %d writes, want %d", n, k)
	}
	if n, err := a.Follow(ctxT(t, 10*time.Second), "B", 2); err != nil || n != k {
		t.Fatalf("A.Follow(B, 2) again: %d, %v; want %d again", n, err, k)
	}
	t.Logf("forced failover: promote %d ms, C follows %d ms, A rejoins (pg_rewind) %d ms",
		promote.Milliseconds(), follow.Milliseconds(), rejoin.Milliseconds())

	put(t, a, "new2", "after")
	for _, r := range []data.Replica{a, b, c} {
		positionIs(t, r, 6, 20*time.Second)
	}
	want, err := b.List(ctxT(t, 2*time.Second), 0, 100)
	if err != nil || len(want) != 6 {
		t.Fatalf("List on B: %d records, %v", len(want), err)
	}
	for name, r := range map[string]data.Replica{"A": a, "C": c} {
		got, err := r.List(ctxT(t, 2*time.Second), 0, 100)
		if err != nil {
			t.Fatalf("List on %s: %v", name, err)
		}
		if fmt.Sprint(keys(got)) != fmt.Sprint(keys(want)) {
			t.Fatalf("%s holds %v, B holds %v", name, keys(got), keys(want))
		}
	}
	if _, err := a.Get(ctxT(t, 2*time.Second), "lost0"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("a discarded write is still readable on A: %v", err)
	}
}

func keys(recs []data.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d:%s", r.Seq, r.Key)
	}
	return out
}

func TestSyncReplication(t *testing.T) {
	t.Parallel()
	services := []Service{{Name: "orders", Replication: ReplicationSync}, {Name: "events"}}
	l := newLab(t, services, "A", "B")
	l.bootstrap("A", services)
	a, b := l.replica("A", "orders"), l.replica("B", "orders")
	ev := l.replica("A", "events")
	put(t, a, "k1", "v1")
	put(t, ev, "e1", "v1")
	positionIs(t, b, 1, 20*time.Second)

	l.link("A", "B").CutBoth()
	start := time.Now()
	_, err := a.Put(ctxT(t, 1500*time.Millisecond), "k2", []byte("v2"))
	if !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("sync Put with the standby cut off: %v, want ErrUnavailable", err)
	}
	if time.Since(start) < time.Second {
		t.Fatalf("sync Put failed after %v, before its ctx ended", time.Since(start))
	}
	if _, err := b.Put(ctxT(t, time.Second), "k3", []byte("v3")); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through B with the link cut: %v, want ErrUnavailable", err)
	}
	// The async service of the same instance does not wait for a standby.
	if r := put(t, ev, "e2", "v2"); r.Seq != 2 {
		t.Fatalf("async write in a sync instance: %+v", r)
	}

	// The write with the unknown outcome had committed on A: it appears
	// on B once the link heals.
	l.link("A", "B").HealBoth()
	positionIs(t, b, 2, 20*time.Second)
	if err := wantRecord(t, b, "k2", "v2", 2); err != nil {
		t.Fatal(err)
	}
	put(t, b, "k4", "v4")

	// A new epoch for events at A: B's writes addressed to the old one are
	// refused (the async write path of a sync instance), until B follows.
	if err := ev.Promote(ctxT(t, 10*time.Second), 2, nil); err != nil {
		t.Fatal(err)
	}
	evB := l.replica("B", "events")
	if _, err := evB.Put(ctxT(t, 5*time.Second), "e3", nil); !errors.Is(err, data.ErrFenced) {
		t.Fatalf("events write addressed to epoch 1: %v, want ErrFenced", err)
	}
	if n, err := evB.Follow(ctxT(t, 10*time.Second), "A", 2); err != nil || n != 0 {
		t.Fatalf("B.Follow(A, 2) for events: %d, %v", n, err)
	}
	if r := put(t, evB, "e3", "v3"); r.Seq != 3 {
		t.Fatalf("events write after B follows epoch 2: %+v", r)
	}
}

func TestCrashAndRestart(t *testing.T) {
	t.Parallel()
	l := newLab(t, orders, "A", "B")
	l.bootstrap("A", orders)
	a, b := l.replica("A", "orders"), l.replica("B", "orders")
	for i := range 3 {
		put(t, a, fmt.Sprintf("k%d", i), "v")
	}
	positionIs(t, b, 3, 20*time.Second)

	crasher, ok := a.(data.Crasher)
	if !ok {
		t.Fatal("replica is not a data.Crasher")
	}
	if err := crasher.Crash(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	for what, err := range map[string]error{
		"Put":       second(a.Put(ctx, "x", nil)),
		"Get":       second(a.Get(ctx, "k0")),
		"Position":  second(a.Position(ctx)),
		"Fence":     second(a.Fence(ctx)),
		"Promote":   a.Promote(ctx, 2, nil),
		"Follow":    second(a.Follow(ctx, "B", 2)),
		"Put via B": second(b.Put(ctx, "x", nil)),
	} {
		if !errors.Is(err, data.ErrUnavailable) {
			t.Errorf("%s after Crash: %v, want ErrUnavailable", what, err)
		}
	}
	if st := a.Status(ctx); st.Readable || st.Writable {
		t.Fatalf("Status after Crash: %+v", st)
	}

	// The region restarts: nothing is trusted, the data is there.
	a = l.restart("A").replicaT(t)
	if _, err := a.Put(ctxT(t, 2*time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put after restart, before the controller: %v, want ErrUnavailable", err)
	}
	if st := a.Status(ctxT(t, 2*time.Second)); st.Role != data.RoleFenced || st.LastSeq != 3 || st.Writable {
		t.Fatalf("Status after restart: %+v", st)
	}
	if err := a.Promote(ctxT(t, 10*time.Second), 2, nil); err != nil {
		t.Fatal(err)
	}
	// B restarts too, still a standby of A: it follows A without a rewind.
	b = l.restart("B").replicaT(t)
	if st := b.Status(ctxT(t, 2*time.Second)); st.Role != data.RoleSecondary || st.Writable {
		t.Fatalf("Status of the restarted standby: %+v", st)
	}
	if n, err := b.Follow(ctxT(t, 10*time.Second), "A", 2); err != nil || n != 0 {
		t.Fatalf("B.Follow(A, 2): %d, %v", n, err)
	}
	if r := put(t, b, "k3", "v"); r.Seq != 4 {
		t.Fatalf("write after restart: %+v", r)
	}
	positionIs(t, b, 4, 20*time.Second)
}

func (n *node) replicaT(t *testing.T) data.Replica {
	t.Helper()
	r, err := n.Replica("orders")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func second[T any](_ T, err error) error { return err }
