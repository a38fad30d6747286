package fault

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geostamp/geostamp/internal/topology"
)

// A custom scenario is a YAML file:
//
//	name: hang-then-kill             # required, a DNS label
//	description: freeze westeurope, then kill it
//	service: orders                  # data service the load writes; default orders
//	load:
//	  paths: [frontdoor]             # frontdoor (default), dns, frontdoor+dns
//	  conns: [pooled, fresh]         # default both
//	duration: 60s                    # required: length of the load
//	steps:                           # at least one, in time order
//	  - {at: 10s, action: freeze-region, args: {region: westeurope}}
//	  - {at: 20s, action: kill-region, args: {region: westeurope}}
//	  - {at: 40s, action: restart-region, args: {region: westeurope}, phase: failback}
//	cleanup:                         # after the load, before the readback; optional
//	  - {action: resume-region, args: {region: westeurope}}
//
// A step's kind (fault or heal) defaults to its action's; the first fault is
// T, the instant the RTO is measured from; phase: failback marks the start
// of the failback. `geostamp drill list` names every action and its
// arguments.

// LoadCustom reads and validates the custom scenario at path against t.
func LoadCustom(path string, t *topology.Topology, primaries map[string]string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, fmt.Errorf("fault: %w", err)
	}
	pl, err := ParseCustom(b, t, primaries)
	if err != nil {
		return Plan{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return pl, nil
}

// ParseCustom decodes and validates a custom scenario. Every problem is
// reported at once, each as a *topology.FieldError with its field path
// (e.g. steps[1].args.region). primaries maps services to their current
// primary region (missing: the topology's).
func ParseCustom(b []byte, t *topology.Topology, primaries map[string]string) (Plan, error) {
	if t == nil {
		return Plan{}, errors.New("fault: a custom scenario needs a topology")
	}
	root, err := topology.ParseDocument(b, "scenario")
	if err != nil {
		return Plan{}, err
	}
	d := &decoder{}
	pl := d.plan(root, t)
	if err := d.Err(); err != nil {
		return Plan{}, err
	}
	pl.derive(t, Params{Service: pl.Service, Primaries: primaries})
	return pl, nil
}

// decoder walks a scenario's YAML nodes and collects problems with their
// paths.
type decoder struct{ topology.Walker }

func (d *decoder) plan(n *yaml.Node, t *topology.Topology) Plan {
	f := d.Fields("", n, "name", "description", "service", "load", "duration", "steps", "cleanup")
	var pl Plan
	if v, ok := d.Scalar("name", f["name"]); !ok {
		if f["name"] == nil {
			d.Add("name", "required")
		}
	} else if !topology.IsLabel(v) {
		d.Add("name", "%q must be a lower-case DNS label (a-z, 0-9, '-')", v)
	} else if _, builtin := LookupScenario(v); builtin {
		d.Add("name", "%q is a built-in scenario; choose another name", v)
	} else {
		pl.Scenario = v
	}
	pl.Summary, _ = d.Scalar("description", f["description"])
	pl.Service = "orders"
	if v, ok := d.Scalar("service", f["service"]); ok {
		if msg := checkValue(TypeService, v, t); msg != "" {
			d.Add("service", "%s", msg)
		}
		pl.Service = v
	}
	pl.Streams = d.load(f["load"])
	if f["duration"] == nil {
		d.Add("duration", "required: the length of the load, e.g. 60s")
	} else if v, ok := d.Duration("duration", f["duration"]); ok {
		dur := v.D()
		if dur < 2*MinObserve {
			d.Add("duration", "%s is too short; use at least %s", dur, 2*MinObserve)
		}
		pl.Duration = dur
	}
	steps := d.List("steps", f["steps"])
	if f["steps"] == nil || f["steps"].Kind == yaml.SequenceNode && len(steps) == 0 {
		d.Add("steps", "at least one step is required")
	}
	var prev time.Duration
	for i, sn := range steps {
		at := fmt.Sprintf("steps[%d]", i)
		s, ok := d.step(at, sn, t, true)
		if !ok {
			continue
		}
		if f := sn; f.Kind == yaml.MappingNode && !hasKey(f, "at") {
			continue // reported as required
		}
		if s.At < prev {
			d.Add(at+".at", "%s is before the previous step (%s): list steps in time order", s.At, prev)
		}
		if pl.Duration > 0 && s.At >= pl.Duration {
			d.Add(at+".at", "%s is not within the load's duration (%s)", s.At, pl.Duration)
		}
		prev = max(prev, s.At)
		pl.Steps = append(pl.Steps, s)
	}
	for i, sn := range d.List("cleanup", f["cleanup"]) {
		if s, ok := d.step(fmt.Sprintf("cleanup[%d]", i), sn, t, false); ok {
			pl.Cleanup = append(pl.Cleanup, s)
		}
	}
	return pl
}

func (d *decoder) load(n *yaml.Node) []Stream {
	paths, conns := []string{PathFrontDoor}, []string{ConnPooled, ConnFresh}
	if n != nil {
		f := d.Fields("load", n, "paths", "conns")
		read := func(key string, allowed []string, into *[]string) {
			items := d.List("load."+key, f[key])
			if f[key] == nil {
				return
			}
			if len(items) == 0 {
				d.Add("load."+key, "at least one of %s", strings.Join(allowed, ", "))
				return
			}
			var vals []string
			for i, it := range items {
				at := fmt.Sprintf("load.%s[%d]", key, i)
				v, ok := d.Scalar(at, it)
				if !ok {
					continue
				}
				if !slices.Contains(allowed, v) {
					d.Add(at, "%q must be one of %s", v, strings.Join(allowed, ", "))
					continue
				}
				if slices.Contains(vals, v) {
					d.Add(at, "%q is listed twice", v)
					continue
				}
				vals = append(vals, v)
			}
			if len(vals) > 0 {
				*into = vals
			}
		}
		read("paths", []string{PathFrontDoor, PathDNS, PathFallback}, &paths)
		read("conns", []string{ConnPooled, ConnFresh}, &conns)
	}
	var out []Stream
	for _, p := range paths {
		for _, c := range conns {
			out = append(out, Stream{p, c})
		}
	}
	return out
}

// step decodes one step; timed steps need "at", cleanup steps may not
// have it.
func (d *decoder) step(at string, n *yaml.Node, t *topology.Topology, timed bool) (Step, bool) {
	known := []string{"action", "args", "kind"}
	if timed {
		known = append(known, "at", "phase")
	}
	before := len(d.Errs)
	f := d.Fields(at, n, known...)
	var s Step
	if timed {
		if f["at"] == nil {
			d.Add(at+".at", "required: when the step runs, from the start of the load (e.g. 10s)")
		} else {
			v, _ := d.Duration(at+".at", f["at"])
			s.At = v.D()
		}
	}
	action, ok := d.Scalar(at+".action", f["action"])
	a, known2 := Lookup(action)
	switch {
	case f["action"] == nil:
		d.Add(at+".action", "required (actions: %s)", strings.Join(ActionNames(), ", "))
	case ok && !known2:
		d.Add(at+".action", "unknown action %q%s (actions: %s)", action, closest(action, ActionNames()), strings.Join(ActionNames(), ", "))
	}
	s.Action = action
	s.Args = Args{}
	if an := f["args"]; an != nil {
		if an.Kind != yaml.MappingNode {
			d.Add(at+".args", "want a mapping such as {region: westeurope} (line %d)", an.Line)
		} else {
			for i := 0; i+1 < len(an.Content); i += 2 {
				k := an.Content[i].Value
				if v, ok := d.Scalar(at+".args."+k, an.Content[i+1]); ok {
					s.Args[k] = v
				}
			}
		}
	}
	if known2 {
		d.Errs = append(d.Errs, a.Check(at+".args", s.Args, t)...)
	}
	if v, ok := d.Scalar(at+".kind", f["kind"]); ok {
		if v != KindFault && v != KindHeal && v != KindNote {
			d.Add(at+".kind", "%q must be one of fault, heal, note", v)
		}
		s.Kind = v
	}
	if v, ok := d.Scalar(at+".phase", f["phase"]); ok {
		if v != PhaseFailback {
			d.Add(at+".phase", "%q must be failback (the only phase a step starts)", v)
		}
		s.Phase = v
	}
	// A step whose "at" could not be read is not placed on the timeline.
	atBad := false
	for _, e := range d.Errs[before:] {
		var fe *topology.FieldError
		if errors.As(e, &fe) && (fe.Path == at+".at" || fe.Path == at) {
			atBad = true
		}
	}
	return s, !atBad
}

func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// closest suggests the name nearest to v, when one is within two edits.
func closest(v string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(v, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// derive fills the fields of a custom plan that follow from its steps:
// T, the failback start, the floor inputs, whether it needs a lab.
func (pl *Plan) derive(t *topology.Topology, p Params) {
	p.Service = pl.Service
	for _, s := range pl.Steps {
		if s.Phase == PhaseFailback && pl.FailbackAt == 0 {
			pl.FailbackAt = s.At
		}
		if s.EventKind() != KindFault || pl.Detection != "" {
			continue
		}
		pl.FaultAt = s.At
		region := s.Args["region"]
		pl.Region = region
		switch s.Action {
		case "kill-region":
			pl.Detection = DetectRefused
			pl.Promotes, pl.PromoteMode = p.promotion(t, region)
		case "freeze-region", "isolate-region", "drain-region", "mark":
			pl.Detection = DetectProbes
			pl.Promotes, pl.PromoteMode = p.promotion(t, region)
		case "brownout":
			pl.Detection = DetectPassive
		case "kill-pop":
			pl.Detection, pl.Region = DetectClient, s.Args["pop"]
		case "crash-data":
			svc := or(s.Args["service"], "orders")
			pl.Detection, pl.Promotes, pl.PromoteMode, pl.Region = DetectData, svc, "automatic", p.primaryOf(t, svc)
		case "failover":
			svc := or(s.Args["service"], "orders")
			pl.Detection, pl.Promotes, pl.PromoteMode, pl.Region = DetectNone, svc, or(s.Args["mode"], ModePlanned), p.primaryOf(t, svc)
		default:
			pl.Detection = DetectNone
		}
	}
	if pl.Detection == "" {
		pl.Detection = DetectNone
	}
	pl.NeedsLab = needsLab(pl.Steps) || needsLab(pl.Cleanup)
	pl.Settings = []Setting{{"duration", pl.Duration.String()}}
	if pl.FaultAt > 0 || len(pl.Steps) > 0 {
		pl.Settings = append(pl.Settings, Setting{"fault at", pl.FaultAt.String()})
	}
	if pl.Summary == "" {
		pl.Summary = "custom scenario"
	}
}
