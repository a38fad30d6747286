package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/witness"
)

// Config configures the controller of one group in one region.
type Config struct {
	// Group is the failover group: the data service's name. Required.
	Group string
	// Region is this region. Required.
	Region string
	// Regions are every region of the service in preference order (the
	// topology's priority order); ties between candidates go to the first.
	Regions []string
	// Initial is the region that takes the group on a fresh start.
	Initial string
	// Policy is PolicyManual (default) or PolicyAutomatic.
	Policy string
	// Grace is how long nobody must have held the lease before an automatic
	// failover. Default 10 s.
	Grace time.Duration
	// LeaseTTL is the witness lease of the primary. Default witness.DefaultTTL.
	LeaseTTL time.Duration
	// Replica is the local replica. Required.
	Replica data.Replica
	// Authority and Client reach the witness (the same etcd). Required.
	Authority *witness.Authority
	Client    *clientv3.Client
	// Prefix of the coordination keys. Default DefaultPrefix.
	Prefix string
	// Tick is the period of the control loop (it also wakes on every
	// change of the group's keys). Default 100 ms.
	Tick time.Duration
	// ReportEvery is the period of the position reports. Default 250 ms.
	ReportEvery time.Duration
	// ReplicaDownAfter: a primary whose replica fails this long releases the
	// lease so that another region can take over. Default
	// DefaultReplicaDownAfter.
	ReplicaDownAfter time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// OnEvent, if set, receives every event this controller emits.
	OnEvent func(Event)
}

// DefaultReplicaDownAfter is the default of Config.ReplicaDownAfter.
const DefaultReplicaDownAfter = time.Second

// LeaseTiming is how a primary paces its witness lease of ttl when its
// Authority has the default margin, as the lab's have: a renewal every
// Timing.Renew, self-demotion Timing.Margin before the lease ends.
func LeaseTiming(ttl time.Duration) (witness.Timing, error) {
	return witness.NewAuthority(nil, "", nil).Timing(ttl)
}

func (c Config) withDefaults() Config {
	if c.Policy == "" {
		c.Policy = PolicyManual
	}
	if c.Grace == 0 {
		c.Grace = 10 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = witness.DefaultTTL
	}
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
	if c.ReportEvery == 0 {
		c.ReportEvery = 250 * time.Millisecond
	}
	if c.ReplicaDownAfter == 0 {
		c.ReplicaDownAfter = DefaultReplicaDownAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.Regions) == 0 && c.Region != "" {
		c.Regions = []string{c.Region}
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Group == "" {
		bad("group", "required")
	}
	if c.Region == "" {
		bad("region", "required")
	} else if !slices.Contains(c.Regions, c.Region) {
		bad("regions", "%v does not include this region %q", c.Regions, c.Region)
	}
	if c.Initial != "" && !slices.Contains(c.Regions, c.Initial) {
		bad("initial", "%q is not one of the regions %v", c.Initial, c.Regions)
	}
	if c.Policy != PolicyManual && c.Policy != PolicyAutomatic {
		bad("policy", "%q is not %s or %s", c.Policy, PolicyManual, PolicyAutomatic)
	}
	if c.Grace < 0 {
		bad("grace", "%v is negative", c.Grace)
	}
	if c.LeaseTTL < witness.MinTTL {
		bad("leaseTTL", "%v is shorter than %v", c.LeaseTTL, witness.MinTTL)
	}
	if c.Replica == nil {
		bad("replica", "required")
	}
	if c.Authority == nil || c.Client == nil {
		bad("authority", "authority and client are required")
	}
	return errors.Join(errs...)
}

// State is what the controller made of the local replica.
type State struct {
	Service string `json:"service"`
	Region  string `json:"region"`
	// Role: primary (holds a valid lease and promoted), secondary
	// (following Primary), fenced, or "" before the first decision.
	Role    data.Role `json:"role"`
	Primary string    `json:"primary,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"`
	// Witness is "" while the witness answers, else the last error.
	Witness string    `json:"witness,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// Controller keeps one region's replica in line with the witness.
type Controller struct {
	cfg  Config
	keys keys
	log  *slog.Logger

	// Owned by the Run goroutine.
	held         *witness.Held
	promoted     uint64 // epoch the replica was promoted at; 0 if not primary
	fenced       bool
	follow       string // primary followed, and at which epoch
	followEpoch  uint64
	handing      *Request // planned failover away from here, fenced meanwhile
	noOwnerSince time.Time
	downSince    time.Time // local replica failing since
	down         bool
	lastReport   time.Time
	pos          uint64
	posOK        bool
	rebuilding   bool // the replica is copying back history it discarded
	failLogged   time.Time
	tp           string // traceparent of the failover this round serves, "" for none

	mu    sync.Mutex
	state State
	// Metrics (see metrics.go), guarded by mu.
	transitions map[transition]uint64
	decidedAt   time.Time     // this region's last decision to take over
	lastTook    time.Duration // decision to promotion of the last failover here

	// heldNow is held, for readers outside the Run goroutine.
	heldNow atomic.Pointer[witness.Held]

	outbox chan Event // events to record at the witness, in order
}

// New checks cfg; nothing runs until Run.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failover: %s in %s: %w", cfg.Group, cfg.Region, err)
	}
	return &Controller{
		cfg:    cfg,
		keys:   keysFor(cfg.Prefix, cfg.Group),
		log:    cfg.Logger.With("component", "failover", "service", cfg.Group, "region", cfg.Region),
		state:  State{Service: cfg.Group, Region: cfg.Region},
		outbox: make(chan Event, 1024),
	}, nil
}

// setHeld sets the lease this region holds (nil: none).
func (c *Controller) setHeld(h *witness.Held) {
	c.held = h
	c.heldNow.Store(h)
}

// State returns the controller's view now.
func (c *Controller) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Controller) setState(f func(*State)) {
	c.mu.Lock()
	before := c.state
	f(&c.state)
	if c.state.Role != before.Role || c.state.Primary != before.Primary || c.state.Epoch != before.Epoch {
		c.state.Since = time.Now()
	}
	c.mu.Unlock()
}

// Run drives the replica until ctx ends. It then fences nothing: a stopped
// controller's lease simply expires (the process is going away).
func (c *Controller) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	go func() {
		owners := c.cfg.Authority.Watch(ctx, c.cfg.Group)
		for range owners {
			poke()
		}
	}()
	go func() {
		for ctx.Err() == nil {
			for resp := range c.cfg.Client.Watch(clientv3.WithRequireLeader(ctx), c.keys.base, clientv3.WithPrefix()) {
				if resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					if string(ev.Kv.Key) != c.keys.pos(c.cfg.Region) {
						poke()
						break
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	go c.publish(ctx)
	t := time.NewTicker(c.cfg.Tick)
	defer t.Stop()
	for {
		c.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// step runs one round of the state machine.
func (c *Controller) step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.checkHeld(ctx)
	c.readPosition(ctx)
	rctx, cancel := context.WithTimeout(ctx, max(5*c.cfg.Tick, 500*time.Millisecond))
	// Local (serializable) reads: cheap, possibly stale. They only choose
	// what to try; every claim is checked by the witness's quorum.
	owner, err := c.cfg.Authority.Peek(rctx, c.cfg.Group)
	var co coordination
	if err == nil {
		co, err = c.keys.read(rctx, c.cfg.Client)
	}
	cancel()
	if err != nil {
		// Cut off from the witness: decide nothing. A holder stays primary
		// while its Held is valid (checkHeld fences it after that).
		c.setState(func(s *State) { s.Witness = err.Error() })
		return
	}
	c.setState(func(s *State) { s.Witness = "" })
	c.tp = traceFor(co, owner.Epoch)
	switch {
	case owner.Holder == c.cfg.Region:
		c.asHolder(ctx, owner, co)
	case owner.Holder != "":
		c.asFollower(ctx, owner, co)
	default:
		c.unowned(ctx, owner, co)
	}
	c.report(ctx)
}

// checkHeld fences the replica the moment the lease stops being valid.
func (c *Controller) checkHeld(ctx context.Context) {
	if c.held == nil || c.held.Valid() {
		return
	}
	err := c.held.Err()
	c.setHeld(nil)
	c.fence(ctx, "", fmt.Sprintf("lease no longer valid: %v", err))
}

func (c *Controller) readPosition(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	pos, err := c.cfg.Replica.Position(pctx)
	cancel()
	now := time.Now()
	if err == nil {
		c.pos, c.posOK = pos, true
		c.downSince, c.down = time.Time{}, false
		c.rebuilding = false
		if r, ok := c.cfg.Replica.(data.Rebuilder); ok && pos < r.RebuildTarget() {
			c.rebuilding = true
		}
		return
	}
	c.posOK = false
	if c.downSince.IsZero() {
		c.downSince = now
	}
	if !c.down && now.Sub(c.downSince) >= c.cfg.ReplicaDownAfter {
		c.down = true
		c.log.Warn("local replica is failing", "since", c.downSince, "err", err)
	}
}

func (c *Controller) asHolder(ctx context.Context, owner witness.Owner, co coordination) {
	c.noOwnerSince = time.Time{}
	if c.held == nil || c.held.Epoch() != owner.Epoch {
		if c.held != nil {
			c.held.Release(ctx)
			c.setHeld(nil)
		}
		if c.down {
			return // the lease runs out; someone else takes over
		}
		// Our lease from before a restart, or one whose Held ended while
		// the lease lived on: a confirmed renewal proves it is still ours.
		h, err := c.cfg.Authority.Hold(ctx, witness.Grant{Group: owner.Group, Holder: c.cfg.Region, Epoch: owner.Epoch, LeaseID: owner.LeaseID, TTL: owner.TTL})
		if err != nil {
			c.logFailure("hold the lease again", err)
			return
		}
		c.setHeld(h)
	}
	if c.handing != nil {
		c.handOff(ctx, owner, co)
		return
	}
	if r := co.request; r != nil && r.To != c.cfg.Region && r.Mode == ModePlanned && time.Now().Before(r.Deadline) {
		span := c.startStep(StepFence)
		pos, err := c.cfg.Replica.Fence(ctx)
		if err != nil {
			span.End()
			c.logFailure("fence for a planned failover", err)
			return
		}
		c.fenced = true
		c.handing = r
		c.setState(func(s *State) { s.Role = data.RoleFenced })
		c.emitIn(span, Event{Step: StepFence, Mode: ModePlanned, Epoch: owner.Epoch, Position: pos, Detail: "planned failover to " + r.To + ": fenced, waiting for it to catch up"})
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err = put(pctx, c.cfg.Client, c.keys.handoff(), Handoff{ID: r.ID, From: c.cfg.Region, Epoch: owner.Epoch, Position: pos, Traceparent: r.Traceparent})
		cancel()
		if err != nil {
			c.logFailure("publish the handoff", err)
		}
		return
	}
	if c.down {
		c.emit(Event{Step: StepRelease, Epoch: owner.Epoch, Detail: "the local replica has failed since " + c.downSince.Format(time.RFC3339Nano) + ": releasing the lease"})
		c.held.Release(ctx)
		c.setHeld(nil)
		c.fence(ctx, "", "replica failed")
		return
	}
	if c.promoted != owner.Epoch || c.fenced {
		c.promote(ctx, owner.Epoch, "", 0, "holds the lease")
	}
}

// handOff is the old primary's side of a planned failover: stay fenced
// until the target takes over, or unfence when the deadline passes.
func (c *Controller) handOff(ctx context.Context, owner witness.Owner, co coordination) {
	r := c.handing
	if time.Now().Before(r.Deadline) && co.request != nil && co.request.ID == r.ID {
		return
	}
	c.handing = nil
	c.emit(Event{Step: StepAbort, Mode: ModePlanned, Epoch: owner.Epoch, Detail: "planned failover to " + r.To + " did not complete in time; resuming as primary"})
	c.deleteRequest(ctx, r.ID)
	c.promote(ctx, owner.Epoch, "", 0, "planned failover aborted")
}

func (c *Controller) asFollower(ctx context.Context, owner witness.Owner, co coordination) {
	c.noOwnerSince = time.Time{}
	c.handing = nil
	if c.held != nil {
		c.held.Release(ctx)
		c.setHeld(nil)
		if !c.fenced {
			c.fence(ctx, "", "the lease belongs to "+owner.Holder)
		}
	}
	if r := co.request; r != nil && r.To == c.cfg.Region && time.Now().Before(r.Deadline) {
		switch {
		case r.Mode == ModeForced:
			c.takeForced(ctx, owner, co, r)
			return
		case co.handoff != nil && co.handoff.ID == r.ID && co.handoff.From == owner.Holder && co.handoff.Epoch == owner.Epoch:
			c.takePlanned(ctx, owner, r, *co.handoff)
			return
		}
	}
	c.followOwner(ctx, owner)
}

func (c *Controller) followOwner(ctx context.Context, owner witness.Owner) {
	if c.follow == owner.Holder && c.followEpoch == owner.Epoch {
		return
	}
	// An old primary rejoins; after a restart only its replica knows it was.
	rejoin := c.promoted != 0 || c.fenced
	if !rejoin && c.follow == "" {
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		role := c.cfg.Replica.Status(sctx).Role
		cancel()
		rejoin = role == data.RolePrimary || role == data.RoleFenced
	}
	start := time.Now()
	span := c.startStep(StepRepoint)
	discarded, err := c.cfg.Replica.Follow(ctx, owner.Holder, owner.Epoch)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		c.logFailure("follow "+owner.Holder, err)
		// Writes are routed to the new primary already; say so.
		c.setState(func(s *State) { s.Role, s.Primary, s.Epoch = data.RoleFenced, owner.Holder, owner.Epoch })
		return
	}
	c.follow, c.followEpoch, c.promoted, c.fenced = owner.Holder, owner.Epoch, 0, false
	c.setState(func(s *State) { s.Role, s.Primary, s.Epoch = data.RoleSecondary, owner.Holder, owner.Epoch })
	e := Event{Step: StepRepoint, Epoch: owner.Epoch, Position: c.pos, Detail: fmt.Sprintf("following %s (%s)", owner.Holder, time.Since(start).Round(time.Millisecond))}
	if rejoin || discarded > 0 {
		e.Step, e.Discarded = StepRejoin, discarded
		e.Detail = fmt.Sprintf("rejoined as a secondary of %s, discarding %d writes it lacks (%s)", owner.Holder, discarded, time.Since(start).Round(time.Millisecond))
		span.SetName("failover " + StepRejoin)
	}
	c.emitIn(span, e)
}

// takePlanned is the target's side of a planned failover.
func (c *Controller) takePlanned(ctx context.Context, owner witness.Owner, r *Request, h Handoff) {
	c.emit(Event{Step: StepDecide, Mode: ModePlanned, Epoch: owner.Epoch, Position: c.pos, Detail: fmt.Sprintf("%s fenced at position %d; catching up", h.From, h.Position)})
	pos := c.pos
	lastPeek := time.Now()
	catchUp := c.startStep("catch-up")
	defer catchUp.End() // ended at once when caught up; on abort, here
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		p, err := c.cfg.Replica.Position(pctx)
		cancel()
		if err == nil {
			pos = p
			if p >= h.Position {
				break
			}
		}
		if ctx.Err() != nil || time.Now().After(r.Deadline) {
			c.emit(Event{Step: StepAbort, Mode: ModePlanned, Epoch: owner.Epoch, Position: pos, Detail: fmt.Sprintf("did not reach position %d before the deadline", h.Position)})
			c.deleteRequest(ctx, r.ID)
			return
		}
		if time.Since(lastPeek) >= c.cfg.Tick {
			// A fenced holder that died (or lost its lease) cannot hand
			// over: stop waiting, so that the next step sees the lease end
			// and the request is served as one with nobody holding.
			lastPeek = time.Now()
			pctx, cancel := context.WithTimeout(ctx, c.cfg.Tick)
			o, err := c.cfg.Authority.Peek(pctx, c.cfg.Group)
			cancel()
			if err == nil && (o.Holder != h.From || o.Epoch != h.Epoch) {
				c.emit(Event{Step: StepAbort, Mode: ModePlanned, Epoch: owner.Epoch, Position: pos, Detail: fmt.Sprintf("%s no longer holds epoch %d while catching up to position %d", h.From, h.Epoch, h.Position)})
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	catchUp.SetAttributes(attribute.Int64("geostamp.position", int64(pos)), attribute.Int64("geostamp.target", int64(h.Position)))
	catchUp.End()
	g, err := c.cfg.Authority.Transfer(ctx, c.cfg.Group, h.From, c.cfg.Region, c.cfg.LeaseTTL)
	if err != nil {
		c.emit(Event{Step: StepAbort, Mode: ModePlanned, Epoch: owner.Epoch, Detail: "witness refused the transfer: " + err.Error()})
		c.deleteRequest(ctx, r.ID)
		return
	}
	if !c.hold(ctx, g) {
		return
	}
	c.promote(ctx, g.Epoch, ModePlanned, 0, fmt.Sprintf("planned failover from %s at position %d", h.From, h.Position))
	c.deleteRequest(ctx, r.ID)
}

// takeForced promotes this region now, whatever the holder's state.
func (c *Controller) takeForced(ctx context.Context, owner witness.Owner, co coordination, r *Request) {
	c.emit(Event{Step: StepDecide, Mode: ModeForced, Epoch: owner.Epoch, Position: c.pos, Detail: "forced failover from " + owner.Holder})
	g, err := c.cfg.Authority.Force(ctx, c.cfg.Group, c.cfg.Region, c.cfg.LeaseTTL)
	if err != nil {
		c.logFailure("force the lease", err)
		return
	}
	if !c.hold(ctx, g) {
		return
	}
	c.promote(ctx, g.Epoch, ModeForced, c.gap(co, owner.Holder), "forced failover from "+owner.Holder)
	c.deleteRequest(ctx, r.ID)
}

func (c *Controller) unowned(ctx context.Context, owner witness.Owner, co coordination) {
	now := time.Now()
	if c.held != nil {
		c.held.Release(ctx)
		c.setHeld(nil)
	}
	if (c.promoted != 0 || c.handing != nil) && !c.fenced {
		c.fence(ctx, "", "nobody holds the lease")
	}
	c.handing = nil
	if owner.Epoch > 0 && c.State().Role == "" {
		c.setState(func(s *State) { s.Role = data.RoleFenced })
	}
	if c.noOwnerSince.IsZero() {
		c.noOwnerSince = now
		if owner.Epoch > 0 {
			last := "?"
			if co.last != nil {
				last = co.last.Region
			}
			c.emit(Event{Step: StepDetect, Epoch: owner.Epoch, Position: c.pos, Detail: fmt.Sprintf("no primary: the lease of %s (epoch %d) ended", last, owner.Epoch)})
		}
	}
	if c.down || !c.posOK {
		return
	}
	var why, mode string
	if c.rebuilding && c.cfg.Policy == PolicyAutomatic && owner.Epoch > 0 && now.Sub(c.noOwnerSince) >= c.cfg.Grace {
		c.logFailure("fail over automatically", fmt.Errorf("the local replica is still copying back history it discarded when it rejoined (position %d): promoting it would lose acknowledged writes; a forced failover can", c.pos))
	}
	r := co.request
	if r != nil && r.To == c.cfg.Region && now.Before(r.Deadline) && r.Mode == ModePlanned && !c.safeForPlanned(ctx, owner, co, r) {
		return
	}
	switch {
	case owner.Epoch == 0 && c.cfg.Initial == c.cfg.Region:
		why = "first start: initial primary"
	case r != nil && r.To == c.cfg.Region && now.Before(r.Deadline):
		why, mode = "requested "+r.Mode+" failover, nobody holds the lease", r.Mode
	case co.last != nil && co.last.Region == c.cfg.Region:
		why = "last primary, back"
	case c.cfg.Policy == PolicyAutomatic && owner.Epoch > 0 && now.Sub(c.noOwnerSince) >= c.cfg.Grace && c.best(co):
		why, mode = fmt.Sprintf("automatic: no primary for %s (grace %s), best position", now.Sub(c.noOwnerSince).Round(time.Millisecond), c.cfg.Grace), "automatic"
	default:
		return
	}
	if mode == "automatic" {
		// The deciding region starts the automatic failover's trace.
		actx, root := tracer.Start(context.Background(), "failover "+c.cfg.Group+" automatic", trace.WithAttributes(
			telemetry.AttrService.String(c.cfg.Group), telemetry.AttrRegion.String(c.cfg.Region), attribute.String("geostamp.mode", mode)))
		defer root.End()
		c.tp = traceparentOf(actx)
	}
	c.emit(Event{Step: StepDecide, Mode: mode, Epoch: owner.Epoch, Position: c.pos, Detail: why})
	g, err := c.cfg.Authority.Acquire(ctx, c.cfg.Group, c.cfg.Region, c.cfg.LeaseTTL)
	if err != nil {
		c.logFailure("acquire the lease", err)
		return
	}
	if !c.hold(ctx, g) {
		return
	}
	var gap uint64
	if co.last != nil && co.last.Region != c.cfg.Region {
		gap = c.gap(co, co.last.Region)
	}
	c.promote(ctx, g.Epoch, mode, gap, why)
	if r != nil && r.To == c.cfg.Region {
		c.deleteRequest(ctx, r.ID)
	}
}

// safeForPlanned reports whether a planned failover to this region may go
// on although its holder is gone (it died or lost its lease before it
// could hand over): only without loss. A replica still copying back the
// history it discarded when it rejoined lacks acknowledged writes and can
// never catch up from a dead primary, so the request is aborted: a forced
// failover is the way to accept that loss. A fresh report of another
// region at a higher position may be the dead primary's unacknowledged
// tail or another region's newer copy: wait until it is stale.
func (c *Controller) safeForPlanned(ctx context.Context, owner witness.Owner, co coordination, r *Request) bool {
	if c.rebuilding {
		target := uint64(0)
		if rb, ok := c.cfg.Replica.(data.Rebuilder); ok {
			target = rb.RebuildTarget()
		}
		c.emit(Event{Step: StepAbort, Mode: ModePlanned, Epoch: owner.Epoch, Position: c.pos, Detail: fmt.Sprintf(
			"%s is still copying back history it discarded when it rejoined (at position %d of %d) and the primary is gone: a planned failover would lose acknowledged writes; a forced failover accepts that loss", c.cfg.Region, c.pos, target)})
		c.deleteRequest(ctx, r.ID)
		return false
	}
	fresh := 3*c.cfg.ReportEvery + time.Second
	for name, rep := range co.reports {
		if name != c.cfg.Region && time.Since(rep.Time) <= fresh && rep.Position > c.pos {
			return false
		}
	}
	return true
}

// best reports whether this region is the candidate to promote: the
// highest fresh position among healthy regions, then preference order.
func (c *Controller) best(co coordination) bool {
	fresh := 3*c.cfg.ReportEvery + time.Second
	bestRegion, bestPos, found := "", uint64(0), false
	for _, name := range c.cfg.Regions {
		r, ok := co.reports[name]
		if !ok || !r.Healthy || time.Since(r.Time) > fresh {
			continue
		}
		if !found || r.Position > bestPos {
			bestRegion, bestPos, found = name, r.Position, true
		}
	}
	return bestRegion == c.cfg.Region
}

// gap is how far the old primary was ahead of us by its last report.
func (c *Controller) gap(co coordination, old string) uint64 {
	r, ok := co.reports[old]
	if !ok || r.Position <= c.pos {
		return 0
	}
	return r.Position - c.pos
}

func (c *Controller) hold(ctx context.Context, g witness.Grant) bool {
	h, err := c.cfg.Authority.Hold(ctx, g)
	if err != nil {
		c.logFailure("hold the new lease", err)
		return false
	}
	c.setHeld(h)
	return true
}

func (c *Controller) promote(ctx context.Context, epoch uint64, mode string, gap uint64, why string) {
	start := time.Now()
	var lease data.Lease
	if c.held != nil {
		lease = c.held // the replica checks it before each acknowledgement
	}
	step := StepPromote
	if why == "holds the lease" || why == "planned failover aborted" {
		step = StepUnfence
	}
	span := c.startStep(step)
	if err := c.cfg.Replica.Promote(ctx, epoch, lease); err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		c.logFailure("promote", err)
		return
	}
	c.promoted, c.fenced, c.follow, c.followEpoch = epoch, false, "", 0
	c.setState(func(s *State) { s.Role, s.Primary, s.Epoch = data.RolePrimary, c.cfg.Region, epoch })
	c.emitIn(span, Event{Step: step, Mode: mode, Epoch: epoch, Position: c.pos, Gap: gap, Detail: fmt.Sprintf("%s (%s)", why, time.Since(start).Round(time.Millisecond))})
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	tp := c.tp
	if step == StepUnfence {
		tp = "" // not a failover: the other regions' repoint is not part of one
	}
	if err := put(pctx, c.cfg.Client, c.keys.last(), LastPrimary{Region: c.cfg.Region, Epoch: epoch, Traceparent: tp}); err != nil {
		c.logFailure("record the last primary", err)
	}
}

func (c *Controller) fence(ctx context.Context, mode, why string) {
	span := c.startStep(StepFence)
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	pos, err := c.cfg.Replica.Fence(fctx)
	cancel()
	if err != nil {
		c.logFailure("fence", err)
	}
	c.fenced = true
	c.setState(func(s *State) { s.Role = data.RoleFenced })
	c.emitIn(span, Event{Step: StepFence, Mode: mode, Epoch: c.State().Epoch, Position: pos, Detail: why})
}

func (c *Controller) deleteRequest(ctx context.Context, id string) {
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// Only our request: another may have replaced it meanwhile.
	resp, err := c.cfg.Client.Get(dctx, c.keys.request())
	if err != nil || len(resp.Kvs) == 0 {
		return
	}
	var r Request
	if json.Unmarshal(resp.Kvs[0].Value, &r) != nil || r.ID != id {
		return
	}
	c.cfg.Client.Txn(dctx).
		If(clientv3.Compare(clientv3.ModRevision(c.keys.request()), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(c.keys.request()), clientv3.OpDelete(c.keys.handoff())).
		Commit()
}

// report publishes this region's position for candidate selection.
func (c *Controller) report(ctx context.Context) {
	now := time.Now()
	if now.Sub(c.lastReport) < c.cfg.ReportEvery {
		return
	}
	c.lastReport = now
	st := c.State()
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	put(pctx, c.cfg.Client, c.keys.pos(c.cfg.Region), Report{
		Region: c.cfg.Region, Position: c.pos, Role: st.Role, Epoch: st.Epoch, Healthy: c.posOK && !c.down && !c.rebuilding, Time: now,
	})
}

// emit logs an event and records it at the witness (in the background: a
// region cut off from the witness still logs it locally).
func (c *Controller) emit(e Event) {
	c.emitIn(c.startStep(e.Step), e)
}

// emitIn emits e as the end of its step's span.
func (c *Controller) emitIn(span trace.Span, e Event) {
	if sc := span.SpanContext(); sc.IsValid() {
		e.TraceID = sc.TraceID().String()
	}
	endStep(span, e)
	e.Time = time.Now()
	e.Service, e.Region = c.cfg.Group, c.cfg.Region
	c.count(e)
	c.log.Info("failover "+e.Step, "mode", e.Mode, "epoch", e.Epoch, "position", e.Position, "gap", e.Gap, "discarded", e.Discarded, "detail", e.Detail)
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(e)
	}
	select {
	case c.outbox <- e:
	default:
		c.log.Warn("failover: event outbox full; event not recorded at the witness", "step", e.Step)
	}
}

// publish records events at the witness in order, retrying while the
// region is cut off from it (a fence during a partition is recorded once
// the partition heals), for up to a minute per event.
func (c *Controller) publish(ctx context.Context) {
	for {
		var e Event
		select {
		case <-ctx.Done():
			return
		case e = <-c.outbox:
		}
		key := fmt.Sprintf("%s%020d-%s-%s", c.keys.events, e.Time.UnixNano(), c.cfg.Region, e.Step)
		for ctx.Err() == nil && time.Since(e.Time) < time.Minute {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := put(pctx, c.cfg.Client, key, e)
			cancel()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// logFailure logs a failed action at most once a second.
func (c *Controller) logFailure(what string, err error) {
	if time.Since(c.failLogged) < time.Second {
		return
	}
	c.failLogged = time.Now()
	c.log.Warn("failover: could not "+what, "err", err)
}
