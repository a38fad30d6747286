package drill

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/topology"
)

// Files a run writes in its output directory.
const (
	HistoryFile = "history.jsonl"
	SummaryFile = "summary.json"
	ReportFile  = "report.html"
)

// Defaults of Config.
const (
	DefaultConverge = 20 * time.Second
	DefaultSettle   = 3 * time.Second
	// loadStart leaves the workers time to start before operation 0.
	loadStart = int64(100 * time.Millisecond)
)

// Config is one drill run, for Execute.
type Config struct {
	// Plan is the scenario's script (package fault).
	Plan fault.Plan
	// Topology gives the objectives, the floor and the data services; it
	// must have its defaults set.
	Topology *topology.Topology
	// Targets are the addresses the load and the readback reach.
	Targets Targets
	// Control is the lab's control API; nil against real endpoints, which
	// allows only plans that need no lab.
	Control fault.Controller
	// Load sets the rate, mix, timeout and DNS clients; its Duration,
	// Streams and Service come from the plan.
	Load LoadConfig
	// Target names what is measured ("lab:DIR" or a URL) in the history.
	Target string
	// Out is the directory for history.jsonl, summary.json and report.html.
	Out string
	// Progress, when set, receives one report per second and the run's
	// milestones.
	Progress func(Progress)
	// Converge bounds the wait for replication to converge after the load
	// (with a lab); default 20s. Settle is the wait without a lab, which
	// cannot see replication; default 3s.
	Converge, Settle time.Duration
	// KeepFaults skips the cleanup: the lab stays as the drill left it.
	KeepFaults bool
	// Analysis tunes the definitions (zero: the defaults).
	Analysis Options
}

// Progress is what a run reports as it goes: once a second, and at each
// milestone (Message set).
type Progress struct {
	Elapsed time.Duration
	// Phase is steady, fault, failback, then converging, readback,
	// cleanup, analysis.
	Phase string
	// Over the last second: operations sent, completed by outcome, and
	// successful ones by serving region.
	Sent, OK, Fail, Unknown int64
	Served                  map[string]int64
	InFlight                int64
	// Message announces a milestone (a fault injected, a failover step).
	Message string
}

// ErrInterrupted is returned when the run's context ended before the
// schedule did; the history and the summary are still written.
var ErrInterrupted = errors.New("drill: interrupted")

// Execute runs a drill: the load with the plan's steps on one clock, the wait
// for convergence, the readback, the cleanup; then it writes history.jsonl,
// summary.json and report.html in cfg.Out and returns the summary. An
// error means the run could not be carried out as planned (a fault failed,
// the output could not be written); the summary is still returned when it
// could be computed.
func Execute(ctx context.Context, cfg Config) (Summary, error) {
	pl, topo := cfg.Plan, cfg.Topology
	if topo == nil {
		return Summary{}, errors.New("drill: no topology")
	}
	if pl.NeedsLab && cfg.Control == nil {
		return Summary{}, fmt.Errorf("drill: scenario %s injects faults through a lab's control API (--lab DIR); against real endpoints only the manual scenario and custom scenarios of mark steps can run", pl.Scenario)
	}
	if pl.FaultAt > 0 || len(pl.Steps) > 0 {
		hold := cfg.Analysis.withDefaults(Run{}).Hold
		end := pl.Duration
		if pl.FailbackAt > 0 {
			end = pl.FailbackAt
		}
		if observe := end - pl.FaultAt; observe < hold {
			return Summary{}, fmt.Errorf("drill: the observation window after the fault (%s) is shorter than the RTO's hold window (%s): the recovery could not be measured; lengthen the duration or shorten the hold", observe, hold)
		}
	}
	if cfg.Converge == 0 {
		cfg.Converge = DefaultConverge
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Summary{}, fmt.Errorf("drill: %w", err)
	}
	f, err := os.Create(filepath.Join(cfg.Out, HistoryFile))
	if err != nil {
		return Summary{}, fmt.Errorf("drill: %w", err)
	}
	defer f.Close()
	w := NewWriter(f)
	r := &runner{cfg: cfg, w: w, progress: func(Progress) {}}
	if cfg.Progress != nil {
		// Reports come from several goroutines; the callback sees them one
		// at a time.
		var mu sync.Mutex
		r.progress = func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			cfg.Progress(p)
		}
	}
	runErr := r.run(ctx)
	if err := w.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	if err := f.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("drill: %w", err)
	}
	// A run that stopped before its repair (an error writing the history)
	// still repairs the lab.
	if err := r.cleanup(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	r.phase("analysis")
	s, err := AnalyzeDir(cfg.Out, cfg.Analysis)
	return s, errors.Join(runErr, err)
}

// AnalyzeDir reads DIR/history.jsonl and writes DIR/summary.json and
// DIR/report.html from it: what `geostamp drill analyze DIR` does.
func AnalyzeDir(dir string, opt Options) (Summary, error) {
	if err := opt.Validate(); err != nil {
		return Summary{}, fmt.Errorf("drill: analysis options: %w", err)
	}
	h, err := ReadFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		return Summary{}, err
	}
	s := Analyze(h, opt)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return s, fmt.Errorf("drill: summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return s, fmt.Errorf("drill: %w", err)
	}
	rf, err := os.Create(filepath.Join(dir, ReportFile))
	if err != nil {
		return s, fmt.Errorf("drill: %w", err)
	}
	if err := WriteReport(rf, h, s); err != nil {
		rf.Close()
		return s, err
	}
	if err := rf.Close(); err != nil {
		return s, fmt.Errorf("drill: %w", err)
	}
	return s, nil
}

// runner is the state of one Run.
type runner struct {
	cfg      Config
	w        *Writer
	gen      *LoadGenerator
	clock    *runClock
	watch    *fault.Watcher
	progress func(Progress)

	mu       sync.Mutex
	curPhase string
	cleanups []fault.Step // what to undo, as far as the run got
	stepped  bool         // a step ran
}

func (r *runner) phase(p string) {
	r.mu.Lock()
	r.curPhase = p
	r.mu.Unlock()
}

func (r *runner) getPhase() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.curPhase
}

func (r *runner) say(msg string) {
	var el time.Duration
	if r.clock != nil {
		el = time.Duration(r.clock.now())
	}
	r.progress(Progress{Elapsed: el, Phase: r.getPhase(), Message: msg})
}

func (r *runner) run(ctx context.Context) error {
	cfg, pl, topo := r.cfg, r.cfg.Plan, r.cfg.Topology

	// Where the data is now: the primaries, and the positions from which
	// the readback lists this run's writes.
	primaries := map[string]string{}
	var after uint64
	if cfg.Control != nil {
		st, err := fault.DataStatus(ctx, cfg.Control)
		if err != nil {
			return fmt.Errorf("drill: %w", err)
		}
		after = ^uint64(0)
		for _, d := range topo.Data {
			if p := st.Primary(d.Name); p != "" {
				primaries[d.Name] = p
			}
		}
		for _, rep := range st.Replicas(pl.Service) {
			after = min(after, rep.LastSeq)
		}
		if after == ^uint64(0) {
			after = 0
		}
	}
	var services []Service
	for _, d := range topo.Data {
		s := Service{Name: d.Name, Kind: d.Kind, Replication: d.Replication, Primary: d.Primary}
		if p, ok := primaries[d.Name]; ok {
			s.Primary = p
		}
		services = append(services, s)
	}

	runID := randomID()
	load := cfg.Load
	load.Duration, load.Streams, load.Service, load.RunID = pl.Duration, pl.Streams, pl.Service, runID
	var seed [8]byte
	rand.Read(seed[:])
	load.Seed = binary.BigEndian.Uint64(seed[:])
	t0 := time.Now()
	r.clock = &runClock{t0: t0}
	gen, err := NewLoadGenerator(load, cfg.Targets, r.w, t0, loadStart)
	if err != nil {
		return err
	}
	r.gen = gen
	header := Run{
		Version: Version, Scenario: pl.Scenario, Topology: topo.Name, Model: topo.Model, Regions: topo.RegionNames(),
		Services: services, Target: cfg.Target, Started: t0.UTC(), Rate: gen.cfg.Rate, LoadStart: loadStart,
		ReadShare: gen.cfg.ReadShare, TimeoutSeconds: gen.cfg.Timeout.Seconds(),
		Objectives: ObjectivesOf(topo.Objectives), Floor: FloorForPlan(topo, pl, load.DNSClients),
	}
	if err := r.w.Write(&header); err != nil {
		return err
	}
	if cfg.Control != nil {
		r.watch = fault.NewWatcher(cfg.Control, t0)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	var stepErr error
	stepsDone := make(chan struct{})
	wg.Go(func() {
		defer close(stepsDone)
		if err := r.steps(loadCtx); err != nil {
			stepErr = err
			stopLoad()
		}
	})
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	wg.Go(func() { r.watchLoop(watchCtx) })
	wg.Go(func() { r.progressLoop(watchCtx) })

	r.phase(PhaseSteady)
	res := gen.Run(loadCtx)
	interrupted := ctx.Err() != nil
	// A step may still be running (a planned failover takes its time);
	// the history needs its events.
	<-stepsDone

	post := context.WithoutCancel(ctx)
	// Repair first, so that every region can converge and be read back;
	// the repair is logged as notes, not as a failback.
	r.phase("cleanup")
	repaired := r.hasCleanup()
	cleanErr := r.cleanup()
	if cleanErr != nil {
		r.event(Event{T: r.clock.now(), Kind: EventNote, Detail: cleanErr.Error()})
	}
	if !interrupted && stepErr == nil && cleanErr == nil {
		r.phase("converging")
		r.converge(post, pl.Service, repaired || pl.FailbackAt > 0)
		r.phase("readback")
		rctx, cancel := context.WithTimeout(post, 2*time.Minute)
		err := gen.ReadBack(rctx, res.Writes, after)
		cancel()
		if err != nil {
			return err
		}
	}
	stopWatch()
	wg.Wait()
	r.poll(post)
	end := End{T: r.clock.now(), Scheduled: res.Scheduled, GeneratorBehind: res.Behind, MaxLag: int64(res.MaxLag),
		Detail: fmt.Sprintf("%d operations sent %s or more late, largest lag %s, %d workers", res.LateOps, DefaultMaxSendLag, res.MaxLag.Round(time.Microsecond), gen.cfg.Workers)}
	if interrupted {
		end.Detail = "interrupted; " + end.Detail
	}
	if stepErr != nil {
		end.Detail = "a step failed; " + end.Detail
	}
	if err := r.w.Write(&end); err != nil {
		return err
	}
	switch {
	case stepErr != nil:
		return errors.Join(stepErr, cleanErr)
	case interrupted:
		return errors.Join(ErrInterrupted, cleanErr)
	}
	return cleanErr
}

// steps runs the plan's steps at their instants and logs their events.
func (r *runner) steps(ctx context.Context) error {
	pl := r.cfg.Plan
	for _, st := range pl.Steps {
		at := loadStart + int64(st.At)
		if err := r.clock.sleepUntil(ctx, at); err != nil {
			return nil // interrupted: not a failed step
		}
		if st.Phase == fault.PhaseFailback {
			r.phase(PhaseFailback)
			r.event(Event{T: r.clock.now(), Kind: EventPhase, Phase: PhaseFailback, Detail: "failback: " + st.String()})
		} else if st.EventKind() == fault.KindFault && r.getPhase() == PhaseSteady {
			r.phase(PhaseFault)
		}
		if pl.Announce != "" && st.EventKind() == fault.KindFault {
			r.say(pl.Announce)
		}
		t := r.clock.now()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		evs, err := fault.Apply(sctx, r.cfg.Control, st)
		cancel()
		if err != nil {
			r.event(Event{T: t, Kind: EventNote, Name: st.Action, Detail: "failed: " + err.Error()})
			r.say(err.Error())
			return fmt.Errorf("drill: step at %s: %w", st.At, err)
		}
		r.noteCleanup(st)
		for i, e := range evs {
			if i == 0 {
				r.event(r.fromFault(e, t))
				r.say(fmt.Sprintf("%s: %s", e.Kind, e.Detail))
				continue
			}
			if r.watch != nil {
				r.watch.Seen(e)
			}
			r.event(r.fromFault(e, r.clock.instant(e.Time)))
			r.sayStep(e)
		}
	}
	return nil
}

// noteCleanup records that a step ran: the plan's cleanup then applies (a
// plan with a failback has none for what the failback repairs).
func (r *runner) noteCleanup(fault.Step) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stepped {
		r.stepped = true
		r.cleanups = r.cfg.Plan.Cleanup
	}
}

// hasCleanup reports whether cleanup has steps to run.
func (r *runner) hasCleanup() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.cfg.KeepFaults && len(r.cleanups) > 0
}

// cleanup undoes the faults the run injected, once; each step is logged as
// a note (a repair after the measurement is not a failback).
func (r *runner) cleanup() error {
	r.mu.Lock()
	steps := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	if r.cfg.KeepFaults {
		return nil
	}
	var errs []error
	for _, st := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t := r.now()
		_, err := fault.Apply(ctx, r.cfg.Control, st)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("drill: cleanup: %w", err))
			r.say("cleanup failed: " + err.Error())
			continue
		}
		r.event(Event{T: t, Kind: EventNote, Name: "cleanup", Detail: "cleanup: " + st.String()})
		r.say("cleanup: " + st.String())
	}
	return errors.Join(errs...)
}

// now is the run's clock, 0 before the run started.
func (r *runner) now() int64 {
	if r.clock == nil {
		return 0
	}
	return r.clock.now()
}

// fromFault converts an event of package fault to a history event at t.
func (r *runner) fromFault(e fault.Event, t int64) Event {
	ev := Event{T: max(t, 0), Kind: e.Kind, Name: e.Name, Step: e.Step, Region: e.Region, Service: e.Service,
		Epoch: e.Epoch, Gap: e.Gap, Discarded: e.Discarded, Detail: e.Detail}
	if ev.Kind == fault.KindNote && ev.Name != "" && ev.Detail == "" {
		ev.Detail = ev.Name
	}
	if ev.Kind == EventFailoverStep && !knownSteps[ev.Step] {
		// A step the history format does not define: keep it as a note.
		ev.Kind, ev.Name = EventNote, "failover-"+ev.Step
		ev.Detail = strings.TrimSuffix(fmt.Sprintf("failover %s of %s in %s (epoch %d); %s", ev.Step, ev.Service, ev.Region, ev.Epoch, ev.Detail), "; ")
		ev.Step, ev.Gap, ev.Discarded = "", nil, nil
	}
	return ev
}

var knownSteps = map[string]bool{StepDetect: true, StepDecide: true, StepFence: true, StepPromote: true, StepRepoint: true, StepRejoin: true}

func (r *runner) event(e Event) { _ = r.w.Write(&e) }

// watchLoop polls the lab's events twice a second and logs failover steps
// (and regions dying on their own).
func (r *runner) watchLoop(ctx context.Context) {
	if r.watch == nil {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.poll(ctx)
		}
	}
}

// labNotes are the lab's own event kinds worth a note in the history; the
// echoes of the drill's actions are not.
var labNotes = map[string]bool{"region-exited": true, "region-crashed": true}

func (r *runner) poll(ctx context.Context) {
	if r.watch == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	evs, err := r.watch.Poll(pctx)
	if err != nil {
		return
	}
	for _, e := range evs {
		if e.Kind == fault.KindNote && !labNotes[e.Name] {
			continue
		}
		r.event(r.fromFault(e, r.clock.instant(e.Time)))
		r.sayStep(e)
	}
	_ = r.w.Flush()
}

func (r *runner) sayStep(e fault.Event) {
	if e.Kind != fault.KindStep {
		return
	}
	msg := fmt.Sprintf("failover %s: %s %s", e.Step, e.Service, e.Region)
	if e.Gap != nil {
		msg += fmt.Sprintf(" (gap %d)", *e.Gap)
	}
	if e.Discarded != nil {
		msg += fmt.Sprintf(" (discarded %d)", *e.Discarded)
	}
	r.say(msg)
}

// progressLoop reports the last second's operations once a second.
func (r *runner) progressLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := r.gen.Snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := r.gen.Snapshot()
		served := map[string]int64{}
		for k, v := range cur.Served {
			if d := v - prev.Served[k]; d > 0 {
				served[k] = d
			}
		}
		r.progress(Progress{Elapsed: time.Duration(r.clock.now()), Phase: r.getPhase(),
			Sent: cur.Sent - prev.Sent, OK: cur.OK - prev.OK, Fail: cur.Fail - prev.Fail, Unknown: cur.Unknown - prev.Unknown,
			Served: served, InFlight: cur.InFlight})
		prev = cur
		_ = r.w.Flush()
	}
}

// converge waits until the service's secondaries hold the primary's
// position (with a lab), or for the settle time (without). With all, every
// region of the topology must answer too (the faults were repaired).
func (r *runner) converge(ctx context.Context, service string, all bool) {
	if r.cfg.Control == nil {
		_ = r.clock.sleepUntil(ctx, r.clock.now()+int64(r.cfg.Settle))
		r.event(Event{T: r.clock.now(), Kind: EventNote, Detail: fmt.Sprintf("no lab: waited %s for replication before the readback", r.cfg.Settle)})
		return
	}
	start := time.Now()
	why := ""
	for {
		st, err := fault.DataStatus(ctx, r.cfg.Control)
		if err == nil {
			var ok bool
			ok, why = st.Converged(service)
			if ok && all {
				ok, why = st.Answering(service, r.cfg.Topology.RegionNames())
			}
			if ok {
				r.event(Event{T: r.clock.now(), Kind: EventNote, Detail: fmt.Sprintf("replication of %s converged in %s: %s",
					service, time.Since(start).Round(time.Millisecond), st.Positions(service))})
				return
			}
		} else {
			why = err.Error()
		}
		if time.Since(start) > r.cfg.Converge {
			r.event(Event{T: r.clock.now(), Kind: EventNote, Detail: fmt.Sprintf("replication of %s did not converge within %s (%s); reading back anyway", service, r.cfg.Converge, why)})
			return
		}
		if r.clock.sleepUntil(ctx, r.clock.now()+int64(250*time.Millisecond)) != nil {
			return
		}
	}
}

func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
