package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Target is one thing to probe, typically a regional stamp.
type Target struct {
	// Name identifies the target (a region name); unique within a Checker.
	Name string `json:"name"`
	// URL is probed, e.g. http://127.0.1.1:8080/health/stamp.
	URL string `json:"url"`
}

// Result is the outcome of one probe.
type Result struct {
	// Status is the HTTP status, 0 when there was no response.
	Status int
	// Latency is the probe's round trip: from the start of the dial to the
	// first byte of the response headers. 0 when unknown.
	Latency time.Duration
	// Err is nil when the probe passed, else why it failed.
	Err error
}

// Prober runs one probe of a target. Probe must return soon after ctx ends;
// a Checker ends ctx when the probe's Timeout expires (and records the
// timeout itself, whatever Probe returns after that).
type Prober interface {
	Probe(ctx context.Context, t Target) Result
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, t Target) Result

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, t Target) Result { return f(ctx, t) }

var (
	_ Prober = ProberFunc(nil)
	_ Prober = (*HTTPProber)(nil)
)

// HTTPProber probes Target.URL over HTTP. It is the default Prober of a
// Checker, and usable on its own.
type HTTPProber struct {
	// Method is HEAD or GET; "" means HEAD.
	Method string
	// Expect lists the statuses that pass; empty means [200].
	Expect []int
	// Header is added to each request; User-Agent defaults to UserAgent.
	Header http.Header
	// Client sends the requests; nil means a shared NewProbeClient.
	Client *http.Client
}

var defaultProbeClient = NewProbeClient()

// Probe sends one request. Its latency is measured with the monotonic wall
// clock, not Config.Clock: it measures the network, which a fake clock
// cannot see. It runs from the start of the TCP dial (or from getting a
// pooled connection, when the client keeps connections alive) to the first
// response byte, so it includes the TCP (and TLS) handshake and excludes
// name resolution and reading the body.
func (p *HTTPProber) Probe(ctx context.Context, t Target) Result {
	var tr latencyTrace
	ctx = httptrace.WithClientTrace(ctx, tr.clientTrace())
	method, expect, client := p.Method, p.Expect, p.Client
	if method == "" {
		method = http.MethodHead
	}
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	if client == nil {
		client = defaultProbeClient
	}
	req, err := http.NewRequestWithContext(ctx, method, t.URL, nil)
	if err != nil {
		return Result{Err: err}
	}
	for k, v := range p.Header {
		req.Header[k] = slices.Clone(v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	sent := time.Now()
	resp, err := client.Do(req)
	done := time.Now()
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // "dial tcp ...: connection refused" rather than `Head "http://...": dial tcp ...`
		}
		return Result{Err: err}
	}
	resp.Body.Close() // no keep-alive by default: nothing to drain
	r := Result{Status: resp.StatusCode, Latency: tr.latency(sent, done)}
	if !slices.Contains(expect, resp.StatusCode) {
		r.Err = &StatusError{Status: resp.StatusCode, Expect: expect}
	}
	return r
}

// StatusError is the Err of a probe answered with an unexpected status.
type StatusError struct {
	Status int
	Expect []int
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("status ")
	b.WriteString(strconv.Itoa(e.Status))
	b.WriteString(", want ")
	for i, s := range e.Expect {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(strconv.Itoa(s))
	}
	return b.String()
}

// latencyTrace records the moments that bound a probe's latency. The
// transport may call the hooks from its own goroutines.
type latencyTrace struct {
	mu         sync.Mutex
	start, end time.Time
}

func (tr *latencyTrace) mark(connStart bool) {
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if connStart {
		if tr.start.IsZero() {
			tr.start = now
		}
	} else if tr.end.IsZero() {
		tr.end = now
	}
}

func (tr *latencyTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		ConnectStart: func(string, string) { tr.mark(true) },
		GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				tr.mark(true)
			}
		},
		GotFirstResponseByte: func() { tr.mark(false) },
	}
}

// latency returns end-start, falling back to the whole exchange for
// transports that do not report the trace events.
func (tr *latencyTrace) latency(sent, done time.Time) time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	start, end := tr.start, tr.end
	if start.IsZero() {
		start = sent
	}
	if end.IsZero() {
		end = done
	}
	return max(end.Sub(start), 0)
}

// timeoutError is the Err recorded for a probe that outlived its Timeout.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string { return fmt.Sprintf("timeout: no response after %s", e.after) }

// Timeout reports true, like net.Error.
func (timeoutError) Timeout() bool { return true }
