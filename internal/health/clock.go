package health

import (
	"sync"
	"time"
)

// Clock is the source of time of a Checker (CONVENTIONS #9): every probe
// schedule, probe timeout and ejection period is a Clock timer, so tests can
// drive them with a FakeClock instead of sleeping. Production uses Real.
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
// Code under test often starts goroutines from timer callbacks (a Checker
// runs each probe in its own goroutine). SetSettle installs a function that
// Advance calls after every callback so that those goroutines finish before
// time moves on; inside a testing/synctest bubble, synctest.Wait is exactly
// that function:
//
//	synctest.Test(t, func(t *testing.T) {
//		clk := health.NewFakeClock(time.Unix(0, 0))
//		clk.SetSettle(synctest.Wait)
//		...
//	})
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

// Pending returns the number of timers not yet run or stopped.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
