package health

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Clock is the source of time of a Checker: every probe schedule, probe
// timeout and ejection period is a Clock timer, so tests drive them with a
// FakeClock instead of sleeping, including tests that run real servers
// over real sockets (the front door's, the GSLB's). Production uses Real.
// It is the one way geostamp's tests control time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (Real) or from Advance
	// (FakeClock) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started yet and reports whether
	// it did so.
	Stop() bool
}

// Real is the system clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

var (
	_ Clock = realClock{}
	_ Clock = (*FakeClock)(nil)
	_ Timer = (*time.Timer)(nil)
	_ Timer = (*fakeTimer)(nil)
)

// FakeClock is a Clock for tests: time stands still until Advance moves it.
// It is safe for concurrent use, but Advance itself must be called from one
// goroutine at a time.
//
// Timer callbacks run synchronously inside Advance, in the order of their
// due time (then of their creation), each with Now equal to its due time. A
// timer created with a zero or negative duration is due at once and runs at
// the next Advance (Advance(0) is enough), never inside AfterFunc itself.
//
// Code under test often starts goroutines from timer callbacks: a Checker
// runs each probe in its own goroutine. SetSettle installs a function that
// Advance calls after every callback so that those goroutines finish before
// time moves on; SettleProbes installs the one a Checker needs:
//
//	clk := health.NewFakeClock(time.Unix(0, 0))
//	c, _ := health.New(health.Config{Clock: clk, ...}, targets)
//	clk.SettleProbes(c, nil)
//	go c.Run(ctx)
//	clk.WaitPending(len(targets)) // Run has scheduled the first probes
//	clk.Advance(0)                // they ran, and their results counted
type FakeClock struct {
	advance sync.Mutex // serialises Advance
	mu      sync.Mutex // guards the fields below
	now     time.Time
	seq     uint64
	timers  []*fakeTimer
	settle  func()
}

type fakeTimer struct {
	clock *FakeClock
	when  time.Time
	seq   uint64
	f     func()
}

// NewFakeClock returns a FakeClock whose Now is t0.
func NewFakeClock(t0 time.Time) *FakeClock { return &FakeClock{now: t0} }

// SetSettle sets the function Advance calls after each timer callback (nil:
// none). See FakeClock.
func (c *FakeClock) SetSettle(f func()) {
	c.mu.Lock()
	c.settle = f
	c.mu.Unlock()
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to run from Advance once the fake time reaches
// Now()+d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{clock: c, when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop removes the timer if it is still pending.
func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the fake time forward by d (a negative d counts as 0),
// running every timer that falls due on the way, in order, including timers
// created by the callbacks themselves.
func (c *FakeClock) Advance(d time.Duration) {
	c.advance.Lock()
	defer c.advance.Unlock()
	c.mu.Lock()
	end := c.now.Add(max(d, 0))
	c.mu.Unlock()
	for {
		c.mu.Lock()
		next := -1
		for i, t := range c.timers {
			if !t.when.After(end) && (next < 0 || t.when.Before(c.timers[next].when) ||
				t.when.Equal(c.timers[next].when) && t.seq < c.timers[next].seq) {
				next = i
			}
		}
		if next < 0 {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[next]
		c.timers = append(c.timers[:next], c.timers[next+1:]...)
		if t.when.After(c.now) {
			c.now = t.when
		}
		settle := c.settle
		c.mu.Unlock()
		t.f()
		if settle != nil {
			settle()
		}
	}
}

// settleLimit bounds, in real time, the waits of SettleProbes and
// WaitPending: what they wait for takes microseconds, so reaching it means
// a probe that never returns (a bug in the test's Prober, or a deadlock).
const settleLimit = 10 * time.Second

// SettleProbes makes Advance wait, after each timer callback, until c has
// recorded every probe it started but the ones its Prober is holding on
// purpose (a probe that hangs until its timeout): held() of them, none
// when held is nil. It panics when that takes longer than settleLimit.
func (c *FakeClock) SettleProbes(chk *Checker, held func() int) {
	settled := func() bool {
		n := 0
		if held != nil {
			n = held()
		}
		return chk.Probing() <= n
	}
	c.SetSettle(func() {
		waitUntil(settled, func() string { return fmt.Sprintf("health: %d probes still in flight", chk.Probing()) })
	})
}

// WaitPending waits until at least n timers are pending: for a Run started
// in another goroutine to schedule its first probes. It panics when that
// takes longer than settleLimit.
func (c *FakeClock) WaitPending(n int) {
	waitUntil(func() bool { return c.Pending() >= n },
		func() string { return fmt.Sprintf("health: %d timers pending, want %d", c.Pending(), n) })
}

// waitUntil yields until done reports true, in real time.
func waitUntil(done func() bool, what func() string) {
	limit := time.Now().Add(settleLimit)
	for !done() {
		if time.Now().After(limit) {
			panic(what() + " after " + settleLimit.String())
		}
		runtime.Gosched()
	}
}

// Pending returns the number of timers not yet run or stopped.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
