package drill

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the version of the history format written in Run.Version.
const Version = 1

// Record types: the "type" field of every history line.
const (
	TypeRun      = "run"
	TypeOp       = "op"
	TypeEvent    = "event"
	TypeReadback = "readback"
	TypeEnd      = "end"
)

// Operation kinds (Op.Op).
const (
	OpRead  = "read"
	OpWrite = "write"
)

// Outcomes of an operation (Op.Outcome).
const (
	// OK: the service answered as specified (2xx; a read of an absent key
	// answered 404 is OK with Found=false). A write with outcome OK is
	// acknowledged.
	OK = "ok"
	// Fail: the service answered with an error, or the connection was
	// refused or reset before a response: the client knows the operation
	// did not succeed (though a failed write may still have been applied).
	Fail = "fail"
	// Unknown: no answer within the client's timeout; the write may or may
	// not have been applied.
	Unknown = "unknown"
)

// Paths an operation took (Op.Path).
const (
	PathFrontDoor = "frontdoor"
	PathDNS       = "dns"
	PathDirect    = "direct"
)

// Connection modes (Op.Conn).
const (
	ConnPooled = "pooled"
	ConnFresh  = "fresh"
)

// Event kinds (Event.Kind).
const (
	EventFault        = "fault"
	EventHeal         = "heal"
	EventFailoverStep = "failover-step"
	EventPhase        = "phase"
	EventNote         = "note"
)

// Failover steps (Event.Step), in the order the failover controller runs them.
const (
	StepDetect  = "detect"
	StepDecide  = "decide"
	StepFence   = "fence"
	StepPromote = "promote"
	StepRepoint = "repoint"
	StepRejoin  = "rejoin"
)

// Phase names. The analysis derives phases from the fault, recovery and
// failback instants (see Analyze); a "phase" event named PhaseFailback marks
// the start of the failback.
const (
	PhaseSteady   = "steady"
	PhaseFault    = "fault"
	PhaseRecovery = "recovery"
	PhaseFailback = "failback"
)

// Record is one line of a history: *Run, *Op, *Event, *Readback or *End.
type Record interface {
	recordType() string
	check() error
}

var (
	_ Record = (*Run)(nil)
	_ Record = (*Op)(nil)
	_ Record = (*Event)(nil)
	_ Record = (*Readback)(nil)
	_ Record = (*End)(nil)
)

// Run is the header: the first line of every history. Durations that are
// configuration are in seconds (float); instants on the run's clock are
// nanoseconds since the run's start (int64), as everywhere in the history.
type Run struct {
	Type string `json:"type"`
	// Version of the format; Version when written by this package.
	Version int `json:"version"`
	// Scenario is the drill's name, e.g. region-outage.
	Scenario string `json:"scenario"`
	// Topology, Model and Regions summarize the platform under test.
	Topology string   `json:"topology,omitempty"`
	Model    string   `json:"model,omitempty"`
	Regions  []string `json:"regions,omitempty"`
	// Services lists the data services written to, with their initial
	// primary; the analysis uses it to find the authoritative region of a
	// write (see Analyze).
	Services []Service `json:"services,omitempty"`
	// Target is what was measured: "lab:DIR" or a URL.
	Target string `json:"target,omitempty"`
	// Started is the wall-clock time of the run's t=0, for people; the
	// analysis uses only the monotonic offsets.
	Started time.Time `json:"started"`
	// Rate is the total open-loop rate in operations per second, over all
	// paths; operation seq is scheduled at LoadStart + seq/Rate.
	Rate float64 `json:"rate"`
	// LoadStart is the instant (ns) of seq 0 on the run's clock.
	LoadStart int64 `json:"load_start"`
	// ReadShare is the share of reads in the mix (0.7 = 70 %).
	ReadShare float64 `json:"read_share,omitempty"`
	// TimeoutSeconds is the client timeout after which an operation is
	// recorded as unknown.
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	// Objectives are the recovery objectives the run is judged against.
	Objectives Objectives `json:"objectives"`
	// Floor lists the terms of the theoretical floor of the RTO (detection,
	// DNS TTL, promotion, reconnection), computed from the configuration by
	// the generator (see FloorFor), so the analysis stays pure.
	Floor []FloorTerm `json:"floor,omitempty"`
	// GeneratorBehind is set when the generator knew at start that it could
	// not keep the schedule (End.GeneratorBehind reports it at the end).
	GeneratorBehind bool `json:"generator_behind,omitempty"`
}

// Service is a data service the drill writes to.
type Service struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`                  // primary-secondary, multi-write, cache
	Replication string `json:"replication,omitempty"` // async or sync
	Primary     string `json:"primary,omitempty"`     // initial primary region
}

// Objectives are the recovery objectives, in the units of summary.json.
type Objectives struct {
	// RTOSeconds is the maximum acceptable recovery time.
	RTOSeconds float64 `json:"rto_seconds"`
	// RPOSeconds is the maximum acceptable data-loss span; 0 means no
	// acknowledged write may be lost.
	RPOSeconds float64 `json:"rpo_seconds"`
	// AvailabilityPercent is the availability target, e.g. 99.95; 0 means
	// none.
	AvailabilityPercent float64 `json:"availability_percent"`
}

// FloorTerm is one term of the theoretical RTO floor.
type FloorTerm struct {
	Name    string  `json:"name"`              // detection, ttl, promotion, reconnection
	Seconds float64 `json:"seconds"`           // its value
	Formula string  `json:"formula,omitempty"` // how it was computed, for the report
	// Group names a chain of terms that happen one after the other
	// (FloorRouting, FloorData); different chains run at the same time
	// from the fault, so the floor is the longest chain. Terms without a
	// group form one chain.
	Group string `json:"group,omitempty"`
}

// Floor groups: clients finding a region that answers (detection, TTL),
// and the data layer promoting a new primary.
const (
	FloorRouting = "routing"
	FloorData    = "data"
)

// FloorSeconds is the floor of terms: the sum of each group's terms, and
// the largest of those sums.
func FloorSeconds(terms []FloorTerm) float64 {
	sums := map[string]float64{}
	for _, t := range terms {
		sums[t.Group] += t.Seconds
	}
	var f float64
	for _, s := range sums {
		f = max(f, s)
	}
	return f
}

// Op is one attempt of one client operation. Times are nanoseconds since
// the run's start on one monotonic clock.
//
// An operation normally has one record (Attempt 1). A generator that
// retries on its own writes one record per attempt with the same Seq; the
// analysis judges the operation by its last attempt and times it from its
// Intended instant, so client retries are never hidden.
type Op struct {
	Type string `json:"type"`
	// Seq numbers the operations of the run from 0, over all paths; it is
	// unique per operation and fixes its intended instant.
	Seq int64 `json:"seq"`
	// Op is read or write.
	Op string `json:"op"`
	// Key: for a write, the unique order key chosen by the client (so that
	// it is known even when the outcome is unknown, and can be read back);
	// for a read, the key read.
	Key string `json:"key,omitempty"`
	// ID is the server-assigned id of a created order, when known.
	ID string `json:"id,omitempty"`
	// Service is the data service the operation addresses (e.g. orders).
	Service string `json:"service,omitempty"`
	// Intended is LoadStart + Seq/Rate: when the open-loop schedule wanted
	// the operation sent, whatever happened to earlier ones.
	Intended int64 `json:"intended"`
	// Sent is when the request was handed to the HTTP client; Done when its
	// outcome was known (response, error or timeout). Done is 0 when the
	// run ended first (the outcome is then unknown).
	Sent int64 `json:"sent"`
	Done int64 `json:"done"`
	// Outcome is ok, fail or unknown.
	Outcome string `json:"outcome"`
	// Status is the HTTP status, 0 without a response.
	Status int `json:"status,omitempty"`
	// Region served the response (X-Geostamp-Region); empty without one.
	Region string `json:"region,omitempty"`
	// DataRegion is the region whose data service acknowledged a write,
	// when the response says so; the analysis uses Region otherwise.
	DataRegion string `json:"data_region,omitempty"`
	// Position is the data service's replication position of an
	// acknowledged write (e.g. JetStream sequence), for cross-checks.
	Position uint64 `json:"position,omitempty"`
	// Attempt counts the client's attempts from 1 (0 is read as 1).
	Attempt int `json:"attempt,omitempty"`
	// Path is frontdoor, dns or direct; Conn is pooled or fresh.
	Path string `json:"path,omitempty"`
	Conn string `json:"conn,omitempty"`
	// Addr is the address dialed (useful for the dns path).
	Addr string `json:"addr,omitempty"`
	// Found, for a read answered OK, says whether the key existed. Write
	// keys are unique, so a read that does not find the key of a write
	// acknowledged before it was sent returned older data: a stale read.
	Found *bool `json:"found,omitempty"`
	// Error is the client-side error or a short response excerpt.
	Error string `json:"error,omitempty"`
}

// Event is something that happened to the platform: a fault injected or
// healed, a failover step, a phase of the plan, a note. T is in
// nanoseconds since the run's start.
type Event struct {
	Type string `json:"type"`
	T    int64  `json:"t"`
	// Kind is fault, heal, failover-step, phase or note.
	Kind string `json:"kind"`
	// Name names the fault (e.g. kill-region) or the heal.
	Name string `json:"name,omitempty"`
	// Step is the failover step: detect, decide, fence, promote, repoint,
	// rejoin (Kind failover-step).
	Step string `json:"step,omitempty"`
	// Phase names the plan's phase that starts (Kind phase).
	Phase string `json:"phase,omitempty"`
	// Region is the region concerned: the faulted region, the fenced old
	// primary (fence), the promoted new primary (promote).
	Region string `json:"region,omitempty"`
	// Service is the data service of a failover step; empty means all.
	Service string `json:"service,omitempty"`
	// Epoch is the fencing epoch of a failover step.
	Epoch int64 `json:"epoch,omitempty"`
	// Gap, on a promote step, is the number of writes the old primary had
	// and the new one had not (from replication positions); the analysis
	// reports it beside the ledger's lost writes.
	Gap *int64 `json:"gap,omitempty"`
	// Discarded, on a rejoin step, is the number of writes the old primary
	// dropped because the new primary's history lacks them: the exact loss
	// by positions, acknowledged or not.
	Discarded *int64 `json:"discarded,omitempty"`
	// Detail is free text for people.
	Detail string `json:"detail,omitempty"`
}

// Readback is the result of reading one key back from one region after the
// run has converged. A readback that got no answer has Error set and
// counts neither as found nor as missing.
type Readback struct {
	Type    string `json:"type"`
	T       int64  `json:"t"`
	Region  string `json:"region"`
	Key     string `json:"key"`
	Service string `json:"service,omitempty"`
	Found   bool   `json:"found"`
	Error   string `json:"error,omitempty"`
}

// End is the generator's last line: what it scheduled and whether it kept
// the schedule.
type End struct {
	Type string `json:"type"`
	T    int64  `json:"t"`
	// Scheduled is the number of operations the schedule held (seq 0 to
	// Scheduled−1); each must have a record.
	Scheduled int64 `json:"scheduled"`
	// GeneratorBehind reports that the generator could not keep its
	// schedule (its own measure); MaxLag is its largest send lag in ns.
	GeneratorBehind bool   `json:"generator_behind,omitempty"`
	MaxLag          int64  `json:"max_lag,omitempty"`
	Detail          string `json:"detail,omitempty"`
}

func (*Run) recordType() string      { return TypeRun }
func (*Op) recordType() string       { return TypeOp }
func (*Event) recordType() string    { return TypeEvent }
func (*Readback) recordType() string { return TypeReadback }
func (*End) recordType() string      { return TypeEnd }

// MarshalJSON writes the record with its type.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run
	p := plain(r)
	p.Type = TypeRun
	return json.Marshal(p)
}

// MarshalJSON writes the record with its type.
func (o Op) MarshalJSON() ([]byte, error) {
	type plain Op
	p := plain(o)
	p.Type = TypeOp
	return json.Marshal(p)
}

// MarshalJSON writes the record with its type.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	p := plain(e)
	p.Type = TypeEvent
	return json.Marshal(p)
}

// MarshalJSON writes the record with its type.
func (r Readback) MarshalJSON() ([]byte, error) {
	type plain Readback
	p := plain(r)
	p.Type = TypeReadback
	return json.Marshal(p)
}

// MarshalJSON writes the record with its type.
func (e End) MarshalJSON() ([]byte, error) {
	type plain End
	p := plain(e)
	p.Type = TypeEnd
	return json.Marshal(p)
}

func (r *Run) check() error {
	var errs []error
	if r.Version < 1 || r.Version > Version {
		errs = append(errs, fmt.Errorf("version: want 1..%d, got %d", Version, r.Version))
	}
	if r.Scenario == "" {
		errs = append(errs, errors.New("scenario: required"))
	}
	if r.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate: must not be negative, got %g", r.Rate))
	}
	return errors.Join(errs...)
}

func (o *Op) check() error {
	var errs []error
	if o.Seq < 0 {
		errs = append(errs, fmt.Errorf("seq: must not be negative, got %d", o.Seq))
	}
	if o.Op != OpRead && o.Op != OpWrite {
		errs = append(errs, fmt.Errorf("op: want read or write, got %q", o.Op))
	}
	if o.Op == OpWrite && o.Key == "" {
		errs = append(errs, errors.New("key: required on a write"))
	}
	switch o.Outcome {
	case OK, Fail, Unknown:
	default:
		errs = append(errs, fmt.Errorf("outcome: want ok, fail or unknown, got %q", o.Outcome))
	}
	if o.Outcome != Unknown && o.Done == 0 {
		errs = append(errs, fmt.Errorf("done: required when the outcome is %s", o.Outcome))
	}
	if o.Done != 0 && o.Done < o.Sent {
		errs = append(errs, fmt.Errorf("done: %d is before sent %d", o.Done, o.Sent))
	}
	if o.Attempt < 0 {
		errs = append(errs, fmt.Errorf("attempt: must not be negative, got %d", o.Attempt))
	}
	switch o.Path {
	case "", PathFrontDoor, PathDNS, PathDirect:
	default:
		errs = append(errs, fmt.Errorf("path: want frontdoor, dns or direct, got %q", o.Path))
	}
	switch o.Conn {
	case "", ConnPooled, ConnFresh:
	default:
		errs = append(errs, fmt.Errorf("conn: want pooled or fresh, got %q", o.Conn))
	}
	return errors.Join(errs...)
}

func (e *Event) check() error {
	var errs []error
	switch e.Kind {
	case EventFault, EventHeal, EventNote:
	case EventFailoverStep:
		switch e.Step {
		case StepDetect, StepDecide, StepFence, StepPromote, StepRepoint, StepRejoin:
		default:
			errs = append(errs, fmt.Errorf("step: want detect, decide, fence, promote, repoint or rejoin, got %q", e.Step))
		}
	case EventPhase:
		if e.Phase == "" {
			errs = append(errs, errors.New("phase: required on a phase event"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind: want fault, heal, failover-step, phase or note, got %q", e.Kind))
	}
	if e.T < 0 {
		errs = append(errs, fmt.Errorf("t: must not be negative, got %d", e.T))
	}
	return errors.Join(errs...)
}

func (r *Readback) check() error {
	var errs []error
	if r.Region == "" {
		errs = append(errs, errors.New("region: required"))
	}
	if r.Key == "" {
		errs = append(errs, errors.New("key: required"))
	}
	return errors.Join(errs...)
}

func (e *End) check() error {
	if e.Scheduled < 0 {
		return fmt.Errorf("scheduled: must not be negative, got %d", e.Scheduled)
	}
	return nil
}

// History is a whole run in memory: the input of Analyze and WriteReport.
type History struct {
	Run       Run
	Ops       []Op
	Events    []Event
	Readbacks []Readback
	// End is nil when the run did not finish (no end record).
	End *End
	// Truncated reports that the last line was cut off and dropped.
	Truncated bool
}

// Add appends a record to h. It does not check it.
func (h *History) Add(r Record) {
	switch r := r.(type) {
	case *Run:
		h.Run = *r
	case *Op:
		h.Ops = append(h.Ops, *r)
	case *Event:
		h.Events = append(h.Events, *r)
	case *Readback:
		h.Readbacks = append(h.Readbacks, *r)
	case *End:
		e := *r
		h.End = &e
	}
}

func (o *Op) attempt() int { return max(o.Attempt, 1) }
