package witness

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
)

// PeerRouter serves a member's advertised peer URL and forwards each etcd
// peer request to an upstream chosen by the member that sent it.
//
// Why: a member has one advertised peer URL, which every other member
// dials. In the lab, traffic from site A to member B must cross the WAN
// link A-B and traffic from the witness W to B the link W-B, so one address
// for B cannot be one WAN proxy. The PeerRouter is that one address; it
// reads the sender's advertised peer URLs from the X-PeerURLs header that
// etcd puts on its raft requests (streams, pipelined messages, snapshots)
// and sends the request through Routes[sender], e.g. the WAN proxy from the
// sender's site to B.
//
// Requests without that header go to Default: etcd's version checks, probes,
// and the lease renewals and TTL queries a follower forwards to the leader.
// They carry no sender identity, so they do not cross the sender's WAN link:
// a cut does not stop them. They carry no raft messages either, so they do
// not let a member cut off from a quorum take part in consensus; but a
// forwarded keepalive does renew the lease at the leader. Authority.renew
// therefore sends a keepalive only right after a quorum read through the
// raft path succeeded, so the lease ends at the authority when the holder's
// raft traffic to the leader stops in either direction.
//
// Peer traffic must be plain HTTP (as in the lab). Run the router in the
// member's process, so that it goes down with the member.
type PeerRouter struct {
	routes map[string]string // sender's advertised peer URL (normalized) -> upstream host:port
	def    string
	log    *slog.Logger
	proxy  *httputil.ReverseProxy
}

// PeerRouterConfig configures a PeerRouter.
type PeerRouterConfig struct {
	// Routes maps the advertised peer URL of each other member to the
	// host:port its requests must go to, e.g. the WAN proxy from that
	// member's site to this member's peer listener.
	Routes map[string]string
	// Default is the host:port for requests that name no known sender;
	// usually the member's own peer listen address. Required.
	Default string
	// Logger receives routing errors at debug level. Default: discard.
	Logger *slog.Logger
}

// NewPeerRouter checks cfg and returns a PeerRouter; nothing listens until
// Serve.
func NewPeerRouter(cfg PeerRouterConfig) (*PeerRouter, error) {
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Default); err != nil {
		errs = append(errs, fmt.Errorf("default: %q is not host:port", cfg.Default))
	}
	routes := make(map[string]string, len(cfg.Routes))
	for from, to := range cfg.Routes {
		if err := checkURL(from); err != nil {
			errs = append(errs, fmt.Errorf("routes[%s]: %w", from, err))
		}
		if _, _, err := net.SplitHostPort(to); err != nil {
			errs = append(errs, fmt.Errorf("routes[%s]: %q is not host:port", from, to))
		}
		routes[normalizePeerURL(from)] = to
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("witness: invalid peer router config: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &PeerRouter{routes: routes, def: cfg.Default, log: logger.With("component", "witness", "part", "peer-router")}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = r.upstream(pr.In.Header.Get("X-PeerURLs"))
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     time.Minute,
		},
		FlushInterval: -1, // raft streams: every message at once
		ErrorLog:      log.New(debugWriter{r.log}, "", 0),
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.log.Debug("peer request failed", "path", req.URL.Path, "from", req.Header.Get("X-PeerURLs"), "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return r, nil
}

// upstream picks the route for a request whose X-PeerURLs header is h.
func (r *PeerRouter) upstream(h string) string {
	for _, u := range strings.Split(h, ",") {
		if to, ok := r.routes[normalizePeerURL(u)]; ok {
			return to
		}
	}
	return r.def
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and returns nil.
func (r *PeerRouter) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           r.proxy,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(debugWriter{r.log}, "", 0),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	defer r.proxy.Transport.(*http.Transport).CloseIdleConnections()
	err := srv.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("witness: peer router: %w", err)
}

func normalizePeerURL(s string) string { return strings.TrimSuffix(strings.TrimSpace(s), "/") }

// debugWriter turns the standard library's log lines into debug records.
type debugWriter struct{ log *slog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
