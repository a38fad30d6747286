package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/data"
)

// DefaultPrefix is the key prefix used when Config.Prefix is "".
const DefaultPrefix = "/geostamp/failover/"

// Failover modes.
const (
	ModePlanned = "planned"
	ModeForced  = "forced"
)

// Policies of a failover group.
const (
	PolicyManual    = "manual"
	PolicyAutomatic = "automatic"
)

// Steps of a failover, as events name them.
const (
	StepDetect  = "detect"
	StepDecide  = "decide"
	StepFence   = "fence"
	StepPromote = "promote"
	StepRepoint = "repoint"
	StepRejoin  = "rejoin"
	StepAbort   = "abort"
	StepUnfence = "unfence"
	StepRelease = "release"
)

// Event is one step of a failover, as one region's controller took it.
type Event struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Region  string    `json:"region"`
	Step    string    `json:"step"`
	Mode    string    `json:"mode,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"`
	// Position is the local replica's position at the step.
	Position uint64 `json:"position,omitempty"`
	// Gap, on promote, is how many writes the old primary had (by its last
	// report) that the new primary lacks: the expected loss of a forced or
	// automatic failover. The exact count is the old primary's Discarded
	// when it rejoins.
	Gap uint64 `json:"gap,omitempty"`
	// Discarded, on rejoin, is how many local writes the old primary
	// dropped because the new primary's history lacks them.
	Discarded uint64 `json:"discarded,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// TraceID is the trace of the failover the step belongs to.
	TraceID string `json:"trace_id,omitempty"`
}

// Report is a region's replica state, refreshed by its controller.
type Report struct {
	Region   string    `json:"region"`
	Position uint64    `json:"position"`
	Role     data.Role `json:"role"`
	Epoch    uint64    `json:"epoch"`
	Healthy  bool      `json:"healthy"`
	Time     time.Time `json:"time"`
}

// Request is a pending failover.
type Request struct {
	ID       string    `json:"id"`
	To       string    `json:"to"`
	Mode     string    `json:"mode"`
	Deadline time.Time `json:"deadline"`
	// Traceparent is the W3C trace context of the failover's trace.
	Traceparent string `json:"traceparent,omitempty"`
}

// Handoff is what a fenced holder publishes during a planned failover.
type Handoff struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	Epoch    uint64 `json:"epoch"`
	Position uint64 `json:"position"`
	// Traceparent is the request's.
	Traceparent string `json:"traceparent,omitempty"`
}

// LastPrimary is the last region promoted.
type LastPrimary struct {
	Region string `json:"region"`
	Epoch  uint64 `json:"epoch"`
	// Traceparent is the trace of the failover that promoted it.
	Traceparent string `json:"traceparent,omitempty"`
}

// keys names the coordination keys of one group.
type keys struct{ base, events string }

func keysFor(prefix, group string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return keys{base: prefix + "groups/" + group + "/", events: prefix + "events/" + group + "/"}
}

func (k keys) pos(region string) string { return k.base + "pos/" + region }
func (k keys) request() string          { return k.base + "request" }
func (k keys) handoff() string          { return k.base + "handoff" }
func (k keys) last() string             { return k.base + "last" }

// coordination is everything under a group's base key, read at once.
type coordination struct {
	reports map[string]Report
	request *Request
	handoff *Handoff
	last    *LastPrimary
}

func (k keys) read(ctx context.Context, cli *clientv3.Client) (coordination, error) {
	resp, err := cli.Get(ctx, k.base, clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		return coordination{}, err
	}
	co := coordination{reports: map[string]Report{}}
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		var err error
		switch {
		case strings.HasPrefix(key, k.base+"pos/"):
			var r Report
			if err = json.Unmarshal(kv.Value, &r); err == nil {
				co.reports[r.Region] = r
			}
		case key == k.request():
			co.request = new(Request)
			err = json.Unmarshal(kv.Value, co.request)
		case key == k.handoff():
			co.handoff = new(Handoff)
			err = json.Unmarshal(kv.Value, co.handoff)
		case key == k.last():
			co.last = new(LastPrimary)
			err = json.Unmarshal(kv.Value, co.last)
		}
		if err != nil {
			return coordination{}, fmt.Errorf("failover: key %s: %w", key, err)
		}
	}
	return co, nil
}

func put(ctx context.Context, cli *clientv3.Client, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, key, string(b))
	return err
}

// Events returns the failover events of group (every group if "") recorded
// at or after since, oldest first.
func Events(ctx context.Context, cli *clientv3.Client, prefix, group string, since time.Time) ([]Event, error) {
	from := keysFor(prefix, group).events
	if group == "" {
		from = strings.TrimSuffix(from, "/") // prefix/events/
	}
	resp, err := cli.Get(ctx, from, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("failover: events: %w", err)
	}
	var out []Event
	for _, kv := range resp.Kvs {
		var e Event
		if json.Unmarshal(kv.Value, &e) == nil && !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
