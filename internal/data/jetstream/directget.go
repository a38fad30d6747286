package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Direct get is JetStream's read API that any replica with AllowDirect
// answers without going through the stream leader's API queue: a single
// message by sequence or by last-for-subject, or a batch from a sequence,
// ended by an EOB status message. The responses carry the stored message as
// the payload and its metadata in headers.

// errNoMessage is a direct get's 404: no message matches.
var errNoMessage = errors.New("no message")

// errNoResponders means no stream answered the request: the stream does not
// exist where the request went, or the path to it is down.
var errNoResponders = errors.New("no responders")

// storedMsg is one message as returned by a direct get.
type storedMsg struct {
	Subject string
	Seq     uint64
	Time    time.Time
	Data    []byte
}

// directRequest is JetStream's JSApiMsgGetRequest.
type directRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

// apiPrefix is the JetStream API prefix of a domain ("" = the local one).
func apiPrefix(domain string) string {
	if domain == "" {
		return "$JS.API"
	}
	return "$JS." + domain + ".API"
}

// directGetLast returns the last message on subject in stream.
func directGetLast(ctx context.Context, nc *nats.Conn, domain, stream, subject string) (storedMsg, error) {
	subj := fmt.Sprintf("%s.DIRECT.GET.%s.%s", apiPrefix(domain), stream, subject)
	return directGetOne(ctx, nc, subj, nil)
}

// directGet returns the first message at or after req.Seq (matching
// req.NextFor if set).
func directGet(ctx context.Context, nc *nats.Conn, domain, stream string, req directRequest) (storedMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return storedMsg{}, err
	}
	return directGetOne(ctx, nc, fmt.Sprintf("%s.DIRECT.GET.%s", apiPrefix(domain), stream), body)
}

func directGetOne(ctx context.Context, nc *nats.Conn, subj string, body []byte) (storedMsg, error) {
	resp, err := nc.RequestWithContext(ctx, subj, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return storedMsg{}, errNoResponders
		}
		return storedMsg{}, err
	}
	m, eob, err := parseDirect(resp)
	if err == nil && eob {
		err = errNoMessage
	}
	return m, err
}

// directBatch calls fn for up to req.Batch messages from req.Seq on, in
// order. It returns how many it passed to fn.
func directBatch(ctx context.Context, nc *nats.Conn, domain, stream string, req directRequest, fn func(storedMsg)) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	sub, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		return 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	subj := fmt.Sprintf("%s.DIRECT.GET.%s", apiPrefix(domain), stream)
	if err := nc.PublishRequest(subj, sub.Subject, body); err != nil {
		return 0, err
	}
	n := 0
	for {
		resp, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return n, err
		}
		m, eob, err := parseDirect(resp)
		switch {
		case errors.Is(err, errNoMessage):
			return n, nil // nothing at or after req.Seq
		case err != nil:
			return n, err
		case eob:
			return n, nil
		}
		fn(m)
		n++
	}
}

// parseDirect decodes a direct get response; eob reports the end-of-batch
// marker.
func parseDirect(resp *nats.Msg) (m storedMsg, eob bool, err error) {
	if len(resp.Data) == 0 {
		switch status := resp.Header.Get("Status"); status {
		case "":
		case "204":
			return storedMsg{}, true, nil
		case "404":
			return storedMsg{}, false, errNoMessage
		case "503":
			return storedMsg{}, false, errNoResponders
		default:
			return storedMsg{}, false, fmt.Errorf("direct get: status %s %s", status, resp.Header.Get("Description"))
		}
	}
	h := resp.Header
	m.Subject = h.Get("Nats-Subject")
	seq, err := strconv.ParseUint(h.Get("Nats-Sequence"), 10, 64)
	if err != nil || m.Subject == "" {
		return storedMsg{}, false, fmt.Errorf("direct get: malformed response headers %v", h)
	}
	m.Seq = seq
	m.Time, err = time.Parse(time.RFC3339Nano, h.Get("Nats-Time-Stamp"))
	if err != nil {
		return storedMsg{}, false, fmt.Errorf("direct get: timestamp: %w", err)
	}
	m.Data = resp.Data
	return m, false, nil
}
