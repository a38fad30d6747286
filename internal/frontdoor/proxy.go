package frontdoor

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/routing"
	"github.com/geostamp/geostamp/internal/telemetry"
)

// field is one header field. On the lean HTTP/1.1 path its strings point
// into a connection's buffers and are valid only during the request.
type field struct{ name, value string }

// inbound is a request as the proxy core sees it, whichever listener
// received it.
type inbound struct {
	method, target, host string
	http10               bool
	keepAlive            bool    // the client wants the connection kept (HTTP/1.x)
	fields               []field // end-to-end fields to forward
	xff                  string  // X-Forwarded-For as received
	affinity             string  // the affinity cookie's value
	debug                bool    // X-Geostamp-Debug: 1
	idemKey              bool    // Idempotency-Key present
	tls                  bool
	peer                 netip.Addr
	bodyLen              int64     // 0: none; -1: unknown (chunked)
	body                 io.Reader // nil when bodyLen == 0
	connClose, connKeep  bool      // Connection: close, keep-alive
	connTokens           []string  // the Connection field's other options
	traceparent          string    // W3C trace context as received
	tracestate           string
	extra                [3]field // backing array of the fields deliver adds
}

// retryable reports whether the request may be sent again to another
// region: an idempotent method or an Idempotency-Key.
func (in *inbound) retryable() bool {
	switch in.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return in.idemKey
}

// sink is where a response goes: the lean HTTP/1.1 connection or a
// net/http ResponseWriter.
type sink interface {
	// head writes the status line and fields. length is the body's
	// declared length, -1 when unknown; bodyless says no body follows (a
	// HEAD request, 204, 304), whatever length says.
	head(status int, reason string, fields, extra []field, length int64, bodyless bool) error
	write(p []byte) error
	// flush sends what is buffered; called before waiting for the region.
	flush() error
	// end finishes the body.
	end() error
}

// errClientBody marks a failure to read the client's request body.
type clientBodyError struct {
	err      error
	tooLarge bool
}

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

var (
	errUnknownRegion = errors.New("unknown region")
	errBodyTooLarge  = errors.New("request body too large")
)

// reqBody is the request body as the tries send it: buf holds the whole
// body when replayable, else its beginning, and rest the remainder.
type reqBody struct {
	buf        []byte
	rest       io.Reader
	length     int64 // total length, -1 unknown
	replayable bool
	pooled     *[]byte
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// load reads up to limit bytes of in's body. A body that fits is
// replayable.
func (rb *reqBody) load(in *inbound, limit int, maxBody int64) error {
	rb.length = in.bodyLen
	if in.bodyLen == 0 {
		rb.replayable = true
		return nil
	}
	if in.bodyLen > 0 && in.bodyLen > int64(limit) {
		rb.rest = in.body
		return nil
	}
	rb.pooled = bodyPool.Get().(*[]byte)
	buf := (*rb.pooled)[:0]
	want := limit + 1
	if in.bodyLen > 0 {
		want = int(in.bodyLen)
	}
	for len(buf) < want {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := in.body.Read(buf[len(buf):min(cap(buf), want)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > maxBody {
			rb.buf = buf
			return &clientBodyError{err: errBodyTooLarge, tooLarge: true}
		}
		if err == io.EOF {
			if in.bodyLen > 0 && len(buf) < want {
				rb.buf = buf
				return &clientBodyError{err: io.ErrUnexpectedEOF}
			}
			break
		}
		if err != nil {
			rb.buf = buf
			var cbe *clientBodyError
			if errors.As(err, &cbe) {
				return err
			}
			return &clientBodyError{err: err}
		}
	}
	rb.buf = buf
	if len(buf) <= limit {
		rb.replayable = true
		rb.length = int64(len(buf))
		return nil
	}
	// Unknown length beyond the limit: stream the rest, within maxBody.
	rb.rest = &maxReader{r: in.body, left: maxBody - int64(len(buf))}
	return nil
}

func (rb *reqBody) release() {
	if rb.pooled != nil {
		if cap(rb.buf) <= 4*DefaultReplayLimit {
			*rb.pooled = rb.buf[:0]
			bodyPool.Put(rb.pooled)
		}
		rb.pooled = nil
	}
}

// maxReader fails with errBodyTooLarge past left bytes.
type maxReader struct {
	r    io.Reader
	left int64
}

func (m *maxReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.left -= int64(n)
	if m.left < 0 {
		return n, &clientBodyError{err: errBodyTooLarge, tooLarge: true}
	}
	return n, err
}

// try is one try of a request, for the debug header and the access log.
type try struct {
	region  int
	status  int    // the region's status, when it answered
	outcome string // else "connect_error", "timeout", "client_body_error"; or a retried "status_503"
}

// maxTries bounds retry.attempts (topology validation: at most 5).
const maxTries = 5

// record is what a request leaves for metrics and the access log.
type record struct {
	start    time.Time
	client   netip.Addr
	status   int
	region   int // -1: none
	tries    [maxTries]try
	ntries   int
	bytes    int64
	reason   string // why the front door answered itself
	failOpen bool
	trace    reqTrace
}

// serve proxies one request and writes the response to s. A non-nil error
// means the client connection must be closed (its state is unknown).
func (f *FrontDoor) serve(in *inbound, s sink) error {
	rec := record{start: time.Now(), region: -1}
	rec.trace = f.startTrace(in)
	n := f.active.Add(1)
	if n > f.peak.Load() {
		f.peak.Store(n) // a lost race only makes the peak a little low
	}
	retrying := false // holds a slot of the retry budget
	defer func() {
		f.active.Add(-1)
		if retrying {
			f.retries.Add(-1)
		}
	}()
	if n > f.maxConcurrent {
		return f.reject(in, s, &rec, http.StatusServiceUnavailable, "overload", "front door overloaded, retry later")
	}
	if in.bodyLen > f.maxBody {
		f.reject(in, s, &rec, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
		return errBodyTooLarge // the body was not read: close
	}
	var rb reqBody
	defer rb.release()
	if err := rb.load(in, f.replayLimit, f.maxBody); err != nil {
		var cbe *clientBodyError
		if errors.As(err, &cbe) && cbe.tooLarge {
			f.reject(in, s, &rec, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
		} else {
			f.reject(in, s, &rec, http.StatusBadRequest, "bad_body", "bad request body")
		}
		return err
	}

	rec.client = routing.ClientAddr(in.peer, in.xff, f.trusted)
	geo := ""
	if f.geo != nil {
		geo, _ = f.geo.Lookup(rec.client)
	}
	if f.waf != nil {
		if it := f.waf.inspect(in, rec.client, rb.buf); it != nil {
			f.m.waf.WithLabelValues(strconv.Itoa(it.RuleID)).Inc()
			f.log.Info("WAF rule matched", "rule", it.RuleID, "action", it.Action, "blocked", f.waf.prevent,
				"client", rec.client, "method", in.method, "uri", in.target)
			if f.waf.prevent {
				status := it.Status
				if status < 400 || status > 599 {
					status = http.StatusForbidden
				}
				return f.reject(in, s, &rec, status, "waf", "request blocked by the web application firewall (rule "+strconv.Itoa(it.RuleID)+")")
			}
		}
	}
	snap := f.snap.Load()
	v, d := snap.route(geo, in.affinity, rand.Uint64())
	if d.FailOpen {
		rec.failOpen = true
		f.m.failOpenReqs.Inc()
	}
	if len(d.Order) == 0 {
		return f.reject(in, s, &rec, http.StatusServiceUnavailable, "no_origin", "no region is enabled")
	}
	attempts := min(f.attempts, len(d.Order), maxTries)
	canRetry := in.retryable() && rb.replayable
	lastFail := http.StatusBadGateway
	retryReason := ""
	for i := 0; i < attempts; i++ {
		idx := d.Order[i]
		o := f.origins[idx]
		deadline := time.Now().Add(f.perTry)
		span := rec.trace.attempt(f, o, i+1, retryReason)
		uc, oc, sent, err := f.attempt(o, in, &rb, deadline, rec.trace.parent(span))
		if retrying {
			// A retry holds its budget slot until its region answers or
			// fails, not while the answer streams to the client.
			f.retries.Add(-1)
			retrying = false
		}
		if err != nil {
			var cbe *clientBodyError
			if errors.As(err, &cbe) {
				endAttempt(span, 0, "client_body_error")
				rec.tries[rec.ntries] = try{region: idx, outcome: "client_body_error"}
				rec.ntries++
				if cbe.tooLarge {
					f.reject(in, s, &rec, http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
				} else {
					f.reject(in, s, &rec, http.StatusBadRequest, "bad_body", "bad request body")
				}
				return err
			}
			f.report(idx, oc)
			f.log.Debug("try failed", "region", o.name, "try", i+1, "err", err)
			why := "connect_error"
			lastFail = http.StatusBadGateway
			if oc == health.Timeout {
				why = "timeout"
				lastFail = http.StatusGatewayTimeout
			}
			rec.tries[rec.ntries] = try{region: idx, outcome: why}
			rec.ntries++
			f.m.tries.WithLabelValues(o.name, why).Inc()
			endAttempt(span, 0, why)
			retryReason = why
			// A connection that failed before any answer did not load the
			// region's application: its retry is failover, not
			// amplification, and needs no budget. Timeouts do. A request
			// that never left (the dial failed) may go elsewhere whatever
			// its method.
			mayRetry := canRetry || !sent && rb.replayable
			if i+1 < attempts && mayRetry && (oc == health.ConnectError || f.failover(o, d.Order[i+1]) || f.takeRetry(&retrying)) {
				f.m.retries.WithLabelValues(why).Inc()
				continue
			}
			break
		}
		if st := uc.status; st == http.StatusBadGateway || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout {
			f.report(idx, health.ServerError)
			why := gatewayOutcome(st)
			f.m.tries.WithLabelValues(o.name, why).Inc()
			endAttempt(span, st, "")
			retryReason = why
			if i+1 < attempts && canRetry && (f.failover(o, d.Order[i+1]) || f.takeRetry(&retrying)) {
				rec.tries[rec.ntries] = try{region: idx, outcome: why}
				rec.ntries++
				f.m.retries.WithLabelValues(why).Inc()
				uc.discard()
				continue
			}
		} else {
			f.checker.Report(o.name, health.Success)
			f.m.answers[idx].Inc()
			endAttempt(span, uc.status, "")
		}
		rec.tries[rec.ntries] = try{region: idx, status: uc.status}
		rec.ntries++
		rec.region = idx
		rec.status = uc.status
		return f.deliver(in, s, uc, v, d, geo, &rec)
	}
	msg := "no region answered"
	if lastFail == http.StatusGatewayTimeout {
		msg = "no region answered in time"
	}
	if rec.ntries < attempts && !canRetry && rec.ntries > 0 {
		msg += " (request not retryable)"
	}
	return f.rejectRouted(in, s, &rec, lastFail, "upstream_failed", msg, v, d, geo)
}

func gatewayOutcome(st int) string {
	switch st {
	case http.StatusBadGateway:
		return "status_502"
	case http.StatusServiceUnavailable:
		return "status_503"
	}
	return "status_504"
}

// report passes a failed try's outcome to the health checker. When it
// ejects the region, the snapshot is rebuilt at once, so the next request
// avoids the region even before the checker's event is processed (and
// when Run is not running, with Handler alone).
func (f *FrontDoor) report(region int, oc health.Outcome) {
	name := f.origins[region].name
	f.checker.Report(name, oc)
	if f.snap.Load().settings[region].Healthy && !f.checker.Healthy(name) {
		f.rebuild()
	}
}

// failover reports whether a retry moves a request off a region that is out
// of rotation now (its failure ejected it, or probes found it down) onto a
// healthy one. Such a retry sends the request where new requests go anyway,
// so it needs no budget: the budget guards against amplification, and a
// brownout's requests in flight at the moment of ejection must not fail for
// want of a slot. With no healthy region to move to, the budget applies.
func (f *FrontDoor) failover(failed *origin, next int) bool {
	return !f.checker.Healthy(failed.name) && f.checker.Healthy(f.origins[next].name)
}

// takeRetry takes a slot of the retry budget: concurrent retries may not
// exceed max(minRetries, budget × requests in flight), where requests in
// flight is their recent peak (see decayPeak). Without the peak, the budget
// would collapse while a burst of requests stuck on a frozen region drains:
// the last of them time out when few requests are left in flight, and
// their retries would be refused although they are no storm.
func (f *FrontDoor) takeRetry(held *bool) bool {
	limit := max(f.minRetries, int64(f.budgetFrac*float64(max(f.active.Load(), f.peak.Load()))))
	if f.retries.Add(1) > limit {
		f.retries.Add(-1)
		f.m.budgetExhausted.Inc()
		return false
	}
	*held = true
	return true
}

// decayPeak lowers the peak of requests in flight by 15% (every
// refreshEvery, so to 27% in 2s), never below the current count.
func (f *FrontDoor) decayPeak() {
	p := f.peak.Load()
	f.peak.CompareAndSwap(p, max(f.active.Load(), p-p*15/100))
}

// deliver passes a region's response to the client.
func (f *FrontDoor) deliver(in *inbound, s sink, uc *upConn, v *view, d *routing.Decision, geo string, rec *record) error {
	extra := in.extra[:0] // no allocation
	tid, traced := rec.trace.traceID()
	if traced {
		extra = append(extra, tid)
	}
	if in.debug {
		extra = append(extra, field{HeaderRoute, f.explain(in, v, d, geo, rec)})
	}
	if f.affinity {
		if name := f.origins[rec.region].name; name != in.affinity {
			c := AffinityCookie + "=" + name + "; Path=/; HttpOnly; SameSite=Lax"
			if in.tls {
				c += "; Secure"
			}
			extra = append(extra, field{"Set-Cookie", c})
		}
	}
	bodyless := in.method == http.MethodHead || uc.mode == bodyNone
	if err := s.head(uc.status, uc.reason, uc.fields, extra, uc.declared, bodyless); err != nil {
		uc.close()
		f.finish(in, rec)
		return err
	}
	n, err := uc.copyBody(s, f.s.BodyTimeout)
	rec.bytes = n
	if err != nil {
		var we *writeError
		if !errors.As(err, &we) {
			// The region failed mid-body: the client gets a truncated
			// response (the connection is closed), the region a failure.
			oc := health.ConnectError
			if isTimeout(err) {
				oc = health.Timeout
			}
			f.report(uc.o.idx, oc)
		}
		uc.close()
		f.finish(in, rec)
		return err
	}
	uc.release(time.Now())
	err = s.end()
	f.finish(in, rec)
	return err
}

// explain renders the X-Geostamp-Route header.
func (f *FrontDoor) explain(in *inbound, v *view, d *routing.Decision, geo string, rec *record) string {
	var b strings.Builder
	b.WriteString(d.Explain(v.cands))
	b.WriteString(" pop=")
	b.WriteString(f.s.POP)
	if rec.client.IsValid() {
		b.WriteString(" client=")
		b.WriteString(rec.client.String())
	}
	if geo != "" {
		b.WriteString(" geo=")
		b.WriteString(geo)
	}
	if v.pinned != "" {
		b.WriteString(" pinned=\"")
		b.WriteString(v.pinned)
		b.WriteByte('"')
	}
	b.WriteString(" tries=")
	for i := 0; i < rec.ntries; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.origins[rec.tries[i].region].name)
		b.WriteByte(':')
		if t := rec.tries[i]; t.outcome != "" {
			b.WriteString(t.outcome)
		} else {
			b.WriteString(strconv.Itoa(t.status))
		}
	}
	if in.affinity != "" {
		b.WriteString(" affinity_cookie=")
		b.WriteString(sanitize(in.affinity))
	}
	return b.String()
}

// sanitize keeps a client-supplied value printable ASCII without spaces.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '"' || c == ',' {
			b[i] = '?'
		}
	}
	return string(b)
}

// reject answers the request from the front door itself.
func (f *FrontDoor) reject(in *inbound, s sink, rec *record, status int, reason, msg string) error {
	return f.rejectRouted(in, s, rec, status, reason, msg, nil, nil, "")
}

func (f *FrontDoor) rejectRouted(in *inbound, s sink, rec *record, status int, reason, msg string, v *view, d *routing.Decision, geo string) error {
	rec.status = status
	rec.reason = reason
	f.m.rejected.WithLabelValues(reason).Inc()
	var extraArr [4]field
	extra := append(extraArr[:0], field{"Content-Type", "text/plain; charset=utf-8"})
	if tid, ok := rec.trace.traceID(); ok {
		extra = append(extra, tid)
	}
	if status == http.StatusServiceUnavailable && reason == "overload" {
		extra = append(extra, field{"Retry-After", "1"})
	}
	if in.debug && d != nil {
		extra = append(extra, field{HeaderRoute, f.explain(in, v, d, geo, rec)})
	}
	body := msg + "\n"
	err := s.head(status, http.StatusText(status), nil, extra, int64(len(body)), in.method == http.MethodHead)
	if err == nil && in.method != http.MethodHead {
		err = s.write([]byte(body))
	}
	if err == nil {
		err = s.end()
	}
	rec.bytes = int64(len(body))
	f.finish(in, rec)
	return err
}

// finish records the request in the metrics and the access log.
func (f *FrontDoor) finish(in *inbound, rec *record) {
	region := rec.region
	if region < 0 {
		region = len(f.origins)
	}
	f.m.count(region, rec.status)
	if took := time.Since(rec.start).Seconds(); rec.trace.span != nil {
		telemetry.ObserveWithTrace(rec.trace.ctx, f.m.latency[region], took) // exemplar when sampled
	} else {
		f.m.latency[region].Observe(took)
	}
	if f.access != nil {
		f.access.write(f, in, rec)
	}
	rec.trace.end(f, rec)
}
