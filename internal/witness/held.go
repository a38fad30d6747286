package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ended is the deadline of a Held that has stopped for good.
const ended = math.MinInt64

// Held is a live grant: it renews the lease and says whether the holder may
// act as the owner (primary) now. Valid turns false by the holder's own
// monotonic clock before the lease can have expired at the authority (see
// the package doc), and once false it stays false: to own the group again,
// acquire a new epoch.
//
// A Held uses the real monotonic clock on purpose: its deadline is a safety
// property measured against the authority's clock, which a fake clock
// cannot stand for. Code that schedules around a Held (a failover state
// machine) can take a clock of its own and consult Valid, Done and Epoch.
type Held struct {
	a      *Authority
	g      Grant
	timing Timing
	log    *slog.Logger
	base   time.Time // monotonic origin of deadline and renewed

	// deadline is D - base in nanoseconds (valid while time.Since(base) <
	// deadline), or ended.
	deadline atomic.Int64
	renewed  atomic.Int64 // send time of the last confirmed renewal - base

	mu   sync.Mutex
	err  error // why it ended; set once, before done is closed
	done chan struct{}

	cancel   context.CancelFunc // stops the renewal loop
	loopDone chan struct{}
}

// Hold starts keeping g alive: one confirmed renewal now (its deadline
// counts from that renewal, so a grant may be held by another process than
// the one that obtained it), then one every Timing(g.TTL).Renew until ctx
// ends, the lease is lost, or Release. It fails with ErrExpired or
// ErrFenced if g is no longer the group's owner, ErrNoQuorum if the
// authority does not confirm it within TTL-Margin.
func (a *Authority) Hold(ctx context.Context, g Grant) (*Held, error) {
	op := fmt.Sprintf("hold %s epoch %d for %s", g.Group, g.Epoch, g.Holder)
	if err := errors.Join(checkName("group", g.Group), checkName("holder", g.Holder)); err != nil {
		return nil, fmt.Errorf("witness: %s: %w", op, err)
	}
	if g.Epoch == 0 || g.LeaseID == 0 {
		return nil, fmt.Errorf("witness: %s: not a grant (epoch %d, lease %x)", op, g.Epoch, g.LeaseID)
	}
	tm, err := a.Timing(g.TTL)
	if err != nil {
		return nil, fmt.Errorf("witness: %s: %w", op, err)
	}
	h := &Held{
		a:        a,
		g:        g,
		timing:   tm,
		log:      a.log.With("group", g.Group, "holder", g.Holder, "epoch", g.Epoch),
		base:     time.Now(),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	sent := time.Now()
	fctx, cancel := context.WithTimeout(ctx, tm.TTL-tm.Margin)
	ttl, err := a.renew(fctx, g)
	cancel()
	if err != nil {
		return nil, err
	}
	if !h.extend(sent, ttl) || !h.Valid() {
		return nil, fmt.Errorf("witness: %s: %w: the first renewal took longer than ttl-margin", op, ErrExpired)
	}
	lctx, lcancel := context.WithCancel(ctx)
	h.cancel = lcancel
	go h.loop(lctx)
	h.log.Info("witness lease held", "ttl", tm.TTL, "margin", tm.Margin, "renew", tm.Renew)
	return h, nil
}

// Valid reports whether the holder may act as the owner now: a confirmed
// renewal was sent less than TTL-Margin ago and the Held has not ended.
// It costs one atomic load and one monotonic clock read; call it before
// acknowledging every write.
func (h *Held) Valid() bool {
	return time.Since(h.base) < time.Duration(h.deadline.Load())
}

// Epoch is the fencing epoch of the grant.
func (h *Held) Epoch() uint64 { return h.g.Epoch }

// Grant is the grant being held.
func (h *Held) Grant() Grant { return h.g }

// Timing is the pacing of this lease.
func (h *Held) Timing() Timing { return h.timing }

// Deadline is the local time until which the Held is valid unless renewed
// again, or the zero time once it has ended.
func (h *Held) Deadline() time.Time {
	d := h.deadline.Load()
	if d == ended {
		return time.Time{}
	}
	return h.base.Add(time.Duration(d))
}

// Renewed is the send time of the last confirmed renewal.
func (h *Held) Renewed() time.Time { return h.base.Add(time.Duration(h.renewed.Load())) }

// Done is closed when the Held has ended; Valid is false from then on.
func (h *Held) Done() <-chan struct{} { return h.done }

// Err is nil while the Held runs, then why it ended: ErrExpired, ErrFenced,
// ErrReleased, or the context's error.
func (h *Held) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Check returns nil if the Held is valid and its epoch is still the latest
// at the authority (a linearizable read): the strict check before
// acknowledging a write. Otherwise it returns ErrFenced if the authority
// knows a newer epoch, else why the Held is not valid.
func (h *Held) Check(ctx context.Context) error {
	if h.Valid() {
		return h.a.Check(ctx, h.g.Group, h.g.Epoch)
	}
	// Not valid any more: say fenced if the authority knows a newer epoch
	// (the more useful answer), else why the Held ended.
	if err := h.a.Check(ctx, h.g.Group, h.g.Epoch); errors.Is(err, ErrFenced) {
		return err
	}
	if err := h.Err(); err != nil {
		return err
	}
	return fmt.Errorf("witness: %s epoch %d: %w: past its deadline", h.g.Group, h.g.Epoch, ErrExpired)
}

// Release stops acting at once (Valid is false when it is called), stops
// renewing and revokes the lease, so another holder can acquire the group
// without waiting for the TTL.
func (h *Held) Release(ctx context.Context) error {
	h.end(fmt.Errorf("witness: %s epoch %d: %w", h.g.Group, h.g.Epoch, ErrReleased))
	<-h.loopDone
	return h.a.Release(ctx, h.g)
}

// Transfer hands the group to holder to with a new lease of ttl and the
// next epoch (planned failover). It stops acting first (Valid is false when
// it is called) and keeps its lease until the transfer commits, so no one
// else can acquire in between. If the transfer fails, the group stays
// owned by this (ended) grant until its lease expires.
func (h *Held) Transfer(ctx context.Context, to string, ttl time.Duration) (Grant, error) {
	h.end(fmt.Errorf("witness: %s epoch %d: %w: transferring to %s", h.g.Group, h.g.Epoch, ErrReleased, to))
	<-h.loopDone
	g := h.g
	return h.a.claim(ctx, claim{op: "transfer", group: g.Group, holder: to, from: g.Holder, ttl: ttl, expect: &g})
}

// extend moves the deadline to sent+ttl-margin unless it is already later
// or the Held has ended; it reports whether the Held is still running.
func (h *Held) extend(sent time.Time, ttl time.Duration) bool {
	at := sent.Sub(h.base)
	nd := int64(at + ttl - h.timing.Margin)
	for {
		cur := h.deadline.Load()
		if cur == ended {
			return false
		}
		if nd <= cur {
			return true
		}
		if h.deadline.CompareAndSwap(cur, nd) {
			h.renewed.Store(int64(at))
			return true
		}
	}
}

// end stops the Held for good: first Valid turns false, then Done closes.
// It reports whether this call ended it (the first reason is kept).
func (h *Held) end(err error) bool {
	h.deadline.Store(ended)
	h.mu.Lock()
	first := h.err == nil
	if first {
		h.err = err
		close(h.done)
	}
	h.mu.Unlock()
	if h.cancel != nil {
		h.cancel()
	}
	if first {
		h.log.Info("witness lease ended", "reason", err)
	}
	return first
}

// loop renews the lease until the Held ends.
func (h *Held) loop(ctx context.Context) {
	defer close(h.loopDone)
	tm := h.timing
	next := h.Renewed().Add(tm.Renew)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			h.end(fmt.Errorf("witness: %s epoch %d: stopped: %w", h.g.Group, h.g.Epoch, context.Cause(ctx)))
			return
		case <-timer.C:
		}
		if !h.Valid() {
			// Expired, unless Release or Transfer ended it just now: those
			// own the lease from then on (Transfer still needs it).
			if h.end(fmt.Errorf("witness: %s epoch %d: %w: no confirmed renewal since %s (last error: %v)",
				h.g.Group, h.g.Epoch, ErrExpired, h.Renewed().Format(time.RFC3339Nano), lastErr)) {
				h.a.revoke(context.Background(), clientv3.LeaseID(h.g.LeaseID)) // best effort: frees the group sooner
			}
			return
		}
		if wait := time.Until(next); wait > 0 { // woke up for the deadline only
			timer.Reset(min(wait, time.Until(h.Deadline())))
			continue
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, minTime(sent.Add(tm.Renew), h.Deadline()))
		ttl, err := h.a.renew(rctx, h.g)
		cancel()
		switch {
		case err == nil:
			if h.a.onRenew != nil {
				h.a.onRenew(h.g.Group, time.Since(sent))
			}
			h.extend(sent, ttl)
			next = sent.Add(tm.Renew)
			lastErr = nil
		case errors.Is(err, ErrFenced), errors.Is(err, ErrExpired):
			h.end(err)
			return
		case ctx.Err() != nil:
			continue // reported at the top of the loop
		default:
			if lastErr == nil {
				h.log.Warn("witness renewal failed; retrying", "err", err, "deadline", h.Deadline())
			}
			lastErr = err
			next = time.Now().Add(tm.Retry)
		}
		dl := h.Deadline()
		if dl.IsZero() {
			return // ended concurrently (Release)
		}
		timer.Reset(max(0, min(time.Until(next), time.Until(dl))))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
