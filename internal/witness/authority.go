package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors; the errors returned by this package wrap them.
var (
	// ErrHeld means another holder owns the group (Acquire).
	ErrHeld = errors.New("group is held")
	// ErrNotHolder means the expected holder does not own the group now
	// (Transfer).
	ErrNotHolder = errors.New("not the current holder")
	// ErrFenced means a newer epoch than the caller's has been granted.
	ErrFenced = errors.New("fenced by a newer epoch")
	// ErrExpired means a Held lost its lease: no confirmed renewal before
	// its local deadline, or the lease is gone at the authority.
	ErrExpired = errors.New("lease expired")
	// ErrReleased means the holder gave the lease up (Release, Transfer).
	ErrReleased = errors.New("lease released")
	// ErrNoQuorum means the authority did not answer in time, or answered
	// that it has no leader: the caller's member is cut off from a quorum,
	// or the cluster is electing a leader.
	ErrNoQuorum = errors.New("no quorum")
)

// DefaultPrefix is the key prefix used when NewAuthority is given "".
const DefaultPrefix = "/geostamp/witness/"

// DefaultTTL is a lease TTL suited to the default member timings: with
// the default margin (1 s) a holder renews every 1.33 s and rides out an
// etcd leader election (1-2 s) without demoting itself, and a failed site's
// lease ends 5-7 s after its last renewal.
const DefaultTTL = 5 * time.Second

// MinTTL is the shortest lease TTL accepted. The authority's TTL is the
// requested one rounded up to whole seconds and at least etcd's minimum
// (2 s with the default election timeout).
const MinTTL = time.Second

// Grant is one epoch of a group granted to a holder. It is plain data (it
// may cross processes, e.g. from a controller to the target region, which
// then calls Hold); holding it does not make anyone primary, a Held does.
type Grant struct {
	Group  string `json:"group"`
	Holder string `json:"holder"`
	// Epoch is the fencing epoch: 1 for the first grant of a group, then
	// +1 on each Acquire, Force or Transfer.
	Epoch uint64 `json:"epoch"`
	// LeaseID is the etcd lease the owner record is attached to.
	LeaseID int64 `json:"lease_id"`
	// TTL is the lease TTL the holder uses for self-demotion (the
	// authority's is the same rounded up to whole seconds).
	TTL time.Duration `json:"ttl"`
}

// Owner is the state of a group at the authority.
type Owner struct {
	Group string `json:"group"`
	// Holder owns the group now; "" when nobody does (never acquired, the
	// lease expired, or it was released).
	Holder string `json:"holder,omitempty"`
	// Epoch is the last epoch granted (0 if never); a new grant gets Epoch+1.
	Epoch   uint64        `json:"epoch"`
	LeaseID int64         `json:"lease_id,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"`
	// Since is when the owner's epoch was granted, by the granting
	// process's wall clock (informational).
	Since time.Time `json:"since,omitzero"`
	// Expires is when the lease expires at the authority at the latest if
	// it is not renewed, on the reader's clock: the arrival of etcd's
	// answer plus its remaining TTL rounded up to whole seconds. Renewals
	// move it. Zero when nobody holds the group.
	Expires time.Time `json:"expires,omitzero"`
}

// Held reports whether a holder owns the group.
func (o Owner) Held() bool { return o.Holder != "" }

// Timing is how a holder paces a lease of TTL (see the package doc).
type Timing struct {
	// TTL of the lease.
	TTL time.Duration
	// Margin: the holder stops TTL-Margin after the send time of its last
	// confirmed renewal.
	Margin time.Duration
	// Renew is the period of renewals: (TTL-Margin)/3.
	Renew time.Duration
	// Retry is the wait after a failed renewal: Renew/4.
	Retry time.Duration
}

// Authority grants and checks leases and fencing epochs of failover groups,
// over any etcd client (an embedded Member's or an external cluster's).
// Safe for concurrent use. It keeps no state of its own: several
// Authorities (in several processes) over the same prefix agree.
type Authority struct {
	cli    *clientv3.Client
	prefix string
	log    *slog.Logger
	margin time.Duration
	// onRenew receives the round trip of every confirmed renewal.
	onRenew func(group string, took time.Duration)
}

// Option adjusts an Authority.
type Option func(*Authority)

// WithRenewObserver makes f receive the round trip of every confirmed
// lease renewal of the Authority's Helds (metrics).
func WithRenewObserver(f func(group string, took time.Duration)) Option {
	return func(a *Authority) { a.onRenew = f }
}

// WithMargin sets the self-demotion margin of every Held: the holder stops
// acting this long before TTL has passed since its last confirmed renewal.
// It must exceed 2·ρ·TTL (clock rate drift ρ) plus the longest delay
// between a Valid() check and the acknowledgement it allows. Default:
// TTL/5.
func WithMargin(d time.Duration) Option { return func(a *Authority) { a.margin = d } }

// NewAuthority returns an Authority over cli keeping its keys under prefix
// (DefaultPrefix if ""). A nil logger discards.
func NewAuthority(cli *clientv3.Client, prefix string, logger *slog.Logger, opts ...Option) *Authority {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Authority{cli: cli, prefix: prefix, log: logger.With("component", "witness")}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Timing returns the pacing of a lease of ttl, or an error if ttl is too
// short for the configured margin.
func (a *Authority) Timing(ttl time.Duration) (Timing, error) {
	if ttl < MinTTL {
		return Timing{}, fmt.Errorf("ttl %v is shorter than %v", ttl, MinTTL)
	}
	m := a.margin
	if m == 0 {
		m = ttl / 5
	}
	if m <= 0 || m >= ttl {
		return Timing{}, fmt.Errorf("margin %v must be positive and shorter than ttl %v", m, ttl)
	}
	renew := (ttl - m) / 3
	return Timing{TTL: ttl, Margin: m, Renew: renew, Retry: renew / 4}, nil
}

// Acquire makes holder the owner of group with a lease of ttl if nobody
// holds it, and returns the grant with the next epoch. It fails with
// ErrHeld while another lease (or the caller's own previous one) is live.
// Keep the grant with Hold; if nobody does, it expires after ttl.
func (a *Authority) Acquire(ctx context.Context, group, holder string, ttl time.Duration) (Grant, error) {
	return a.claim(ctx, claim{op: "acquire", group: group, holder: holder, ttl: ttl})
}

// Force makes holder the owner of group with the next epoch even if
// another holder's lease is live (forced failover), and revokes that lease.
// The old holder stops at its next renewal if it reaches a quorum, else at
// its own deadline: Force does not wait for it (see the package doc).
func (a *Authority) Force(ctx context.Context, group, holder string, ttl time.Duration) (Grant, error) {
	return a.claim(ctx, claim{op: "force", group: group, holder: holder, ttl: ttl, force: true})
}

// Transfer hands group from the current holder from to to with a new lease
// of ttl and the next epoch (planned failover), atomically: only if from
// holds it now, else ErrNotHolder. from's lease is revoked; from's Held
// ends at its next renewal with ErrFenced. Stop from acting first (fence
// the data service, or use Held.Transfer) so that the two never overlap.
// from == to re-grants the group to its holder under a new epoch.
func (a *Authority) Transfer(ctx context.Context, group, from, to string, ttl time.Duration) (Grant, error) {
	return a.claim(ctx, claim{op: "transfer", group: group, holder: to, from: from, ttl: ttl})
}

type claim struct {
	op, group, holder string
	ttl               time.Duration
	force             bool
	from              string // transfer: the expected holder
	expect            *Grant // Held.Transfer: the expected owner record
}

func (a *Authority) claim(ctx context.Context, c claim) (Grant, error) {
	op := fmt.Sprintf("%s %s for %s", c.op, c.group, c.holder)
	if err := errors.Join(checkName("group", c.group), checkName("holder", c.holder)); err != nil {
		return Grant{}, fmt.Errorf("witness: %s: %w", op, err)
	}
	if c.op == "transfer" {
		if err := checkName("from", c.from); err != nil {
			return Grant{}, fmt.Errorf("witness: %s: %w", op, err)
		}
	}
	if _, err := a.Timing(c.ttl); err != nil {
		return Grant{}, fmt.Errorf("witness: %s: %w", op, err)
	}
	ctx = clientv3.WithRequireLeader(ctx)
	var lease clientv3.LeaseID
	granted := false
	defer func() {
		if lease != 0 && !granted {
			a.revoke(ctx, lease) // a failed or refused claim leaves nothing behind
		}
	}()
	ek, ok := a.keys(c.group)
	for attempt := 0; ; attempt++ {
		st, err := a.read(ctx, c.group)
		if err != nil {
			return Grant{}, a.fail(ctx, op, err)
		}
		switch {
		case c.expect != nil && (st.owner == nil || st.owner.Lease != c.expect.LeaseID || st.owner.Epoch != c.expect.Epoch):
			return Grant{}, fmt.Errorf("witness: %s: %w (epoch now %d)", op, ErrFenced, st.epoch)
		case c.op == "acquire" && st.owner != nil:
			return Grant{}, fmt.Errorf("witness: %s: %w by %s at epoch %d", op, ErrHeld, st.owner.Holder, st.owner.Epoch)
		case c.op == "transfer" && st.owner == nil:
			return Grant{}, fmt.Errorf("witness: %s: %w: %s does not hold it, nobody does (epoch %d)", op, ErrNotHolder, c.from, st.epoch)
		case c.op == "transfer" && st.owner.Holder != c.from:
			return Grant{}, fmt.Errorf("witness: %s: %w: %s does not hold it, %s does (epoch %d)", op, ErrNotHolder, c.from, st.owner.Holder, st.owner.Epoch)
		}
		if lease == 0 {
			resp, err := a.cli.Grant(ctx, ceilSeconds(c.ttl))
			if err != nil {
				return Grant{}, a.fail(ctx, op, err)
			}
			lease = resp.ID
		}
		g := Grant{Group: c.group, Holder: c.holder, Epoch: st.epoch + 1, LeaseID: int64(lease), TTL: c.ttl}
		rec, _ := json.Marshal(ownerRecord{Holder: g.Holder, Epoch: g.Epoch, Lease: g.LeaseID, TTLms: c.ttl.Milliseconds(), Since: time.Now().UTC()})
		resp, err := a.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(ek), "=", st.epochRev),
			clientv3.Compare(clientv3.ModRevision(ok), "=", st.ownerRev),
		).Then(
			clientv3.OpPut(ek, strconv.FormatUint(g.Epoch, 10)),
			clientv3.OpPut(ok, string(rec), clientv3.WithLease(lease)),
		).Commit()
		if err != nil {
			// The outcome is unknown; the deferred revoke makes sure an
			// epoch that did commit is owned by nobody rather than by a
			// grant the caller never saw.
			return Grant{}, a.fail(ctx, op, err)
		}
		if resp.Succeeded {
			granted = true
			if st.owner != nil && st.owner.Lease != g.LeaseID {
				a.revoke(ctx, clientv3.LeaseID(st.owner.Lease))
			}
			prev := ""
			if st.owner != nil {
				prev = st.owner.Holder
			}
			a.log.Info("witness grant", "op", c.op, "group", g.Group, "holder", g.Holder, "epoch", g.Epoch,
				"ttl", g.TTL, "previous", prev, "lease", fmt.Sprintf("%x", g.LeaseID))
			return g, nil
		}
		if attempt == 4 {
			return Grant{}, fmt.Errorf("witness: %s: the group kept changing during 5 attempts", op)
		}
	}
}

// Current returns the owner and epoch of group, by a linearizable read.
func (a *Authority) Current(ctx context.Context, group string) (Owner, error) {
	if err := checkName("group", group); err != nil {
		return Owner{}, fmt.Errorf("witness: current: %w", err)
	}
	ctx = clientv3.WithRequireLeader(ctx)
	st, err := a.read(ctx, group)
	if err != nil {
		return Owner{}, a.fail(ctx, "current "+group, err)
	}
	o, err := a.owner(ctx, group, st)
	if err != nil {
		return Owner{}, a.fail(ctx, "current "+group, err)
	}
	return o, nil
}

// Peek returns the owner and epoch of group as the local member last saw
// them (a serializable read: no round trip to the leader, possibly stale,
// and answered even by a member cut off from the quorum), without
// Expires. It is for deciding what to try: every claim (Acquire, Force,
// Transfer, Hold) is checked against the latest state by the authority.
func (a *Authority) Peek(ctx context.Context, group string) (Owner, error) {
	if err := checkName("group", group); err != nil {
		return Owner{}, fmt.Errorf("witness: peek: %w", err)
	}
	resp, err := a.cli.Get(ctx, a.prefix+group+"/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		return Owner{}, a.fail(ctx, "peek "+group, err)
	}
	st := groupState{rev: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		if err := st.add(a, group, kv.Key, kv.Value, kv.ModRevision); err != nil {
			return Owner{}, err
		}
	}
	o := Owner{Group: group, Epoch: st.epoch}
	if r := st.owner; r != nil {
		o.Holder, o.LeaseID, o.TTL, o.Since = r.Holder, r.Lease, time.Duration(r.TTLms)*time.Millisecond, r.Since
	}
	return o, nil
}

// List returns every group under the prefix, sorted by name.
func (a *Authority) List(ctx context.Context) ([]Owner, error) {
	ctx = clientv3.WithRequireLeader(ctx)
	resp, err := a.cli.Get(ctx, a.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, a.fail(ctx, "list", err)
	}
	states := map[string]*groupState{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), a.prefix)
		group, _, found := strings.Cut(rest, "/")
		if !found {
			continue
		}
		st := states[group]
		if st == nil {
			st = &groupState{}
			states[group] = st
		}
		if err := st.add(a, group, kv.Key, kv.Value, kv.ModRevision); err != nil {
			return nil, fmt.Errorf("witness: list: %w", err)
		}
	}
	out := make([]Owner, 0, len(states))
	for group, st := range states {
		o, err := a.owner(ctx, group, *st)
		if err != nil {
			return nil, a.fail(ctx, "list", err)
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// Check returns nil if epoch is still the latest epoch of group, ErrFenced
// if a newer one has been granted, by a linearizable read. A strict write
// path calls it (after Held.Valid) before acknowledging a write. It says
// nothing about the lease: combine it with Held.Valid (Held.Check does).
func (a *Authority) Check(ctx context.Context, group string, epoch uint64) error {
	if err := checkName("group", group); err != nil {
		return fmt.Errorf("witness: check: %w", err)
	}
	ctx = clientv3.WithRequireLeader(ctx)
	ek, _ := a.keys(group)
	resp, err := a.cli.Get(ctx, ek)
	if err != nil {
		return a.fail(ctx, fmt.Sprintf("check %s epoch %d", group, epoch), err)
	}
	var cur uint64
	if len(resp.Kvs) == 1 {
		if cur, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64); err != nil {
			return fmt.Errorf("witness: check %s: bad epoch %q", group, resp.Kvs[0].Value)
		}
	}
	switch {
	case cur > epoch:
		return fmt.Errorf("witness: check %s epoch %d: %w (current %d)", group, epoch, ErrFenced, cur)
	case cur < epoch:
		return fmt.Errorf("witness: check %s epoch %d: never granted (current %d)", group, epoch, cur)
	}
	return nil
}

// Release revokes grant's lease so the group is free at once (the epoch
// stays). Revoking a lease that is already gone is not an error. A Held
// should use Held.Release, which stops acting first.
func (a *Authority) Release(ctx context.Context, g Grant) error {
	ctx = clientv3.WithRequireLeader(ctx)
	_, err := a.cli.Revoke(ctx, clientv3.LeaseID(g.LeaseID))
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return a.fail(ctx, fmt.Sprintf("release %s epoch %d", g.Group, g.Epoch), err)
	}
	a.log.Info("witness release", "group", g.Group, "holder", g.Holder, "epoch", g.Epoch)
	return nil
}

// Watch sends the owner of group at once and after every change (grant,
// expiry, release) until ctx ends, then closes the channel. Only the latest
// owner is kept for a slow reader. While the authority is unreachable
// nothing is sent; Watch retries on its own. An invalid group name closes
// the channel at once.
func (a *Authority) Watch(ctx context.Context, group string) <-chan Owner {
	ch := make(chan Owner, 1)
	publish := func(o Owner) {
		select {
		case <-ch: // drop the stale value; this goroutine is the only sender
		default:
		}
		ch <- o
	}
	go func() {
		defer close(ch)
		if checkName("group", group) != nil {
			return
		}
		dir := a.prefix + group + "/"
		for ctx.Err() == nil {
			rctx := clientv3.WithRequireLeader(ctx)
			st, err := a.read(rctx, group)
			var o Owner
			if err == nil {
				o, err = a.owner(rctx, group, st)
			}
			if err == nil {
				publish(o)
				wctx, cancel := context.WithCancel(rctx)
				for resp := range a.cli.Watch(wctx, dir, clientv3.WithPrefix(), clientv3.WithRev(st.rev+1)) {
					if resp.Err() != nil || resp.Canceled {
						break
					}
					if len(resp.Events) == 0 {
						continue
					}
					st, err = a.read(rctx, group)
					if err == nil {
						o, err = a.owner(rctx, group, st)
					}
					if err != nil {
						break
					}
					publish(o)
				}
				cancel()
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return ch
}

// ownerRecord is the value of the owner key.
type ownerRecord struct {
	Holder string    `json:"holder"`
	Epoch  uint64    `json:"epoch"`
	Lease  int64     `json:"lease"`
	TTLms  int64     `json:"ttl_ms"`
	Since  time.Time `json:"since"`
}

// groupState is one read of a group's keys.
type groupState struct {
	epoch    uint64
	epochRev int64 // mod revision of the epoch key, 0 if absent
	owner    *ownerRecord
	ownerRev int64 // mod revision of the owner key, 0 if absent
	rev      int64 // store revision of the read
}

func (st *groupState) add(a *Authority, group string, key, val []byte, modRev int64) error {
	ek, ok := a.keys(group)
	switch string(key) {
	case ek:
		e, err := strconv.ParseUint(string(val), 10, 64)
		if err != nil {
			return fmt.Errorf("group %s: bad epoch %q", group, val)
		}
		st.epoch, st.epochRev = e, modRev
	case ok:
		var r ownerRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return fmt.Errorf("group %s: bad owner record: %w", group, err)
		}
		st.owner, st.ownerRev = &r, modRev
	}
	return nil
}

// keys returns the epoch and owner keys of group.
func (a *Authority) keys(group string) (epoch, owner string) {
	dir := a.prefix + group + "/"
	return dir + "epoch", dir + "owner"
}

// read returns the group's keys by one linearizable range read.
func (a *Authority) read(ctx context.Context, group string) (groupState, error) {
	resp, err := a.cli.Get(ctx, a.prefix+group+"/", clientv3.WithPrefix())
	if err != nil {
		return groupState{}, err
	}
	st := groupState{rev: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		if err := st.add(a, group, kv.Key, kv.Value, kv.ModRevision); err != nil {
			return groupState{}, err
		}
	}
	return st, nil
}

// owner turns a read into an Owner, asking etcd for the lease's remaining TTL.
func (a *Authority) owner(ctx context.Context, group string, st groupState) (Owner, error) {
	o := Owner{Group: group, Epoch: st.epoch}
	if st.owner == nil {
		return o, nil
	}
	r := st.owner
	o.Holder, o.LeaseID, o.TTL, o.Since = r.Holder, r.Lease, time.Duration(r.TTLms)*time.Millisecond, r.Since
	resp, err := a.cli.TimeToLive(ctx, clientv3.LeaseID(r.Lease))
	if err != nil {
		return Owner{}, err
	}
	// etcd truncates the remaining TTL to whole seconds, measured before
	// the answer arrived: the answer's arrival plus one more second is not
	// earlier than the expiry (up to clock rate drift).
	o.Expires = time.Now()
	if resp.TTL >= 0 {
		o.Expires = o.Expires.Add(time.Duration(resp.TTL+1) * time.Second)
	}
	return o, nil
}

// revoke revokes a lease, best effort, with its own short deadline.
func (a *Authority) revoke(ctx context.Context, id clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := a.cli.Revoke(rctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		a.log.Debug("witness: revoke failed (the lease expires on its own)", "lease", fmt.Sprintf("%x", int64(id)), "err", err)
	}
}

// renew is one confirmed renewal of g: a linearizable read (the gate), a
// keepalive of its lease, then a linearizable read that must still show
// g's epoch and lease. It returns the TTL the holder may count from the
// send time of the gate.
//
// Why the gate: etcd does not send a follower's keepalive through raft; the
// follower forwards it to the leader over a plain HTTP request, which
// carries no sender identity and therefore does not take the sender's WAN
// link (see PeerRouter), and which needs only that the follower still hears
// the leader. With the holder's traffic towards the leader cut one way, the
// keepalives would still land and the lease would live on at the authority
// although the holder can no longer renew a confirmed lease (nor the next
// Hold). A linearizable read needs a round trip of raft messages between
// the holder's member and the leader, and the leader's quorum: so a
// keepalive is sent only right after that path was shown to work, and the
// lease ends at the authority one TTL after the holder's path to the quorum
// broke (plus at most one renewal that was in flight), in every direction.
func (a *Authority) renew(ctx context.Context, g Grant) (time.Duration, error) {
	ctx = clientv3.WithRequireLeader(ctx)
	op := fmt.Sprintf("renew %s epoch %d", g.Group, g.Epoch)
	pre, err := a.read(ctx, g.Group)
	if err != nil {
		return 0, a.fail(ctx, op, err)
	}
	if pre.epoch > g.Epoch || pre.owner != nil && (pre.owner.Lease != g.LeaseID || pre.owner.Epoch != g.Epoch) {
		return 0, fmt.Errorf("witness: %s: %w (epoch now %d)", op, ErrFenced, pre.epoch)
	}
	if pre.owner == nil {
		return 0, fmt.Errorf("witness: %s: %w: the owner record is gone at the authority", op, ErrExpired)
	}
	ttl, err := a.keepAliveOnce(ctx, clientv3.LeaseID(g.LeaseID))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		if st, rerr := a.read(ctx, g.Group); rerr == nil && st.epoch > g.Epoch {
			return 0, fmt.Errorf("witness: %s: %w (epoch now %d)", op, ErrFenced, st.epoch)
		}
		return 0, fmt.Errorf("witness: %s: %w: the lease is gone at the authority", op, ErrExpired)
	}
	if err != nil {
		return 0, a.fail(ctx, op, err)
	}
	st, err := a.read(ctx, g.Group)
	if err != nil {
		return 0, a.fail(ctx, op, err)
	}
	if st.owner == nil || st.owner.Lease != g.LeaseID || st.owner.Epoch != g.Epoch || st.epoch != g.Epoch {
		return 0, fmt.Errorf("witness: %s: %w (epoch now %d)", op, ErrFenced, st.epoch)
	}
	return min(g.TTL, time.Duration(ttl)*time.Second), nil
}

// keepAliveOnce renews a lease once and returns the TTL (seconds) the
// authority restarted it with. Unlike clientv3's KeepAliveOnce it does not
// retry: the caller's schedule does.
func (a *Authority) keepAliveOnce(ctx context.Context, id clientv3.LeaseID) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewLeaseClient(a.cli.ActiveConnection()).LeaseKeepAlive(ctx)
	if err != nil {
		return 0, rpcErr(ctx, err)
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		return 0, rpcErr(ctx, err)
	}
	resp, err := stream.Recv()
	if err != nil {
		return 0, rpcErr(ctx, err)
	}
	_ = stream.CloseSend()
	if resp.TTL <= 0 {
		return 0, rpctypes.ErrLeaseNotFound
	}
	return resp.TTL, nil
}

func rpcErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return rpctypes.Error(err)
}

// fail wraps an error of an etcd call, marking the ones that mean the
// authority did not answer with a quorum in time as ErrNoQuorum.
func (a *Authority) fail(ctx context.Context, op string, err error) error {
	if noQuorum(err) && !errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("witness: %s: %w: %w", op, ErrNoQuorum, err)
	}
	return fmt.Errorf("witness: %s: %w", op, err)
}

func noQuorum(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
	}
	return false
}

func checkName(field, s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%s %q must be 1-128 letters, digits, '.', '-' or '_'", field, s)
	}
	return nil
}

// ceilSeconds is d in whole seconds, rounded up (etcd's TTL unit).
func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
