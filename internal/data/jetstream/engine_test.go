package jetstream

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"

	"github.com/geostamp/geostamp/internal/testlog"
)

var natsDebug = flag.Bool("natsdebug", false, "log the embedded NATS servers' debug output")

// testLogger logs to t; NATS server output only with -natsdebug.
func testLogger(t *testing.T) *slog.Logger {
	if *natsDebug {
		return testlog.New(t, slog.LevelDebug)
	}
	return testlog.New(t, slog.LevelInfo)
}

// running is an engine whose Run goroutine the test controls.
type running struct {
	*Engine
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with err set
	err    error
}

// stop ends Run and waits for it (bounded).
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("%s: Run: %v", r.cfg.Region, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Run did not return after cancel", r.cfg.Region)
	}
}

// start runs an engine for cfg and waits until it is ready.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Engine: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = e.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return after cancel", cfg.Region)
		}
	})
	select {
	case <-e.Ready():
	case <-r.done:
		t.Fatalf("%s: Run ended before ready: %v", cfg.Region, r.err)
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: not ready after 15s", cfg.Region)
	}
	return r
}

func services(primary string) []Service {
	return []Service{{Name: "orders", Primary: primary}}
}

func store(t *testing.T, e *running) data.Store {
	t.Helper()
	s, err := e.Store("orders")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func replica(t *testing.T, e *running) data.Replica {
	t.Helper()
	r, err := e.Replica("orders")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// promote promotes e's replica at epoch, as the controller would.
func promote(t *testing.T, e *running, epoch uint64) {
	t.Helper()
	began := time.Now()
	if err := replica(t, e).Promote(ctxT(t, 5*time.Second), epoch, nil); err != nil {
		t.Fatalf("%s: Promote(%d): %v", e.cfg.Region, epoch, err)
	}
	t.Logf("%s: Promote(%d) took %v", e.cfg.Region, epoch, time.Since(began))
}

// follow makes e follow primary at epoch, retrying while the primary is
// unavailable (as the controller does), and returns the discarded count.
func follow(t *testing.T, e *running, primary string, epoch uint64) uint64 {
	t.Helper()
	var discarded uint64
	began := time.Now()
	eventually(t, 10*time.Second, fmt.Sprintf("%s follows %s at epoch %d", e.cfg.Region, primary, epoch), func() (err error) {
		discarded, err = replica(t, e).Follow(ctxT(t, 5*time.Second), primary, epoch)
		if err != nil && !errors.Is(err, data.ErrUnavailable) {
			t.Fatalf("%s: Follow(%s, %d): %v", e.cfg.Region, primary, epoch, err)
		}
		return err
	})
	t.Logf("%s: Follow(%s, %d) took %v, discarded %d", e.cfg.Region, primary, epoch, time.Since(began), discarded)
	return discarded
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

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// twoRegions starts A (primary of orders at epoch 1) and B (its
// secondary, linked to A through a proxy) and waits for the leafnode link.
func twoRegions(t *testing.T) (a, b *running, link *linkProxy) {
	t.Helper()
	a = start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	link = newLinkProxy(t, a.LeafAddr())
	b = start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{link.Addr()}, Services: services("A")})
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	promote(t, a, 1)
	follow(t, b, "A", 1)
	return a, b, link
}

func upstream(e *running, want string) func() error {
	return func() error {
		if up := e.Upstream(); up != want {
			return fmt.Errorf("%s upstream %q, want %q", e.cfg.Region, up, want)
		}
		return nil
	}
}

func wantRecord(t *testing.T, s data.Store, key string, value []byte, seq uint64) error {
	t.Helper()
	r, err := s.Get(ctxT(t, time.Second), key)
	if err != nil {
		return err
	}
	if r.Key != key || !bytes.Equal(r.Value, value) || r.Seq != seq {
		return fmt.Errorf("got %q=%q seq %d, want %q=%q seq %d", r.Key, r.Value, r.Seq, key, value, seq)
	}
	return nil
}

func TestWriteAnywhereReadLocally(t *testing.T) {
	a, b, _ := twoRegions(t)
	sa, sb := store(t, a), store(t, b)

	keys := []string{"order 1", "a.b.c", "x/y>*", "ключ"}
	var puts []data.Record
	for i, k := range keys {
		before := time.Now()
		r, err := sb.Put(ctxT(t, 2*time.Second), k, []byte(fmt.Sprintf("v%d", i)))
		if err != nil {
			t.Fatalf("Put %q through B: %v", k, err)
		}
		if r.Key != k || r.Seq == 0 || r.Time.Before(before.Add(-time.Second)) || r.Time.After(time.Now()) {
			t.Fatalf("Put %q: bad record %+v", k, r)
		}
		if len(puts) > 0 && r.Seq <= puts[len(puts)-1].Seq {
			t.Fatalf("Put %q: seq %d not above %d", k, r.Seq, puts[len(puts)-1].Seq)
		}
		puts = append(puts, r)
	}
	for _, p := range puts {
		if err := wantRecord(t, sa, p.Key, p.Value, p.Seq); err != nil {
			t.Fatalf("Get %q through A: %v", p.Key, err)
		}
	}
	start := time.Now()
	eventually(t, 2*time.Second, "writes readable through B", func() error {
		for _, p := range puts {
			if err := wantRecord(t, sb, p.Key, p.Value, p.Seq); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("B replicated %d writes %v after the last ack", len(puts), time.Since(start))

	for name, s := range map[string]data.Store{"A": sa, "B": sb} {
		got, err := s.List(ctxT(t, time.Second), 0, 100)
		if err != nil {
			t.Fatalf("List through %s: %v", name, err)
		}
		if len(got) != len(puts) {
			t.Fatalf("List through %s: %d records, want %d", name, len(got), len(puts))
		}
		for i, r := range got {
			p := puts[i]
			if r.Key != p.Key || r.Seq != p.Seq || !bytes.Equal(r.Value, p.Value) || !r.Time.Equal(p.Time) {
				t.Errorf("List through %s [%d] = %+v, want %+v", name, i, r, p)
			}
		}
		// Paging: after the first record, at most two.
		page, err := s.List(ctxT(t, time.Second), puts[0].Seq, 2)
		if err != nil || len(page) != 2 || page[0].Seq != puts[1].Seq || page[1].Seq != puts[2].Seq {
			t.Errorf("List through %s after %d limit 2 = %+v, %v", name, puts[0].Seq, page, err)
		}
	}

	if _, err := sb.Get(ctxT(t, time.Second), "missing"); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("Get missing through B: %v, want ErrNotFound", err)
	}
}

// putN writes n unique keys through s and returns the acknowledged records.
func putN(t *testing.T, s data.Store, prefix string, n int) []data.Record {
	t.Helper()
	out := make([]data.Record, 0, n)
	for i := range n {
		k := fmt.Sprintf("%s-%d", prefix, i)
		r, err := s.Put(ctxT(t, 2*time.Second), k, []byte("value of "+k))
		if err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
		out = append(out, r)
	}
	return out
}

// holdsAll reports whether s serves every record of want with its seq.
func holdsAll(t *testing.T, s data.Store, want []data.Record) error {
	t.Helper()
	for _, w := range want {
		if err := wantRecord(t, s, w.Key, w.Value, w.Seq); err != nil {
			return fmt.Errorf("%s: %w", w.Key, err)
		}
	}
	return nil
}

// caughtUp waits until s's status shows it holds the primary's last seq.
func caughtUp(t *testing.T, s data.Store, d time.Duration, seq uint64) data.Status {
	t.Helper()
	var st data.Status
	eventually(t, d, fmt.Sprintf("caught up to seq %d", seq), func() error {
		st = s.Status(ctxT(t, 2*time.Second))
		if st.LastSeq != seq || st.PrimarySeq != seq || st.LagWrites != 0 || st.LagSeconds != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	return st
}

func TestPartitionLagAndCatchUp(t *testing.T) {
	a, b, link := twoRegions(t)
	sa, sb := store(t, a), store(t, b)

	acked := putN(t, sa, "before", 3)
	st := caughtUp(t, sb, 2*time.Second, acked[len(acked)-1].Seq)
	if st.Role != data.RoleSecondary || st.Primary != "A" || !st.Readable || !st.Writable {
		t.Fatalf("B status before the cut: %+v", st)
	}
	if st := sa.Status(ctxT(t, time.Second)); st.Role != data.RolePrimary || !st.Writable || st.LastSeq != 3 || st.PrimarySeq != 3 {
		t.Fatalf("A status: %+v", st)
	}

	// A slow link (500 ms from A to B): a burst of writes at A is seen by
	// B's status before its mirror has it.
	link.SetDelay(500 * time.Millisecond)
	burst := putN(t, sa, "burst", 10)
	acked = append(acked, burst...)
	st = sb.Status(ctxT(t, 3*time.Second))
	if st.PrimarySeq != burst[len(burst)-1].Seq || st.LagWrites == 0 || st.LagWrites != st.PrimarySeq-st.LastSeq ||
		st.LagSeconds < 0.2 || st.LagSeconds > 5 {
		t.Fatalf("B status on a slow link, right after a burst: %+v", st)
	}
	t.Logf("slow link: lag %d writes, %.2fs", st.LagWrites, st.LagSeconds)
	link.SetDelay(0)
	caughtUp(t, sb, 3*time.Second, acked[len(acked)-1].Seq)

	// Cut the link: A keeps taking writes; B serves its reads, refuses
	// writes, and cannot tell how far behind it is.
	link.Cut()
	eventually(t, 5*time.Second, "B unlinked", func() error {
		if up := b.Upstream(); up != "" {
			return fmt.Errorf("upstream %q", up)
		}
		return nil
	})
	during := putN(t, sa, "during", 20)
	acked = append(acked, during...)
	if st := sa.Status(ctxT(t, time.Second)); st.LastSeq != during[len(during)-1].Seq {
		t.Fatalf("A status during the cut: %+v", st)
	}
	began := time.Now()
	st = sb.Status(ctxT(t, 3*time.Second))
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Errorf("B status took %v while the primary is unreachable", took)
	}
	if st.Role != data.RoleSecondary || !st.Readable || st.Writable || st.PrimarySeq != 0 || st.LagWrites != 0 ||
		st.LastSeq != burst[len(burst)-1].Seq || !strings.Contains(st.Detail, "unreachable") {
		t.Fatalf("B status during the cut: %+v", st)
	}
	t.Logf("B during the cut: %s", st.Detail)
	if err := holdsAll(t, sb, acked[:len(acked)-len(during)]); err != nil {
		t.Fatalf("B reads during the cut: %v", err)
	}
	began = time.Now()
	if _, err := sb.Put(ctxT(t, 2*time.Second), "refused", []byte("x")); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through B during the cut: %v, want ErrUnavailable", err)
	} else {
		t.Logf("Put through B during the cut failed in %v: %v", time.Since(began), err)
	}

	// Heal: B catches up with every acknowledged write.
	link.Heal()
	healed := time.Now()
	caughtUp(t, sb, 5*time.Second, acked[len(acked)-1].Seq)
	t.Logf("B caught up %d writes %v after the heal", len(during), time.Since(healed))
	if err := holdsAll(t, sb, acked); err != nil {
		t.Fatalf("B after the heal: %v", err)
	}
	got, err := sb.List(ctxT(t, 2*time.Second), 0, 1000)
	if err != nil || len(got) != len(acked) {
		t.Fatalf("List through B: %d records, %v; want %d", len(got), err, len(acked))
	}
}

func TestSecondaryStartsWhilePrimaryUnreachable(t *testing.T) {
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	promote(t, a, 1)
	acked := putN(t, store(t, a), "early", 3)
	link := newLinkProxy(t, a.LeafAddr())
	link.Cut()
	began := time.Now()
	b := start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{link.Addr()}, Services: services("A")})
	t.Logf("B ready in %v with its primary unreachable", time.Since(began))
	sb := store(t, b)
	st := sb.Status(ctxT(t, 2*time.Second))
	if st.Role != data.RoleSecondary || !st.Readable || st.Writable || st.LastSeq != 0 {
		t.Fatalf("B status before the link: %+v", st)
	}
	if _, err := sb.Get(ctxT(t, time.Second), "early-0"); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("Get through B before the link: %v, want ErrNotFound", err)
	}
	// The controller's Follow cannot reach the primary: it fails (to be
	// retried) but routes B's writes to epoch 1 already.
	if _, err := replica(t, b).Follow(ctxT(t, 2*time.Second), "A", 1); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Follow with the primary unreachable: %v, want ErrUnavailable", err)
	} else {
		t.Logf("Follow with the primary unreachable: %v", err)
	}
	if st := sb.Status(ctxT(t, 2*time.Second)); st.Role != data.RoleSecondary || st.Epoch != 1 || st.Primary != "A" || st.Writable {
		t.Fatalf("B status after a failed Follow: %+v", st)
	}
	if _, err := sb.Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "epoch 1") {
		t.Fatalf("Put through B after a failed Follow: %v, want ErrUnavailable at epoch 1", err)
	}
	// Let the mirror try (and fail) to attach for a while, then heal.
	time.Sleep(time.Second)
	link.Heal()
	healed := time.Now()
	caughtUp(t, sb, 3*time.Second, acked[len(acked)-1].Seq)
	t.Logf("B caught up %v after the link healed", time.Since(healed))
	if d := follow(t, b, "A", 1); d != 0 {
		t.Fatalf("Follow after the heal discarded %d", d)
	}
}

func TestRestartKeepsDataAndResumes(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := start(t, Config{Region: "A", Dir: dirA, Services: services("A")})
	link := newLinkProxy(t, a.LeafAddr())
	bcfg := Config{Region: "B", Dir: dirB, Remotes: []string{link.Addr()}, Services: services("A")}
	b := start(t, bcfg)
	sa := store(t, a)
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	promote(t, a, 1)
	follow(t, b, "A", 1)
	acked := putN(t, store(t, b), "first", 5)
	caughtUp(t, store(t, b), 3*time.Second, acked[len(acked)-1].Seq)

	// Restart B on the same dir and ports while A takes writes.
	bcfg.ClientPort, bcfg.LeafPort = port(t, b.ClientAddr()), port(t, b.LeafAddr())
	b.stop(t)
	acked = append(acked, putN(t, sa, "while-b-down", 5)...)
	began := time.Now()
	b = start(t, bcfg)
	if b.ClientAddr() != fmt.Sprintf("127.0.0.1:%d", bcfg.ClientPort) || b.LeafAddr() != fmt.Sprintf("127.0.0.1:%d", bcfg.LeafPort) {
		t.Fatalf("B restarted on %s / %s, want ports %d / %d", b.ClientAddr(), b.LeafAddr(), bcfg.ClientPort, bcfg.LeafPort)
	}
	caughtUp(t, store(t, b), 3*time.Second, acked[len(acked)-1].Seq)
	t.Logf("B restarted and caught up in %v", time.Since(began))
	if _, err := store(t, b).Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) || !strings.Contains(err.Error(), "no primary known yet") {
		t.Fatalf("Put through B after its restart, before Follow: %v", err)
	}
	if d := follow(t, b, "A", 1); d != 0 {
		t.Fatalf("B's Follow after its restart discarded %d", d)
	}

	// Restart A on the same dir and ports: it comes back fenced, takes no
	// writes until the controller promotes it again; B relinks, writes
	// resume.
	acfg := a.cfg
	acfg.ClientPort, acfg.LeafPort = port(t, a.ClientAddr()), port(t, a.LeafAddr())
	a.stop(t)
	a = start(t, acfg)
	sa = store(t, a)
	if err := holdsAll(t, sa, acked); err != nil {
		t.Fatalf("A after its restart: %v", err)
	}
	if st := sa.Status(ctxT(t, time.Second)); st.Role != data.RoleFenced || st.Writable || !strings.Contains(st.Detail, "no primary known yet") {
		t.Fatalf("A status after its restart: %+v", st)
	}
	if _, err := sa.Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through A after its restart: %v, want ErrUnavailable", err)
	}
	eventually(t, 5*time.Second, "B relinked to A", upstream(b, "A"))
	if _, err := store(t, b).Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through B to the restarted, fenced A: %v, want ErrUnavailable", err)
	}
	promote(t, a, 1)
	var r data.Record
	eventually(t, 5*time.Second, "write through B after A's restart", func() (err error) {
		r, err = store(t, b).Put(ctxT(t, time.Second), "after-restarts", []byte("ok"))
		return err
	})
	if r.Seq != acked[len(acked)-1].Seq+1 {
		t.Fatalf("write after restarts got seq %d, want %d", r.Seq, acked[len(acked)-1].Seq+1)
	}
	acked = append(acked, r)
	st := caughtUp(t, store(t, b), 3*time.Second, r.Seq)
	if st.Detail != "" {
		t.Errorf("B detail after restarts: %q", st.Detail)
	}
	if err := holdsAll(t, store(t, b), acked); err != nil {
		t.Fatalf("B after both restarts: %v", err)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	var p int
	if _, err := fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &p); err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return p
}

func TestErrors(t *testing.T) {
	a, b, _ := twoRegions(t)
	sa, sb := store(t, a), store(t, b)
	caughtUp(t, sb, 3*time.Second, putN(t, sa, "k", 1)[0].Seq)

	for name, s := range map[string]data.Store{"A": sa, "B": sb} {
		if _, err := s.Get(ctxT(t, time.Second), "unknown"); !errors.Is(err, data.ErrNotFound) {
			t.Errorf("%s: Get unknown key: %v, want ErrNotFound", name, err)
		}
		if _, err := s.Put(ctxT(t, time.Second), "", []byte("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Put empty key: %v, want ErrInvalidKey", name, err)
		}
		if got, err := s.List(ctxT(t, time.Second), 100, 10); err != nil || len(got) != 0 {
			t.Errorf("%s: List past the end = %v, %v; want none", name, got, err)
		}
	}
	if _, err := b.Store("nope"); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Errorf("Store(nope): %v", err)
	}

	// Primary stopped: writes through B fail with ErrUnavailable within
	// the deadline; reads through B still work.
	a.stop(t)
	// Put starts nothing that outlives its ctx, so it returns at the
	// deadline; the margin (a tenth of the deadline) is for waking up on a
	// loaded machine, not for work.
	const deadline = 1500 * time.Millisecond
	const margin = deadline / 10
	began := time.Now()
	_, err := sb.Put(ctxT(t, deadline), "k-1", []byte("x"))
	took := time.Since(began)
	if !errors.Is(err, data.ErrUnavailable) || took > deadline+margin {
		t.Fatalf("Put with the primary stopped: %v after %v, want ErrUnavailable within %v (+%v)", err, took, deadline, margin)
	}
	t.Logf("Put with the primary stopped: %v after %v", err, took)
	if _, err := sb.Get(ctxT(t, time.Second), "k-0"); err != nil {
		t.Errorf("Get through B with the primary stopped: %v", err)
	}
	if _, err := sa.Get(ctxT(t, time.Second), "k-0"); !errors.Is(err, data.ErrUnavailable) {
		t.Errorf("Get through stopped A: %v, want ErrUnavailable", err)
	}
	if st := sa.Status(ctxT(t, time.Second)); st.Readable || st.Writable || st.Detail != "engine not running" {
		t.Errorf("status of stopped A: %+v", st)
	}
}

func TestThreeRegionsReparent(t *testing.T) {
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	b := start(t, Config{Region: "B", Dir: t.TempDir(), Remotes: []string{newLinkProxy(t, a.LeafAddr()).Addr()}, Services: services("A")})
	c := start(t, Config{Region: "C", Dir: t.TempDir(), Services: services("A"), Remotes: []string{
		newLinkProxy(t, a.LeafAddr()).Addr(),
		newLinkProxy(t, b.LeafAddr()).Addr(),
	}})
	eventually(t, 5*time.Second, "C linked to A", upstream(c, "A"))
	eventually(t, 5*time.Second, "B linked to A", upstream(b, "A"))
	promote(t, a, 1)
	follow(t, b, "A", 1)
	follow(t, c, "A", 1)

	sb, sc := store(t, b), store(t, c)
	acked := putN(t, sc, "c", 3)
	caughtUp(t, sb, 3*time.Second, acked[len(acked)-1].Seq)
	caughtUp(t, sc, 3*time.Second, acked[len(acked)-1].Seq)

	// A dies: C reconnects to its next remote, B.
	a.stop(t)
	began := time.Now()
	eventually(t, 5*time.Second, "C relinked to B", upstream(c, "B"))
	t.Logf("C relinked to B %v after A stopped", time.Since(began))
	if err := holdsAll(t, sc, acked); err != nil {
		t.Fatalf("C reads after A stopped: %v", err)
	}
	if _, err := sc.Put(ctxT(t, time.Second), "x", nil); !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("Put through C with the primary down: %v, want ErrUnavailable", err)
	}
}

func TestConfigValidation(t *testing.T) {
	valid := Config{Region: "westeurope", Dir: "/tmp/x", Remotes: []string{"127.0.0.1:7422"}, Services: services("westeurope")}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none = valid
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "empty", mutate: func(c *Config) { *c = Config{} }, want: []string{"region: \"\" must be", "dir: required"}},
		{name: "bad region and ports", mutate: func(c *Config) { c.Region = "west.europe"; c.ClientPort = -1; c.LeafPort = 70000 },
			want: []string{`region: "west.europe"`, "clientPort: -1 out of range", "leafPort: 70000 out of range"}},
		{name: "bad remotes", mutate: func(c *Config) { c.Remotes = []string{"nohost", "h:0"} },
			want: []string{`remotes[0]: "nohost"`, `remotes[1]: "h:0" is not host:port`}},
		{name: "no primary hint", mutate: func(c *Config) { c.Services = []Service{{Name: "o"}} }},
		{name: "bad services", mutate: func(c *Config) {
			c.Services = []Service{{Name: "a b", Primary: "x"}, {Name: "o", Primary: "x"}, {Name: "o", Kind: data.KindCache, Primary: "a.b", Replication: "semi"}}
		}, want: []string{`services[0].name: "a b"`, `services[2].name: duplicate service "o"`, `services[2].kind: "cache" is not served`,
			`services[2].primary: "a.b" must be a region name`, `services[2].replication: "semi" is not "async" or "sync"`}},
		{name: "bad regions", mutate: func(c *Config) { c.Services = []Service{{Name: "orders", Regions: []string{"westeurope", "east us"}}} },
			want: []string{`services[0].regions[1]: "east us" must be a region name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			_, err := New(cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New: no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestKeySubjectRoundTrip(t *testing.T) {
	s := newService(nil, "B", Service{Name: "orders", Primary: "A"})
	for _, k := range []string{"a", "a.b", "with space", "*", ">", "ключ", strings.Repeat("k", maxKeyLen)} {
		tok, err := s.keyToken(k)
		if err != nil {
			t.Fatalf("keyToken(%q): %v", k, err)
		}
		subj := s.storedSubject(tok)
		if !strings.HasPrefix(subj, "gs.orders.k.") || strings.Count(subj, ".") != 3 || strings.ContainsAny(subj, " *>") {
			t.Errorf("storedSubject(%q) = %q is not one safe token under gs.orders.k", k, subj)
		}
		if w := s.writeSubject(7, tok); w != "gs.orders.e7."+tok {
			t.Errorf("writeSubject(7, %q) = %q", tok, w)
		}
		if got, err := s.subjectKey(subj); err != nil || got != k {
			t.Errorf("subjectKey(%q) = %q, %v; want %q", subj, got, err, k)
		}
	}
	for _, k := range []string{"", strings.Repeat("k", maxKeyLen+1)} {
		if _, err := s.keyToken(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("keyToken(len %d): %v, want ErrInvalidKey", len(k), err)
		}
	}
	if _, err := s.subjectKey("gs.orders.e1.YQ"); err == nil || !strings.Contains(err.Error(), "foreign subject") {
		t.Errorf("subjectKey of a write subject: %v, want foreign subject", err)
	}
}

// A partition longer than the mirror's 10 s stall check makes the mirror
// re-attach while the primary is unreachable; it must still resume at once
// when the link heals (without the relay it took 25-40 s).
func TestLongPartitionResumesAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("21 s partition")
	}
	t.Parallel() // mostly waiting: overlap it with the failover tests
	a, b, link := twoRegions(t)
	sa, sb := store(t, a), store(t, b)
	acked := putN(t, sa, "before", 2)
	caughtUp(t, sb, 3*time.Second, acked[len(acked)-1].Seq)

	link.Cut()
	for i := range 21 {
		time.Sleep(time.Second)
		acked = append(acked, putN(t, sa, fmt.Sprintf("during-%d", i), 1)...)
	}
	link.Heal()
	healed := time.Now()
	caughtUp(t, sb, 3*time.Second, acked[len(acked)-1].Seq)
	t.Logf("B caught up %d writes %v after a 21 s partition healed", len(acked), time.Since(healed))
	if err := holdsAll(t, sb, acked); err != nil {
		t.Fatal(err)
	}
}

func TestRunFailsOnBusyPort(t *testing.T) {
	a := start(t, Config{Region: "A", Dir: t.TempDir(), Services: services("A")})
	e, err := New(Config{Region: "B", Dir: t.TempDir(), Host: "127.0.0.1", LeafPort: port(t, a.LeafAddr()), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(ctxT(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "jetstream: start server") {
		t.Fatalf("Run on a busy leaf port: %v", err)
	}
	t.Logf("Run on a busy leaf port: %v", err)
	if err := e.Run(ctxT(t, time.Second)); err == nil || !strings.Contains(err.Error(), "Run called twice") {
		t.Fatalf("second Run: %v", err)
	}
}
