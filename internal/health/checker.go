package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Statuses of a target, used in TargetState.Status and Event.From/To.
const (
	// StatusUnknown: not probed yet. An unknown target is not Healthy.
	StatusUnknown = "unknown"
	// StatusHealthy: the decision rule says the target is up.
	StatusHealthy = "healthy"
	// StatusUnhealthy: the decision rule says the target is down.
	StatusUnhealthy = "unhealthy"
	// StatusEjected is the To of an ejection event (passive signal).
	StatusEjected = "ejected"
	// StatusRestored is the To of the event that ends an ejection; the
	// target's probe status applies again.
	StatusRestored = "restored"
)

// ErrRunning is returned by a second call of Run.
var ErrRunning = errors.New("health: Run called more than once")

// Outcome is the result of one real request to a target, reported to
// Checker.Report by the component that sent it (the front door).
type Outcome uint8

// Outcomes. Every outcome other than Success counts as a failure.
const (
	// Success: the target answered (any status below 500).
	Success Outcome = iota
	// ConnectError: no connection could be made (refused, reset, no route).
	ConnectError
	// ServerError: the target answered with a 5xx status.
	ServerError
	// Timeout: the target did not answer in time.
	Timeout
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ConnectError:
		return "connect error"
	case ServerError:
		return "server error"
	case Timeout:
		return "timeout"
	}
	return "outcome " + strconv.Itoa(int(o))
}

// Event is one state change of a target.
type Event struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target"`
	// From and To are statuses: unknown, healthy or unhealthy for probe
	// verdicts; an ejection goes from the probe status to "ejected", and its
	// end from "ejected" to "restored".
	From string `json:"from"`
	To   string `json:"to"`
	// Reason explains the change, e.g. "3 of last 4 probes failed: dial tcp
	// 127.0.1.1:8080: connect: connection refused".
	Reason string `json:"reason"`
	// Healthy is what Checker.Healthy reports for the target right after
	// the change (probe status healthy and not ejected).
	Healthy bool `json:"healthy"`
}

// TargetState is a snapshot of one target. In JSON, RTT is a duration
// string such as "3.2ms".
type TargetState struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Status is the verdict of the probes: unknown, healthy or unhealthy.
	Status string `json:"status"`
	// Healthy is Status == healthy and not Ejected: what Checker.Healthy
	// reports.
	Healthy bool `json:"healthy"`
	// Ejected is true while a passive ejection lasts, until EjectedUntil.
	Ejected      bool      `json:"ejected"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Ejections counts the target's ejections since it was added.
	Ejections int `json:"ejections"`
	// RTT is the smoothed probe round trip (see Checker.RTT).
	RTT topology.Duration `json:"rtt"`
	// LastProbe is when the last probe ended, with its HTTP status (0 when
	// none) and error ("" when it passed).
	LastProbe  time.Time `json:"last_probe,omitzero"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	// Recent lists, oldest first, the outcomes (true: passed) of the probes
	// the decision rule looks at: the last SampleSize probes (window rule)
	// or the last ToleratedFailures+1 (consecutive rule); fewer at first.
	Recent []bool `json:"recent"`
	// History lists the target's last Config.History events, oldest first.
	History []Event `json:"history"`
}

// RTTWeight is the weight of a new sample in the RTT moving average:
// rtt ← rtt + RTTWeight×(sample − rtt). The first sample is taken as is.
const RTTWeight = 0.3

// Checker probes targets and decides which are healthy; see the package
// documentation. Its methods are safe for concurrent use; Healthy, RTT and
// Report (with Success) are lock-free and meant for the request path.
type Checker struct {
	cfg    Config
	log    *slog.Logger
	clock  Clock
	prober Prober

	set atomic.Pointer[targetSet] // replaced whole by SetTargets

	mu      sync.Mutex // guards the fields below and membership changes; taken before any target.mu
	running bool
	done    bool            // Run has returned or is returning
	ctx     context.Context // Run's
	ejected int             // targets ejected now
	wg      sync.WaitGroup  // probe goroutines

	subMu   sync.RWMutex // guards subs; taken after target.mu
	subs    []*subscription
	dropped atomic.Uint64
}

type targetSet struct {
	order  []*target
	byName map[string]*target
}

type subscription struct {
	ch      chan Event
	dropped atomic.Uint64
}

// target is the state of one Target. The atomics are the lock-free view
// used by the request path; the rest is guarded by mu.
type target struct {
	Target

	healthy  atomic.Bool  // status == healthy && !ejected
	ejectNow atomic.Bool  // == ejected
	rtt      atomic.Int64 // smoothed latency, ns; 0: none yet
	errs     atomic.Int64 // consecutive failed requests (passive)

	mu      sync.Mutex
	removed bool // dropped by SetTargets
	// probing state
	probing  bool            // Run schedules probes
	ctx      context.Context // parent of probe contexts
	timer    Timer           // next probe
	inflight bool
	seq      uint64 // identifies the in-flight probe
	started  time.Time
	cancel   context.CancelFunc
	deadline Timer
	// probe verdict
	status     string
	recent     ring
	failures   int // consecutive failed probes
	lastProbe  time.Time
	lastStatus int
	lastErr    string
	// passive ejection
	ejected      bool
	ejectedUntil time.Time
	ejectedFor   time.Duration
	ejections    int
	streak       int // doublings of the next ejection
	restoredAt   time.Time
	ejectTimer   Timer

	history []Event
}

// ring holds the outcomes of the last len(buf) probes. The first outcome
// fills it whole (see the package documentation); n counts real probes.
type ring struct {
	buf    []bool
	next   int // slot of the next outcome (the oldest when full)
	n      int // real outcomes recorded, at most len(buf)
	passes int // true entries in buf
}

func (r *ring) add(pass bool) {
	if r.n == 0 {
		for i := range r.buf {
			r.buf[i] = pass
		}
		r.passes = 0
		if pass {
			r.passes = len(r.buf)
		}
	} else {
		if r.buf[r.next] {
			r.passes--
		}
		r.buf[r.next] = pass
		if pass {
			r.passes++
		}
	}
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// real returns the real outcomes, oldest first.
func (r *ring) real() []bool {
	out := make([]bool, r.n)
	for i := range out {
		out[i] = r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)]
	}
	return out
}

// New fills cfg's defaults, validates it and the targets, and returns a
// Checker. It has no side effects: nothing is probed until Run.
func New(cfg Config, targets []Target) (*Checker, error) {
	cfg.setDefaults()
	if err := errors.Join(cfg.Validate(), validateTargets(targets, cfg.Prober == nil)); err != nil {
		return nil, fmt.Errorf("health: invalid config: %w", err)
	}
	cfg.Expect = append([]int(nil), cfg.Expect...)
	cfg.Header = cfg.Header.Clone()
	c := &Checker{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "health"),
		clock:  cfg.Clock,
		prober: cfg.Prober,
	}
	if c.prober == nil {
		c.prober = &HTTPProber{Method: cfg.Method, Expect: cfg.Expect, Header: cfg.Header, Client: cfg.Client}
	}
	set := &targetSet{byName: make(map[string]*target, len(targets))}
	for _, tg := range targets {
		t := c.newTarget(tg)
		set.order = append(set.order, t)
		set.byName[t.Name] = t
	}
	c.set.Store(set)
	return c, nil
}

func validateTargets(targets []Target, needURL bool) error {
	var errs []error
	seen := make(map[string]bool, len(targets))
	for i, t := range targets {
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("targets[%d].name: required", i))
		case seen[t.Name]:
			errs = append(errs, fmt.Errorf("targets[%d].name: %q is already used", i, t.Name))
		}
		seen[t.Name] = true
		if !needURL {
			continue
		}
		u, err := url.Parse(t.URL)
		switch {
		case t.URL == "":
			errs = append(errs, fmt.Errorf("targets[%d].url: required", i))
		case err != nil:
			errs = append(errs, fmt.Errorf("targets[%d].url: %w", i, err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("targets[%d].url: %q must be an http:// or https:// URL with a host", i, t.URL))
		}
	}
	return errors.Join(errs...)
}

func (c *Checker) newTarget(tg Target) *target {
	n := c.cfg.SampleSize
	if c.cfg.Consecutive {
		n = c.cfg.ToleratedFailures + 1
	}
	return &target{Target: tg, status: StatusUnknown, recent: ring{buf: make([]bool, n)}}
}

// Run probes every target on its own schedule until ctx ends, then stops
// probing, cancels probes in flight, waits for them and returns nil. Probes
// of different targets run concurrently; probes of one target never
// overlap. Passive ejection (Report) works whether or not Run is running.
// Run may be called once; a second call returns ErrRunning.
func (c *Checker) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return ErrRunning
	}
	c.running = true
	c.ctx = ctx
	set := c.set.Load()
	for _, t := range set.order {
		c.start(t)
	}
	c.mu.Unlock()
	c.log.Info("probing", "targets", len(set.order), "rule", c.rule(), "interval", c.cfg.Interval, "timeout", c.cfg.Timeout)

	<-ctx.Done()

	c.mu.Lock()
	c.done = true
	for _, t := range c.set.Load().order {
		t.mu.Lock()
		c.stopLocked(t)
		t.mu.Unlock()
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.log.Info("probing stopped", "cause", context.Cause(ctx))
	return nil
}

func (c *Checker) rule() string {
	if c.cfg.Consecutive {
		return fmt.Sprintf("unhealthy after %d consecutive failures", c.cfg.ToleratedFailures+1)
	}
	return fmt.Sprintf("healthy when %d of last %d pass", c.cfg.SuccessfulSamples, c.cfg.SampleSize)
}

// start schedules t's first probe, a random fraction [0, Jitter) of
// Interval from now. c.mu is held.
func (c *Checker) start(t *target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probing = true
	t.ctx = c.ctx
	delay := time.Duration(0)
	if c.cfg.Jitter > 0 {
		delay = time.Duration(float64(c.cfg.Interval) * c.cfg.Jitter * rand.Float64())
	}
	t.timer = c.clock.AfterFunc(delay, func() { c.fire(t) })
}

// stopLocked stops probing t and abandons its probe in flight, if any.
func (c *Checker) stopLocked(t *target) {
	t.probing = false
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.inflight {
		t.inflight = false
		t.deadline.Stop()
		t.cancel()
	}
}

// fire starts a probe of t: the prober runs in its own goroutine, and a
// Clock timer records a timeout if it has not answered after Timeout.
func (c *Checker) fire(t *target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.probing || t.inflight {
		return
	}
	t.seq++
	seq := t.seq
	t.inflight = true
	t.started = c.clock.Now()
	ctx, cancel := context.WithCancel(t.ctx)
	t.cancel = cancel
	t.deadline = c.clock.AfterFunc(c.cfg.Timeout, func() {
		c.finish(t, seq, Result{Err: timeoutError{c.cfg.Timeout}}, true)
	})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		r := c.prober.Probe(ctx, t.Target)
		c.finish(t, seq, r, false)
	}()
}

// finish records the result of probe seq of t, unless that probe has
// already been settled (timed out, abandoned), and schedules the next one:
// Interval (FastInterval while unhealthy), less jitter, after the start of
// this one, or at once if that moment has passed.
func (c *Checker) finish(t *target, seq uint64, r Result, timedOut bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.inflight || t.seq != seq {
		return
	}
	t.inflight = false
	if !timedOut {
		t.deadline.Stop()
	}
	t.cancel()
	now := c.clock.Now()
	c.recordLocked(t, r, now)
	if !t.probing {
		return
	}
	gap := c.cfg.Interval
	if t.status == StatusUnhealthy {
		gap = c.cfg.FastInterval
	}
	if c.cfg.Jitter > 0 {
		gap -= time.Duration(float64(gap) * c.cfg.Jitter * rand.Float64())
	}
	t.timer = c.clock.AfterFunc(t.started.Add(gap).Sub(now), func() { c.fire(t) })
}

// recordLocked applies one probe result to t's verdict.
func (c *Checker) recordLocked(t *target, r Result, now time.Time) {
	pass := r.Err == nil
	first := t.recent.n == 0
	prevFailures := t.failures
	t.recent.add(pass)
	t.lastProbe, t.lastStatus = now, r.Status
	if pass {
		t.failures = 0
		t.lastErr = ""
		if r.Latency > 0 {
			old := t.rtt.Load()
			if old == 0 {
				t.rtt.Store(int64(r.Latency))
			} else {
				t.rtt.Store(old + int64(RTTWeight*float64(int64(r.Latency)-old)))
			}
		}
	} else {
		t.failures++
		t.lastErr = r.Err.Error()
	}

	to, reason := t.status, ""
	switch {
	case first && pass:
		to, reason = StatusHealthy, "first probe passed ("+describe(r)+")"
	case first:
		to, reason = StatusUnhealthy, "first probe failed: "+t.lastErr
	case !c.cfg.Consecutive:
		size := len(t.recent.buf)
		if t.recent.passes >= c.cfg.SuccessfulSamples {
			to = StatusHealthy
			reason = fmt.Sprintf("%d of last %d probes passed (%s)", t.recent.passes, size, describe(r))
		} else {
			to = StatusUnhealthy
			reason = fmt.Sprintf("%d of last %d probes failed: %s", size-t.recent.passes, size, t.lastErr)
			if pass {
				reason = fmt.Sprintf("%d of last %d probes failed (need %d to pass)", size-t.recent.passes, size, c.cfg.SuccessfulSamples)
			}
		}
	case pass:
		to, reason = StatusHealthy, fmt.Sprintf("probe passed (%s) after %d failures", describe(r), prevFailures)
	case t.status == StatusHealthy && t.failures > c.cfg.ToleratedFailures:
		to = StatusUnhealthy
		reason = fmt.Sprintf("%d consecutive probes failed (%d tolerated): %s", t.failures, c.cfg.ToleratedFailures, t.lastErr)
	}
	if to == t.status {
		return
	}
	from := t.status
	t.status = to
	c.emitLocked(t, now, from, to, reason)
}

func describe(r Result) string {
	if r.Status == 0 {
		return "passed"
	}
	return "status " + strconv.Itoa(r.Status)
}

// emitLocked updates t's lock-free health and records, logs and publishes
// an event. t.mu is held, so a target's events are published in order.
func (c *Checker) emitLocked(t *target, now time.Time, from, to, reason string) {
	healthy := t.status == StatusHealthy && !t.ejected
	t.healthy.Store(healthy)
	ev := Event{Time: now, Target: t.Name, From: from, To: to, Reason: reason, Healthy: healthy}
	t.history = append(t.history, ev)
	if len(t.history) > c.cfg.History {
		t.history = t.history[1:]
	}
	level := slog.LevelInfo
	if to == StatusUnhealthy || to == StatusEjected {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "target "+to, "target", t.Name, "from", from, "reason", reason, "healthy", healthy)

	c.subMu.RLock()
	defer c.subMu.RUnlock()
	for _, s := range c.subs {
		select {
		case s.ch <- ev:
		default:
			c.dropped.Add(1)
			if s.dropped.Add(1) == 1 {
				c.log.Warn("event subscriber too slow: dropping events", "buffer", cap(s.ch))
			}
		}
	}
}

// Healthy reports whether the target called name is healthy by its probes
// and not ejected. Unknown names, and targets not probed yet, are not
// healthy. Lock-free: a map lookup and an atomic load.
func (c *Checker) Healthy(name string) bool {
	t := c.set.Load().byName[name]
	return t != nil && t.healthy.Load()
}

// RTT returns the smoothed round trip of the target's passing probes (an
// exponentially weighted moving average, see RTTWeight), or 0 when there is
// none yet or the name is unknown. Failed probes do not count. Lock-free.
func (c *Checker) RTT(name string) time.Duration {
	t := c.set.Load().byName[name]
	if t == nil {
		return 0
	}
	return time.Duration(t.rtt.Load())
}

// Report records the outcome of one real request to the target called name
// (passive health). Outlier.ConsecutiveErrors failures in a row eject the
// target for an ejection period (see Outlier), within the
// MaxEjectedFraction cap and never of the last target in rotation (healthy
// and not ejected); a Success resets the count. Failures reported
// while the target is ejected are ignored, and the count starts from zero
// when the ejection ends. An active probe passing does not end an ejection
// early. Unknown names are ignored. Report with Success is lock-free.
func (c *Checker) Report(name string, outcome Outcome) {
	t := c.set.Load().byName[name]
	if t == nil {
		return
	}
	if outcome == Success {
		if t.errs.Load() != 0 {
			t.errs.Store(0)
		}
		return
	}
	if t.ejectNow.Load() {
		return
	}
	if t.errs.Add(1) >= int64(c.cfg.Outlier.ConsecutiveErrors) {
		c.eject(t, outcome)
	}
}

func (c *Checker) eject(t *target, last Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.set.Load()
	if set.byName[t.Name] != t {
		return // removed meanwhile
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.errs.Load()
	if t.ejected || n < int64(c.cfg.Outlier.ConsecutiveErrors) {
		return // a concurrent report ejected it, or a success reset the count
	}
	o := c.cfg.Outlier
	limit := max(1, int(o.MaxEjectedFraction*float64(len(set.order))+1e-9))
	if c.ejected >= limit {
		c.log.Debug("ejection skipped: cap reached", "target", t.Name, "ejected", c.ejected, "cap", limit)
		return
	}
	// Never eject the last target in rotation: when the others are down
	// (a dead region), its errors are the platform's state (e.g. writes
	// waiting for a data failover), and ejecting it would leave nothing.
	inRotation := 0
	for _, o := range set.order {
		if o.healthy.Load() && !o.ejectNow.Load() {
			inRotation++
		}
	}
	if t.healthy.Load() && inRotation <= 1 {
		c.log.Debug("ejection skipped: last target in rotation", "target", t.Name)
		return
	}
	now := c.clock.Now()
	if t.streak > 0 && !t.restoredAt.IsZero() {
		t.streak = max(0, t.streak-int(now.Sub(t.restoredAt)/o.EjectFor))
	}
	d := o.EjectFor
	for i := 0; i < t.streak && d < o.MaxEjectFor; i++ {
		d *= 2
	}
	d = min(d, o.MaxEjectFor)
	t.streak++
	t.ejections++
	t.ejected = true
	t.ejectNow.Store(true)
	t.ejectedUntil = now.Add(d)
	t.ejectedFor = d
	c.ejected++
	t.errs.Store(0)
	t.ejectTimer = c.clock.AfterFunc(d, func() { c.restore(t) })
	c.emitLocked(t, now, t.status, StatusEjected,
		fmt.Sprintf("%d consecutive failed requests (last: %s); ejected for %s (ejection %d)", n, last, d, t.ejections))
}

func (c *Checker) restore(t *target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ejected {
		return
	}
	c.ejected--
	t.ejected = false
	t.ejectNow.Store(false)
	t.errs.Store(0)
	now := c.clock.Now()
	t.restoredAt = now
	t.ejectedUntil = time.Time{}
	c.emitLocked(t, now, StatusEjected, StatusRestored,
		fmt.Sprintf("ejection of %s ended; probe status %s", t.ejectedFor, t.status))
}

// SetTargets replaces the set of targets. Targets whose name and URL are
// unchanged keep their state; new ones (and ones whose URL changed) start
// unknown and, while Run runs, are probed at once (within jitter); removed
// ones stop being probed and no longer count toward the ejection cap. On an
// invalid list nothing changes and the error says why.
func (c *Checker) SetTargets(targets []Target) error {
	if err := validateTargets(targets, c.cfg.Prober == nil); err != nil {
		return fmt.Errorf("health: invalid targets: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.set.Load()
	set := &targetSet{byName: make(map[string]*target, len(targets))}
	var added []*target
	for _, tg := range targets {
		t := old.byName[tg.Name]
		if t == nil || t.URL != tg.URL {
			t = c.newTarget(tg)
			added = append(added, t)
		}
		set.order = append(set.order, t)
		set.byName[t.Name] = t
	}
	for _, t := range old.order {
		if set.byName[t.Name] == t {
			continue
		}
		t.mu.Lock()
		t.removed = true
		c.stopLocked(t)
		if t.ejected {
			t.ejected = false
			t.ejectNow.Store(false)
			t.ejectTimer.Stop()
			c.ejected--
		}
		t.mu.Unlock()
	}
	c.set.Store(set)
	if c.running && !c.done {
		for _, t := range added {
			c.start(t)
		}
	}
	c.log.Info("targets set", "targets", len(set.order), "added", len(added))
	return nil
}

// State returns a snapshot of the target called name.
func (c *Checker) State(name string) (TargetState, bool) {
	t := c.set.Load().byName[name]
	if t == nil {
		return TargetState{}, false
	}
	return t.snapshot(), true
}

// States returns a snapshot of every target, in the order they were given.
func (c *Checker) States() []TargetState {
	set := c.set.Load()
	out := make([]TargetState, len(set.order))
	for i, t := range set.order {
		out[i] = t.snapshot()
	}
	return out
}

func (t *target) snapshot() TargetState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TargetState{
		Name:         t.Name,
		URL:          t.URL,
		Status:       t.status,
		Healthy:      t.healthy.Load(),
		Ejected:      t.ejected,
		EjectedUntil: t.ejectedUntil,
		Ejections:    t.ejections,
		RTT:          topology.Duration(t.rtt.Load()),
		LastProbe:    t.lastProbe,
		LastStatus:   t.lastStatus,
		LastError:    t.lastErr,
		Recent:       t.recent.real(),
		History:      append([]Event(nil), t.history...),
	}
}

// Subscribe returns a channel that receives every event from now on, and a
// function that ends the subscription and closes the channel (safe to call
// more than once). Events are never waited for: when the channel's buffer
// (buf events) is full, the event is dropped for that subscriber and counted
// (see Dropped), so a slow subscriber never delays probing or Report. A
// buffer of a few events per target is plenty for a subscriber that keeps
// reading.
func (c *Checker) Subscribe(buf int) (<-chan Event, func()) {
	s := &subscription{ch: make(chan Event, max(buf, 0))}
	c.subMu.Lock()
	c.subs = append(c.subs, s)
	c.subMu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			c.subMu.Lock()
			defer c.subMu.Unlock()
			for i, x := range c.subs {
				if x == s {
					c.subs = append(c.subs[:i:i], c.subs[i+1:]...)
					break
				}
			}
			close(s.ch)
		})
	}
}

// Dropped returns the number of events dropped so far because a
// subscriber's buffer was full, over all subscriptions.
func (c *Checker) Dropped() uint64 { return c.dropped.Load() }

// Probing returns the number of probes in flight: started and not yet
// recorded (answered, timed out or abandoned). A test on a FakeClock waits
// for it before moving time on (FakeClock.SettleProbes).
func (c *Checker) Probing() int {
	n := 0
	for _, t := range c.set.Load().order {
		t.mu.Lock()
		if t.inflight {
			n++
		}
		t.mu.Unlock()
	}
	return n
}
