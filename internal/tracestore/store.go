// Package tracestore is the lab's trace collector: it receives spans over
// OTLP/HTTP (protobuf, optionally gzip) from every process of a lab, keeps
// the most recent traces in memory within fixed bounds, and answers queries
// by trace id or by service, component, region and duration.
package tracestore

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Default bounds of a Store.
const (
	DefaultMaxTraces = 2000
	DefaultMaxSpans  = 2000 // per trace
)

// Span is one received span.
type Span struct {
	TraceID  string `json:"trace_id"`
	SpanID   string `json:"span_id"`
	ParentID string `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"`
	// Service is the process's service.name (geostamp-region,
	// geostamp-lab...).
	Service string `json:"service"`
	// Component is the geostamp package that recorded the span
	// (frontdoor, stamp, workload, jetstream...): the last element of the
	// instrumentation scope's name.
	Component string `json:"component,omitempty"`
	// Region and POP come from the span's geostamp.region and
	// geostamp.pop attributes, else from the process's resource.
	Region     string            `json:"region,omitempty"`
	POP        string            `json:"pop,omitempty"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Duration   float64           `json:"duration_ms"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Summary describes one trace in a query's answer.
type Summary struct {
	TraceID string    `json:"trace_id"`
	Root    string    `json:"root"` // the name of the earliest span without a parent in the trace
	Start   time.Time `json:"start"`
	// Duration is from the earliest start to the latest end, in ms.
	Duration   float64  `json:"duration_ms"`
	Spans      int      `json:"spans"`
	Services   []string `json:"services"`
	Components []string `json:"components,omitempty"`
	Regions    []string `json:"regions,omitempty"`
	Errors     int      `json:"errors,omitempty"`
}

// Query selects traces. A trace matches when one of its spans matches
// each non-empty field.
type Query struct {
	// Service matches a span's service.name or its geostamp.service
	// attribute (a data service such as "orders").
	Service   string
	Component string
	Region    string
	// MinDuration keeps traces at least this long.
	MinDuration time.Duration
	// Limit caps the answer (newest first); 0 means 20.
	Limit int
}

// Store keeps recent traces. It is safe for concurrent use.
type Store struct {
	maxTraces, maxSpans int

	mu     sync.Mutex
	traces map[string]*held
	seq    uint64 // update counter, to evict the least recently updated
	// dropped counts spans refused because their trace was full.
	dropped uint64
}

type held struct {
	spans   []Span
	updated uint64
	seen    time.Time
}

// New returns a store that keeps up to maxTraces traces (the least
// recently updated go first) of up to maxSpans spans each; 0 picks the
// defaults.
func New(maxTraces, maxSpans int) *Store {
	if maxTraces <= 0 {
		maxTraces = DefaultMaxTraces
	}
	if maxSpans <= 0 {
		maxSpans = DefaultMaxSpans
	}
	return &Store{maxTraces: maxTraces, maxSpans: maxSpans, traces: map[string]*held{}}
}

// Add stores spans.
func (s *Store) Add(spans []Span) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		t := s.traces[sp.TraceID]
		if t == nil {
			if len(s.traces) >= s.maxTraces {
				s.evict()
			}
			t = &held{}
			s.traces[sp.TraceID] = t
		}
		if len(t.spans) >= s.maxSpans {
			s.dropped++
			continue
		}
		s.seq++
		t.spans = append(t.spans, sp)
		t.updated, t.seen = s.seq, now
	}
}

// evict drops the least recently updated trace.
func (s *Store) evict() {
	var oldest string
	var at uint64
	for id, t := range s.traces {
		if oldest == "" || t.updated < at {
			oldest, at = id, t.updated
		}
	}
	delete(s.traces, oldest)
}

// Len is the number of traces held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.traces)
}

// Trace returns the spans of trace id (32 hex digits, any case) in start
// order, and whether the store holds it.
func (s *Store) Trace(id string) ([]Span, bool) {
	s.mu.Lock()
	t := s.traces[strings.ToLower(id)]
	var out []Span
	if t != nil {
		out = append(out, t.spans...)
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, t != nil
}

// Find returns the summaries of the traces that match q, the most recently
// updated first.
func (s *Store) Find(q Query) []Summary {
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	type hit struct {
		sum     Summary
		updated uint64
	}
	var hits []hit
	s.mu.Lock()
	for id, t := range s.traces {
		if !matches(t.spans, q) {
			continue
		}
		sum := summarize(id, t.spans)
		if q.MinDuration > 0 && sum.Duration < float64(q.MinDuration)/float64(time.Millisecond) {
			continue
		}
		hits = append(hits, hit{sum, t.updated})
	}
	s.mu.Unlock()
	sort.Slice(hits, func(i, j int) bool { return hits[i].updated > hits[j].updated })
	out := make([]Summary, 0, min(limit, len(hits)))
	for _, h := range hits[:min(limit, len(hits))] {
		out = append(out, h.sum)
	}
	return out
}

func matches(spans []Span, q Query) bool {
	service, component, region := q.Service == "", q.Component == "", q.Region == ""
	for _, sp := range spans {
		service = service || sp.Service == q.Service || sp.Attributes["geostamp.service"] == q.Service
		component = component || sp.Component == q.Component
		region = region || sp.Region == q.Region
	}
	return service && component && region
}

func summarize(id string, spans []Span) Summary {
	sum := Summary{TraceID: id, Spans: len(spans)}
	var end time.Time
	ids := map[string]bool{}
	for _, sp := range spans {
		ids[sp.SpanID] = true
	}
	var rootStart time.Time
	for _, sp := range spans {
		if sum.Start.IsZero() || sp.Start.Before(sum.Start) {
			sum.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if !ids[sp.ParentID] && (sum.Root == "" || sp.Start.Before(rootStart)) {
			sum.Root, rootStart = sp.Name, sp.Start
		}
		sum.Services = addUnique(sum.Services, sp.Service)
		sum.Components = addUnique(sum.Components, sp.Component)
		sum.Regions = addUnique(sum.Regions, sp.Region)
		if sp.Error != "" {
			sum.Errors++
		}
	}
	sum.Duration = ms(end.Sub(sum.Start))
	return sum
}

func addUnique(list []string, v string) []string {
	if v == "" {
		return list
	}
	i := sort.SearchStrings(list, v)
	if i < len(list) && list[i] == v {
		return list
	}
	return append(list[:i], append([]string{v}, list[i:]...)...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
