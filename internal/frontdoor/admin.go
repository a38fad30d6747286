package frontdoor

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"net/netip"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/httpjson"
	"github.com/geostamp/geostamp/internal/telemetry"
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
		httpjson.Write(w, http.StatusOK, f.Status())
	})
	mux.HandleFunc("GET /admin/origins/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, o := range f.Status().Origins {
			if o.Name == r.PathValue("name") {
				httpjson.Write(w, http.StatusOK, o)
				return
			}
		}
		httpjson.Error(w, http.StatusNotFound, "unknown region "+r.PathValue("name"))
	})
	mux.HandleFunc("POST /admin/origins/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var o Override
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "want a JSON object with weight, priority, drained, enabled: "+err.Error())
			return
		}
		if err := f.SetOverride(name, o); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errUnknownRegion) {
				code = http.StatusNotFound
			}
			httpjson.Error(w, code, err.Error())
			return
		}
		for _, st := range f.Status().Origins {
			if st.Name == name {
				httpjson.Write(w, http.StatusOK, st)
				return
			}
		}
	})
	mux.HandleFunc("GET /admin/health", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, f.checker.States())
	})
	mux.HandleFunc("GET /admin/explain", func(w http.ResponseWriter, r *http.Request) {
		a, err := netip.ParseAddr(r.URL.Query().Get("client"))
		if err != nil {
			httpjson.Error(w, http.StatusBadRequest, "client: want an IP address, e.g. ?client=10.1.2.3")
			return
		}
		httpjson.Write(w, http.StatusOK, f.Explain(a.Unmap(), r.URL.Query().Get("affinity")))
	})
	mux.Handle("GET /metrics", telemetry.Handler(f.reg))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	authed := auth.Bearer(f.s.AdminToken, mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok\n"))
			return
		}
		authed.ServeHTTP(w, r)
	})
}
