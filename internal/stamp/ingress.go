package stamp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geostamp/geostamp/internal/httpjson"
)

// errNoReplica means no replica is ready to take a request.
var errNoReplica = errors.New("no ready replica")

// ingress is the stamp's regional ingress: health endpoint, origin lock,
// and a reverse proxy that balances over ready replicas.
type ingress struct {
	s         *Stamp
	proxy     *httputil.ReverseProxy
	transport *http.Transport
	next      atomic.Uint64 // round-robin counter
}

var (
	_ http.Handler      = (*ingress)(nil)
	_ http.RoundTripper = (*ingress)(nil)
)

func newIngress(s *Stamp) *ingress {
	in := &ingress{s: s}
	in.transport = &http.Transport{
		Proxy: nil, // replicas are local; never use an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   2 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Keep enough idle connections per replica that a busy stamp does
		// not open a new connection per request.
		MaxIdleConns:          256 * s.cfg.Replicas,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass the client's content encoding through untouched.
		DisableCompression: true,
		// Replicas speak HTTP/1.1; HTTP/2 to them buys nothing on loopback.
		ForceAttemptHTTP2: false,
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The host is picked per attempt by RoundTrip.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "replica"
			pr.Out.Header.Del(HeaderFDID)
			// Append to what the front door sent rather than replace it.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			injectTrace(pr.Out)
		},
		Transport:  in,
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ModifyResponse: func(resp *http.Response) error {
			if resp.Header.Get(HeaderRegion) == "" {
				resp.Header.Set(HeaderRegion, s.cfg.Region)
			}
			return nil
		},
		ErrorHandler: in.proxyError,
	}
	return in
}

// ServeHTTP serves the health model and proxies everything else,
// counting and timing every answer.
func (in *ingress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := in.s.m
	start := time.Now()
	m.inFlight.Inc()
	sw := &statusWriter{ResponseWriter: w}
	rt, ctx := in.serve(sw, r)
	m.inFlight.Dec()
	m.observe(ctx, rt, sw.status(), time.Since(start))
}

// serve answers r and returns its route class and the context of its span.
func (in *ingress) serve(w *statusWriter, r *http.Request) (string, context.Context) {
	if r.URL.Path == HealthPath {
		in.serveHealth(w, r)
		return routeHealth, r.Context()
	}
	if fdid := in.s.cfg.FDID; fdid != "" {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(HeaderFDID)), []byte(fdid)) != 1 {
			in.writeError(w, http.StatusForbidden, "origin lock: request did not come through this stamp's front door")
			return routeApp, r.Context()
		}
	}
	return routeApp, in.traced(w, r, func(w http.ResponseWriter, r *http.Request) {
		if in.applyFault(w, r) {
			return
		}
		in.proxy.ServeHTTP(w, r)
	})
}

func (in *ingress) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		in.writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+HealthPath)
		return
	}
	rep := in.s.Health()
	code := http.StatusOK
	if rep.Status != StatusHealthy {
		code = http.StatusServiceUnavailable
	}
	// net/http drops the body of an answer to HEAD.
	w.Header().Set(HeaderRegion, in.s.cfg.Region)
	httpjson.Write(w, code, rep)
}

// RoundTrip sends req to the next ready replica. A connect error is
// retried once on another ready replica when the request body has not been
// read, so the retry cannot duplicate or truncate anything; the replica
// that refused is taken out of rotation until its next passing probe.
//
// RoundTrip leaves req.Body open: its only caller, the ReverseProxy, closes
// it after the response, and holding it open is what makes a retry possible.
func (in *ingress) RoundTrip(req *http.Request) (*http.Response, error) {
	routable := *in.s.routable.Load()
	if len(routable) == 0 {
		return nil, errNoReplica
	}
	n := in.next.Add(1)
	first := routable[n%uint64(len(routable))]

	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &trackedBody{rc: req.Body}
	}
	resp, err := in.send(req, first, body)
	if err == nil || !isConnectError(err) {
		return resp, err
	}
	in.s.setReady(first, false, err.Error())
	if len(routable) < 2 || (body != nil && body.read.Load()) {
		return nil, err
	}
	second := routable[(n+1)%uint64(len(routable))]
	in.s.log.Debug("retrying on another replica", "failed", first.addr, "next", second.addr, "err", err)
	return in.send(req, second, body)
}

// send makes one attempt at r. RoundTripper rules forbid changing req, so
// the attempt uses a shallow copy with its own URL and body.
func (in *ingress) send(req *http.Request, r *replica, body *trackedBody) (*http.Response, error) {
	out := req.WithContext(req.Context())
	u := *req.URL
	u.Host = r.addr
	out.URL = &u
	if body != nil {
		out.Body = body
	}
	return in.transport.RoundTrip(out)
}

// trackedBody records whether a request body was read. It ignores Close, so
// a failed attempt cannot close the body a retry needs; see RoundTrip.
type trackedBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *trackedBody) Close() error { return nil }

// isConnectError reports whether err happened before the request was sent:
// the connection to the replica could not be made.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// proxyError answers a request the proxy could not complete.
func (in *ingress) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := proxyStatus(r, err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	level := slog.LevelWarn
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the client went away
	}
	in.s.log.Log(r.Context(), level, "proxy error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	in.writeError(w, code, msg)
}

// proxyStatus maps a proxy error to the status and message for the client.
// It is the only place that decides the ingress's error statuses.
func proxyStatus(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, errNoReplica):
		return http.StatusServiceUnavailable, "no ready replica in this stamp"
	case r.Context().Err() != nil:
		// The client canceled; nobody reads this answer.
		return http.StatusBadGateway, "request canceled"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return http.StatusGatewayTimeout, "replica timed out"
	case isConnectError(err):
		return http.StatusBadGateway, "replica unreachable"
	}
	return http.StatusBadGateway, "replica failed to answer"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeError writes the ingress's own JSON error.
func (in *ingress) writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set(HeaderRegion, in.s.cfg.Region)
	httpjson.Error(w, code, msg)
}

// checkIngress is the built-in "ingress" check: the ingress listener
// accepts a connection and answers HEAD HealthPath.
func (s *Stamp) checkIngress(ctx context.Context) (string, error) {
	addr := s.IngressAddr()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+addr+HealthPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.probe.Do(req)
	if err != nil {
		return "", fmt.Errorf("ingress %s does not answer: %w", addr, err)
	}
	resp.Body.Close()
	if resp.Header.Get(HeaderRegion) != s.cfg.Region {
		return "", fmt.Errorf("ingress %s answered without region %q (status %d)", addr, s.cfg.Region, resp.StatusCode)
	}
	return "answering on " + addr, nil
}

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
