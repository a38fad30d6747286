package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/geostamp/geostamp/internal/data"
)

// Failover, as the controller drives it through data.Replica.
//
// Epoch fencing: a write of epoch E is published to gs.<svc>.e<E>.<key>;
// the writable stream of epoch E listens on gs.<svc>.e<E>.* only and
// stores what it gets as gs.<svc>.k.<key> (a stream subject transform),
// so reads and mirrors see one history across epochs. A write addressed to
// another epoch reaches no stream (no responders: ErrUnavailable), even
// while the leafnodes connect an old and a new primary. A fenced stream
// listens on gs.<svc>.fenced.<region>, which nobody writes to (a stream
// without subjects would listen on its own name).
//
// Fence updates the local stream's subjects, then publishes a barrier to
// the fenced subject that the stream must reject (it expects an
// impossible last sequence): the stream handles inbound messages in
// order, so the rejection, which quotes the last sequence, comes after
// every write that was queued before the fence. That is the final
// position.
//
// Promote removes the mirror configuration (NATS 2.12+), fences, takes
// the barrier's position as the fork point, and opens the epoch's
// subjects, recording epoch and fork in the stream metadata.
//
// Follow cannot re-point a mirror (NATS refuses any change to a mirror's
// origin) nor turn a writable stream into a mirror: unless the local
// stream is already a mirror of the primary holding a prefix of its
// history, it is deleted and recreated as a mirror, which copies
// everything. The writes discarded are the local ones past the fork: the
// longest common prefix of the local and the primary's history, found by
// comparing messages (subject, timestamp, data) at the same sequence with
// direct gets, tried first at the primary's recorded fork point. Comparing
// messages rather than trusting the recorded fork alone also counts
// correctly after several failovers in a row.

// followTimeout bounds each remote step of Follow when ctx allows more.
const followTimeout = 5 * time.Second

// Position returns the last sequence of the local stream or mirror (0 if
// there is none yet).
func (s *service) Position(ctx context.Context) (uint64, error) {
	_, nc, js := s.e.conn()
	if nc == nil {
		return 0, fmt.Errorf("jetstream: position %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	st, err := js.Stream(ctx, s.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("jetstream: position %s: %w: %w", s.name, data.ErrUnavailable, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// Fence makes this region refuse writes (Put fails with data.ErrFenced)
// and, if the local stream is writable, makes it listen on no write
// subject. It is local only and returns the final local position.
func (s *service) Fence(ctx context.Context) (uint64, error) {
	s.op.Lock()
	defer s.op.Unlock()
	return s.fenceLocked(ctx)
}

// fenceLocked is Fence; callers hold s.op.
func (s *service) fenceLocked(ctx context.Context) (uint64, error) {
	_, nc, js := s.e.conn()
	if nc == nil {
		return 0, fmt.Errorf("jetstream: fence %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	s.mu.Lock()
	s.role, s.verified, s.lease = data.RoleFenced, false, nil
	s.mu.Unlock()
	s.tracker.reset()

	st, err := js.Stream(ctx, s.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("jetstream: fence %s: %w: %w", s.name, data.ErrUnavailable, err)
	}
	info := st.CachedInfo()
	if info.Config.Mirror != nil {
		return info.State.LastSeq, nil // takes no writes anyway
	}
	pos, err := s.fenceStream(ctx, nc, js, info.Config)
	if err != nil {
		return 0, fmt.Errorf("jetstream: fence %s: %w", s.name, err)
	}
	return pos, nil
}

// fenceStream makes the writable stream cfg listen on the fenced subject
// only and returns its position once every write queued before is
// stored. The subject transform stays, for the writes still queued.
func (s *service) fenceStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg jetstream.StreamConfig) (uint64, error) {
	if !slices.Equal(cfg.Subjects, []string{s.fencedSubject()}) {
		cfg.Subjects = []string{s.fencedSubject()}
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return 0, fmt.Errorf("update stream: %w", err)
		}
	}
	return s.barrier(ctx, nc)
}

// barrier returns the last sequence of the local writable stream, in
// order after every message the stream received before: a publish to the
// fenced subject that the stream rejects for a wrong expected last
// sequence, quoting the actual one.
func (s *service) barrier(ctx context.Context, nc *nats.Conn) (uint64, error) {
	m := nats.NewMsg(s.fencedSubject())
	m.Header.Set(jetstream.ExpectedStreamHeader, s.stream)
	m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(math.MaxInt64, 10))
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("barrier: %w", err)
	}
	var r apiError
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("barrier: %w", err)
	}
	if r.Error == nil || r.Error.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, fmt.Errorf("barrier: unexpected answer %q", resp.Data)
	}
	seq, err := strconv.ParseUint(strings.TrimPrefix(r.Error.Description, "wrong last sequence: "), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("barrier: unexpected answer %q", resp.Data)
	}
	return seq, nil
}

// Promote makes the local stream the writable stream of epoch (creating
// it if there is none) and creates the durable consumers that the other
// regions' mirrors will use. An older epoch than one already seen is
// refused.
// RebuildTarget is the position the replica must reach again before it may
// be promoted automatically (data.Rebuilder); 0 when it never rebuilt.
func (s *service) RebuildTarget() uint64 { return s.rebuildTo.Load() }

func (s *service) Promote(ctx context.Context, epoch uint64, lease data.Lease) error {
	s.op.Lock()
	defer s.op.Unlock()
	defer s.rebuildTo.Store(0) // a primary's history is the reference
	_, nc, js := s.e.conn()
	if nc == nil {
		return fmt.Errorf("jetstream: promote %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	if err := s.checkEpoch(epoch, s.region); err != nil {
		return fmt.Errorf("jetstream: promote %s: %w", s.name, err)
	}
	fail := func(err error) error {
		if isUnavailable(err) {
			return fmt.Errorf("jetstream: promote %s at epoch %d: %w: %w", s.name, epoch, data.ErrUnavailable, err)
		}
		return fmt.Errorf("jetstream: promote %s at epoch %d: %w", s.name, epoch, err)
	}
	st, err := js.Stream(ctx, s.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg := s.baseConfig()
		s.setEpoch(&cfg, epoch, 0)
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return fail(fmt.Errorf("create stream: %w", err))
		}
	case err != nil:
		return fail(err)
	case !s.writableAt(st.CachedInfo().Config, epoch):
		cfg := st.CachedInfo().Config
		if cfg.Mirror != nil {
			// Stop mirroring but take no writes yet: the fork point is
			// the position once the mirror stopped.
			cfg.Mirror = nil
			cfg.Subjects = []string{s.fencedSubject()}
			cfg.SubjectTransform = nil
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return fail(fmt.Errorf("stop mirroring: %w", err))
			}
		}
		fork, err := s.fenceStream(ctx, nc, js, cfg)
		if err != nil {
			return fail(err)
		}
		if metaUint(cfg, metaEpoch) == epoch && cfg.Metadata[metaFork] != "" {
			fork = metaUint(cfg, metaFork) // unfenced at the same epoch: same fork
		}
		s.setEpoch(&cfg, epoch, fork)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fail(fmt.Errorf("open epoch subjects: %w", err))
		}
	}
	s.unreported = 0 // those writes are gone; no Follow will report them now
	s.mu.Lock()
	changed := s.role != data.RolePrimary || s.epoch != epoch
	s.role, s.epoch, s.primary, s.maxEpoch, s.owner, s.verified = data.RolePrimary, epoch, s.region, epoch, s.region, false
	s.note = ""
	s.lease = lease
	s.mu.Unlock()
	if changed {
		s.tracker.reset()
	}
	if lease != nil {
		go s.watchLease(lease)
	}
	s.ensureMirrorConsumers(ctx, nc)
	return nil
}

// watchLease fences the replica as soon as lease ends, unless a Fence,
// Follow or Promote replaced it first: the stream then stops taking writes
// from other regions too (their acknowledgements come from the stream, not
// from Put here), without waiting for the controller's next step.
func (s *service) watchLease(lease data.Lease) {
	life := s.e.lifeContext()
	select {
	case <-lease.Done():
	case <-life.Done():
		return
	}
	start := time.Now()
	s.op.Lock()
	defer s.op.Unlock()
	s.mu.RLock()
	current := s.lease == lease
	s.mu.RUnlock()
	if !current {
		return
	}
	ctx, cancel := context.WithTimeout(life, followTimeout)
	defer cancel()
	pos, err := s.fenceLocked(ctx)
	if err != nil {
		s.e.log.Warn("jetstream: lease ended; fence failed", "service", s.name, "err", err)
		return
	}
	s.e.log.Info("jetstream: lease ended: fenced", "service", s.name, "position", pos, "ms", time.Since(start).Milliseconds())
}

// ensureMirrorConsumers creates on the local stream the durable consumer
// of each other region's mirror (Service.Regions). Only an optimisation (and the
// list of secondaries for sync replication): the relay of a region
// creates its consumer when its mirror attaches.
func (s *service) ensureMirrorConsumers(ctx context.Context, nc *nats.Conn) {
	for _, r := range s.regions {
		if r == s.region {
			continue
		}
		cfg := mirrorConsumerConfig(s.stream, "gs_mirror_"+r, mirrorDeliverSubject(s.region, s.stream, r))
		req := func(ctx context.Context, m *nats.Msg) (*nats.Msg, error) { return nc.RequestMsgWithContext(ctx, m) }
		if _, err := ensureConsumer(ctx, req, apiPrefix(""), s.stream, cfg); err != nil {
			s.e.log.Warn("jetstream: mirror consumer not created", "service", s.name, "for", r, "err", err)
		}
	}
}

// checkEpoch refuses a decision for an epoch older than one already seen,
// or for the same epoch with another primary.
func (s *service) checkEpoch(epoch uint64, primary string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case epoch == 0:
		return errors.New("epoch 0 is not a valid epoch")
	case epoch < s.maxEpoch:
		return fmt.Errorf("stale epoch %d: epoch %d already seen", epoch, s.maxEpoch)
	case epoch == s.maxEpoch && s.owner != "" && s.owner != primary:
		return fmt.Errorf("epoch %d belongs to %s, not %s", epoch, s.owner, primary)
	}
	return nil
}

// Follow routes this region's writes to primary at epoch, and makes the
// local stream a mirror of primary's: it keeps a mirror of primary that
// holds a prefix of its history, and otherwise deletes the local stream
// and recreates it as a mirror, returning how many local writes were past
// the fork. Writes are routed, and a writable local stream fenced, before
// anything remote: if primary cannot be reached (or has not promoted its
// stream at epoch yet), the error wraps data.ErrUnavailable and the
// controller calls again.
func (s *service) Follow(ctx context.Context, primary string, epoch uint64) (uint64, error) {
	s.op.Lock()
	defer s.op.Unlock()
	_, nc, js := s.e.conn()
	if nc == nil {
		return 0, fmt.Errorf("jetstream: follow %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	switch {
	case primary == s.region:
		return 0, fmt.Errorf("jetstream: follow %s: cannot follow itself (use Promote)", s.name)
	case !tokenRE.MatchString(primary):
		return 0, fmt.Errorf("jetstream: follow %s: %q is not a region name", s.name, primary)
	}
	if err := s.checkEpoch(epoch, primary); err != nil {
		return 0, fmt.Errorf("jetstream: follow %s: %w", s.name, err)
	}
	s.mu.Lock()
	if s.role == data.RoleSecondary && s.primary == primary && s.epoch == epoch && s.verified {
		s.mu.Unlock()
		return 0, nil
	}
	changed := s.primary != primary || s.epoch != epoch
	s.role, s.primary, s.epoch, s.maxEpoch, s.owner, s.verified = data.RoleSecondary, primary, epoch, epoch, primary, false
	s.note, s.lease = "", nil
	s.mu.Unlock()
	if changed {
		s.tracker.reset()
	}
	// Whatever goes wrong with the primary is worth another try.
	unavailable := func(err error) (uint64, error) {
		return 0, fmt.Errorf("jetstream: %s: follow %s at epoch %d: %w: %w", s.name, primary, epoch, data.ErrUnavailable, err)
	}
	fail := func(err error) (uint64, error) {
		if isUnavailable(err) {
			return unavailable(err)
		}
		return 0, fmt.Errorf("jetstream: %s: follow %s at epoch %d: %w", s.name, primary, epoch, err)
	}

	var local *jetstream.StreamInfo
	st, err := js.Stream(ctx, s.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return fail(err)
	default:
		local = st.CachedInfo()
		if local.Config.Mirror == nil {
			// An old primary (or one fenced at start): unwritable first.
			pos, err := s.fenceStream(ctx, nc, js, local.Config)
			if err != nil {
				return fail(err)
			}
			local.State.LastSeq = pos
		}
	}

	rctx, cancel := context.WithTimeout(ctx, followTimeout)
	defer cancel()
	pinfo, err := remoteStreamInfo(rctx, nc, primary, s.stream)
	if err != nil {
		return unavailable(fmt.Errorf("stream info of %s: %w", primary, err))
	}
	switch pepoch := metaUint(pinfo.Config, metaEpoch); {
	case pinfo.Config.Mirror != nil || pepoch < epoch:
		return unavailable(fmt.Errorf("%s has not promoted its stream at epoch %d yet", primary, epoch))
	case pepoch > epoch:
		return fail(fmt.Errorf("%s is already at epoch %d", primary, pepoch))
	}

	if local != nil && mirrorDomain(local.Config.Mirror) != primary {
		s.unreported = 0 // an earlier attempt did not delete it: count again
	}
	if local != nil {
		fork, err := s.commonPrefix(rctx, nc, primary, local.State.LastSeq, pinfo.State.LastSeq, metaUint(pinfo.Config, metaFork))
		if err != nil {
			return unavailable(fmt.Errorf("compare histories with %s: %w", primary, err))
		}
		keep := mirrorDomain(local.Config.Mirror) == primary && fork == local.State.LastSeq
		if keep {
			if metaUint(local.Config, metaEpoch) != epoch {
				cfg := local.Config
				cfg.Metadata = map[string]string{metaEpoch: strconv.FormatUint(epoch, 10)}
				if _, err := js.UpdateStream(ctx, cfg); err != nil {
					return fail(fmt.Errorf("record epoch: %w", err))
				}
			}
		} else {
			// Counted before deleting: a delete that times out may
			// still have happened.
			s.unreported += local.State.LastSeq - fork
			if err := js.DeleteStream(ctx, s.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return fail(fmt.Errorf("delete stream: %w", err))
			}
			if hook := s.e.testHookAfterDelete; hook != nil {
				if err := hook(); err != nil {
					return fail(err)
				}
			}
			s.e.log.Info("jetstream: rejoining as a mirror", "service", s.name, "primary", primary, "epoch", epoch,
				"local_seq", local.State.LastSeq, "fork", fork, "discarded", local.State.LastSeq-fork)
			local = nil
		}
	}
	if local == nil {
		if _, err := js.CreateStream(ctx, s.mirrorConfig(primary, epoch)); err != nil {
			return fail(fmt.Errorf("create mirror: %w", err))
		}
		s.rebuildTo.Store(pinfo.State.LastSeq)
	}
	discarded := s.unreported
	s.unreported = 0
	s.mu.Lock()
	if s.primary == primary && s.epoch == epoch {
		s.verified = true
	}
	s.mu.Unlock()
	// Let the primary's subscription reach us, so that Puts from here go
	// through as soon as Follow returns (best effort).
	if s.writableAt(pinfo.Config, epoch) {
		s.e.waitInterest(ctx, s.writeSubject(epoch, "x"), time.Second)
	}
	return discarded, nil
}

// commonPrefix returns the length of the longest common prefix of the
// local history (localLast writes) and primary's (primaryLast writes).
// Histories only ever grow or are replaced, so messages equal at a
// sequence are equal before it too; hint (the primary's fork point) is
// tried before a binary search.
func (s *service) commonPrefix(ctx context.Context, nc *nats.Conn, primary string, localLast, primaryLast, hint uint64) (uint64, error) {
	same := func(seq uint64) (bool, error) {
		if seq == 0 {
			return true, nil
		}
		req := directRequest{Seq: seq}
		lm, err := directGet(ctx, nc, "", s.stream, req)
		if err != nil && !errors.Is(err, errNoMessage) {
			return false, err
		}
		pm, perr := directGet(ctx, nc, primary, s.stream, req)
		if perr != nil && !errors.Is(perr, errNoMessage) {
			return false, perr
		}
		return err == nil && perr == nil && lm.Seq == seq && sameMsg(lm, pm), nil
	}
	hi := min(localLast, primaryLast)
	if ok, err := same(hi); err != nil || ok {
		return hi, err
	}
	if hint < hi {
		ok, err := same(hint)
		if err != nil {
			return 0, err
		}
		if ok {
			next, err := same(hint + 1)
			if err != nil {
				return 0, err
			}
			if !next {
				return hint, nil
			}
		}
	}
	lo := uint64(0) // same(lo) && !same(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := same(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// Crash kills the engine of the whole region (see Engine.Crash).
func (s *service) Crash() error { return s.e.Crash() }
