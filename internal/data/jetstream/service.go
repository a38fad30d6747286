package jetstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// service is one primary-secondary data service as this region sees it.
// It implements data.Store.
type service struct {
	e       *Engine
	name    string
	stream  string // same stream name in every region (domain)
	subject string // gs.<name>; keys are one more token
	// The durable consumer on the primary's stream that feeds this
	// region's mirror, and the subject it delivers to.
	mirrorConsumer string
	mirrorDeliver  string
	now            func() time.Time

	mu       sync.RWMutex
	primary  string // static for now; failover will change it
	conflict string // why the local stream was left as found, if it was
}

var _ data.Store = (*service)(nil)

func newService(e *Engine, region string, s Service) *service {
	stream := "gs_" + s.Name
	return &service{
		e:              e,
		name:           s.Name,
		stream:         stream,
		subject:        "gs." + s.Name,
		mirrorConsumer: "gs_mirror_" + region,
		mirrorDeliver:  "_GS.MIRROR." + stream + "." + region,
		primary:        s.Primary,
		now:            time.Now,
	}
}

func (s *service) primaryRegion() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.primary
}

// keySubject encodes key as one subject token: base64url without padding,
// so dots, spaces and wildcards in keys are safe.
func (s *service) keySubject(key string) (string, error) {
	if key == "" || len(key) > maxKeyLen {
		return "", fmt.Errorf("jetstream: %s: %w: length %d not in 1-%d", s.name, ErrInvalidKey, len(key), maxKeyLen)
	}
	return s.subject + "." + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
}

// subjectKey decodes the key of a stored subject.
func (s *service) subjectKey(subject string) (string, error) {
	tok, ok := strings.CutPrefix(subject, s.subject+".")
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

// streamConfig is the desired local stream: the writable stream in the
// primary region, a mirror of it across domains elsewhere. The stream name
// is the same everywhere, so that promoting a mirror (removing its mirror
// configuration, NATS 2.12+) and re-mirroring an old primary keep names.
func (s *service) streamConfig(region, primary string) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        s.stream,
		Description: "geostamp primary-secondary service " + s.name,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    1,
		AllowDirect: true,
	}
	if region == primary {
		cfg.Subjects = []string{s.subject + ".>"}
	} else {
		// A durable consumer on the primary feeds the mirror; the
		// mirror's API requests go through this region's relay, which
		// holds them across a partition (see relay.go).
		cfg.Mirror = &jetstream.StreamSource{
			Name:     s.stream,
			External: &jetstream.ExternalStream{APIPrefix: relayAPIPrefix(primary, region)},
			Consumer: &jetstream.StreamConsumerSource{Name: s.mirrorConsumer, DeliverSubject: s.mirrorDeliver},
		}
	}
	return cfg
}

// mirrorConsumerConfig is the durable push consumer, on the primary's
// stream, that feeds this region's mirror. It acknowledges on flow control,
// so the primary keeps how far this region's mirror got.
func (s *service) mirrorConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        s.mirrorConsumer,
		Description:    "geostamp: feeds the mirror of " + s.stream + " in another region",
		DeliverSubject: s.mirrorDeliver,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second, // the only value NATS accepts here
		MaxAckPending:  mirrorMaxAckPending,
	}
}

// setup creates the local stream or mirror, or repairs an existing one.
// It needs nothing remote: a mirror of an unreachable primary is created
// at once and starts copying when the primary becomes reachable. A stream
// whose role contradicts the configuration (e.g. an old primary after a
// failover) is left as found and reported by Status; reconciling it is the
// job of failover (promote, rejoin).
func (s *service) setup(ctx context.Context, js jetstream.JetStream) error {
	region, primary := s.e.cfg.Region, s.primaryRegion()
	want := s.streamConfig(region, primary)
	st, err := js.Stream(ctx, s.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	have := st.CachedInfo().Config
	var conflict string
	switch {
	case want.Mirror == nil && have.Mirror != nil:
		conflict = fmt.Sprintf("configured primary, but the local stream mirrors %s", mirrorOrigin(have.Mirror))
	case want.Mirror != nil && have.Mirror == nil:
		conflict = fmt.Sprintf("configured secondary of %s, but the local stream is writable", primary)
	case want.Mirror != nil && mirrorOrigin(have.Mirror) != mirrorOrigin(want.Mirror):
		conflict = fmt.Sprintf("configured secondary of %s, but the local stream mirrors %s", primary, mirrorOrigin(have.Mirror))
	}
	if conflict != "" {
		s.mu.Lock()
		s.conflict = conflict
		s.mu.Unlock()
		s.e.log.Warn("jetstream: local stream left as found", "service", s.name, "reason", conflict)
		return nil
	}
	// Repair what may change in place (the mirror itself cannot).
	if have.AllowDirect != want.AllowDirect || !slices.Equal(have.Subjects, want.Subjects) {
		have.AllowDirect = want.AllowDirect
		have.Subjects = want.Subjects
		if _, err := js.UpdateStream(ctx, have); err != nil {
			return fmt.Errorf("update stream: %w", err)
		}
	}
	return nil
}

// mirrorOrigin names the domain and stream that a mirror copies. The
// domain is the second token of the API prefix, as for NATS itself
// ($JS.<domain>.API, or the relay's $GSR.<domain>.<region>.API).
func mirrorOrigin(m *jetstream.StreamSource) string {
	switch {
	case m.Domain != "":
		return m.Domain + "/" + m.Name
	case m.External != nil:
		if toks := strings.Split(m.External.APIPrefix, "."); len(toks) > 1 {
			return toks[1] + "/" + m.Name
		}
	}
	return m.Name
}

// Put publishes value under key to the primary's stream, across the
// leafnodes if the primary is remote, and returns once the primary's
// stream acknowledged it. Seq is the primary's stream sequence; Time the
// message's timestamp at the primary, read back with one direct get (one
// more round trip to the primary; if that read fails, the write still
// counts and Time is the local clock at the acknowledgement).
//
// When the primary cannot be reached (no responders, timeout, ctx over) the
// error wraps data.ErrUnavailable; after a timeout the write may or may not
// have been applied.
func (s *service) Put(ctx context.Context, key string, value []byte) (data.Record, error) {
	subj, err := s.keySubject(key)
	if err != nil {
		return data.Record{}, err
	}
	_, nc, js := s.e.conn()
	if nc == nil {
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w: engine not running", s.name, data.ErrUnavailable)
	}
	ack, err := js.Publish(ctx, subj, value, jetstream.WithExpectStream(s.stream))
	if err != nil {
		if isUnavailable(err) {
			return data.Record{}, fmt.Errorf("jetstream: put %s: %w: %w", s.name, data.ErrUnavailable, err)
		}
		return data.Record{}, fmt.Errorf("jetstream: put %s: %w", s.name, err)
	}
	rec := data.Record{Key: key, Seq: ack.Sequence, Value: value}
	m, err := directGet(ctx, nc, ack.Domain, s.stream, directRequest{Seq: ack.Sequence})
	if err == nil && m.Seq == ack.Sequence {
		rec.Time = m.Time.UTC()
	} else {
		rec.Time = s.now().UTC()
		s.e.log.Debug("jetstream: put: primary timestamp not read back", "service", s.name, "seq", ack.Sequence, "err", err)
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

// Get returns the latest value of key from the local stream or mirror.
func (s *service) Get(ctx context.Context, key string) (data.Record, error) {
	subj, err := s.keySubject(key)
	if err != nil {
		return data.Record{}, err
	}
	_, nc, _ := s.e.conn()
	if nc == nil {
		return data.Record{}, fmt.Errorf("jetstream: get %s: %w: engine not running", s.name, data.ErrUnavailable)
	}
	m, err := directGetLast(ctx, nc, "", s.stream, subj)
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
		return nil, fmt.Errorf("jetstream: list %s: %w: engine not running", s.name, data.ErrUnavailable)
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
// Role comes from the local stream (a mirror is a secondary), not from the
// configuration. LastSeq is the last sequence of the local stream or mirror
// (mirrors keep the primary's sequences). On a secondary, PrimarySeq is the
// last sequence of the primary's stream, asked of the primary across the
// leafnodes (STREAM.INFO in its domain), each request bounded by ctx and by
// 1 s; Writable means the primary answered. LagWrites = PrimarySeq-LastSeq.
// LagSeconds is the age of the oldest write the replica lacks: now minus
// the primary's timestamp of the first message after LastSeq, read with one
// more direct get from the primary when LagWrites > 0 (the lab's regions
// share a clock; across machines it includes their clock skew).
//
// A partitioned secondary cannot see the primary progress: then PrimarySeq,
// LagWrites and LagSeconds are 0 (unknown) and Detail says the primary is
// unreachable. The mirror's own StreamInfo.Mirror.Lag is no substitute:
// NATS sets it from the pending count carried by the last message the
// mirror received, so it freezes during a partition, is reset when the
// mirror re-attaches, and is only meaningful while messages flow.
func (s *service) Status(ctx context.Context) data.Status {
	primary := s.primaryRegion()
	st := data.Status{
		Service: s.name,
		Kind:    data.KindPrimarySecondary,
		Region:  s.e.cfg.Region,
		Primary: primary,
	}
	_, nc, js := s.e.conn()
	if nc == nil {
		st.Detail = "engine not running"
		return st
	}
	var details []string
	s.mu.RLock()
	if s.conflict != "" {
		details = append(details, s.conflict)
	}
	s.mu.RUnlock()

	stream, err := js.Stream(ctx, s.stream)
	if err != nil {
		st.Detail = strings.Join(append(details, "local stream: "+err.Error()), "; ")
		return st
	}
	info := stream.CachedInfo()
	st.Readable = true
	st.LastSeq = info.State.LastSeq
	if info.Config.Mirror == nil {
		st.Role = data.RolePrimary
		st.PrimarySeq = st.LastSeq
		st.Writable = true
		st.Detail = strings.Join(details, "; ")
		return st
	}

	st.Role = data.RoleSecondary
	if mi := info.Mirror; mi != nil {
		switch {
		case mi.Error != nil:
			details = append(details, "mirror error: "+mi.Error.Error())
		case mi.Active < 0:
			details = append(details, "mirror has not heard from the primary yet")
		}
	}
	pinfo, err := s.primaryInfo(ctx, nc, primary)
	if err != nil {
		details = append(details, fmt.Sprintf("primary %s unreachable (lag unknown): %v", primary, err))
		st.Detail = strings.Join(details, "; ")
		return st
	}
	st.Writable = true
	st.PrimarySeq = pinfo.State.LastSeq
	if st.PrimarySeq > st.LastSeq {
		st.LagWrites = st.PrimarySeq - st.LastSeq
		pctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
		defer cancel()
		m, err := directGet(pctx, nc, primary, s.stream, directRequest{Seq: st.LastSeq + 1, NextFor: s.subject + ".>"})
		if err == nil {
			st.LagSeconds = max(0, s.now().Sub(m.Time).Seconds())
		} else {
			details = append(details, "age of the oldest missing write unknown: "+err.Error())
		}
	} else if st.LastSeq > st.PrimarySeq {
		details = append(details, fmt.Sprintf("local stream is %d writes ahead of the primary", st.LastSeq-st.PrimarySeq))
	}
	st.Detail = strings.Join(details, "; ")
	return st
}

// primaryInfo asks the primary's domain for its stream's state, waiting at
// most statusProbeTimeout.
func (s *service) primaryInfo(ctx context.Context, nc *nats.Conn, primary string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
	defer cancel()
	pjs, err := jetstream.NewWithDomain(nc, primary)
	if err != nil {
		return nil, err
	}
	ps, err := pjs.Stream(ctx, s.stream)
	if err != nil {
		return nil, err
	}
	return ps.CachedInfo(), nil
}
