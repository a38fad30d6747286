package frontdoor

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/topology"
)

// Headers the front door reads or writes.
const (
	// HeaderFDID carries the front door's id to the stamps (origin lock).
	HeaderFDID = "X-Geostamp-FDID"
	// HeaderRegion names the region that answered; set by the stamps.
	HeaderRegion = "X-Geostamp-Region"
	// HeaderDebug: a request with "X-Geostamp-Debug: 1" gets HeaderRoute.
	HeaderDebug = "X-Geostamp-Debug"
	// HeaderRoute explains the routing decision and the tries.
	HeaderRoute = "X-Geostamp-Route"
	// HeaderTraceID returns the request's trace id (32 hex digits) to
	// the client when the front door traces (Config.Tracer).
	HeaderTraceID = "X-Geostamp-Trace-Id"
	// HeaderIdempotencyKey makes any request retryable.
	HeaderIdempotencyKey = "Idempotency-Key"
	// AffinityCookie holds the region a session is bound to, when
	// frontdoor.affinity is on.
	AffinityCookie = "geostamp_affinity"
)

// Defaults of the settings that are not in the topology.
const (
	// DefaultReplayLimit is the largest request body buffered so that the
	// request can be retried on another region.
	DefaultReplayLimit = 1 << 20
	// DefaultShutdownTimeout bounds the graceful end of requests in flight.
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultBodyTimeout bounds each read of a response body from a region
	// once its headers have arrived (the per-try timeout covers the wait for
	// the headers).
	DefaultBodyTimeout = 60 * time.Second
	// upstreamIdle is how long an idle connection to a region is kept;
	// below the usual server keep-alive timeouts, so that the server rarely
	// closes a connection the front door is about to use.
	upstreamIdle = 30 * time.Second
	// maxIdlePerOrigin bounds the idle connections kept per region.
	maxIdlePerOrigin = 1024
)

// Origin is where the front door reaches a region.
type Origin struct {
	// Name is the region's name.
	Name string
	// URL is the base URL of the region's ingress (http or https), e.g.
	// http://127.0.1.1:8080; in the lab, a WAN link's address.
	URL string
}

// Config configures a FrontDoor.
type Config struct {
	// Topology holds the front door settings, the regions (priority,
	// weight, geo, disabled) and the geoip table; required. It is not
	// modified; missing defaults are filled in on a copy.
	Topology *topology.Topology
	// POP names this front door instance (logs, metrics); default the
	// topology's first POP.
	POP string
	// Origins lists one origin per region; default each region's Origin URL
	// from the topology (every region needs one).
	Origins []Origin
	// Listen (plain HTTP/1.1), ListenTLS (HTTP/1.1 and HTTP/2) and
	// AdminListen are the addresses to listen on; "" disables a listener,
	// port 0 picks a free port (see Addr, TLSAddr, AdminAddr). The
	// topology's frontdoor.listen, listenTLS and admin.listen are not used
	// here: the caller chooses (cmd/geostamp passes them).
	Listen, ListenTLS, AdminListen string
	// TLS is the server configuration of ListenTLS; default a certificate
	// loaded from the topology's frontdoor.tls files. Required when
	// ListenTLS is set.
	TLS *tls.Config
	// OriginTLS is the client configuration for https origins; default:
	// system roots, ServerName from the origin URL.
	OriginTLS *tls.Config
	// FDID is sent to the stamps in X-Geostamp-FDID; default the
	// topology's frontdoor.fdid. Empty: no header (stamps without origin
	// lock only).
	FDID string
	// AdminToken is the bearer token of the admin API; required when
	// AdminListen is set.
	AdminToken string
	// Logger receives the front door's logs, tagged component=frontdoor;
	// default: discard.
	Logger *slog.Logger
	// AccessLog receives one JSON line per request; nil: no access log.
	AccessLog io.Writer
	// Registry receives the metrics; nil: a private registry (with Go and
	// process collectors). Either way the admin listener serves it at
	// /metrics.
	Registry *prometheus.Registry
	// Clock drives health probes, ejections and the snapshot refresh;
	// default health.Real. Network timeouts use the wall clock.
	Clock health.Clock
	// ReplayLimit is the largest request body kept for retries; default
	// DefaultReplayLimit. Larger bodies are streamed and not retried.
	ReplayLimit int
	// ShutdownTimeout bounds how long Run waits for requests in flight
	// once its context ends; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// BodyTimeout bounds each read of a region's response body; default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Tracer, when set, records a server span per request and a client
	// span per try, continues an incoming traceparent, sends the try's
	// traceparent to the region and returns the trace id in
	// HeaderTraceID. nil: no span work at all, and traceparent and
	// tracestate are forwarded as received.
	Tracer trace.Tracer
}

// settings is a Config with defaults filled in and the topology resolved.
type settings struct {
	Config
	topo    topology.Topology // a defaulted copy
	fd      topology.FrontDoor
	origins []Origin // in region order
}

// resolve fills defaults and validates, reporting every problem at once.
func resolve(cfg Config) (*settings, error) {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}
	if cfg.Topology == nil {
		return nil, errors.New("frontdoor: invalid config: topology: required")
	}
	s := &settings{Config: cfg}
	s.topo = *cfg.Topology
	s.topo.Regions = slices.Clone(s.topo.Regions)
	s.topo.Data = slices.Clone(s.topo.Data)
	s.topo.SetDefaults()
	s.fd = s.topo.FrontDoor
	if err := s.topo.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("topology: %w", err))
	}
	if len(s.topo.Regions) == 0 {
		add("topology.regions", "at least one region is required")
	}
	if s.POP == "" && len(s.fd.POPs) > 0 {
		s.POP = s.fd.POPs[0]
	}
	if s.FDID == "" {
		s.FDID = s.fd.FDID
	}
	// Origins, in region order.
	byName := map[string]string{}
	if len(cfg.Origins) == 0 {
		for _, r := range s.topo.Regions {
			byName[r.Name] = r.Origin
		}
	} else {
		for i, o := range cfg.Origins {
			if _, ok := s.topo.Region(o.Name); !ok {
				add(fmt.Sprintf("origins[%d].name", i), "%q is not a region of the topology", o.Name)
				continue
			}
			if _, dup := byName[o.Name]; dup {
				add(fmt.Sprintf("origins[%d].name", i), "%q is listed twice", o.Name)
			}
			byName[o.Name] = o.URL
		}
	}
	for i, r := range s.topo.Regions {
		u := byName[r.Name]
		at := fmt.Sprintf("origins[%s]", r.Name)
		if len(cfg.Origins) == 0 {
			at = fmt.Sprintf("topology.regions[%d].origin", i)
		}
		if u == "" {
			add(at, "required: the URL the front door reaches region %s at", r.Name)
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add(at, "%q must be an http:// or https:// URL with a host", u)
			continue
		}
		s.origins = append(s.origins, Origin{Name: r.Name, URL: u})
	}
	for _, a := range []struct{ name, v string }{{"listen", s.Listen}, {"listenTLS", s.ListenTLS}, {"adminListen", s.AdminListen}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			add(a.name, "%q is not host:port", a.v)
		}
	}
	if s.Listen == "" && s.ListenTLS == "" {
		add("listen", "at least one of listen and listenTLS is required")
	}
	if s.ListenTLS != "" && s.TLS == nil {
		if s.fd.TLS.CertFile == "" {
			add("tls", "listenTLS needs a certificate: pass Config.TLS or set frontdoor.tls in the topology")
		} else {
			cert, err := tls.LoadX509KeyPair(s.fd.TLS.CertFile, s.fd.TLS.KeyFile)
			if err != nil {
				add("topology.frontdoor.tls", "%v", err)
			} else {
				s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			}
		}
	}
	if s.AdminListen != "" && s.AdminToken == "" {
		add("adminToken", "required with adminListen (the admin API changes routing)")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Clock == nil {
		s.Clock = health.Real
	}
	if s.ReplayLimit == 0 {
		s.ReplayLimit = DefaultReplayLimit
	}
	if s.ReplayLimit < 0 {
		add("replayLimit", "must not be negative")
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = DefaultShutdownTimeout
	}
	if s.BodyTimeout == 0 {
		s.BodyTimeout = DefaultBodyTimeout
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("frontdoor: invalid config: %w", err)
	}
	return s, nil
}
