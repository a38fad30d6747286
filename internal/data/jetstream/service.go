package jetstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/geostamp/geostamp/internal/data"
)

// ErrInvalidKey is returned for keys that cannot be stored (empty or too
// long).
var ErrInvalidKey = errors.New("invalid key")

const (
	// maxKeyLen bounds keys so that their subject stays well below the
	// NATS control line limit.
	maxKeyLen = 1024
	// statusProbeTimeout bounds each request Status sends to the primary
	// when the caller's ctx allows more.
	statusProbeTimeout = time.Second
	// listBatch is the largest batch asked of one direct get.
	listBatch = 512
	// listDefault is the limit used by List when limit <= 0.
	listDefault = 100
	// mirrorMaxAckPending is the flow-control window of a mirror's
	// consumer: messages in flight on the WAN before the mirror confirms.
	mirrorMaxAckPending = 10000
)

// Stream metadata keys. A writable stream records the epoch it was
// promoted at and its fork point (its position when promoted: followers
// that hold more than that of another history discard the excess); a
// mirror records the epoch at which it was verified to follow its origin.
const (
	metaEpoch = "geostamp.epoch"
	metaFork  = "geostamp.fork"
)

// service is one primary-secondary data service as this region sees it.
// It implements data.Replica.
type service struct {
	e      *Engine
	name   string
	region string
	stream string // same stream name in every region (domain)
	// Subjects: writes are published to gs.<name>.e<epoch>.<key>, stored
	// as gs.<name>.k.<key>; a fenced stream listens only on
	// gs.<name>.fenced.<region>, which nobody writes to.
	subject string // gs.<name>
	// The durable consumer on the primary's stream that feeds this
	// region's mirror.
	mirrorConsumer string
	hint           string   // Service.Primary
	regions        []string // Service.Regions
	sync           bool
	tracker        *syncTracker
	now            func() time.Time

	op sync.Mutex // serializes setup, Fence, Promote, Follow
	// unreported counts writes discarded by a Follow that failed after
	// deleting the local stream; the next successful Follow reports them.
	// Guarded by op.
	unreported uint64
	// rebuildTo is the primary's position when this region last recreated
	// its mirror: until the mirror holds it again, the region lacks writes
	// that were acknowledged and must not be promoted automatically.
	rebuildTo atomic.Uint64

	mu      sync.RWMutex
	role    data.Role // "" until the controller's first Promote or Follow
	epoch   uint64
	primary string // current known primary ("" if none)
	// maxEpoch is the highest epoch seen (from the stream or a call) and
	// owner its primary; older or conflicting decisions are refused.
	maxEpoch uint64
	owner    string
	// verified: the local mirror was checked to hold a prefix of the
	// history of (primary, epoch), so Follow has nothing left to do.
	verified bool
	note     string // what setup did to the stream found on disk
	// lease is the witness lease of the epoch this region is primary at
	// (nil when not primary, or promoted without one): Put checks it
	// before acknowledging, watchLease fences when it ends.
	lease data.Lease
}

var (
	_ data.Store   = (*service)(nil)
	_ data.Replica = (*service)(nil)
	_ data.Crasher = (*service)(nil)
)

func newService(e *Engine, region string, s Service) *service {
	svc := &service{
		e:              e,
		name:           s.Name,
		region:         region,
		stream:         "gs_" + s.Name,
		subject:        "gs." + s.Name,
		mirrorConsumer: "gs_mirror_" + region,
		hint:           s.Primary,
		regions:        s.Regions,
		sync:           s.Replication == ReplicationSync,
		primary:        s.Primary,
		now:            time.Now,
	}
	svc.tracker = newSyncTracker(svc)
	return svc
}

// state returns the routing state under the lock.
func (s *service) state() (role data.Role, epoch uint64, primary string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.role, s.epoch, s.primary
}

// keyToken encodes key as one subject token: base64url without padding,
// so dots, spaces and wildcards in keys are safe.
func (s *service) keyToken(key string) (string, error) {
	if key == "" || len(key) > maxKeyLen {
		return "", fmt.Errorf("jetstream: %s: %w: length %d not in 1-%d", s.name, ErrInvalidKey, len(key), maxKeyLen)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(key)), nil
}

// storedSubject is the subject a key's writes are stored under, whatever
// their epoch.
func (s *service) storedSubject(token string) string { return s.subject + ".k." + token }

// writeSubject is the subject a write of epoch is published to.
func (s *service) writeSubject(epoch uint64, token string) string {
	return s.subject + ".e" + strconv.FormatUint(epoch, 10) + "." + token
}

// epochFilter is the subject filter of the writable stream of epoch.
func (s *service) epochFilter(epoch uint64) string { return s.writeSubject(epoch, "*") }

// fencedSubject is the only subject of a fenced stream. It names the
// region, so that the barrier published to it reaches only the local
// stream.
func (s *service) fencedSubject() string { return s.subject + ".fenced." + s.region }

// subjectKey decodes the key of a stored subject.
func (s *service) subjectKey(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, s.subject+".k.")
	if !ok {
		return "", fmt.Errorf("jetstream: %s: foreign subject %q", s.name, subject)
	}
	k, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("jetstream: %s: subject %q: %w", s.name, subject, err)
	}
	return string(k), nil
}

func (s *service) record(m storedMsg) (data.Record, error) {
	key, err := s.subjectKey(m.Subject)
	if err != nil {
		return data.Record{}, err
	}
	return data.Record{Key: key, Seq: m.Seq, Value: m.Data, Time: m.Time.UTC()}, nil
}

// baseConfig is what every region's stream has in common. The name is the
// same everywhere, so that promoting a mirror and re-mirroring an old
// primary keep names.
func (s *service) baseConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.stream,
		Description: "geostamp primary-secondary service " + s.name,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    1,
		AllowDirect: true,
	}
}

// fencedConfig is a writable stream that listens on no write subject.
func (s *service) fencedConfig() jetstream.StreamConfig {
	cfg := s.baseConfig()
	cfg.Subjects = []string{s.fencedSubject()}
	cfg.Metadata = map[string]string{metaEpoch: "0", metaFork: "0"}
	return cfg
}

// mirrorConfig is a mirror of primary's stream across domains, verified
// at epoch. A durable consumer on the primary feeds it; its API requests
// go through this region's relay, which holds them across a partition
// (see relay.go).
func (s *service) mirrorConfig(primary string, epoch uint64) jetstream.StreamConfig {
	cfg := s.baseConfig()
	cfg.Mirror = &jetstream.StreamSource{
		Name:     s.stream,
		External: &jetstream.ExternalStream{APIPrefix: relayAPIPrefix(primary, s.region)},
		Consumer: &jetstream.StreamConsumerSource{Name: s.mirrorConsumer, DeliverSubject: s.mirrorDeliver(primary)},
	}
	cfg.Metadata = map[string]string{metaEpoch: strconv.FormatUint(epoch, 10)}
	return cfg
}

// setEpoch makes cfg the writable stream of epoch: it listens on the
// epoch's write subjects only and stores them under the epoch-independent
// subject, so Get and mirrors see one history across epochs.
func (s *service) setEpoch(cfg *jetstream.StreamConfig, epoch, fork uint64) {
	cfg.Mirror = nil
	cfg.Subjects = []string{s.epochFilter(epoch)}
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{
		Source:      s.epochFilter(epoch),
		Destination: s.storedSubject("{{wildcard(1)}}"),
	}
	cfg.Metadata = map[string]string{
		metaEpoch: strconv.FormatUint(epoch, 10),
		metaFork:  strconv.FormatUint(fork, 10),
	}
}

// mirrorDeliver is the subject primary's consumer delivers this region's
// mirror to. It names the primary: a durable consumer left on an old
// primary's stream must not feed a mirror of another one.
func (s *service) mirrorDeliver(primary string) string {
	return mirrorDeliverSubject(primary, s.stream, s.region)
}

func mirrorDeliverSubject(primary, stream, region string) string {
	return "_GS.MIRROR." + primary + "." + stream + "." + region
}

// mirrorConsumerConfig is the durable push consumer, on primary's stream,
// that feeds this region's mirror. It acknowledges on flow control, so the
// primary keeps how far this region's mirror got.
func (s *service) mirrorConsumerConfig(primary string) jetstream.ConsumerConfig {
	return mirrorConsumerConfig(s.stream, s.mirrorConsumer, s.mirrorDeliver(primary))
}

func mirrorConsumerConfig(stream, name, deliver string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "geostamp: feeds the mirror of " + stream + " in another region",
		DeliverSubject: deliver,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second, // the only value NATS accepts here
		MaxAckPending:  mirrorMaxAckPending,
	}
}

// metaUint reads a numeric metadata value (0 if absent or malformed).
func metaUint(cfg jetstream.StreamConfig, key string) uint64 {
	n, _ := strconv.ParseUint(cfg.Metadata[key], 10, 64)
	return n
}

// writableAt reports whether cfg is the writable stream of epoch.
func (s *service) writableAt(cfg jetstream.StreamConfig, epoch uint64) bool {
	return cfg.Mirror == nil && slices.Equal(cfg.Subjects, []string{s.epochFilter(epoch)}) && metaUint(cfg, metaEpoch) == epoch
}

// setup brings the stream found on disk into a safe state before the
// controller decides anything; it needs nothing remote. A writable stream
// (an old primary that restarted) is fenced at once. A mirror is left
// mirroring. A missing stream is created from the Primary hint: fenced
// writable in that region, a mirror of it elsewhere, nothing without one.
func (s *service) setup(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	s.op.Lock()
	defer s.op.Unlock()
	st, err := js.Stream(ctx, s.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		var cfg jetstream.StreamConfig
		switch s.hint {
		case "":
			return nil
		case s.region:
			cfg = s.fencedConfig()
		default:
			cfg = s.mirrorConfig(s.hint, 0)
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	cfg := st.CachedInfo().Config
	epoch := metaUint(cfg, metaEpoch)
	s.mu.Lock()
	s.maxEpoch = epoch
	if cfg.Mirror != nil {
		s.primary = mirrorDomain(cfg.Mirror)
	}
	if epoch > 0 {
		s.owner = s.primary
		if cfg.Mirror == nil {
			s.owner = s.region
		}
	}
	s.mu.Unlock()
	if !cfg.AllowDirect {
		cfg.AllowDirect = true
		if st, err = js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("update stream: %w", err)
		}
		cfg = st.CachedInfo().Config
	}
	if cfg.Mirror == nil && !slices.Equal(cfg.Subjects, []string{s.fencedSubject()}) {
		pos, err := s.fenceStream(ctx, nc, js, cfg)
		if err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		note := fmt.Sprintf("was writable at epoch %d before the restart: fenced at position %d", epoch, pos)
		s.mu.Lock()
		s.note = note
		s.mu.Unlock()
		s.e.log.Warn("jetstream: "+note, "service", s.name)
	}
	return nil
}

// mirrorDomain is the domain (region) whose stream m copies. The domain is
// the second token of the API prefix, as for NATS itself ($JS.<domain>.API,
// or the relay's $GSR.<domain>.<region>.API).
func mirrorDomain(m *jetstream.StreamSource) string {
	switch {
	case m == nil:
		return ""
	case m.Domain != "":
		return m.Domain
	case m.External != nil:
		if toks := strings.Split(m.External.APIPrefix, "."); len(toks) > 1 {
			return toks[1]
		}
	}
	return ""
}

// doPut publishes value under key to the subject of the current epoch, so
// that only the primary of that epoch stores it (across the leafnodes if
// it is remote), and returns once that stream acknowledged it (and, in
// sync mode, once a secondary's mirror holds it). Seq is the primary's
// stream sequence; Time the message's timestamp at the primary, read back
// with one direct get (one more round trip to the primary; if that read
// fails, the write still counts and Time is the local clock at the
// acknowledgement).
//
// Before the controller's first decision the error wraps
// data.ErrUnavailable, in a fenced region data.ErrFenced. When the primary
// cannot be reached (no responders, timeout, ctx over), or in sync mode no
// secondary confirmed in time, the error wraps data.ErrUnavailable; then
// the write may or may not have been applied.
func (s *service) doPut(ctx context.Context, key string, value []byte) (data.Record, error) {
	tok, err := s.keyToken(key)
	if err != nil {
		return data.Record{}, err
	}
	_, nc, js := s.e.conn()
	if nc == nil {
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	s.mu.RLock()
	role, epoch, primary, lease := s.role, s.epoch, s.primary, s.lease
	s.mu.RUnlock()
	switch {
	case role == "":
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w: no primary known yet", s.name, data.ErrUnavailable)
	case role == data.RoleFenced:
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w", s.name, data.ErrFenced)
	case lease != nil && !lease.Valid():
		return data.Record{}, fmt.Errorf("jetstream: put %s at epoch %d: %w: %w", s.name, epoch, data.ErrFenced, data.ErrLeaseEnded)
	}
	ack, err := js.Publish(ctx, s.writeSubject(epoch, tok), value, jetstream.WithExpectStream(s.stream))
	if err != nil {
		if isUnavailable(err) {
			return data.Record{}, fmt.Errorf("jetstream: put %s at epoch %d: %w: %w", s.name, epoch, data.ErrUnavailable, err)
		}
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w", s.name, err)
	}
	// The domain that acknowledged is the primary's region.
	rec := data.Record{Key: key, Seq: ack.Sequence, Value: value, Region: ack.Domain}
	if s.sync {
		if err := s.tracker.wait(ctx, primary, epoch, ack.Sequence); err != nil {
			return data.Record{}, fmt.Errorf("jetstream: put %s: %w: stored by %s at seq %d, but no secondary confirmed it: %w",
				s.name, data.ErrUnavailable, ack.Domain, ack.Sequence, err)
		}
	}
	m, err := directGet(ctx, nc, ack.Domain, s.stream, directRequest{Seq: ack.Sequence})
	if err == nil && m.Seq == ack.Sequence {
		rec.Time = m.Time.UTC()
	} else {
		rec.Time = s.now().UTC()
		s.e.log.Debug("jetstream: put: primary timestamp not read back", "service", s.name, "seq", ack.Sequence, "err", err)
	}
	// Last, right before the acknowledgement: a primary whose lease ended
	// meanwhile (say while the sync wait blocked) acknowledges nothing.
	if lease != nil && !lease.Valid() {
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w: %w: stored at seq %d, but the lease ended before the acknowledgement",
			s.name, data.ErrUnavailable, data.ErrLeaseEnded, ack.Sequence)
	}
	return rec, nil
}

// isUnavailable tells transport failures (the primary or the local server
// cannot be reached in time) from answers of the stream.
func isUnavailable(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, errNoResponders)
}

// doGet returns the latest value of key from the local stream or mirror.
func (s *service) doGet(ctx context.Context, key string) (data.Record, error) {
	tok, err := s.keyToken(key)
	if err != nil {
		return data.Record{}, err
	}
	_, nc, _ := s.e.conn()
	if nc == nil {
		return data.Record{}, fmt.Errorf("jetstream: get %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	m, err := directGetLast(ctx, nc, "", s.stream, s.storedSubject(tok))
	switch {
	case errors.Is(err, errNoMessage):
		return data.Record{}, fmt.Errorf("jetstream: get %s %q: %w", s.name, key, data.ErrNotFound)
	case err != nil && isUnavailable(err):
		return data.Record{}, fmt.Errorf("jetstream: get %s: %w: %w", s.name, data.ErrUnavailable, err)
	case err != nil:
		return data.Record{}, fmt.Errorf("jetstream: get %s: %w", s.name, err)
	}
	return s.record(m)
}

// List returns up to limit records with Seq > after, in sequence order,
// from the local stream or mirror. limit <= 0 means 100.
func (s *service) List(ctx context.Context, after uint64, limit int) ([]data.Record, error) {
	if limit <= 0 {
		limit = listDefault
	}
	_, nc, _ := s.e.conn()
	if nc == nil {
		return nil, fmt.Errorf("jetstream: list %s: %w: %s", s.name, data.ErrUnavailable, s.e.downReason())
	}
	out := make([]data.Record, 0, min(limit, listBatch))
	var decodeErr error
	next := after + 1
	for len(out) < limit {
		n, err := directBatch(ctx, nc, "", s.stream, directRequest{Seq: next, Batch: min(limit-len(out), listBatch)}, func(m storedMsg) {
			r, err := s.record(m)
			if err != nil {
				decodeErr = errors.Join(decodeErr, err)
				return
			}
			out = append(out, r)
			next = m.Seq + 1
		})
		if err != nil {
			if isUnavailable(err) {
				return nil, fmt.Errorf("jetstream: list %s: %w: %w", s.name, data.ErrUnavailable, err)
			}
			return nil, fmt.Errorf("jetstream: list %s: %w", s.name, err)
		}
		if decodeErr != nil {
			return nil, decodeErr
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// Status reports the replication state of the local replica.
//
// Role, Epoch and Primary are the controller's last decision (before the
// first one: secondary for a mirror, fenced for a writable stream, and
// Detail says no primary is known yet). LastSeq is the last sequence of
// the local stream or mirror (mirrors keep the primary's sequences). On a
// secondary, PrimarySeq is the last sequence of the primary's stream,
// asked of the primary across the leafnodes (STREAM.INFO in its domain),
// each request bounded by ctx and by 1 s; Writable means the primary
// answered and its stream takes writes of the current epoch.
// LagWrites = PrimarySeq-LastSeq. LagSeconds is the age of the oldest
// write the replica lacks: now minus the primary's timestamp of the first
// message after LastSeq, read with one more direct get from the primary
// when LagWrites > 0 (the lab's regions share a clock; across machines it
// includes their clock skew).
//
// A partitioned secondary cannot see the primary progress: then
// PrimarySeq, LagWrites and LagSeconds are 0 (unknown) and Detail says the
// primary is unreachable. The mirror's own StreamInfo.Mirror.Lag is no
// substitute: NATS sets it from the pending count carried by the last
// message the mirror received, so it freezes during a partition, is reset
// when the mirror re-attaches, and is only meaningful while messages flow.
func (s *service) Status(ctx context.Context) data.Status {
	s.mu.RLock()
	role, epoch, primary, note := s.role, s.epoch, s.primary, s.note
	s.mu.RUnlock()
	st := data.Status{
		Service: s.name,
		Kind:    data.KindPrimarySecondary,
		Region:  s.region,
		Role:    role,
		Epoch:   epoch,
		Primary: primary,
	}
	// Rebuilding until the local stream is seen holding the target again:
	// a status that cannot read the stream must not report a rebuilt copy.
	rebuildTo := s.rebuildTo.Load()
	st.Rebuilding = rebuildTo > 0
	_, nc, js := s.e.conn()
	if nc == nil {
		st.Detail = s.e.downReason()
		return st
	}
	var details []string
	if note != "" {
		details = append(details, note)
	}
	if role == "" {
		details = append(details, "no primary known yet (waiting for the failover controller)")
	}
	done := func() data.Status {
		st.Detail = strings.Join(details, "; ")
		return st
	}

	stream, err := js.Stream(ctx, s.stream)
	if err != nil {
		details = append(details, "local stream: "+err.Error())
		return done()
	}
	info := stream.CachedInfo()
	st.Readable = true
	st.LastSeq = info.State.LastSeq
	if st.Rebuilding = st.LastSeq < rebuildTo; st.Rebuilding {
		details = append(details, fmt.Sprintf("rebuilding: copying back history discarded when it rejoined (at %d of %d)", st.LastSeq, rebuildTo))
	}
	if role == "" {
		st.Role = data.RoleSecondary
		if info.Config.Mirror == nil {
			st.Role = data.RoleFenced
		}
	}
	if st.Role == data.RolePrimary {
		st.PrimarySeq = st.LastSeq
		st.Writable = s.writableAt(info.Config, epoch)
		if !st.Writable {
			details = append(details, "local stream does not take writes of epoch "+strconv.FormatUint(epoch, 10))
		}
		if s.sync && len(s.tracker.candidates(ctx, s.region)) == 0 {
			details = append(details, "sync replication degraded to async: no secondary region known")
		}
		return done()
	}
	if st.Role == data.RoleFenced && info.Config.Mirror == nil {
		return done() // a fenced old primary: nothing to compare with
	}
	if info.Config.Mirror == nil {
		details = append(details, "not rejoined yet: the local stream is a fenced old primary's")
	}
	if mi := info.Mirror; mi != nil {
		switch {
		case mi.Error != nil:
			details = append(details, "mirror error: "+mi.Error.Error())
		case mi.Active < 0:
			details = append(details, "mirror has not heard from the primary yet")
		}
		if o := mirrorDomain(info.Config.Mirror); o != primary && primary != "" {
			details = append(details, "local stream mirrors "+o+", not the primary")
		}
	}
	if primary == "" {
		return done()
	}
	pinfo, err := s.primaryInfo(ctx, nc, primary)
	if err != nil {
		details = append(details, fmt.Sprintf("primary %s unreachable (lag unknown): %v", primary, err))
		return done()
	}
	st.Writable = role == data.RoleSecondary && s.writableAt(pinfo.Config, epoch)
	if role == data.RoleSecondary && !st.Writable {
		details = append(details, fmt.Sprintf("primary %s does not take writes of epoch %d", primary, epoch))
	}
	st.PrimarySeq = pinfo.State.LastSeq
	if st.PrimarySeq > st.LastSeq {
		st.LagWrites = st.PrimarySeq - st.LastSeq
		pctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
		defer cancel()
		m, err := directGet(pctx, nc, primary, s.stream, directRequest{Seq: st.LastSeq + 1})
		if err == nil {
			st.LagSeconds = max(0, s.now().Sub(m.Time).Seconds())
		} else {
			details = append(details, "age of the oldest missing write unknown: "+err.Error())
		}
	} else if st.LastSeq > st.PrimarySeq {
		details = append(details, fmt.Sprintf("local stream is %d writes ahead of the primary", st.LastSeq-st.PrimarySeq))
	}
	return done()
}

// primaryInfo asks the primary's domain for its stream's state, waiting at
// most statusProbeTimeout.
func (s *service) primaryInfo(ctx context.Context, nc *nats.Conn, primary string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
	defer cancel()
	return remoteStreamInfo(ctx, nc, primary, s.stream)
}

// remoteStreamInfo is STREAM.INFO of stream in domain.
func remoteStreamInfo(ctx context.Context, nc *nats.Conn, domain, stream string) (*jetstream.StreamInfo, error) {
	rjs, err := jetstream.NewWithDomain(nc, domain)
	if err != nil {
		return nil, err
	}
	st, err := rjs.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}
