package frontdoor

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/routing"
)

// Override is an operator's runtime change to a region's routing settings
// (admin API). Nil fields keep the topology's value.
type Override struct {
	Weight   *int  `json:"weight,omitempty"`
	Priority *int  `json:"priority,omitempty"`
	Drained  *bool `json:"drained,omitempty"`
	Enabled  *bool `json:"enabled,omitempty"`
}

// Validate checks the ranges of the topology: weight 1–1000, priority 1–5.
func (o Override) Validate() error {
	var msgs []string
	if o.Weight != nil && (*o.Weight < 1 || *o.Weight > 1000) {
		msgs = append(msgs, fmt.Sprintf("weight: must be between 1 and 1000, got %d", *o.Weight))
	}
	if o.Priority != nil && (*o.Priority < 1 || *o.Priority > 5) {
		msgs = append(msgs, fmt.Sprintf("priority: must be between 1 and 5, got %d", *o.Priority))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// geoPenalty is added to the priority of the regions outside a client's
// geo, so that they serve it only when no region of the geo is eligible.
const geoPenalty = 10

// maxMemo bounds the memoized decisions of a view (one per Rand mod
// RandSpan).
const maxMemo = 4096

// view is a set of candidates with the policy to decide over them: the
// regions as they are, or as seen by the clients of one geo.
type view struct {
	policy routing.Policy
	cands  []routing.Candidate
	pinned string // for the debug header: "geo GB pinned to [westeurope]"
	span   uint64 // Decision.RandSpan of decisions without affinity
	memo   []atomic.Pointer[routing.Decision]
}

// snapshot is what the request path reads: immutable once stored, except
// for the memo slots.
type snapshot struct {
	all      *view
	settings []routing.Candidate // the regions' settings and health, for Status
	byGeo    map[string]*view
	failOpen bool
}

func newView(p routing.Policy, cands []routing.Candidate, pinned string) *view {
	v := &view{policy: p, cands: cands, pinned: pinned}
	d := routing.Decide(p, cands, routing.Request{})
	v.span = d.RandSpan
	if v.span <= maxMemo {
		v.memo = make([]atomic.Pointer[routing.Decision], max(v.span, 1))
		v.memo[0].Store(&d)
	}
	return v
}

// decide returns the decision for a request without affinity from the
// memo, deciding and memoizing on a miss. r is a random number.
func (v *view) decide(r uint64) *routing.Decision {
	k := uint64(0)
	if v.span > 0 {
		k = r % v.span
	}
	if v.memo == nil {
		d := routing.Decide(v.policy, v.cands, routing.Request{Rand: r})
		return &d
	}
	if d := v.memo[k].Load(); d != nil {
		return d
	}
	d := routing.Decide(v.policy, v.cands, routing.Request{Rand: k})
	v.memo[k].Store(&d)
	return &d
}

// route picks the view of the client's geo and decides.
func (s *snapshot) route(geo, affinity string, r uint64) (*view, *routing.Decision) {
	v := s.all
	if geo != "" && s.byGeo != nil {
		if gv := s.byGeo[geo]; gv != nil {
			v = gv
		}
	}
	if affinity == "" {
		return v, v.decide(r)
	}
	d := routing.Decide(v.policy, v.cands, routing.Request{Affinity: affinity, Rand: r})
	return v, &d
}

// rebuild makes a new snapshot from the topology, the overrides and the
// health checker, and stores it. Requests that start after it returns
// see it.
func (f *FrontDoor) rebuild() {
	f.rebuildMu.Lock()
	defer f.rebuildMu.Unlock()
	cands := slices.Clone(f.base)
	for i := range cands {
		c := &cands[i]
		if o, ok := f.overrides[c.Name]; ok {
			if o.Weight != nil {
				c.Weight = *o.Weight
			}
			if o.Priority != nil {
				c.Priority = *o.Priority
			}
			if o.Drained != nil {
				c.Drained = *o.Drained
			}
			if o.Enabled != nil {
				c.Enabled = *o.Enabled
			}
		}
	}
	routing.Refresh(cands, f.checker)
	settings := slices.Clone(cands)
	if !anyEligible(cands) {
		// Failing open: every region is served, but those that just failed
		// requests (ejected) come last, so that retries move away from
		// them first.
		for i := range cands {
			if st, ok := f.checker.State(cands[i].Name); ok && st.Ejected {
				cands[i].Priority += 2 * geoPenalty
			}
		}
	}
	s := &snapshot{all: newView(f.policy, cands, ""), settings: settings}
	if len(f.geoCode) > 0 {
		s.byGeo = map[string]*view{}
		for _, code := range f.geoCode {
			if v := f.geoView(cands, code); v != nil {
				s.byGeo[code] = v
			}
		}
	}
	d := s.all.memo
	if d != nil {
		s.failOpen = d[0].Load().FailOpen
	} else {
		s.failOpen = routing.Decide(f.policy, cands, routing.Request{}).FailOpen
	}
	healthyCount, unknown := 0, 0
	for _, c := range cands {
		if st, ok := f.checker.State(c.Name); ok && st.Status == health.StatusUnknown {
			unknown++
		}
		h := 0.0
		if c.Healthy {
			h = 1
			healthyCount++
		}
		f.m.healthy.WithLabelValues(c.Name).Set(h)
		e := 0.0
		if st, ok := f.checker.State(c.Name); ok && st.Ejected {
			e = 1
		}
		f.m.ejected.WithLabelValues(c.Name).Set(e)
	}
	if s.failOpen != f.failOpen {
		f.failOpen = s.failOpen
		switch {
		case s.failOpen && unknown > 0 && healthyCount == 0:
			f.m.failOpen.Set(1)
			f.log.Info("routing fails open until the first probes answer", "unprobed", unknown, "regions", len(cands))
		case s.failOpen:
			f.m.failOpen.Set(1)
			f.log.Warn("routing fails open: no region is eligible (healthy, enabled, undrained); serving every enabled region",
				"healthy", healthyCount, "regions", len(cands))
		default:
			f.m.failOpen.Set(0)
			f.log.Info("routing no longer fails open", "healthy", healthyCount, "regions", len(cands))
		}
	}
	f.snap.Store(s)
}

func anyEligible(cands []routing.Candidate) bool {
	for i := range cands {
		if cands[i].Eligible() {
			return true
		}
	}
	return false
}

// geoView returns the view of clients of geo code: the regions listing
// it (else those listing WORLD) keep their rank, the others come after
// them. nil when no enabled region serves the geo (no pinning).
func (f *FrontDoor) geoView(cands []routing.Candidate, code string) *view {
	in := make([]bool, len(cands))
	found := false
	for _, want := range []string{code, routing.World} {
		for i, c := range cands {
			if c.Enabled && slices.Contains(c.Geo, want) {
				in[i], found = true, true
			}
		}
		if found {
			break
		}
	}
	if !found {
		return nil
	}
	vc := slices.Clone(cands)
	p := f.policy
	var names []string
	for i := range vc {
		if in[i] {
			names = append(names, vc[i].Name)
		}
		switch {
		case p.Method == routing.Weighted && in[i]:
			vc[i].Priority = 1
		case p.Method == routing.Weighted:
			vc[i].Priority = 2
		case !in[i]:
			vc[i].Priority += geoPenalty
		}
	}
	if p.Method == routing.Weighted {
		// Weighted within the geo, spilling over to the rest: priority
		// routing over two tiers.
		p.Method = routing.Priority
	}
	return newView(p, vc, "geo "+code+" prefers ["+strings.Join(names, " ")+"]")
}

// SetOverride changes a region's routing settings at run time; the next
// request sees the change. It returns an error for an unknown region or
// out-of-range values. Fields left nil keep their current value.
func (f *FrontDoor) SetOverride(name string, o Override) error {
	if _, ok := f.names[name]; !ok {
		return fmt.Errorf("%w: %q", errUnknownRegion, name)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	f.rebuildMu.Lock()
	cur := f.overrides[name]
	if o.Weight != nil {
		cur.Weight = o.Weight
	}
	if o.Priority != nil {
		cur.Priority = o.Priority
	}
	if o.Drained != nil {
		cur.Drained = o.Drained
	}
	if o.Enabled != nil {
		cur.Enabled = o.Enabled
	}
	f.overrides[name] = cur
	f.rebuildMu.Unlock()
	f.rebuild()
	f.log.Info("region settings changed", "region", name, "weight", ptrStr(o.Weight), "priority", ptrStr(o.Priority),
		"drained", ptrStr(o.Drained), "enabled", ptrStr(o.Enabled))
	return nil
}

func ptrStr[T any](p *T) string {
	if p == nil {
		return "unchanged"
	}
	return fmt.Sprint(*p)
}
