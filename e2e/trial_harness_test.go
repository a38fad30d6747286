package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/wan"
)

// fakeGroup is a failover group of two regions whose commands are
// recorded; failing makes a command, a sample or a check fail.
type fakeGroup struct {
	cmds    []string
	primary string
	failing string // a command (as joined arguments) that fails, or "sample", "verify"
}

func (f *fakeGroup) apply(args []string) error {
	c := strings.Join(args, " ")
	f.cmds = append(f.cmds, c)
	if c == f.failing {
		return errors.New("exit 1: region westeurope is not running (killed)")
	}
	return nil
}

func (f *fakeGroup) settle(context.Context) (roles, error) {
	if f.primary == "northeurope" {
		return roles{"northeurope", "westeurope", "francecentral"}, nil
	}
	return roles{"westeurope", "northeurope", "francecentral"}, nil
}

func (f *fakeGroup) sample(context.Context) error {
	if f.failing == "sample" {
		return errors.New("two primaries [northeurope westeurope]")
	}
	return nil
}

func (f *fakeGroup) verify(context.Context) error {
	if f.failing == "verify" {
		return errors.New("3 of 90 acknowledged writes lost")
	}
	return nil
}

var fakeFaults = []trialFault{
	{name: "kill primary", inject: do([]string{"region", "kill", primary}), heal: do([]string{"region", "restart", primary})},
	{name: "isolate secondary", inject: do([]string{"link", "cut", secondary, primary}, []string{"link", "cut", secondary, witness}),
		heal: do([]string{"link", "heal", secondary, primary}, []string{"link", "heal", secondary, witness})},
}

// TestTrialRunner needs no lab: a trial whose fault fails to inject, or
// whose check fails, fails the run with its number, seed and fault, and
// no later step runs; the same seed gives the same trials.
func TestTrialRunner(t *testing.T) {
	short := func(*rand.Rand) time.Duration { return 3 * time.Millisecond }
	tr := trialRunner{seed: 42, trials: 8, faults: fakeFaults, hold: short, every: time.Millisecond}
	var clean fakeGroup
	var passed []trialResult
	if err := tr.run(t.Context(), &clean, &clean, func(r trialResult) { passed = append(passed, r) }); err != nil {
		t.Fatal(err)
	}
	if len(passed) != 8 {
		t.Fatalf("%d trials passed, want 8", len(passed))
	}
	kinds := map[string]bool{}
	for _, r := range passed {
		kinds[r.fault] = true
	}
	if len(kinds) != 2 {
		t.Fatalf("8 trials of seed 42 drew only %v", kinds)
	}
	var again fakeGroup
	tr.run(t.Context(), &again, &again, func(trialResult) {})
	if !slices.Equal(clean.cmds, again.cmds) {
		t.Fatalf("the same seed gave other commands:\n%q\n%q", clean.cmds, again.cmds)
	}

	// The first trial of seed 42 is the one whose command fails below.
	first := passed[0]
	firstInject := map[string]string{"kill primary": "region kill westeurope", "isolate secondary": "link cut northeurope francecentral"}[first.fault]
	for _, c := range []struct {
		name, failing, step string
	}{
		{"injection fails", firstInject, "inject: exit 1"},
		{"heal fails", map[string]string{"kill primary": "region restart westeurope", "isolate secondary": "link heal northeurope westeurope"}[first.fault], "heal: exit 1"},
		{"sample fails", "sample", "during the fault: two primaries"},
		{"verify fails", "verify", "verify: 3 of 90"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := &fakeGroup{failing: c.failing}
			n := 0
			err := tr.run(t.Context(), g, g, func(trialResult) { n++ })
			if err == nil {
				t.Fatalf("the run passed with %q failing", c.failing)
			}
			want := "trial 0 (seed 42, replay with GEOSTAMP_SEED=42): " + first.fault + " for 3ms: " + c.step
			if !strings.HasPrefix(err.Error(), want) || n != 0 {
				t.Fatalf("error %q after %d passed trials, want it to start with %q after none", err, n, want)
			}
			if i := slices.Index(g.cmds, c.failing); i >= 0 && i != len(g.cmds)-1 {
				t.Errorf("commands ran after the failing one: %q", g.cmds)
			}
		})
	}
}

// TestEffectOf needs no lab: a fault command that exits 0 but leaves the
// lab's state unchanged is an error, and a command without a known effect
// cannot be injected.
func TestEffectOf(t *testing.T) {
	running := lab.RegionInfo{RegionProcess: lab.RegionProcess{Name: "westeurope", PID: 100, State: lab.StateRunning}}
	killed := lab.RegionInfo{RegionProcess: lab.RegionProcess{Name: "westeurope", State: lab.StateKilled}}
	frozen := lab.RegionInfo{RegionProcess: lab.RegionProcess{Name: "westeurope", PID: 100, State: lab.StateFrozen}}
	restarted := lab.RegionInfo{RegionProcess: lab.RegionProcess{Name: "westeurope", PID: 101, State: lab.StateRunning}}
	link := func(ab, ba bool) []wan.LinkState {
		return []wan.LinkState{{Name: "northeurope<->westeurope", A: "northeurope", B: "westeurope", AToB: wan.DirState{Cut: ab}, BToA: wan.DirState{Cut: ba}}}
	}
	st := func(r lab.RegionInfo, links []wan.LinkState, proc map[int]byte) labState {
		return labState{Regions: []lab.RegionInfo{r}, Links: links, Proc: proc}
	}
	for _, c := range []struct {
		name          string
		args          []string
		before, after labState
		err           string // "" when the effect is there
	}{
		{"kill", []string{"region", "kill", "westeurope"}, st(running, nil, nil), st(killed, nil, map[int]byte{}), ""},
		{"kill leaves the process", []string{"region", "kill", "westeurope"}, st(running, nil, nil), st(killed, nil, map[int]byte{100: 'S'}), "process 100 still exists"},
		{"kill reported but running", []string{"region", "kill", "westeurope"}, st(running, nil, nil), st(running, nil, map[int]byte{100: 'S'}), "want killed"},
		{"kill of a zombie", []string{"region", "kill", "westeurope"}, st(running, nil, nil), st(killed, nil, map[int]byte{100: 'Z'}), ""},
		{"restart", []string{"region", "restart", "westeurope"}, st(killed, nil, nil), st(restarted, nil, nil), ""},
		{"restart in the same process", []string{"region", "restart", "westeurope"}, st(running, nil, nil), st(running, nil, nil), "want running in a new process"},
		{"freeze", []string{"region", "freeze", "westeurope"}, st(running, nil, nil), st(frozen, nil, map[int]byte{100: 'T'}), ""},
		{"freeze not in /proc", []string{"region", "freeze", "westeurope"}, st(running, nil, nil), st(frozen, nil, map[int]byte{100: 'S'}), "want frozen"},
		{"resume", []string{"region", "resume", "westeurope"}, st(frozen, nil, nil), st(running, nil, map[int]byte{100: 'S'}), ""},
		{"cut", []string{"link", "cut", "westeurope", "northeurope"}, st(running, link(false, false), nil), st(running, link(true, true), nil), ""},
		{"cut one way", []string{"link", "cut", "westeurope", "northeurope", "--one-way"}, st(running, link(false, false), nil), st(running, link(false, true), nil), ""},
		{"cut only one way", []string{"link", "cut", "westeurope", "northeurope"}, st(running, link(false, false), nil), st(running, link(false, true), nil), "link northeurope->westeurope: cut false, want true"},
		{"cut of an unknown link", []string{"link", "cut", "westeurope", "francecentral"}, st(running, link(false, false), nil), st(running, link(false, false), nil), "no link westeurope<->francecentral"},
		{"heal", []string{"link", "heal", "westeurope", "northeurope"}, st(running, link(true, true), nil), st(running, link(false, false), nil), ""},
		{"heal one way leaves it cut", []string{"link", "heal", "westeurope", "northeurope", "--one-way"}, st(running, link(true, true), nil), st(running, link(true, true), nil), "link westeurope->northeurope: cut true, want false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eff, err := effectOf(c.args)
			if err != nil {
				t.Fatal(err)
			}
			err = eff(c.before, c.after)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("%v: %v, want %q", c.args, err, c.err)
			}
		})
	}
	if _, err := effectOf([]string{"pop", "kill", "pop-eu"}); err == nil || !strings.Contains(err.Error(), "no known effect") {
		t.Errorf("a command without a known effect: %v", err)
	}
}
