package gslb

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/httpjson"
	"github.com/geostamp/geostamp/internal/telemetry"
)

// HealthReport is the body of GET /admin/health.
type HealthReport struct {
	Zone    string `json:"zone"`
	Host    string `json:"host"`
	Routing string `json:"routing"`
	// TTL is the TTL of routed answers now: the configured ttl, or the
	// degraded one while Degraded.
	TTL      string `json:"ttl"`
	Degraded bool   `json:"degraded"`
	// FailOpen is true when no enabled region is healthy: answers name
	// every region.
	FailOpen bool `json:"fail_open"`
	// Regions is each probed region's state with its event history.
	Regions []health.TargetState `json:"regions"`
}

// Health returns what GET /admin/health serves.
func (s *Server) Health() HealthReport {
	st := s.state.Load()
	return HealthReport{
		Zone:     s.zone.origin,
		Host:     s.zone.host,
		Routing:  string(s.policy.Method),
		TTL:      (time.Duration(st.ttl) * time.Second).String(),
		Degraded: st.degraded,
		FailOpen: st.healthy == 0,
		Regions:  s.checker.States(),
	}
}

// adminHandler serves the admin API behind the bearer token.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/explain", func(w http.ResponseWriter, r *http.Request) {
		c := r.URL.Query().Get("client")
		a, err := netip.ParseAddr(c)
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "client: want an IP address, e.g. ?client=10.1.2.3")
			return
		}
		httpjson.Write(w, http.StatusOK, s.Explain(a))
	})
	mux.HandleFunc("GET /admin/health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, s.Health())
	})
	mux.Handle("GET /metrics", telemetry.Handler(s.registry))
	return auth.Bearer(s.token, mux)
}
