package drill

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Defaults of Options.
const (
	DefaultWindow          = time.Second
	DefaultHold            = 5 * time.Second
	DefaultMaxSendLag      = 25 * time.Millisecond
	DefaultMaxLateFraction = 0.01
)

// Options tune the definitions applied by Analyze. The zero value means the
// defaults.
type Options struct {
	// Window is the length of the windows the success ratio is computed over
	// for the RTO; default 1s.
	Window time.Duration
	// Hold is how long the success ratio must stay at or above
	// RecoveryRatio, in consecutive windows, for the platform to count as
	// recovered; default 5s, rounded up to a whole number of windows.
	Hold time.Duration
	// RecoveryRatio (0 to 1) is the success ratio every window of the hold
	// must reach; default the availability objective of the run header
	// (99.95 % → 0.9995), or 1 when it has none. At 200 operations per
	// 1-second window, 0.9995 means every operation must succeed.
	RecoveryRatio float64
	// SlowAfter, when set, counts an ok operation whose latency
	// (intended→done) exceeds it as unsuccessful for the RTO and the
	// availability; default 0 (off).
	SlowAfter time.Duration
	// MaxSendLag: an operation whose first attempt was sent more than this
	// after its intended instant is late; default 25ms.
	MaxSendLag time.Duration
	// MaxLateFraction: a run with a larger share of late operations is
	// invalid (the generator fell behind); default 0.01.
	MaxLateFraction float64
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"window", o.Window}, {"hold", o.Hold}, {"slowAfter", o.SlowAfter}, {"maxSendLag", o.MaxSendLag}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", d.name, d.v))
		}
	}
	if o.Window > 0 && o.Hold > 0 && o.Window > o.Hold {
		errs = append(errs, fmt.Errorf("window: %s is longer than hold %s", o.Window, o.Hold))
	}
	if o.RecoveryRatio < 0 || o.RecoveryRatio > 1 {
		errs = append(errs, fmt.Errorf("recoveryRatio: want 0 to 1, got %g", o.RecoveryRatio))
	}
	if o.MaxLateFraction < 0 || o.MaxLateFraction > 1 {
		errs = append(errs, fmt.Errorf("maxLateFraction: want 0 to 1, got %g", o.MaxLateFraction))
	}
	return errors.Join(errs...)
}

// withDefaults fills unset fields and clamps out-of-range ones, so Analyze
// never fails.
func (o Options) withDefaults(run Run) Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.Hold < o.Window {
		o.Hold = o.Window
	}
	if o.RecoveryRatio <= 0 {
		o.RecoveryRatio = 1
		if a := run.Objectives.AvailabilityPercent; a > 0 && a <= 100 {
			o.RecoveryRatio = a / 100
		}
	}
	o.RecoveryRatio = min(o.RecoveryRatio, 1)
	o.SlowAfter = max(o.SlowAfter, 0)
	if o.MaxSendLag <= 0 {
		o.MaxSendLag = DefaultMaxSendLag
	}
	if o.MaxLateFraction <= 0 {
		o.MaxLateFraction = DefaultMaxLateFraction
	}
	o.MaxLateFraction = min(o.MaxLateFraction, 1)
	return o
}

// opv is one operation: its attempts collapsed.
type opv struct {
	*Op            // the last attempt: outcome, region, sent, done
	first    *Op   // the first attempt: intended and schedule lag
	intended int64 // of the first attempt
	good     bool  // successful: ok, and not slower than SlowAfter
	stale    bool  // a stale read
}

// analysis is the state of one Analyze call.
type analysis struct {
	h        *History
	opt      Options
	ops      []*opv // sorted by intended, then seq
	t        []int64
	events   []Event // sorted by T, stable
	interval int64   // ns between two intended instants (0 without a rate)
	start    int64   // LoadStart
	end      int64   // one interval after the last intended instant
	s        Summary
	invalid  []string
	failed   []string
}

// Analyze computes the summary of a run. It is a pure function of the
// history and the options; the definitions are in the package
// documentation.
func Analyze(h *History, opt Options) Summary {
	a := &analysis{h: h, opt: opt.withDefaults(h.Run)}
	a.s = Summary{
		Scenario:   h.Run.Scenario,
		Topology:   h.Run.Topology,
		Target:     h.Run.Target,
		Started:    h.Run.Started,
		Rate:       h.Run.Rate,
		Objectives: h.Run.Objectives,
		Floor:      append([]FloorTerm{}, h.Run.Floor...),
		Method: Method{
			WindowSeconds:     a.opt.Window.Seconds(),
			HoldSeconds:       a.opt.Hold.Seconds(),
			RecoveryRatio:     a.opt.RecoveryRatio,
			SlowAfterSeconds:  a.opt.SlowAfter.Seconds(),
			MaxSendLagSeconds: a.opt.MaxSendLag.Seconds(),
			MaxLateFraction:   a.opt.MaxLateFraction,
			Latency:           "latency: intended→done (free of coordinated omission); service_time: sent→done of the last attempt",
		},
		Reasons:       []string{},
		Notes:         []string{},
		FailoverSteps: []Step{},
		Phases:        []PhaseStats{},
	}
	a.collapse()
	a.events = append([]Event(nil), h.Events...)
	sort.SliceStable(a.events, func(i, j int) bool { return a.events[i].T < a.events[j].T })

	a.counts()
	fault, hasFault := a.firstEvent(func(e *Event) bool { return e.Kind == EventFault }, math.MinInt64)
	if hasFault {
		a.s.FaultAtSeconds = ptr(sec(fault))
	} else {
		a.note("no fault event: nothing to recover from, RTO is 0 by definition")
	}
	recoveredAt, fbAt, fbRecoveredAt := a.recoveries(fault, hasFault)
	a.outage(fault, hasFault, fbAt)
	a.availability(fault, hasFault, recoveredAt, fbAt, fbRecoveredAt)
	a.phases(fault, hasFault, recoveredAt, fbAt)
	a.ledger()
	a.staleReads()
	a.regions()
	a.streams(fault, hasFault)
	a.steps(fault, hasFault)
	a.floor()
	a.validity()
	a.judge()
	return a.s
}

// operations collapses the attempts of each operation, sorted by intended
// instant then seq. dup counts records that repeat a (seq, attempt);
// attempts counts the others.
func operations(h *History) (ops []*opv, dup, attempts int) {
	bySeq := make(map[int64]*opv, len(h.Ops))
	seen := make(map[[2]int64]bool, len(h.Ops))
	for i := range h.Ops {
		o := &h.Ops[i]
		k := [2]int64{o.Seq, int64(o.attempt())}
		if seen[k] {
			dup++
			continue
		}
		seen[k] = true
		attempts++
		v, ok := bySeq[o.Seq]
		if !ok {
			v = &opv{Op: o, first: o}
			bySeq[o.Seq] = v
			ops = append(ops, v)
		}
		if o.attempt() > v.Op.attempt() {
			v.Op = o
		}
		if o.attempt() < v.first.attempt() {
			v.first = o
		}
	}
	for _, v := range ops {
		v.intended = v.first.Intended
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].intended != ops[j].intended {
			return ops[i].intended < ops[j].intended
		}
		return ops[i].Seq < ops[j].Seq
	})
	return ops, dup, attempts
}

// collapse builds the operations and checks the schedule.
func (a *analysis) collapse() {
	run := a.h.Run
	if run.Rate > 0 {
		a.interval = int64(math.Round(1e9 / run.Rate))
	}
	a.start = run.LoadStart
	g := &a.s.Generator
	a.ops, g.Duplicate, a.s.Attempts = operations(a.h)
	a.t = make([]int64, len(a.ops))
	var maxSeq int64 = -1
	var maxLag int64
	for i, v := range a.ops {
		a.t[i] = v.intended
		maxSeq = max(maxSeq, v.Seq)
		v.good = v.Outcome == OK && (a.opt.SlowAfter == 0 || v.Done-v.intended <= int64(a.opt.SlowAfter))
		lag := v.first.Sent - v.intended
		maxLag = max(maxLag, lag)
		if lag > int64(a.opt.MaxSendLag) {
			g.LateOps++
		}
		if a.interval > 0 {
			want := run.LoadStart + int64(math.Round(float64(v.Seq)*1e9/run.Rate))
			if d := v.intended - want; d > a.interval/2 || -d > a.interval/2 {
				g.OffSchedule++
			}
		}
	}
	if n := len(a.ops); n > 0 {
		g.LateFraction = float64(g.LateOps) / float64(n)
		a.end = a.t[n-1] + a.interval
		a.s.DurationSeconds = sec(a.end - a.start)
	}
	g.MaxSendLagMs = ms(maxLag)
	want := maxSeq + 1
	if e := a.h.End; e != nil && e.Scheduled > 0 {
		want = e.Scheduled
	}
	g.Missing = max(want-int64(len(a.ops)), 0)
	g.SelfReportedBehind = run.GeneratorBehind || a.h.End != nil && a.h.End.GeneratorBehind
}

func (a *analysis) counts() {
	s := &a.s
	s.Ops = len(a.ops)
	for _, v := range a.ops {
		if v.Op.Op == OpRead {
			s.Reads++
		} else {
			s.Writes++
		}
		if v.Outcome != OK {
			s.FailedRequests++
		}
		if v.Outcome == Unknown {
			s.UnknownRequests++
		}
	}
}

// firstEvent returns the instant of the first event at or after from that
// matches.
func (a *analysis) firstEvent(match func(*Event) bool, from int64) (int64, bool) {
	for i := range a.events {
		if e := &a.events[i]; e.T >= from && match(e) {
			return e.T, true
		}
	}
	return 0, false
}

// recoveries measures the RTO from the fault and the failback RTO from
// the failback start. It returns the recovery instants, -1 when none.
func (a *analysis) recoveries(fault int64, hasFault bool) (recoveredAt, fbAt, fbRecoveredAt int64) {
	recoveredAt, fbAt, fbRecoveredAt = -1, -1, -1
	if !hasFault {
		a.s.RTOSeconds = ptr(0.0)
		a.s.Recovered = true
		a.s.RTOResolutionSeconds = sec(a.interval)
		return
	}
	r := a.recover(a.ops, a.t, fault)
	a.s.RTOResolutionSeconds = sec(r.resolution)
	if r.ok {
		a.s.Recovered = true
		recoveredAt = fault + r.rto
		a.s.RTOSeconds = ptr(sec(r.rto))
		a.s.RecoveredAtSeconds = ptr(sec(recoveredAt))
	}
	fb, ok := a.firstEvent(func(e *Event) bool { return e.Kind == EventPhase && e.Phase == PhaseFailback }, fault)
	if !ok {
		fb, ok = a.firstEvent(func(e *Event) bool { return e.Kind == EventHeal }, fault)
	}
	if !ok {
		return
	}
	fbAt = fb
	a.s.FailbackAtSeconds = ptr(sec(fb))
	switch {
	case recoveredAt < 0:
	case fb < recoveredAt:
		a.note(fmt.Sprintf("failback started at %s s, before the recovery from the fault at %s s: no separate failback RTO",
			num(sec(fb)), num(sec(recoveredAt))))
	default:
		fr := a.recover(a.ops, a.t, fb)
		if fr.ok {
			fbRecoveredAt = fb + fr.rto
			a.s.FailbackRTOSeconds = ptr(sec(fr.rto))
		}
	}
	return
}

type recovery struct {
	ok         bool
	rto        int64 // ns from the reference instant
	resolution int64 // ns: the send interval at the recovery point
}

// recover applies the RTO definition to ops (sorted by intended; t holds
// their intended instants) from the instant from: the first operation
// intended at or after from such that each of the Hold/Window consecutive
// windows starting at its intended instant holds at least one operation and
// a success ratio of at least RecoveryRatio, and the last window ends
// within the schedule. RTO is 0 when that operation is the first one after
// from, else its intended instant minus from.
func (a *analysis) recover(ops []*opv, t []int64, from int64) recovery {
	w := int64(a.opt.Window)
	k := (int64(a.opt.Hold) + w - 1) / w
	ratio := a.opt.RecoveryRatio
	pre := make([]int, len(ops)+1) // successful operations before index i
	lastBad := make([]int, len(ops)+1)
	lastBad[0] = -1
	for i, v := range ops {
		pre[i+1] = pre[i]
		lastBad[i+1] = lastBad[i]
		if v.good {
			pre[i+1]++
		} else {
			lastBad[i+1] = i
		}
	}
	first := sort.Search(len(t), func(i int) bool { return t[i] >= from })
	res := recovery{resolution: a.interval}
	// b[j] is the first operation intended at or after t[i] + j×w; the
	// candidate's windows are [b[j], b[j+1]). All only move forward.
	b := make([]int, k+1)
	for i := first; i < len(t); {
		if t[i]+k*w > a.end {
			break
		}
		for j := range b {
			for b[j] < len(t) && t[b[j]] < t[i]+int64(j)*w {
				b[j]++
			}
		}
		next := -1
		for j := range k {
			lo, hi := b[j], b[j+1]
			n, good := hi-lo, pre[hi]-pre[lo]
			if n == 0 {
				next = i + 1
				break
			}
			if float64(good) < ratio*float64(n)-1e-9 {
				next = i + 1
				if ratio >= 1 {
					// Every candidate up to the last failure in this
					// window has that failure inside its hold.
					next = max(lastBad[hi]+1, i+1)
				}
				break
			}
		}
		if next < 0 {
			res.ok = true
			if i > first {
				res.rto = t[i] - from
			}
			if i > 0 {
				res.resolution = t[i] - t[i-1]
			}
			return res
		}
		i = next
	}
	return res
}

func lowerBound(t []int64, x int64) int {
	return sort.Search(len(t), func(i int) bool { return t[i] >= x })
}

// outage spans the failed operations intended from the fault to the
// failback start (or the end), and from the failback start to the end.
func (a *analysis) outage(fault int64, hasFault bool, fbAt int64) {
	if !hasFault {
		return
	}
	end := a.end + 1
	if fbAt >= 0 {
		end = fbAt
	}
	a.s.Outage = a.span(fault, end)
	if fbAt >= 0 {
		a.s.FailbackOutage = a.span(fbAt, a.end+1)
	}
	for _, v := range a.ops {
		if v.intended >= fault && v.Outcome != OK {
			a.s.FailedAfterFault++
		}
	}
}

func (a *analysis) span(from, to int64) *Outage {
	var o Outage
	first, last := int64(-1), int64(-1)
	for _, v := range a.ops {
		if v.intended < from || v.intended >= to || v.Outcome == OK {
			continue
		}
		o.Failed++
		if first < 0 {
			first = v.intended
		}
		last = v.intended
	}
	if o.Failed == 0 {
		return nil
	}
	o.StartAtSeconds, o.EndAtSeconds, o.DurationSeconds = sec(first), sec(last), sec(last-first)
	return &o
}

// availability: the whole run, and outside the recovery intervals.
func (a *analysis) availability(fault int64, hasFault bool, recoveredAt, fbAt, fbRecoveredAt int64) {
	var excluded [][2]int64
	if hasFault {
		end := a.end + 1
		if recoveredAt >= 0 {
			end = recoveredAt
		}
		excluded = append(excluded, [2]int64{fault, end})
		if fbAt >= 0 {
			fbEnd := a.end + 1
			if fbRecoveredAt >= 0 {
				fbEnd = fbRecoveredAt
			}
			excluded = append(excluded, [2]int64{fbAt, fbEnd})
		}
	}
	var good, n, steadyGood, steadyN int
	for _, v := range a.ops {
		n++
		if v.good {
			good++
		}
		in := false
		for _, x := range excluded {
			// Intended in the interval, or in flight when it began: an
			// operation the fault caught mid-way belongs to its outage.
			if v.intended >= x[0] && v.intended < x[1] || v.intended < x[0] && (v.Done == 0 || v.Done >= x[0]) {
				in = true
			}
		}
		if !in {
			steadyN++
			if v.good {
				steadyGood++
			}
		}
	}
	if n > 0 {
		a.s.AvailabilityPercent = 100 * float64(good) / float64(n)
	}
	if steadyN > 0 {
		a.s.SteadyAvailabilityPercent = ptr(100 * float64(steadyGood) / float64(steadyN))
	}
}

// phases: steady until the fault; fault until the recovery (or the
// failback); recovery until the failback; failback until the end.
func (a *analysis) phases(fault int64, hasFault bool, recoveredAt, fbAt int64) {
	end := a.end
	type span struct {
		name       string
		start, end int64
	}
	var spans []span
	if !hasFault {
		spans = []span{{PhaseSteady, a.start, end}}
	} else {
		fb := end
		if fbAt >= 0 {
			fb = fbAt
		}
		rec := fb
		if recoveredAt >= 0 {
			rec = min(recoveredAt, fb)
		}
		spans = []span{
			{PhaseSteady, a.start, fault},
			{PhaseFault, fault, rec},
			{PhaseRecovery, rec, fb},
		}
		if fbAt >= 0 {
			spans = append(spans, span{PhaseFailback, fb, end})
		}
	}
	for _, sp := range spans {
		if sp.end <= sp.start {
			continue
		}
		p := PhaseStats{Name: sp.name, StartAtSeconds: sec(sp.start), EndAtSeconds: sec(sp.end)}
		var lat, svc []int64
		lo, hi := lowerBound(a.t, sp.start), lowerBound(a.t, sp.end)
		for _, v := range a.ops[lo:hi] {
			p.Ops++
			if v.Outcome != OK {
				p.Failed++
			}
			if v.Done > 0 {
				lat = append(lat, v.Done-v.intended)
				svc = append(svc, v.Done-v.Sent)
			}
		}
		p.Latency, p.ServiceTime = percentiles(lat), percentiles(svc)
		a.s.Phases = append(a.s.Phases, p)
	}
}

// percentiles by nearest rank; nil without values.
func percentiles(v []int64) *Latency {
	if len(v) == 0 {
		return nil
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	rank := func(p float64) int64 {
		i := int(math.Ceil(p/100*float64(len(v)))) - 1
		return v[min(max(i, 0), len(v)-1)]
	}
	return &Latency{N: len(v), P50Ms: ms(rank(50)), P99Ms: ms(rank(99)), MaxMs: ms(v[len(v)-1])}
}

func (a *analysis) regions() {
	by := map[string]*RegionStats{}
	for _, v := range a.ops {
		r := by[v.Region]
		if r == nil {
			r = &RegionStats{Region: v.Region}
			by[v.Region] = r
		}
		r.Ops++
		switch v.Outcome {
		case OK:
			r.OK++
		case Fail:
			r.Fail++
		default:
			r.Unknown++
		}
		if v.Op.Op == OpRead {
			r.Reads++
		} else {
			r.Writes++
		}
		if v.stale {
			r.StaleReads++
		}
	}
	a.s.Regions = make([]RegionStats, 0, len(by))
	for _, r := range by {
		a.s.Regions = append(a.s.Regions, *r)
	}
	sort.Slice(a.s.Regions, func(i, j int) bool { return a.s.Regions[i].Region < a.s.Regions[j].Region })
}

func (a *analysis) streams(fault int64, hasFault bool) {
	type key struct{ path, conn string }
	by := map[key][]*opv{}
	var keys []key
	for _, v := range a.ops {
		k := key{v.Path, v.Conn}
		if _, ok := by[k]; !ok {
			keys = append(keys, k)
		}
		by[k] = append(by[k], v)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].path != keys[j].path {
			return keys[i].path < keys[j].path
		}
		return keys[i].conn < keys[j].conn
	})
	a.s.Streams = make([]StreamStats, 0, len(keys))
	for _, k := range keys {
		ops := by[k]
		st := StreamStats{Path: k.path, Conn: k.conn, Ops: len(ops)}
		t := make([]int64, len(ops))
		for i, v := range ops {
			t[i] = v.intended
			if v.Outcome != OK {
				st.Failed++
			}
		}
		if !hasFault {
			st.RTOSeconds = ptr(0.0)
		} else if r := a.recover(ops, t, fault); r.ok {
			st.RTOSeconds = ptr(sec(r.rto))
			st.RTOResolutionSeconds = sec(r.resolution)
		} else {
			st.RTOResolutionSeconds = sec(r.resolution)
		}
		a.s.Streams = append(a.s.Streams, st)
	}
}

func (a *analysis) steps(fault int64, hasFault bool) {
	for _, e := range a.events {
		if e.Kind != EventFailoverStep {
			continue
		}
		st := Step{Step: e.Step, AtSeconds: sec(e.T), Region: e.Region, Service: e.Service, Epoch: e.Epoch}
		if hasFault {
			st.AfterFaultSeconds = ptr(sec(e.T - fault))
		}
		a.s.FailoverSteps = append(a.s.FailoverSteps, st)
	}
}

func (a *analysis) floor() {
	if len(a.h.Run.Floor) == 0 {
		a.note("the run header has no floor terms: the theoretical floor is unknown")
		return
	}
	f := FloorSeconds(a.h.Run.Floor)
	a.s.FloorRTOSeconds = ptr(f)
	if r := a.s.RTOSeconds; r != nil && *r > 0 && *r+a.s.RTOResolutionSeconds < f {
		a.note(fmt.Sprintf("the measured RTO (%s s) is below the floor (%s s): the RTO ends at the last failed operation, and a client whose cached answer expires sends its next operation up to one of its send intervals later; a gap larger than that means the floor assumes a detection path the fault did not take", num(*r), num(f)))
	}
}

func (a *analysis) validity() {
	s, g := &a.s, a.s.Generator
	if len(a.ops) == 0 {
		a.invalid = append(a.invalid, "the history has no operations")
	}
	if a.h.Run.Rate <= 0 {
		a.invalid = append(a.invalid, "the run header has no rate: the open-loop schedule cannot be checked")
	}
	if len(a.ops) > 0 && g.LateFraction > a.opt.MaxLateFraction {
		a.invalid = append(a.invalid, fmt.Sprintf(
			"the generator fell behind: %d of %d operations (%s%%) were sent more than %s after their intended instant (limit %s%%)",
			g.LateOps, len(a.ops), num(100*g.LateFraction), a.opt.MaxSendLag, num(100*a.opt.MaxLateFraction)))
	}
	if g.SelfReportedBehind {
		a.invalid = append(a.invalid, "the generator reported that it fell behind its schedule")
	}
	if g.OffSchedule > 0 {
		a.invalid = append(a.invalid, fmt.Sprintf(
			"%d operations are off the open-loop schedule (intended ≠ load_start + seq/rate): not an open-loop history", g.OffSchedule))
	}
	if g.Missing > 0 {
		a.invalid = append(a.invalid, fmt.Sprintf("%d scheduled operations have no record", g.Missing))
	}
	if g.Duplicate > 0 {
		a.invalid = append(a.invalid, fmt.Sprintf("%d duplicate records (same seq and attempt, or same write key)", g.Duplicate))
	}
	if s.UnverifiedWrites > 0 {
		a.invalid = append(a.invalid, fmt.Sprintf(
			"%d acknowledged writes were never read back: loss cannot be measured", s.UnverifiedWrites))
	}
	if a.h.Truncated {
		a.note("the history's last line was cut off and dropped")
	}
	if a.h.End == nil {
		a.note("the history has no end record: the run did not finish")
	}
	s.Valid = len(a.invalid) == 0
}

// judge checks every objective and sets the verdict.
func (a *analysis) judge() {
	s, obj := &a.s, a.s.Objectives
	add := func(c Check, reason string) {
		s.Checks = append(s.Checks, c)
		if !c.Pass {
			a.failed = append(a.failed, reason)
		}
	}
	valid := 1.0
	if !s.Valid {
		valid = 0
	}
	add(Check{Name: "valid", Objective: ptr(1.0), Measured: ptr(valid), Pass: s.Valid,
		Detail: "the generator kept its open-loop schedule and every acknowledged write was read back"}, "")

	rto := Check{Name: "rto", Objective: ptr(obj.RTOSeconds), Measured: s.RTOSeconds, Unit: "s",
		Pass: s.RTOSeconds != nil && *s.RTOSeconds <= obj.RTOSeconds}
	reason := ""
	if s.RTOSeconds == nil {
		reason = fmt.Sprintf("never recovered: after the fault the success ratio never stayed at or above %s%% for %s",
			num(100*a.opt.RecoveryRatio), a.opt.Hold)
		rto.Detail = "never recovered"
	} else {
		reason = fmt.Sprintf("RTO %s s (±%s s) exceeds the objective %s s",
			num(*s.RTOSeconds), num(s.RTOResolutionSeconds), num(obj.RTOSeconds))
	}
	add(rto, reason)

	if s.FailbackAtSeconds != nil && s.RecoveredAtSeconds != nil && *s.FailbackAtSeconds >= *s.RecoveredAtSeconds {
		c := Check{Name: "failback_rto", Objective: ptr(obj.RTOSeconds), Measured: s.FailbackRTOSeconds, Unit: "s",
			Pass: s.FailbackRTOSeconds != nil && *s.FailbackRTOSeconds <= obj.RTOSeconds}
		reason := "never recovered from the failback"
		if s.FailbackRTOSeconds != nil {
			reason = fmt.Sprintf("failback RTO %s s exceeds the objective %s s", num(*s.FailbackRTOSeconds), num(obj.RTOSeconds))
		}
		add(c, reason)
	}

	add(Check{Name: "rpo", Objective: ptr(obj.RPOSeconds), Measured: ptr(s.RPOSeconds), Unit: "s",
		Pass:   s.LostWrites == 0 || obj.RPOSeconds > 0 && s.RPOSeconds <= obj.RPOSeconds,
		Detail: fmt.Sprintf("%d acknowledged writes lost", s.LostWrites)},
		fmt.Sprintf("%d acknowledged writes lost over %s s; the RPO objective is %s s",
			s.LostWrites, num(s.RPOSeconds), num(obj.RPOSeconds)))

	add(Check{Name: "split_brain", Objective: ptr(0.0), Measured: ptr(float64(s.SplitBrainWrites)), Unit: "writes",
		Pass: s.SplitBrainWrites == 0},
		fmt.Sprintf("split brain: %d writes acknowledged by a fenced or demoted primary were lost", s.SplitBrainWrites))

	if obj.AvailabilityPercent > 0 {
		c := Check{Name: "availability", Objective: ptr(obj.AvailabilityPercent), Measured: s.SteadyAvailabilityPercent,
			Unit: "%", Detail: "outside the recovery intervals"}
		reason := "no operations outside the recovery intervals: availability cannot be judged"
		if m := s.SteadyAvailabilityPercent; m != nil {
			c.Pass = *m >= obj.AvailabilityPercent
			reason = fmt.Sprintf("availability outside the recovery intervals %s%% is below the objective %s%%",
				num(*m), num(obj.AvailabilityPercent))
		}
		add(c, reason)
	}

	for _, r := range a.invalid {
		s.Reasons = append(s.Reasons, "invalid run: "+r)
	}
	for _, r := range a.failed {
		if r != "" {
			s.Reasons = append(s.Reasons, r)
		}
	}
	s.Verdict = VerdictFail
	if s.Valid && len(a.failed) == 0 {
		s.Verdict = VerdictPass
	}
}

func (a *analysis) note(s string) { a.s.Notes = append(a.s.Notes, s) }

func ptr[T any](v T) *T { return &v }

func sec(ns int64) float64 { return float64(ns) / 1e9 }

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// num formats a number for people: at most three decimals.
func num(x float64) string {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return fmt.Sprint(x)
	}
	return fmt.Sprint(math.Round(x*1000) / 1000)
}
