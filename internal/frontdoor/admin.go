package frontdoor

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/geostamp/geostamp/internal/health"
)

// OriginStatus is one region as GET /admin/origins shows it: its current
// routing settings (topology values with the runtime overrides applied)
// and its health state with the event history.
type OriginStatus struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	Priority int    `json:"priority"`
	Weight   int    `json:"weight"`
	Enabled  bool   `json:"enabled"`
	Drained  bool   `json:"drained"`
	// Eligible: enabled, healthy and not drained (routing.Candidate.Eligible).
	Eligible bool               `json:"eligible"`
	Health   health.TargetState `json:"health"`
}

// Status is the answer of GET /admin/origins.
type Status struct {
	POP     string `json:"pop"`
	Routing string `json:"routing"`
	// FailOpen is true while no region is eligible and every enabled one
	// is served.
	FailOpen bool           `json:"fail_open"`
	InFlight int64          `json:"in_flight"`
	Origins  []OriginStatus `json:"origins"`
}

// Status returns the state of every region.
func (f *FrontDoor) Status() Status {
	snap := f.snap.Load()
	st := Status{POP: f.s.POP, Routing: string(f.policy.Method), FailOpen: snap.failOpen, InFlight: f.active.Load()}
	for i, c := range snap.settings {
		hs, _ := f.checker.State(c.Name)
		st.Origins = append(st.Origins, OriginStatus{
			Name: c.Name, URL: f.s.origins[i].URL, Priority: c.Priority, Weight: c.Weight,
			Enabled: c.Enabled, Drained: c.Drained, Eligible: c.Eligible(), Health: hs,
		})
	}
	return st
}

// Explanation is the answer of GET /admin/explain: how the front door
// routes a client now.
type Explanation struct {
	Client string `json:"client"`
	Geo    string `json:"geo,omitempty"`
	// Pinned names the regions preferred for the client's geo, if any.
	Pinned   string   `json:"pinned,omitempty"`
	Affinity string   `json:"affinity,omitempty"`
	Target   string   `json:"target"`
	Order    []string `json:"order"`
	FailOpen bool     `json:"fail_open"`
	// Route is what X-Geostamp-Route would say (without tries).
	Route string `json:"route"`
}

// Explain decides for a client address (and an affinity cookie value) as
// a request would be decided now.
func (f *FrontDoor) Explain(client netip.Addr, affinity string) Explanation {
	geo := ""
	if f.geo != nil {
		geo, _ = f.geo.Lookup(client)
	}
	if !f.affinity {
		affinity = ""
	}
	v, d := f.snap.Load().route(geo, affinity, rand.Uint64())
	e := Explanation{Client: client.String(), Geo: geo, Pinned: v.pinned, Affinity: affinity, FailOpen: d.FailOpen,
		Route: d.Explain(v.cands), Order: []string{}}
	for _, i := range d.Order {
		e.Order = append(e.Order, v.cands[i].Name)
	}
	if len(e.Order) > 0 {
		e.Target = e.Order[0]
	}
	return e
}

// adminHandler serves the admin API; every path but /healthz needs the
// bearer token.
func (f *FrontDoor) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/origins", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Status())
	})
	mux.HandleFunc("GET /admin/origins/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, o := range f.Status().Origins {
			if o.Name == r.PathValue("name") {
				writeJSON(w, http.StatusOK, o)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown region " + r.PathValue("name")})
	})
	mux.HandleFunc("POST /admin/origins/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var o Override
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON object with weight, priority, drained, enabled: " + err.Error()})
			return
		}
		if err := f.SetOverride(name, o); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errUnknownRegion) {
				code = http.StatusNotFound
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		for _, st := range f.Status().Origins {
			if st.Name == name {
				writeJSON(w, http.StatusOK, st)
				return
			}
		}
	})
	mux.HandleFunc("GET /admin/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.checker.States())
	})
	mux.HandleFunc("GET /admin/explain", func(w http.ResponseWriter, r *http.Request) {
		a, err := netip.ParseAddr(r.URL.Query().Get("client"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "client: want an IP address, e.g. ?client=10.1.2.3"})
			return
		}
		writeJSON(w, http.StatusOK, f.Explain(a.Unmap(), r.URL.Query().Get("affinity")))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	token := []byte("Bearer " + f.s.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok\n"))
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, token) != 1 || strings.TrimSpace(f.s.AdminToken) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="geostamp front door"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
