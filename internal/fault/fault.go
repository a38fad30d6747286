package fault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Controller is what faults need from a lab: its control API. *lab.Client
// satisfies it. Do sends a JSON body (nil for none) and decodes a 2xx answer
// into out (nil to discard it); any other answer is an error carrying the
// API's message.
type Controller interface {
	Do(ctx context.Context, method, path string, body, out any) error
}

// ErrNeedsLab is returned when an action that needs a lab's control API is
// applied without one (a drill against real endpoints).
var ErrNeedsLab = errors.New("needs a lab's control API (--lab), which real endpoints do not have")

// Event kinds, as the drill history names them.
const (
	KindFault = "fault"
	KindHeal  = "heal"
	// KindStep is a failover step reported by the lab's failover
	// controllers (detect, decide, fence, promote, repoint, rejoin).
	KindStep = "failover-step"
	KindNote = "note"
)

// Event is something a fault did or caused, for the drill's history.
type Event struct {
	// Time is when the lab recorded it (wall clock); zero for the action
	// itself, which the caller times on its own clock.
	Time    time.Time
	Kind    string // fault, heal, failover-step, note
	Name    string // the action, e.g. kill-region
	Region  string // the region concerned (faulted, fenced, promoted)
	Service string // data service of a failover step
	Link    string
	Step    string // failover step
	Epoch   int64
	// Gap, on a promote step: writes the new primary lacked by
	// replication positions. Discarded, on a rejoin step: writes the old
	// primary dropped (the exact loss).
	Gap       *int64
	Discarded *int64
	Detail    string
}

// Args are the arguments of an action by parameter name, as text (YAML
// scalars, flag values); Action.Check validates them.
type Args map[string]string

// Step is one timed action of a plan.
type Step struct {
	// At is the instant of the step from the start of the load.
	At     time.Duration
	Action string
	Args   Args
	// Kind is fault or heal; empty means the action's own kind. The first
	// fault of a run is the instant T its RTO is measured from.
	Kind string
	// Phase "failback" marks the start of the failback: the failback RTO
	// is measured from this step.
	Phase string
}

// PhaseFailback is the only phase a step can start.
const PhaseFailback = "failback"

// EventKind is the kind of event the step is logged as.
func (s Step) EventKind() string {
	if s.Kind != "" {
		return s.Kind
	}
	if a, ok := Lookup(s.Action); ok {
		return a.Kind
	}
	return KindFault
}

// String describes the step for people, e.g. "kill-region region=westeurope".
func (s Step) String() string {
	keys := make([]string, 0, len(s.Args))
	for k := range s.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{s.Action}
	for _, k := range keys {
		parts = append(parts, k+"="+s.Args[k])
	}
	return strings.Join(parts, " ")
}

// Param types: how an argument is checked.
const (
	TypeRegion   = "region"   // a region of the topology
	TypeSite     = "site"     // a region, the witness or a POP
	TypePOP      = "pop"      // a front door POP
	TypeService  = "service"  // a primary-secondary data service
	TypeDuration = "duration" // e.g. 250ms
	TypeShare    = "share"    // 0 to 1
	TypeStatus   = "status"   // 0 or an HTTP error status
	TypeBool     = "bool"
	TypeMode     = "mode" // planned or forced
	TypeText     = "text"
)

// Param is one argument of an action.
type Param struct {
	Name     string
	Type     string
	Required bool
	// Default is the value used when the argument is absent ("" = none).
	Default string
	Help    string
}

// Action is a named fault (or its repair): what it does to the lab, in
// about fifty lines each.
type Action struct {
	Name string
	// Kind is fault or heal: how the action is logged unless a step says
	// otherwise.
	Kind    string
	Summary string
	Params  []Param
	// NeedsLab is false only for actions that work without a control API.
	NeedsLab bool
	run      func(ctx context.Context, c Controller, a Args) ([]Event, error)
}

// Actions lists every action by name.
func Actions() []Action {
	out := make([]Action, 0, len(actions))
	for _, a := range actions {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ActionNames lists the names of the actions, sorted.
func ActionNames() []string {
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the action called name.
func Lookup(name string) (Action, bool) {
	a, ok := actions[name]
	return a, ok
}

// withDefaults returns the arguments with the defaults of absent ones.
func (a Action) withDefaults(args Args) Args {
	out := Args{}
	for _, p := range a.Params {
		if p.Default != "" {
			out[p.Name] = p.Default
		}
	}
	for k, v := range args {
		out[k] = v
	}
	return out
}

// Check reports every problem of args, each as a *topology.FieldError whose
// path is at + "." + the argument's name (at + " (missing)" for a missing
// one). With t, names of regions, sites, POPs and services must exist in it.
func (a Action) Check(at string, args Args, t *topology.Topology) []error {
	var errs []error
	add := func(path, format string, v ...any) {
		errs = append(errs, &topology.FieldError{Path: path, Msg: fmt.Sprintf(format, v...)})
	}
	known := map[string]Param{}
	for _, p := range a.Params {
		known[p.Name] = p
		if _, ok := args[p.Name]; p.Required && !ok {
			add(at, "%s needs argument %q (%s)", a.Name, p.Name, p.Help)
		}
	}
	names := make([]string, 0, len(args))
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, path := args[k], at+"."+k
		p, ok := known[k]
		if !ok {
			add(path, "unknown argument of %s (arguments: %s)", a.Name, paramNames(a.Params))
			continue
		}
		if msg := checkValue(p.Type, v, t); msg != "" {
			add(path, "%s", msg)
		}
	}
	return errs
}

func paramNames(ps []Param) string {
	if len(ps) == 0 {
		return "none"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// checkValue returns what is wrong with v as a value of type typ, or "".
func checkValue(typ, v string, t *topology.Topology) string {
	oneOf := func(what string, names []string) string {
		if t == nil || slices.Contains(names, v) {
			return ""
		}
		return fmt.Sprintf("%q is not a %s of the topology (%s)", v, what, strings.Join(names, ", "))
	}
	switch typ {
	case TypeRegion:
		if v == "" {
			return "a region name is required"
		}
		if t != nil {
			return oneOf("region", t.RegionNames())
		}
	case TypeSite:
		if v == "" {
			return "a site name is required"
		}
		if t != nil {
			return oneOf("site", t.Sites())
		}
	case TypePOP:
		if v == "" {
			return "a POP name is required"
		}
		if t != nil {
			return oneOf("front door POP", t.FrontDoor.POPs)
		}
	case TypeService:
		if v == "" {
			return "a data service name is required"
		}
		if t != nil {
			var names []string
			for _, d := range t.Data {
				if d.Kind == topology.KindPrimarySecondary {
					names = append(names, d.Name)
				}
			}
			return oneOf("primary-secondary data service", names)
		}
	case TypeDuration:
		d, err := topology.ParseDuration(v)
		switch {
		case err != nil:
			return err.Error()
		case d < 0 || d.D() > 10*time.Minute:
			return fmt.Sprintf("%s is not between 0 and 10m", d)
		}
	case TypeShare:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Sprintf("%q is not a share between 0 and 1 (e.g. 0.5)", v)
		}
	case TypeStatus:
		n, err := strconv.Atoi(v)
		if err != nil || n != 0 && (n < 400 || n > 599) {
			return fmt.Sprintf("%q is not an HTTP error status (400-599) or 0 (only delay)", v)
		}
	case TypeBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Sprintf("%q is not true or false", v)
		}
	case TypeMode:
		if v != ModePlanned && v != ModeForced {
			return fmt.Sprintf("%q is not planned or forced", v)
		}
	}
	return ""
}

// Apply runs one step's action through c and returns the events to log:
// first the action itself (its Time zero: the caller stamps it), then what
// the lab reported about it (failover steps, with their Time). c may be nil
// for actions that need no lab; others then fail with ErrNeedsLab.
func Apply(ctx context.Context, c Controller, s Step) ([]Event, error) {
	a, ok := Lookup(s.Action)
	if !ok {
		return nil, fmt.Errorf("fault: unknown action %q (actions: %s)", s.Action, strings.Join(ActionNames(), ", "))
	}
	if a.NeedsLab && c == nil {
		return nil, fmt.Errorf("fault: %s %w", a.Name, ErrNeedsLab)
	}
	if errs := a.Check("args", s.Args, nil); len(errs) > 0 {
		return nil, fmt.Errorf("fault: %s: %w", a.Name, errors.Join(errs...))
	}
	full := s
	full.Args = a.withDefaults(s.Args)
	evs, err := a.run(ctx, c, full.Args)
	if err != nil {
		return evs, fmt.Errorf("fault: %s: %w", full, err)
	}
	if len(evs) > 0 {
		evs[0].Kind = s.EventKind()
		evs[0].Name = a.Name
	}
	return evs, nil
}
