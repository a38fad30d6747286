package postgres

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
)

// switchLease is a data.Lease the test ends by hand: expire makes Valid
// false (the holder's deadline passed), end closes Done (its renewal loop
// noticed). Between the two, nothing else happens on its own, as with a
// controller stuck in a step.
type switchLease struct {
	expired atomic.Bool
	done    chan struct{}
	once    sync.Once
}

func (l *switchLease) Valid() bool           { return !l.expired.Load() }
func (l *switchLease) Done() <-chan struct{} { return l.done }
func (l *switchLease) end()                  { l.once.Do(func() { close(l.done) }) }

// TestLeaseEndRefusesAcknowledgement: a primary acknowledges no write once
// its lease is no longer valid, although nobody fenced it: a sync commit in
// flight at the deadline is not acknowledged when the standby confirms it,
// and new writes are refused at once. When the lease ends (Done) the
// instance fences itself, so the other region's writes are refused too.
func TestLeaseEndRefusesAcknowledgement(t *testing.T) {
	t.Parallel()
	services := []Service{{Name: "orders", Replication: ReplicationSync}}
	l := newLab(t, services, "A", "B")
	l.bootstrap("A", services)
	a, b := l.replica("A", "orders"), l.replica("B", "orders")
	lease := &switchLease{done: make(chan struct{})}
	if err := a.Promote(ctxT(t, 10*time.Second), 1, lease); err != nil { // same epoch: takes the lease
		t.Fatal(err)
	}
	put(t, a, "before", "x")
	positionIs(t, b, 1, 20*time.Second)

	l.link("A", "B").CutBoth()
	inflight := make(chan error, 1)
	go func() {
		_, err := a.Put(ctxT(t, 20*time.Second), "in-flight", []byte("x"))
		inflight <- err
	}()
	time.Sleep(300 * time.Millisecond) // committed locally, waiting for B
	lease.expired.Store(true)
	l.link("A", "B").HealBoth()
	if err := <-inflight; !errors.Is(err, data.ErrLeaseEnded) || !errors.Is(err, data.ErrUnavailable) {
		t.Fatalf("write in flight at the deadline: %v; want ErrLeaseEnded (outcome unknown)", err)
	} else {
		t.Logf("write in flight at the deadline: %v", err)
	}
	if _, err := a.Put(ctxT(t, 2*time.Second), "after", []byte("x")); !errors.Is(err, data.ErrLeaseEnded) || !errors.Is(err, data.ErrFenced) {
		t.Fatalf("Put after the deadline: %v, want ErrFenced and ErrLeaseEnded", err)
	}
	ended := time.Now()
	lease.end()
	eventually(t, 10*time.Second, "A fenced by its lease's end", func() error {
		if _, err := b.Put(ctxT(t, 2*time.Second), "via-b", []byte("x")); !errors.Is(err, data.ErrFenced) {
			return errors.New("write through B: not refused as fenced")
		}
		return nil
	})
	t.Logf("writes through B refused %v after A's lease ended", time.Since(ended).Round(time.Millisecond))
	if st := a.Status(ctxT(t, 2*time.Second)); st.Writable {
		t.Errorf("A still writable after its lease ended: %+v", st)
	}
}
