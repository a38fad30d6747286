package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Mirrors, and why their API requests go through a relay.
//
// Every secondary's mirror is fed by a durable push consumer on the
// primary's stream (NATS 2.14+ "durable sourcing": the mirror config names
// the consumer and its deliver subject; the consumer acknowledges on flow
// control, so the primary also knows how far each mirror got). A durable
// consumer survives a restart of the primary; the ephemeral consumer of a
// plain mirror is lost with the primary's process, and the mirror notices
// only after 10-20 s without heartbeats.
//
// A mirror (re)attaches with one API request (CONSUMER.RESET for a durable
// consumer, CONSUMER.CREATE for an ephemeral one) and waits for the answer
// (5 s, resp. 30 s) with no "no responders" signal. A request sent while the
// leafnode path to the primary is down is lost, and the mirror tries again
// only after that wait plus a backoff of 10 s per failure (capped at 2 min).
// Mirrors send such requests at start (often before the leafnode is up) and
// after 10 s without heartbeats (any partition longer than that). Measured
// with nats-server 2.15.2: a plain mirror resumed 25-40 s after the link
// healed; a durable one with the requests passed through once (no holding)
// had still not resumed 3 s after. The server kicks mirrors when a leafnode
// connects, but not one whose request is in flight.
//
// So each region's mirrors use the API prefix $GSR.<primary>.<region>.API
// instead of $JS.<primary>.API, and the relay subscribes to
// $GSR.*.<region>.API.> (the region token keeps other regions' relays out,
// although leafnodes propagate the interest). For each request it:
//   - forwards it to $JS.<primary>.API, retrying while there are no
//     responders, no answer, or no stream yet, for a little less than the
//     mirror waits, and sends the answer to the mirror's reply subject: a
//     mirror whose request was sent during a partition attaches as soon as
//     the link heals (≈0.2-0.7 s in the tests, for partitions of 1-45 s);
//   - before a reset, creates the durable consumer on the primary if it does
//     not exist (first start of a secondary, or a primary whose stream was
//     recreated): a reset of a missing consumer gets no answer at all;
//   - anchors the reset at the mirror's own position (the sequence after
//     its last one) instead of the consumer's ack floor, so a mirror that lost data
//     (or is new while an old consumer exists) is refilled from where it
//     really is rather than skipping ahead;
//   - but only if the primary holds the mirror's last message at the same
//     sequence: a primary whose stream was replaced (it rejoined another
//     primary, or lost unflushed writes in a crash) has another history,
//     and appending it to the mirror would splice two histories. Such a
//     mirror stays detached until Follow replaces it.
const (
	relayHold         = 29 * time.Second        // below the mirror's 30 s wait for a create
	relayResetHold    = 4500 * time.Millisecond // below its 5 s wait for a reset
	relayAttemptLimit = 2 * time.Second
	relayRetryWait    = 250 * time.Millisecond
)

// relayAPIPrefix is the API prefix of region's mirrors of primary's streams.
// Its second token is the domain, as NATS expects of an API prefix.
func relayAPIPrefix(primary, region string) string {
	return fmt.Sprintf("$GSR.%s.%s.API", primary, region)
}

// mirrorRelay forwards the API requests of this region's mirrors.
type mirrorRelay struct {
	nc  *nats.Conn
	js  jetstream.JetStream // local domain
	log *slog.Logger
	// consumerFor returns the config of the durable consumer, on domain's
	// stream named stream, that feeds the local mirror of it.
	consumerFor func(domain, stream string) (jetstream.ConsumerConfig, bool)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    *nats.Subscription
}

// startRelay subscribes the relay of region on nc.
func startRelay(nc *nats.Conn, region string, log *slog.Logger, consumerFor func(domain, stream string) (jetstream.ConsumerConfig, bool)) (*mirrorRelay, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &mirrorRelay{nc: nc, js: js, log: log, consumerFor: consumerFor, ctx: ctx, cancel: cancel}
	sub, err := nc.Subscribe(fmt.Sprintf("$GSR.*.%s.API.>", region), func(m *nats.Msg) {
		r.wg.Go(func() { r.relay(m) })
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay: %w", err)
	}
	r.sub = sub
	if err := nc.Flush(); err != nil {
		r.stop()
		return nil, fmt.Errorf("relay: %w", err)
	}
	return r, nil
}

// stop ends the relay and waits for requests in flight to be dropped.
func (r *mirrorRelay) stop() {
	_ = r.sub.Unsubscribe()
	r.cancel()
	r.wg.Wait()
}

// apiError is the error part of a JetStream API response.
type apiError struct {
	Error *jetstream.APIError `json:"error"`
}

func (r *mirrorRelay) relay(m *nats.Msg) {
	// $GSR.<domain>.<region>.API.<rest> -> $JS.<domain>.API.<rest>
	toks := strings.SplitN(m.Subject, ".", 5)
	if len(toks) != 5 || m.Reply == "" {
		return
	}
	domain, rest := toks[1], toks[4]
	req := &nats.Msg{Subject: "$JS." + domain + ".API." + rest, Header: m.Header, Data: m.Data}
	hold := relayHold
	// CONSUMER.RESET.<stream>.<consumer>
	var stream, consumer string
	if parts := strings.Split(rest, "."); len(parts) == 4 && parts[0] == "CONSUMER" && parts[1] == "RESET" {
		stream, consumer = parts[2], parts[3]
		hold = relayResetHold
	}
	ctx, cancel := context.WithTimeout(r.ctx, hold)
	defer cancel()

	for attempt := 1; ; attempt++ {
		var (
			resp *nats.Msg
			err  error
		)
		if consumer != "" {
			// A reset of a consumer that does not exist gets no answer.
			if cfg, ok := r.consumerFor(domain, stream); !ok || cfg.Durable != consumer {
				err = fmt.Errorf("no mirror consumer %s for stream %s", consumer, stream)
			} else {
				var created bool
				created, err = ensureConsumer(ctx, r.request, apiPrefix(domain), stream, cfg)
				if created {
					r.log.Info("jetstream: created mirror consumer on the primary", "domain", domain, "stream", stream, "consumer", consumer)
				}
			}
			if err == nil {
				err = r.anchorReset(ctx, req, domain, stream)
			}
		}
		if err == nil {
			resp, err = r.request(ctx, req)
		}
		if err == nil {
			var ae apiError
			_ = json.Unmarshal(resp.Data, &ae)
			switch {
			case ae.Error != nil && ae.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
				err = ae.Error // the primary is up but its stream not yet: wait
			default:
				if attempt > 1 {
					r.log.Debug("jetstream: relayed mirror request after retries", "subject", req.Subject, "attempts", attempt)
				}
				_ = r.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: resp.Header, Data: resp.Data})
				return
			}
		}
		if ctx.Err() != nil {
			r.log.Debug("jetstream: mirror request not relayed", "subject", req.Subject, "attempts", attempt, "err", err)
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			select { // fast failures: do not spin
			case <-ctx.Done():
			case <-time.After(relayRetryWait):
			}
		}
	}
}

func (r *mirrorRelay) request(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, relayAttemptLimit)
	defer cancel()
	return r.nc.RequestMsgWithContext(ctx, m)
}

// errSpliced: the primary lacks the local mirror's last message, or holds
// another one at its sequence.
var errSpliced = errors.New("the primary's stream does not continue the local mirror's history")

// anchorReset sets the reset request's sequence to the first one the local
// mirror named stream lacks, after checking that domain's stream holds
// the mirror's last message.
func (r *mirrorRelay) anchorReset(ctx context.Context, req *nats.Msg, domain, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, relayAttemptLimit)
	defer cancel()
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	last := s.CachedInfo().State.LastSeq
	if last > 0 {
		lm, err := directGet(ctx, r.nc, "", stream, directRequest{Seq: last})
		if err != nil {
			return err
		}
		pm, err := directGet(ctx, r.nc, domain, stream, directRequest{Seq: last})
		if err != nil && !errors.Is(err, errNoMessage) {
			return err
		}
		if err != nil || !sameMsg(lm, pm) {
			r.log.Debug("jetstream: mirror not re-attached", "domain", domain, "stream", stream, "seq", last, "err", errSpliced)
			return errSpliced
		}
	}
	req.Data, err = json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{last + 1})
	return err
}

// sameMsg reports whether a and b are the same stored write.
func sameMsg(a, b storedMsg) bool {
	return a.Seq == b.Seq && a.Subject == b.Subject && a.Time.Equal(b.Time) && bytes.Equal(a.Data, b.Data)
}

// ensureConsumer creates the durable consumer cfg on stream under the API
// prefix api, unless it exists with the same deliver subject (an older
// one is updated), and reports whether it did.
func ensureConsumer(ctx context.Context, request func(context.Context, *nats.Msg) (*nats.Msg, error), api, stream string, cfg jetstream.ConsumerConfig) (bool, error) {
	resp, err := request(ctx, &nats.Msg{Subject: fmt.Sprintf("%s.CONSUMER.INFO.%s.%s", api, stream, cfg.Durable)})
	if err != nil {
		return false, err
	}
	var info struct {
		apiError
		Config *jetstream.ConsumerConfig `json:"config"`
	}
	if err := json.Unmarshal(resp.Data, &info); err != nil {
		return false, err
	}
	switch {
	case info.Error == nil && info.Config != nil && info.Config.DeliverSubject == cfg.DeliverSubject:
		return false, nil
	case info.Error != nil && info.Error.ErrorCode != jetstream.JSErrCodeConsumerNotFound:
		return false, info.Error
	}
	body, err := json.Marshal(struct {
		Stream string                   `json:"stream_name"`
		Config jetstream.ConsumerConfig `json:"config"`
	}{stream, cfg})
	if err != nil {
		return false, err
	}
	resp, err = request(ctx, &nats.Msg{
		Subject: fmt.Sprintf("%s.CONSUMER.CREATE.%s.%s", api, stream, cfg.Durable),
		Data:    body,
	})
	if err != nil {
		return false, err
	}
	var ae apiError
	if err := json.Unmarshal(resp.Data, &ae); err != nil {
		return false, err
	}
	if ae.Error != nil {
		return false, ae.Error
	}
	return true, nil
}
