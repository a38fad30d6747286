package fault

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Load paths of a plan's streams (the drill history's Op.Path values, plus
// the fallback mode).
const (
	PathFrontDoor = "frontdoor"
	PathDNS       = "dns"
	// PathFallback goes through the front door and, when the connection is
	// refused or reset, resolves the host through the GSLB and goes to the
	// answered region directly (the second attempt is logged with path dns).
	PathFallback = "frontdoor+dns"
)

// Connection modes of a stream.
const (
	ConnPooled = "pooled"
	ConnFresh  = "fresh"
)

// Stream is one way the load reaches the platform. A plan's streams share
// one open-loop schedule, operation by operation in turn.
type Stream struct {
	Path string
	Conn string
}

func (s Stream) String() string { return s.Path + "/" + s.Conn }

// How the platform notices a fault: the first term of the theoretical floor.
const (
	// DetectProbes: health probes see the region stop answering (the front
	// door's or the GSLB's, by the load's path).
	DetectProbes = "probes"
	// DetectRefused: the region is dead and refuses connections. The front
	// door retries such a request on another region at once (it never
	// reached the dead one) and ejects it; DNS clients still wait for the
	// GSLB's probes and their cached answer's TTL.
	DetectRefused = "refused"
	// DetectPassive: probes keep passing (a brownout); only passive outlier
	// ejection and retries react, at the first failed request.
	DetectPassive = "passive"
	// DetectClient: the client notices (a refused connection) and falls
	// back at once.
	DetectClient = "client"
	// DetectData: only the data layer is hurt; its failover controllers
	// notice (lease, grace).
	DetectData = "data"
	// DetectNone: no client path crosses the fault.
	DetectNone = "none"
)

// Plan timing defaults and bounds.
const (
	DefaultFaultAt = 10 * time.Second
	// MinObserve is the shortest observation window a plan accepts; the
	// drill also needs it to hold the RTO's hold window (5 s by default).
	MinObserve = time.Second
	// DefaultMinObserve is the shortest default observation window.
	DefaultMinObserve = 30 * time.Second
)

// Plan is a drill's script: the load, the timed steps (steady state, fault
// at FaultAt, observation, optional failback), and what to undo afterwards.
// Times are from the start of the load.
type Plan struct {
	Scenario string
	Summary  string
	Streams  []Stream
	// Service is the data service the load writes and reads (orders).
	Service string
	// FaultAt is T, the first fault; Duration the length of the load;
	// FailbackAt the start of the failback (0: none).
	FaultAt, Duration, FailbackAt time.Duration
	Steps                         []Step
	// Cleanup runs after the load, before the readback (so that every
	// region can be read back), to leave the lab as it was; it is not part
	// of the measurement.
	Cleanup []Step
	// Floor inputs: how the fault is detected, the faulted region, and the
	// data service whose promotion is on the recovery path ("" none) with
	// how it is promoted (automatic, planned, forced).
	Detection   string
	Region      string
	Promotes    string
	PromoteMode string
	// Settings are the resolved parameters, for people.
	Settings []Setting
	// NeedsLab is set when a step needs a lab's control API.
	NeedsLab bool
	// Announce, when set, is printed at FaultAt (a manual drill's cue).
	Announce string
}

// Setting is one resolved parameter of a plan.
type Setting struct{ Name, Value string }

// Params are the knobs of the built-in scenarios; zero values mean the
// documented defaults.
type Params struct {
	// Region is the region faulted; default the preferred region (lowest
	// priority number), where the traffic goes.
	Region string
	// Peer is the other end of a partition; default the first other region.
	Peer string
	// Service is the data service the load writes, crashed or failed
	// over; default orders.
	Service string
	// To is the target of a planned failover; default the first region
	// that is not the service's primary.
	To string
	// POP is the front door POP killed; default the first.
	POP string
	// Share, Status and Delay shape a brownout; defaults 0.5, 503, 0s.
	Share, Status, Delay string
	// FaultAt is T; default 10s. Duration is the length of the load;
	// default FaultAt plus an observation window of max(30s, RTO objective
	// + 15s), twice that with a failback.
	FaultAt, Duration time.Duration
	// Failback adds the failback phase (restart, resume, heal, fail back)
	// halfway through the time after the fault.
	Failback bool
	// PromoteAfter is when, after the fault, a data-primary-loss drill on a
	// service with a manual failover policy forces the failover (playing
	// the operator); default the service's grace.
	PromoteAfter time.Duration
	// Primaries maps each primary-secondary service to its current primary
	// region (from the lab); missing services use the topology's.
	Primaries map[string]string
}

// Scenario is a named, documented plan.
type Scenario struct {
	Name    string
	Summary string
	// Description explains the plan and what to expect, for `drill list`
	// and `drill NAME -h`.
	Description string
	// Load names the load path.
	Load string
	// Params documents the parameters that matter, with their defaults.
	Params []string
	// NeedsLab is false for scenarios that run against real endpoints.
	NeedsLab bool
	build    func(p Params, t *topology.Topology) (Plan, error)
}

// Scenarios lists the built-in scenarios in catalog order.
func Scenarios() []Scenario { return append([]Scenario(nil), catalog...) }

// ScenarioNames lists the built-in scenario names.
func ScenarioNames() []string {
	out := make([]string, len(catalog))
	for i, s := range catalog {
		out[i] = s.Name
	}
	return out
}

// LookupScenario returns the built-in scenario called name.
func LookupScenario(name string) (Scenario, bool) {
	for _, s := range catalog {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Plan resolves the scenario's parameters against the topology (defaults
// filled in) and returns its plan. Every problem is reported at once.
func (s Scenario) Plan(p Params, t *topology.Topology) (Plan, error) {
	if t == nil {
		return Plan{}, errors.New("fault: a plan needs a topology")
	}
	if p.Service == "" {
		p.Service = "orders"
	}
	var errs []error
	check := func(name, typ, v string) {
		if v == "" {
			return
		}
		if msg := checkValue(typ, v, t); msg != "" {
			errs = append(errs, &topology.FieldError{Path: "--" + name, Msg: msg})
		}
	}
	check("region", TypeRegion, p.Region)
	check("peer", TypeRegion, p.Peer)
	check("to", TypeRegion, p.To)
	check("pop", TypePOP, p.POP)
	check("share", TypeShare, p.Share)
	check("status", TypeStatus, p.Status)
	check("delay", TypeDuration, p.Delay)
	if d, ok := t.DataService(p.Service); !ok {
		errs = append(errs, &topology.FieldError{Path: "--service", Msg: fmt.Sprintf("%q is not a data service of the topology", p.Service)})
	} else if d.Kind != topology.KindPrimarySecondary && (s.Name == "data-primary-loss" || s.Name == "planned-failover") {
		errs = append(errs, &topology.FieldError{Path: "--service", Msg: fmt.Sprintf("%q is a %s service; %s needs a primary-secondary one", p.Service, d.Kind, s.Name)})
	}
	if p.Region == "" {
		p.Region = t.Preferred()
	}
	if p.Peer == "" {
		p.Peer = other(t, p.Region)
	}
	if p.Peer == p.Region && len(errs) == 0 && s.Name == "partition" {
		errs = append(errs, &topology.FieldError{Path: "--peer", Msg: "the two ends of a partition must differ"})
	}
	if p.POP == "" && len(t.FrontDoor.POPs) > 0 {
		p.POP = t.FrontDoor.POPs[0]
	}
	pl, err := p.timing(t)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Plan{}, errors.Join(errs...)
	}
	pl.Scenario, pl.Summary, pl.Service = s.Name, s.Summary, p.Service
	built, err := s.build(p, t)
	if err != nil {
		return Plan{}, err
	}
	pl.Steps, pl.Cleanup, pl.Streams = built.Steps, built.Cleanup, built.Streams
	pl.Detection, pl.Region, pl.Promotes, pl.PromoteMode, pl.Announce = built.Detection, built.Region, built.Promotes, built.PromoteMode, built.Announce
	pl.Settings = append(pl.Settings, built.Settings...)
	if !p.Failback || pl.FailbackAt == 0 {
		// Drop failback steps; their repair is the cleanup.
		var keep []Step
		for _, st := range pl.Steps {
			if st.Phase != PhaseFailback {
				keep = append(keep, st)
			}
		}
		pl.Steps, pl.FailbackAt = keep, 0
	} else {
		for i := range pl.Steps {
			if pl.Steps[i].Phase == PhaseFailback {
				pl.Steps[i].At = pl.FailbackAt
			}
		}
		pl.Cleanup = nil
	}
	sort.SliceStable(pl.Steps, func(i, j int) bool { return pl.Steps[i].At < pl.Steps[j].At })
	for _, st := range pl.Steps {
		if st.At >= pl.Duration {
			return Plan{}, &topology.FieldError{Path: "--duration", Msg: fmt.Sprintf(
				"%s ends before the step at %s (%s); make it longer", pl.Duration, st.At, st)}
		}
	}
	pl.NeedsLab = needsLab(pl.Steps) || needsLab(pl.Cleanup)
	return pl, nil
}

func needsLab(steps []Step) bool {
	for _, s := range steps {
		if a, ok := Lookup(s.Action); !ok || a.NeedsLab {
			return true
		}
	}
	return false
}

// timing fills FaultAt, Duration and FailbackAt.
func (p Params) timing(t *topology.Topology) (Plan, error) {
	var pl Plan
	pl.FaultAt = p.FaultAt
	if pl.FaultAt == 0 {
		pl.FaultAt = DefaultFaultAt
	}
	if pl.FaultAt < time.Second {
		return pl, &topology.FieldError{Path: "--fault-at", Msg: fmt.Sprintf("%s leaves no steady state; use at least 1s", pl.FaultAt)}
	}
	phases := time.Duration(1)
	if p.Failback {
		phases = 2
	}
	observe := max(DefaultMinObserve, t.Objectives.RTO.D()+15*time.Second)
	pl.Duration = pl.FaultAt + phases*observe
	if p.Duration != 0 {
		pl.Duration = p.Duration
		observe = (pl.Duration - pl.FaultAt) / phases
	}
	if observe < MinObserve {
		return pl, &topology.FieldError{Path: "--duration", Msg: fmt.Sprintf(
			"%s leaves %s to observe after the fault at %s (per phase); want at least %s", pl.Duration, observe, pl.FaultAt, MinObserve)}
	}
	if p.Failback {
		pl.FailbackAt = pl.FaultAt + observe
	}
	pl.Settings = []Setting{{"fault at", pl.FaultAt.String()}, {"observe", observe.String()}, {"duration", pl.Duration.String()}}
	if p.Failback {
		pl.Settings = append(pl.Settings, Setting{"failback at", pl.FailbackAt.String()})
	}
	return pl, nil
}

// other returns the first region of t that is not r.
func other(t *topology.Topology, r string) string {
	for _, n := range t.RegionNames() {
		if n != r {
			return n
		}
	}
	return r
}

// primaryOf returns the current primary of service: from p.Primaries, else
// the topology's.
func (p Params) primaryOf(t *topology.Topology, service string) string {
	if r, ok := p.Primaries[service]; ok && r != "" {
		return r
	}
	if d, ok := t.DataService(service); ok {
		return d.Primary
	}
	return ""
}

// promotion reports the primary-secondary service whose promotion a loss
// of region brings about (the load's service first), and its mode.
func (p Params) promotion(t *topology.Topology, region string) (service, mode string) {
	if d, ok := t.DataService(p.Service); ok && d.Kind == topology.KindPrimarySecondary && p.primaryOf(t, d.Name) == region {
		if d.Failover.Policy == "automatic" {
			return d.Name, "automatic"
		}
		return d.Name, "manual"
	}
	return "", ""
}

var both = []Stream{{PathFrontDoor, ConnPooled}, {PathFrontDoor, ConnFresh}}

func step(at time.Duration, action string, args Args) Step {
	return Step{At: at, Action: action, Args: args}
}

// failback is the repair that starts the failback phase: a heal, whatever
// its action (a planned failover back is one).
func failback(action string, args Args) Step {
	return Step{Action: action, Args: args, Kind: KindHeal, Phase: PhaseFailback}
}

// regionFault is the plan of a fault on one region, repaired by heal.
func regionFault(fault, heal, detection string, streams []Stream) func(Params, *topology.Topology) (Plan, error) {
	return func(p Params, t *topology.Topology) (Plan, error) {
		args := Args{"region": p.Region}
		pl := Plan{
			Streams:   streams,
			Steps:     []Step{step(p.faultAt(), fault, args), failback(heal, args)},
			Cleanup:   []Step{{Action: heal, Args: args}},
			Detection: detection,
			Region:    p.Region,
			Settings:  []Setting{{"region", p.Region}},
		}
		if detection != DetectPassive {
			pl.Promotes, pl.PromoteMode = p.promotion(t, p.Region)
		}
		return pl, nil
	}
}

func (p Params) faultAt() time.Duration {
	if p.FaultAt == 0 {
		return DefaultFaultAt
	}
	return p.FaultAt
}

// catalog is the list of built-in scenarios.
var catalog = []Scenario{
	{
		Name:    "region-outage",
		Summary: "a whole region dies (SIGKILL of its process)",
		Description: `Steady load through the front door, then at T the region's process is
killed: its stamp, its data replicas and its witness member vanish at once.
The front door's probes and passive ejection move traffic to the other
regions; writes of a primary-secondary service whose primary was there fail
until its failover group promotes another region (automatic policy: lease +
grace). Failback (--failback): the region is restarted and rejoins.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--service (default: orders)"},
		NeedsLab: true,
		build:    regionFault("kill-region", "restart-region", DetectRefused, both),
	},
	{
		Name:    "region-hang",
		Summary: "a region hangs (SIGSTOP): connections are accepted, nothing answers",
		Description: `Like region-outage, but the process is frozen rather than killed: the
kernel still accepts connections, so clients and probes wait for their
timeouts instead of being refused. This is the harder case for detection.
Failback: the region is resumed (SIGCONT); an old primary finds its lease
gone, fences itself and rejoins.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--service (default: orders)"},
		NeedsLab: true,
		build:    regionFault("freeze-region", "resume-region", DetectProbes, both),
	},
	{
		Name:    "region-brownout",
		Summary: "a share of a region's responses become errors or slow",
		Description: `The region's stamp answers a share of its requests with an error status
(or delays them) while /health/stamp keeps passing, so active probes never
see it: only passive outlier ejection and the front door's retries can
protect clients. Failback: the brownout ends.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--share (default 0.5)", "--status (default 503; 0 only delays)", "--delay (default 0s)"},
		NeedsLab: true,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			args := Args{"region": p.Region, "share": or(p.Share, "0.5"), "status": or(p.Status, "503"), "delay": or(p.Delay, "0s")}
			heal := Args{"region": p.Region}
			return Plan{
				Streams:   both,
				Steps:     []Step{step(p.faultAt(), "brownout", args), failback("end-brownout", heal)},
				Cleanup:   []Step{{Action: "end-brownout", Args: heal}},
				Detection: DetectPassive,
				Region:    p.Region,
				Settings:  []Setting{{"region", p.Region}, {"share", args["share"]}, {"status", args["status"]}, {"delay", args["delay"]}},
			}, nil
		},
	},
	{
		Name:    "partition",
		Summary: "the WAN link between two regions is cut (both directions)",
		Description: `Replication and write forwarding between the two regions stop; each still
reaches the front door and the witness. A correct platform keeps serving:
the primary keeps its lease (it still reaches the witness), so nothing is
promoted, and writes that reach the other region through the front door are
its to route. Watch the replication lag, stale reads and, with a bad
design, split brain. Failback: the link is healed.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--peer (default: the first other region)"},
		NeedsLab: true,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			args := Args{"a": p.Region, "b": p.Peer}
			return Plan{
				Streams:   both,
				Steps:     []Step{step(p.faultAt(), "cut-link", args), failback("heal-link", args)},
				Cleanup:   []Step{{Action: "heal-link", Args: args}},
				Detection: DetectNone,
				Region:    p.Region,
				Settings:  []Setting{{"link", p.Region + "<->" + p.Peer}},
			}, nil
		},
	},
	{
		Name:    "isolate-region",
		Summary: "every WAN link of a region is cut: it is alive but alone",
		Description: `The region keeps running but cannot reach (or be reached by) the front
door, the other regions or the witness. The front door's probes fail;
a primary there loses its witness lease, fences itself before the lease
ends, and another region is promoted after the grace period: the split-brain
test. Clients that reach the region directly (not through a WAN link) still
can. Failback: the links are healed and the old primary rejoins.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--service (default: orders)"},
		NeedsLab: true,
		build:    regionFault("isolate-region", "reconnect-region", DetectProbes, both),
	},
	{
		Name:    "data-primary-loss",
		Summary: "only the data engine of a service's primary dies; its region stays up",
		Description: `The stamp keeps answering, so routing does not move: writes fail (503) until
the service's failover group promotes a secondary. With async replication the
writes the primary acknowledged but had not replicated are lost: the drill
counts them in its ledger and checks them against the position gap the
failover reports. With a manual failover policy the drill plays the operator
and forces the failover --promote-after the fault. Failback (--failback): the
old primary's region is restarted and rejoins, discarding its divergent tail.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--service (default: orders)", "--promote-after (manual policy only; default: the grace)"},
		NeedsLab: true,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			d, _ := t.DataService(p.Service)
			primary := p.primaryOf(t, p.Service)
			pl := Plan{
				Streams:     both,
				Steps:       []Step{step(p.faultAt(), "crash-data", Args{"service": p.Service})},
				Detection:   DetectData,
				Region:      primary,
				Promotes:    p.Service,
				PromoteMode: "automatic",
				Settings:    []Setting{{"service", p.Service}, {"primary", primary}, {"replication", d.Replication}, {"failover policy", d.Failover.Policy}},
			}
			if d.Failover.Policy != "automatic" {
				after := p.PromoteAfter
				if after == 0 {
					after = d.Failover.Grace.D()
				}
				pl.PromoteMode = "forced"
				pl.Steps = append(pl.Steps, Step{At: p.faultAt() + after, Action: "failover", Kind: KindNote,
					Args: Args{"service": p.Service, "mode": ModeForced}})
				pl.Settings = append(pl.Settings, Setting{"forced failover at", (p.faultAt() + after).String()})
			}
			if primary != "" {
				pl.Steps = append(pl.Steps, failback("restart-region", Args{"region": primary}))
				pl.Cleanup = []Step{{Action: "restart-region", Args: Args{"region": primary}}}
			}
			return pl, nil
		},
	},
	{
		Name:    "planned-failover",
		Summary: "a data service is failed over on purpose: fence, catch up, promote",
		Description: `At T the service's primary role moves to another region with a planned
failover: the old primary stops taking writes, the target catches up to its
final position, then takes the lease and is promoted. Nothing may be lost;
writes pause for the handover. Failback (--failback): the service is failed
back to its original primary the same way; without it, the cleanup does that.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--service (default: orders)", "--to (default: the first region that is not the primary)"},
		NeedsLab: true,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			from := p.primaryOf(t, p.Service)
			to := p.To
			if to == "" {
				to = other(t, from)
			}
			if to == from {
				return Plan{}, &topology.FieldError{Path: "--to", Msg: fmt.Sprintf("%s is already the primary of %s", to, p.Service)}
			}
			back := Args{"service": p.Service, "to": from, "mode": ModePlanned}
			return Plan{
				Streams:     both,
				Steps:       []Step{step(p.faultAt(), "failover", Args{"service": p.Service, "to": to, "mode": ModePlanned}), failback("failover", back)},
				Cleanup:     []Step{{Action: "failover", Args: back}},
				Detection:   DetectNone,
				Region:      from,
				Promotes:    p.Service,
				PromoteMode: ModePlanned,
				Settings:    []Setting{{"service", p.Service}, {"from", from}, {"to", to}},
			}, nil
		},
	},
	{
		Name:    "dns-failover",
		Summary: "a region dies while clients reach it through health-checked DNS",
		Description: `Clients resolve the application's host through the GSLB (caching each
answer for its TTL, like a stub resolver) and connect to the answered region
directly. At T the region is killed; clients fail until the GSLB's probes
mark it down and their cached answers expire: expect an RTO of about the
GSLB's detection plus the TTL (the last client to refresh its answer before
the change keeps it one TTL). Failback: the region is restarted.`,
		Load:     "DNS through the GSLB with a TTL-respecting cache, pooled and fresh connections",
		Params:   []string{"--region (default: the preferred region)", "--service (default: orders)"},
		NeedsLab: true,
		build:    regionFault("kill-region", "restart-region", DetectRefused, []Stream{{PathDNS, ConnPooled}, {PathDNS, ConnFresh}}),
	},
	{
		Name:    "frontdoor-outage",
		Summary: "a front door POP dies; clients fall back to DNS",
		Description: `At T the POP's listeners close. Clients whose connection to the front door
is refused or reset resolve the host through the GSLB and go to the answered
region directly, so a well-built client sees no failed request. Failback:
the POP is restarted and clients return to it.`,
		Load:     "front door with DNS fallback, pooled and fresh connections",
		Params:   []string{"--pop (default: the first POP)"},
		NeedsLab: true,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			args := Args{"pop": p.POP}
			return Plan{
				Streams:   []Stream{{PathFallback, ConnPooled}, {PathFallback, ConnFresh}},
				Steps:     []Step{step(p.faultAt(), "kill-pop", args), failback("restart-pop", args)},
				Cleanup:   []Step{{Action: "restart-pop", Args: args}},
				Detection: DetectClient,
				Region:    p.POP,
				Settings:  []Setting{{"pop", p.POP}},
			}, nil
		},
	},
	{
		Name:    "manual",
		Summary: "you inject the fault at T (e.g. on real endpoints); the drill measures",
		Description: `For real deployments measured from outside (--target URL): the drill runs
its load, prints a cue at T, and records T as the fault; you inject the
fault by your own means at that moment. Everything else (RTO, failed
requests, verdict) is measured as for the other scenarios. Lost writes are
measured when the readback reaches every region.`,
		Load:     "front door, pooled and fresh connections",
		Params:   []string{"--region (recorded as the faulted region; default: the preferred region)"},
		NeedsLab: false,
		build: func(p Params, t *topology.Topology) (Plan, error) {
			return Plan{
				Streams:   both,
				Steps:     []Step{step(p.faultAt(), "mark", Args{"name": "manual fault", "region": p.Region})},
				Detection: DetectProbes,
				Region:    p.Region,
				Announce:  "inject the fault now",
				Settings:  []Setting{{"region", p.Region}},
			}, nil
		},
	},
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Describe writes the plan for people: load, timeline, cleanup.
func (pl Plan) Describe() string {
	var b strings.Builder
	width := 9
	for _, s := range pl.Settings {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(&b, "%-*s %s: %s\n", width, "scenario", pl.Scenario, pl.Summary)
	streams := make([]string, len(pl.Streams))
	for i, s := range pl.Streams {
		streams[i] = s.String()
	}
	fmt.Fprintf(&b, "%-*s %s (service %s)\n", width, "load", strings.Join(streams, ", "), pl.Service)
	for _, s := range pl.Settings {
		fmt.Fprintf(&b, "%-*s %s\n", width, s.Name, s.Value)
	}
	fmt.Fprintf(&b, "timeline\n")
	fmt.Fprintf(&b, "  %8s  steady state\n", "0s")
	for _, s := range pl.Steps {
		phase := ""
		if s.Phase != "" {
			phase = " (starts the " + s.Phase + ")"
		}
		fmt.Fprintf(&b, "  %8s  %s: %s%s\n", s.At, s.EventKind(), s, phase)
	}
	fmt.Fprintf(&b, "  %8s  load ends\n", pl.Duration)
	for _, s := range pl.Cleanup {
		fmt.Fprintf(&b, "  %8s  repair (not measured): %s\n", "then", s)
	}
	fmt.Fprintf(&b, "  %8s  wait for replication to converge; read every write back from every region\n", "then")
	return b.String()
}
