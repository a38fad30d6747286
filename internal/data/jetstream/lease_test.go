package jetstream

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
)

// fakeLease is a data.Lease on a manual clock: valid while the clock is
// before its deadline; Done closes only when end is called, as a Held's
// does when its renewal loop notices (here: never on its own, as if the
// holder and its controller were stuck).
type fakeLease struct {
	mu       sync.Mutex
	now      time.Time
	deadline time.Time
	done     chan struct{}
	once     sync.Once
}

var _ data.Lease = (*fakeLease)(nil)

func newFakeLease(ttl time.Duration) *fakeLease {
	now := time.Unix(1e9, 0)
	return &fakeLease{now: now, deadline: now.Add(ttl), done: make(chan struct{})}
}

func (l *fakeLease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now.Before(l.deadline)
}

func (l *fakeLease) Done() <-chan struct{} { return l.done }

func (l *fakeLease) advance(d time.Duration) {
	l.mu.Lock()
	l.now = l.now.Add(d)
	l.mu.Unlock()
}

func (l *fakeLease) end() { l.once.Do(func() { close(l.done) }) }

// TestLeaseEndRefusesAcknowledgement: a primary acknowledges no write once
// its lease's deadline has passed, although nobody fenced it (its
// controller is stuck in a step): a sync write that was in flight at the
// deadline is refused when its confirmation arrives, and new writes are
// refused at once. When the lease ends (Done), the replica fences itself,
// so writes from the other region are refused too.
func TestLeaseEndRefusesAcknowledgement(t *testing.T) {
	t.Parallel()
	a, b, link := syncPair(t)
	const ttl = 3 * time.Second
	lease := newFakeLease(ttl)
	if err := replica(t, a).Promote(ctxT(t, 5*time.Second), 1, lease); err != nil {
		t.Fatal(err)
	}
	follow(t, b, "A", 1)
	sa, sb := store(t, a), store(t, b)
	if _, err := sa.Put(ctxT(t, 5*time.Second), "before", []byte("x")); err != nil {
		t.Fatalf("Put with a valid lease: %v", err)
	}

	// In flight at the deadline: B cannot confirm while the link is cut;
	// the deadline passes; the link heals and B confirms.
	link.Cut()
	eventually(t, 5*time.Second, "B unlinked", upstream(b, ""))
	type result struct {
		rec data.Record
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := sa.Put(ctxT(t, 10*time.Second), "in-flight", []byte("x"))
		inflight <- result{r, err}
	}()
	time.Sleep(200 * time.Millisecond) // published, waiting for B
	lease.advance(ttl)
	if lease.Valid() {
		t.Fatal("fake lease still valid after its ttl")
	}
	link.Heal()
	eventually(t, 10*time.Second, "B relinked", upstream(b, "A"))
	res := <-inflight
	if res.err == nil || !errors.Is(res.err, data.ErrLeaseEnded) || !errors.Is(res.err, data.ErrUnavailable) {
		t.Fatalf("write in flight at the deadline: %+v, %v; want ErrLeaseEnded (outcome unknown)", res.rec, res.err)
	}
	t.Logf("write in flight at the deadline: %v", res.err)
	if pos, _ := replica(t, b).Position(ctxT(t, time.Second)); pos < 2 {
		t.Logf("B at %d (the refused write may or may not be stored)", pos)
	}

	// After the deadline, before anyone fenced: refused before sending.
	if _, err := sa.Put(ctxT(t, time.Second), "after", []byte("x")); !errors.Is(err, data.ErrLeaseEnded) || !errors.Is(err, data.ErrFenced) {
		t.Fatalf("Put after the deadline: %v, want ErrFenced and ErrLeaseEnded", err)
	}

	// The lease ends: the replica fences itself, B's writes reach no stream.
	ended := time.Now()
	lease.end()
	eventually(t, 5*time.Second, "A fenced by its lease's end", func() error {
		if st := sa.Status(ctxT(t, time.Second)); st.Role != data.RoleFenced {
			return errors.New("A is " + string(st.Role))
		}
		return nil
	})
	t.Logf("A fenced %v after its lease ended", time.Since(ended).Round(time.Millisecond))
	if _, err := sb.Put(ctxT(t, 2*time.Second), "via-b", []byte("x")); err == nil {
		t.Fatal("a write through B was acknowledged after A's lease ended")
	}
}
