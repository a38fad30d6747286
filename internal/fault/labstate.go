package fault

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/geostamp/geostamp/internal/wan"
)

// Reads of the lab's state through the control API, for faults that need
// to know where things are and for drills that wait for convergence.

// Replica is one region's replica of one data service, as GET /v1/data
// reports it (data.Status).
type Replica struct {
	Service    string `json:"service"`
	Kind       string `json:"kind"`
	Region     string `json:"region"`
	Role       string `json:"role"` // primary, secondary, fenced
	Primary    string `json:"primary"`
	Epoch      int64  `json:"epoch"`
	LastSeq    uint64 `json:"last_seq"`
	PrimarySeq uint64 `json:"primary_seq"`
	LagWrites  uint64 `json:"lag_writes"`
	Readable   bool   `json:"readable"`
	Writable   bool   `json:"writable"`
	Detail     string `json:"detail,omitempty"`
}

// RegionData is one region's entry of GET /v1/data.
type RegionData struct {
	Region string    `json:"region"`
	Data   []Replica `json:"data"`
	Error  string    `json:"error,omitempty"`
}

// Data is the replication state of every region, by region.
type Data map[string]RegionData

// DataStatus reads GET /v1/data.
func DataStatus(ctx context.Context, c Controller) (Data, error) {
	var d Data
	if err := c.Do(ctx, http.MethodGet, "/v1/data", nil, &d); err != nil {
		return nil, fmt.Errorf("fault: data status: %w", err)
	}
	return d, nil
}

// Replicas returns the replicas of service in the regions that answered,
// by region name.
func (d Data) Replicas(service string) []Replica {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Replica
	for _, n := range names {
		if d[n].Error != "" {
			continue
		}
		for _, r := range d[n].Data {
			if r.Service == service {
				if r.Region == "" {
					r.Region = n
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// Primary returns the region whose replica of service is the primary, or
// "" when no answering region is.
func (d Data) Primary(service string) string {
	for _, r := range d.Replicas(service) {
		if r.Role == "primary" {
			return r.Region
		}
	}
	return ""
}

// Secondary returns the first answering region whose replica of service is
// a secondary.
func (d Data) Secondary(service string) string {
	for _, r := range d.Replicas(service) {
		if r.Role == "secondary" {
			return r.Region
		}
	}
	return ""
}

// Positions describes each replica's position, e.g.
// "westeurope 120 (primary), northeurope 119 (secondary)".
func (d Data) Positions(service string) string {
	var parts []string
	for _, r := range d.Replicas(service) {
		parts = append(parts, fmt.Sprintf("%s %d (%s)", r.Region, r.LastSeq, r.Role))
	}
	if len(parts) == 0 {
		return "none answered"
	}
	return strings.Join(parts, ", ")
}

// Converged reports whether every answering secondary of service holds
// the primary's position (fenced replicas are ignored: they rejoin later).
// The reason says what is missing.
func (d Data) Converged(service string) (bool, string) {
	reps := d.Replicas(service)
	var primary *Replica
	for i := range reps {
		if reps[i].Role == "primary" {
			primary = &reps[i]
		}
	}
	if primary == nil {
		return false, "no primary answers"
	}
	for _, r := range reps {
		if r.Role == "secondary" && r.LastSeq < primary.LastSeq {
			return false, fmt.Sprintf("%s at %d, primary %s at %d", r.Region, r.LastSeq, primary.Region, primary.LastSeq)
		}
	}
	return true, ""
}

// Answering reports whether every one of regions answered with a primary
// or secondary replica of service (not down, not fenced); the reason names
// the first that did not.
func (d Data) Answering(service string, regions []string) (bool, string) {
	for _, name := range regions {
		rd, ok := d[name]
		if !ok || rd.Error != "" {
			return false, name + " does not answer"
		}
		role := ""
		for _, r := range rd.Data {
			if r.Service == service {
				role = r.Role
			}
		}
		if role != "primary" && role != "secondary" {
			return false, fmt.Sprintf("%s's replica of %s is %q", name, service, role)
		}
	}
	return true, ""
}

// Links reads GET /v1/links.
func Links(ctx context.Context, c Controller) ([]wan.LinkState, error) {
	var links []wan.LinkState
	if err := c.Do(ctx, http.MethodGet, "/v1/links", nil, &links); err != nil {
		return nil, fmt.Errorf("fault: links: %w", err)
	}
	return links, nil
}

// labEvent is an entry of GET /v1/events (lab.Event).
type labEvent struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Region    string    `json:"region,omitempty"`
	Link      string    `json:"link,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Service   string    `json:"service,omitempty"`
	Step      string    `json:"step,omitempty"`
	Mode      string    `json:"mode,omitempty"`
	Epoch     int64     `json:"epoch,omitempty"`
	Position  uint64    `json:"position,omitempty"`
	Gap       *int64    `json:"gap,omitempty"`
	Discarded *int64    `json:"discarded,omitempty"`
}

// LabKindFailover is the kind of the lab's failover-step events.
const LabKindFailover = "failover"

func (e labEvent) event() Event {
	ev := Event{Time: e.Time, Kind: KindNote, Name: e.Kind, Region: e.Region, Service: e.Service, Link: e.Link,
		Epoch: e.Epoch, Detail: e.Detail}
	if e.Kind == LabKindFailover && e.Step != "" {
		ev.Kind, ev.Name, ev.Step = KindStep, "", e.Step
		// The lab omits a zero gap; a promote always has one.
		ev.Gap = e.Gap
		if e.Step == "promote" && ev.Gap == nil {
			ev.Gap = new(int64)
		}
		ev.Discarded = e.Discarded
		if e.Step == "rejoin" && ev.Discarded == nil {
			ev.Discarded = new(int64)
		}
		var extra []string
		if e.Mode != "" {
			extra = append(extra, "mode "+e.Mode)
		}
		if e.Position != 0 {
			extra = append(extra, fmt.Sprintf("position %d", e.Position))
		}
		if len(extra) > 0 {
			ev.Detail = strings.TrimPrefix(ev.Detail+"; "+strings.Join(extra, ", "), "; ")
		}
	}
	return ev
}

// Watcher collects the lab's events (GET /v1/events) that happen after it
// starts: failover steps as KindStep events, the rest as notes named by
// their lab kind. It reports each event once.
type Watcher struct {
	c     Controller
	since time.Time
	seen  map[string]bool
}

// NewWatcher returns a Watcher of the events at or after since.
func NewWatcher(c Controller, since time.Time) *Watcher {
	return &Watcher{c: c, since: since, seen: map[string]bool{}}
}

// Poll returns the events not reported before, in time order.
func (w *Watcher) Poll(ctx context.Context) ([]Event, error) {
	var all []labEvent
	if err := w.c.Do(ctx, http.MethodGet, "/v1/events", nil, &all); err != nil {
		return nil, fmt.Errorf("fault: events: %w", err)
	}
	var out []Event
	for _, e := range all {
		if e.Time.Before(w.since) {
			continue
		}
		k := fmt.Sprintf("%d|%s|%s|%s|%s|%d|%s", e.Time.UnixNano(), e.Kind, e.Step, e.Region, e.Service, e.Epoch, e.Link)
		if w.seen[k] {
			continue
		}
		w.seen[k] = true
		out = append(out, e.event())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Seen marks an event as reported (e.g. a failover step that an action's
// answer already returned), so that Poll does not report it again.
func (w *Watcher) Seen(e Event) {
	if e.Kind != KindStep {
		return
	}
	k := fmt.Sprintf("%d|%s|%s|%s|%s|%d|%s", e.Time.UnixNano(), LabKindFailover, e.Step, e.Region, e.Service, e.Epoch, e.Link)
	w.seen[k] = true
}
