package jetstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sync replication: a Put is acknowledged once a secondary's mirror holds
// the write. The primary's mirror consumers cannot tell (they learn the
// mirrors' position from flow-control replies, about once a second), so
// the tracker asks the secondaries themselves: while Puts wait, one poller
// per candidate region reads that region's stream state (STREAM.INFO in
// its domain; locally for this region) back to back, and every answer
// releases all the waiting Puts it covers. Concurrent Puts share the
// polls; an idle service sends none.
//
// A candidate counts only if its stream is a mirror of the primary
// verified at the Put's epoch (Follow records the epoch in the mirror's
// metadata), so a stale mirror of an older history cannot confirm.

const (
	syncPollTimeout = time.Second
	// syncPollMin spaces the polls of one region (a local one answers in
	// microseconds); syncPollRetry follows a failed poll.
	syncPollMin   = time.Millisecond
	syncPollRetry = 50 * time.Millisecond
	// syncDiscoverEvery bounds how often a primary lists its mirror
	// consumers to find secondaries.
	syncDiscoverEvery = time.Second
)

var (
	errNotSecondary  = errors.New("not a mirror of the primary at this epoch")
	errTargetChanged = errors.New("primary or epoch changed while waiting")
)

type syncTracker struct {
	s *service

	mu      sync.Mutex
	primary string
	epoch   uint64
	best    uint64 // highest position a secondary of (primary, epoch) confirmed
	waiters map[*syncWaiter]struct{}
	polling map[string]bool // candidate regions with a poller running

	found   []string // secondaries discovered from the mirror consumers
	foundAt time.Time
}

type syncWaiter struct {
	seq  uint64
	done chan struct{}
	err  error // set before done is closed
}

func newSyncTracker(s *service) *syncTracker {
	return &syncTracker{s: s, waiters: map[*syncWaiter]struct{}{}, polling: map[string]bool{}}
}

// reset forgets the confirmed position and fails the waiting Puts: the
// primary or epoch changed, so their outcome is unknown.
func (t *syncTracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.primary, t.epoch, t.best = "", 0, 0
	t.release(0, errTargetChanged)
}

// release ends the waiters with seq <= upTo (all if err is set).
func (t *syncTracker) release(upTo uint64, err error) {
	for w := range t.waiters {
		if err != nil || w.seq <= upTo {
			w.err = err
			close(w.done)
			delete(t.waiters, w)
		}
	}
}

// wait returns once a secondary of (primary, epoch) holds seq, or with
// ctx's error. With no candidate secondary at all (a single region) it
// returns at once: sync degrades to async.
func (t *syncTracker) wait(ctx context.Context, primary string, epoch, seq uint64) error {
	cands := t.candidates(ctx, primary)
	if len(cands) == 0 {
		return nil
	}
	t.mu.Lock()
	if t.primary != primary || t.epoch != epoch {
		t.release(0, errTargetChanged)
		t.primary, t.epoch, t.best = primary, epoch, 0
	}
	if t.best >= seq {
		t.mu.Unlock()
		return nil
	}
	w := &syncWaiter{seq: seq, done: make(chan struct{})}
	t.waiters[w] = struct{}{}
	for _, c := range cands {
		if !t.polling[c] {
			t.polling[c] = true
			go t.poll(c, primary, epoch)
		}
	}
	t.mu.Unlock()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-w.done: // released meanwhile
		return w.err
	default:
		delete(t.waiters, w)
		return ctx.Err()
	}
}

// poll reads region c's position while Puts wait for (primary, epoch).
func (t *syncTracker) poll(c, primary string, epoch uint64) {
	life := t.s.e.lifeContext()
	for {
		t.mu.Lock()
		if t.primary != primary || t.epoch != epoch || len(t.waiters) == 0 || life.Err() != nil {
			delete(t.polling, c)
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		began := time.Now()
		pos, err := t.position(life, c, primary, epoch)
		pause := syncPollMin - time.Since(began)
		if err != nil {
			pause = syncPollRetry
		} else {
			t.mu.Lock()
			if t.primary == primary && t.epoch == epoch && pos > t.best {
				t.best = pos
				t.release(pos, nil)
			}
			t.mu.Unlock()
		}
		if pause > 0 {
			select {
			case <-life.Done():
			case <-time.After(pause):
			}
		}
	}
}

// position is region c's last sequence if its stream is a mirror of
// primary verified at epoch.
func (t *syncTracker) position(ctx context.Context, c, primary string, epoch uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, syncPollTimeout)
	defer cancel()
	s := t.s
	_, nc, js := s.e.conn()
	if nc == nil {
		return 0, errors.New(s.e.downReason())
	}
	var info *jetstream.StreamInfo
	if c == s.region {
		st, err := js.Stream(ctx, s.stream)
		if err != nil {
			return 0, err
		}
		info = st.CachedInfo()
	} else {
		var err error
		if info, err = remoteStreamInfo(ctx, nc, c, s.stream); err != nil {
			return 0, err
		}
	}
	if mirrorDomain(info.Config.Mirror) != primary || metaUint(info.Config, metaEpoch) != epoch {
		return 0, errNotSecondary
	}
	return info.State.LastSeq, nil
}

// candidates are the regions whose mirror may confirm writes of primary:
// the configured regions, the regions with a mirror consumer on the local
// stream (on the primary), and this region (on a secondary); never the
// primary.
func (t *syncTracker) candidates(ctx context.Context, primary string) []string {
	s := t.s
	out := slices.Clone(s.regions)
	if s.region == primary {
		out = append(out, t.discover(ctx)...)
	} else {
		out = append(out, s.region)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(r string) bool { return r == primary })
}

// discover lists the regions with a mirror consumer on the local stream,
// at most every syncDiscoverEvery.
func (t *syncTracker) discover(ctx context.Context) []string {
	t.mu.Lock()
	if time.Since(t.foundAt) < syncDiscoverEvery {
		defer t.mu.Unlock()
		return t.found
	}
	t.mu.Unlock()
	var found []string
	if _, nc, js := t.s.e.conn(); nc != nil {
		ctx, cancel := context.WithTimeout(ctx, syncPollTimeout)
		defer cancel()
		if st, err := js.Stream(ctx, t.s.stream); err == nil {
			names := st.ConsumerNames(ctx)
			for n := range names.Name() {
				if r, ok := strings.CutPrefix(n, "gs_mirror_"); ok && tokenRE.MatchString(r) {
					found = append(found, r)
				}
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.found, t.foundAt = found, time.Now()
	return found
}
