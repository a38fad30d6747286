package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// A trial runner injects seeded random faults into a failover group, one
// at a time: settle, inject, sample the group while the fault holds, heal,
// settle, verify. Any step that fails, the fault's injection included,
// fails the run with the trial's number and seed. It knows nothing of the
// lab: a lab is one injector and group (failover_test.go), a fake is
// another (trial_harness_test.go).

// roles names the sites a fault acts on in one trial.
type roles struct{ primary, secondary, witness string }

// Placeholders for the roles in a step's arguments.
const (
	primary   = "{primary}"
	secondary = "{secondary}"
	witness   = "{witness}"
)

// expand replaces the role placeholders in args.
func (r roles) expand(args []string) []string {
	rep := strings.NewReplacer(primary, r.primary, secondary, r.secondary, witness, r.witness)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = rep.Replace(a)
	}
	return out
}

// injector carries out one fault command (CLI arguments, roles expanded)
// and returns an error unless it took effect.
type injector interface {
	apply(args []string) error
}

// action is what a fault does to the lab in one trial. Most are a list of
// commands (do); one that needs concurrency or waits writes its own.
type action func(ctx context.Context, inj injector, r roles) error

// do is the action running each command in order, stopping at the first
// that fails. Arguments may name roles: {primary}, {secondary}, {witness}.
func do(cmds ...[]string) action {
	return func(_ context.Context, inj injector, r roles) error {
		for _, c := range cmds {
			if err := inj.apply(r.expand(c)); err != nil {
				return err
			}
		}
		return nil
	}
}

// trialFault is one kind of fault: how to inject it and how to heal it.
type trialFault struct {
	name         string
	inject, heal action
}

// group is the failover group under trial.
type group interface {
	// settle waits until one region is the writable primary and every
	// other follows it, and names the roles.
	settle(ctx context.Context) (roles, error)
	// sample checks what must hold at every instant of a fault.
	sample(ctx context.Context) error
	// verify checks what must hold once the fault is healed and the group
	// has settled again.
	verify(ctx context.Context) error
}

// trialResult is one passed trial.
type trialResult struct {
	trial         int
	fault         string
	hold          time.Duration
	before, after roles
}

type trialRunner struct {
	seed   uint64
	trials int
	faults []trialFault
	// hold draws how long a fault lasts; nil: 0.5 to 3.5 s.
	hold func(*rand.Rand) time.Duration
	// every is how often the group is sampled while a fault holds; 0: 100 ms.
	every time.Duration
}

// run runs the trials in order and calls passed after each one that
// passed. The error names the trial, its seed, the fault and the step.
func (tr trialRunner) run(ctx context.Context, inj injector, g group, passed func(trialResult)) error {
	rng := rand.New(rand.NewPCG(tr.seed, tr.seed))
	hold := tr.hold
	if hold == nil {
		hold = func(rng *rand.Rand) time.Duration { return time.Duration(500+rng.IntN(3000)) * time.Millisecond }
	}
	every := tr.every
	if every == 0 {
		every = 100 * time.Millisecond
	}
	for i := range tr.trials {
		f := tr.faults[rng.IntN(len(tr.faults))]
		res := trialResult{trial: i, fault: f.name, hold: hold(rng)}
		fail := func(step string, err error) error {
			return fmt.Errorf("trial %d (seed %d, replay with GEOSTAMP_SEED=%d): %s for %s: %s: %w", i, tr.seed, tr.seed, f.name, res.hold, step, err)
		}
		var err error
		if res.before, err = g.settle(ctx); err != nil {
			return fail("settle before the fault", err)
		}
		if err := f.inject(ctx, inj, res.before); err != nil {
			return fail("inject", err)
		}
		for end := time.Now().Add(res.hold); time.Now().Before(end); {
			if err := g.sample(ctx); err != nil {
				return fail("during the fault", err)
			}
			select {
			case <-ctx.Done():
				return fail("during the fault", ctx.Err())
			case <-time.After(min(every, time.Until(end))):
			}
		}
		if err := f.heal(ctx, inj, res.before); err != nil {
			return fail("heal", err)
		}
		if res.after, err = g.settle(ctx); err != nil {
			return fail("settle after the heal", err)
		}
		if err := g.verify(ctx); err != nil {
			return fail("verify", err)
		}
		passed(res)
	}
	return nil
}
