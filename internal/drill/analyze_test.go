package drill

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRTOExactOutage(t *testing.T) {
	s := Analyze(outageHistory(), Options{})
	eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(2.3))
	if s.RTOResolutionSeconds != 0.005 {
		t.Errorf("rto_resolution_seconds = %v, want 0.005 (one send interval at 200/s)", s.RTOResolutionSeconds)
	}
	eqPtr(t, "fault_at_seconds", s.FaultAtSeconds, fptr(5))
	eqPtr(t, "recovered_at_seconds", s.RecoveredAtSeconds, fptr(7.3))
	if s.FailedRequests != 460 || s.FailedAfterFault != 460 {
		t.Errorf("failed_requests = %d (%d after the fault), want 460 = 2.3 s × 200/s", s.FailedRequests, s.FailedAfterFault)
	}
	want := Outage{StartAtSeconds: 5, EndAtSeconds: 7.295, DurationSeconds: 2.295, Failed: 460}
	if s.Outage == nil || *s.Outage != want {
		t.Errorf("outage = %+v, want %+v", s.Outage, want)
	}
	if s.AvailabilityPercent != 88.5 {
		t.Errorf("availability_percent = %v, want 88.5", s.AvailabilityPercent)
	}
	eqPtr(t, "steady_availability_percent", s.SteadyAvailabilityPercent, fptr(100))
	if s.LostWrites != 0 || s.RPOSeconds != 0 || s.AckedWrites != 1062 {
		t.Errorf("lost_writes %d rpo %v acked %d, want 0, 0, 1062", s.LostWrites, s.RPOSeconds, s.AckedWrites)
	}
	eqPtr(t, "floor_rto_seconds", s.FloorRTOSeconds, fptr(3.5))
	if s.Verdict != VerdictPass || !s.Valid {
		t.Errorf("verdict %s valid %v, want pass and valid; reasons %q", s.Verdict, s.Valid, s.Reasons)
	}
	if len(s.Streams) != 1 || s.Streams[0].RTOSeconds == nil || *s.Streams[0].RTOSeconds != 2.3 {
		t.Errorf("streams = %+v, want one frontdoor/pooled stream with RTO 2.3", s.Streams)
	}
	wantRegions := []RegionStats{
		{Region: "", Ops: 460, Fail: 460, Reads: 322, Writes: 138},
		{Region: ne, Ops: 2540, OK: 2540, Reads: 1778, Writes: 762},
		{Region: we, Ops: 1000, OK: 1000, Reads: 700, Writes: 300},
	}
	if fmt.Sprint(s.Regions) != fmt.Sprint(wantRegions) {
		t.Errorf("regions = %+v\nwant %+v", s.Regions, wantRegions)
	}
	var phases []string
	for _, p := range s.Phases {
		phases = append(phases, fmt.Sprintf("%s %v-%v ops=%d failed=%d", p.Name, p.StartAtSeconds, p.EndAtSeconds, p.Ops, p.Failed))
	}
	wantPhases := "steady 0-5 ops=1000 failed=0|fault 5-7.3 ops=460 failed=460|recovery 7.3-20 ops=2540 failed=0"
	if got := strings.Join(phases, "|"); got != wantPhases {
		t.Errorf("phases = %s\nwant %s", got, wantPhases)
	}
	if len(s.FailoverSteps) != 5 || s.FailoverSteps[3].Step != StepPromote || *s.FailoverSteps[3].AfterFaultSeconds != 1.9 {
		t.Errorf("failover steps = %+v", s.FailoverSteps)
	}

	// The same run against a 2 s objective fails, and says why.
	h := outageHistory()
	h.Run.Objectives.RTOSeconds = 2
	s = Analyze(h, Options{})
	if s.Verdict != VerdictFail || !s.Valid {
		t.Fatalf("verdict %s valid %v, want a valid fail", s.Verdict, s.Valid)
	}
	if len(s.Reasons) != 1 || !strings.Contains(s.Reasons[0], "RTO 2.3 s (±0.005 s) exceeds the objective 2 s") {
		t.Errorf("reasons = %q", s.Reasons)
	}
}

func TestRTODefinition(t *testing.T) {
	type want struct {
		rto        *float64 // nil: never recovered
		resolution float64
		failed     int
	}
	cases := []struct {
		name  string
		fault float64 // default 5 s
		opt   Options
		shape func(o *Op)
		want  want
	}{{
		name:  "no outage",
		shape: func(o *Op) {},
		want:  want{rto: fptr(0), resolution: 0.005},
	}, {
		// The fault falls between two operations; the first one after it
		// succeeds: no outage, RTO 0 (not the 2.5 ms to that operation).
		name:  "no outage, fault between operations",
		fault: 5.0025,
		shape: func(o *Op) {},
		want:  want{rto: fptr(0), resolution: 0.005},
	}, {
		name: "outage ending on an odd operation",
		shape: func(o *Op) {
			failWhere(o, 5, 7.305)
		},
		want: want{rto: fptr(2.305), resolution: 0.005, failed: 461},
	}, {
		name: "outage ending on an odd operation, ratio 1",
		opt:  Options{RecoveryRatio: 1},
		shape: func(o *Op) {
			_ = failWhere(o, 5, 7.305) || failWhere(o, 8.01, 8.015)
		},
		want: want{rto: fptr(3.015), resolution: 0.005, failed: 462},
	}, {
		name: "never recovered",
		shape: func(o *Op) {
			failWhere(o, 5, 1e9)
		},
		want: want{failed: 3000},
	}, {
		// ok for 1.7 s, which is less than the hold, then failing again:
		// recovery counts from 9.5 s.
		name: "flapping recovery",
		shape: func(o *Op) {
			_ = failWhere(o, 5, 7.3) || failWhere(o, 9, 9.5)
		},
		want: want{rto: fptr(4.5), resolution: 0.005, failed: 560},
	}, {
		// A single failure 4.995 s into the candidate hold still resets it.
		name: "one failure at the end of the hold",
		shape: func(o *Op) {
			_ = failWhere(o, 5, 7.3) || failWhere(o, 12.295, 12.3)
		},
		want: want{rto: fptr(7.3), resolution: 0.005, failed: 461},
	}, {
		// Recovery so late that a whole hold does not fit before the end.
		name: "recovered too close to the end",
		shape: func(o *Op) {
			failWhere(o, 5, 16)
		},
		want: want{failed: 2200},
	}, {
		// After 7.3 s, one operation in 20 keeps failing (5 %): with the
		// default ratio (the 99.95 % availability objective) it never
		// counts as recovered.
		name:  "degraded: default ratio",
		shape: degraded,
		want:  want{failed: 460 + 127},
	}, {
		// With a 90 % ratio, the first window may hold 20 failures of 200:
		// the candidate at seq 1449 (7.245 s) has 11 outage failures and
		// 9 sporadic ones in its first window, seq 1448 has 21.
		name:  "degraded: ratio 0.9",
		opt:   Options{RecoveryRatio: 0.9},
		shape: degraded,
		want:  want{rto: fptr(2.245), resolution: 0.005, failed: 460 + 127},
	}, {
		// A shorter hold recovers in the gap of the flapping case.
		name: "flapping with a 1 s hold",
		opt:  Options{Hold: time.Second},
		shape: func(o *Op) {
			_ = failWhere(o, 5, 7.3) || failWhere(o, 9, 9.5)
		},
		want: want{rto: fptr(2.3), resolution: 0.005, failed: 560},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := openLoop(200, 20, c.shape)
			fault := 5.0
			if c.fault > 0 {
				fault = c.fault
			}
			h.Events = []Event{event(fault, EventFault, nil)}
			readBackAll(h, []string{we}, nil)
			s := Analyze(h, c.opt)
			eqPtr(t, "rto_seconds", s.RTOSeconds, c.want.rto)
			if c.want.rto != nil && s.RTOResolutionSeconds != c.want.resolution {
				t.Errorf("resolution = %v, want %v", s.RTOResolutionSeconds, c.want.resolution)
			}
			if s.FailedRequests != c.want.failed {
				t.Errorf("failed_requests = %d, want %d", s.FailedRequests, c.want.failed)
			}
			if s.Recovered != (c.want.rto != nil) {
				t.Errorf("recovered = %v", s.Recovered)
			}
			if c.want.rto == nil {
				if s.Verdict != VerdictFail || !strings.Contains(strings.Join(s.Reasons, "\n"), "never recovered") {
					t.Errorf("verdict %s, reasons %q: want a fail that says never recovered", s.Verdict, s.Reasons)
				}
			}
		})
	}
}

// degraded: everything fails from 5 to 7.3 s, then seq ≡ 10 (mod 20) fails.
func degraded(o *Op) {
	if failWhere(o, 5, 7.3) {
		return
	}
	if o.Intended >= at(7.3) && o.Seq%20 == 10 {
		o.Outcome, o.Status, o.Error = Fail, 503, "brownout"
	}
}

func TestFailbackRTO(t *testing.T) {
	h := openLoop(200, 20, func(o *Op) {
		_ = failWhere(o, 5, 7.3) || failWhere(o, 14, 14.5)
	})
	h.Events = []Event{
		event(5, EventFault, nil),
		event(14, EventHeal, func(e *Event) { e.Region = we }),
	}
	readBackAll(h, []string{we}, nil)
	s := Analyze(h, Options{})
	eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(2.3))
	eqPtr(t, "failback_at_seconds", s.FailbackAtSeconds, fptr(14))
	eqPtr(t, "failback_rto_seconds", s.FailbackRTOSeconds, fptr(0.5))
	if s.Outage == nil || *s.Outage != (Outage{StartAtSeconds: 5, EndAtSeconds: 7.295, DurationSeconds: 2.295, Failed: 460}) {
		t.Errorf("outage = %+v", s.Outage)
	}
	if o := s.FailbackOutage; o == nil || *o != (Outage{StartAtSeconds: 14, EndAtSeconds: 14.495, DurationSeconds: 0.495, Failed: 100}) {
		t.Errorf("failback outage = %+v", o)
	}
	if s.FailedAfterFault != 560 {
		t.Errorf("failed_after_fault = %d, want 560", s.FailedAfterFault)
	}
	eqPtr(t, "steady_availability_percent", s.SteadyAvailabilityPercent, fptr(100))
	names := []string{}
	for _, p := range s.Phases {
		names = append(names, fmt.Sprintf("%s:%d", p.Name, p.Ops))
	}
	if got := strings.Join(names, " "); got != "steady:1000 fault:460 recovery:1340 failback:1200" {
		t.Errorf("phases %s", got)
	}
	if s.Verdict != VerdictPass {
		t.Errorf("verdict %s: %q", s.Verdict, s.Reasons)
	}
	h.Run.Objectives.RTOSeconds = 0.4
	s = Analyze(h, Options{})
	if !strings.Contains(strings.Join(s.Reasons, "\n"), "failback RTO 0.5 s exceeds the objective 0.4 s") {
		t.Errorf("reasons %q", s.Reasons)
	}
}

func TestSlowAfter(t *testing.T) {
	// region-hang through the front door: requests to the frozen region
	// are retried after a 2 s per-try timeout and succeed, slowly.
	shape := func(o *Op) {
		if o.Intended >= at(5) && o.Intended < at(7) {
			o.Done, o.Region, o.Attempt = o.Intended+at(2.01), ne, 1
		}
	}
	h := openLoop(200, 20, shape)
	h.Events = []Event{event(5, EventFault, nil)}
	readBackAll(h, []string{we, ne}, nil)
	s := Analyze(h, Options{})
	eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(0))
	if s.FailedRequests != 0 {
		t.Errorf("failed_requests = %d, want 0", s.FailedRequests)
	}
	s = Analyze(h, Options{SlowAfter: time.Second})
	eqPtr(t, "rto_seconds with slowAfter 1s", s.RTOSeconds, fptr(2))
	if s.FailedRequests != 0 {
		t.Errorf("slow operations are not failed requests: got %d", s.FailedRequests)
	}
}

func TestAsyncLoss(t *testing.T) {
	// data-primary-loss: westeurope (primary) dies at 5 s. Asynchronous
	// replication had not shipped its last 7 acknowledged writes; they are
	// missing from northeurope, the new primary.
	lostSeqs := map[int64]bool{972: true, 980: true, 981: true, 982: true, 990: true, 991: true, 992: true}
	build := func() *History {
		h := openLoop(200, 20, func(o *Op) {
			switch {
			case o.Intended >= at(5) && o.Intended < at(5.1):
				// In flight when the primary died: timed out.
				o.Outcome, o.Status, o.Region, o.Done, o.Error = Unknown, 0, "", 0, "timeout"
			case failWhere(o, 5.1, 7.3):
			case o.Intended >= at(7.3):
				o.Region = ne
			}
		})
		h.Events = []Event{
			event(5, EventFault, func(e *Event) { e.Name, e.Region = "kill-primary", we }),
			step(6, StepDetect, we),
			step(6.5, StepDecide, ne),
			{T: at(6.9), Kind: EventFailoverStep, Step: StepPromote, Region: ne, Service: "orders", Gap: ptr(int64(7))},
		}
		// Readback: westeurope is dead (no answer); northeurope lacks the
		// 7 writes, and holds 3 of the 6 timed-out ones (seq 1000-1002 were
		// applied and replicated; 1010-1012 were not).
		for i := range h.Ops {
			o := &h.Ops[i]
			if o.Op != OpWrite {
				continue
			}
			h.Readbacks = append(h.Readbacks, Readback{T: at(21), Region: we, Key: o.Key, Error: "connection refused"})
			found := o.Outcome == OK && !lostSeqs[o.Seq] || o.Seq >= 1000 && o.Seq <= 1002
			h.Readbacks = append(h.Readbacks, Readback{T: at(21), Region: ne, Key: o.Key, Found: found})
		}
		return h
	}
	h := build()
	s := Analyze(h, Options{})
	if s.LostWrites != 7 {
		t.Errorf("lost_writes = %d, want 7", s.LostWrites)
	}
	// Last lost: seq 992 acknowledged at 4.9621 s; last surviving before
	// the first lost (972): seq 971 at 4.8571 s.
	if s.RPOSeconds != 0.105 {
		t.Errorf("rpo_seconds = %v, want 0.105", s.RPOSeconds)
	}
	wantLoss := LossRange{LastSurvivingAtSeconds: 4.8571, FirstLostAtSeconds: 4.8621, LastLostAtSeconds: 4.9621}
	if s.Loss == nil || *s.Loss != wantLoss {
		t.Errorf("loss = %+v, want %+v", s.Loss, wantLoss)
	}
	if s.UnknownWritesApplied != 3 || s.UnknownWritesAbsent != 3 {
		t.Errorf("unknown writes applied %d absent %d, want 3 and 3 (neither is loss)", s.UnknownWritesApplied, s.UnknownWritesAbsent)
	}
	if s.SplitBrainWrites != 0 || s.UnverifiedWrites != 0 || s.DivergentWrites != 0 {
		t.Errorf("split brain %d unverified %d divergent %d, want 0", s.SplitBrainWrites, s.UnverifiedWrites, s.DivergentWrites)
	}
	if s.PositionGap == nil || *s.PositionGap != 7 {
		t.Errorf("position_gap = %v, want 7", s.PositionGap)
	}
	if got := strings.Join(s.LostKeys, ","); got != "k972,k980,k981,k982,k990,k991,k992" {
		t.Errorf("lost_keys = %s", got)
	}
	if s.Verdict != VerdictPass {
		t.Errorf("0.105 s of loss is within a 5 s RPO: verdict %s, reasons %q", s.Verdict, s.Reasons)
	}

	// Against RPO 0 (synchronous replication expected), the loss fails.
	h = build()
	h.Run.Objectives.RPOSeconds = 0
	s = Analyze(h, Options{})
	if s.Verdict != VerdictFail || !strings.Contains(strings.Join(s.Reasons, "\n"), "7 acknowledged writes lost over 0.105 s") {
		t.Errorf("verdict %s reasons %q", s.Verdict, s.Reasons)
	}

	// An authoritative region decides: the same writes present in the
	// (revived, not yet rejoined) old primary are still lost.
	h = build()
	for i := range h.Readbacks {
		if r := &h.Readbacks[i]; r.Region == we {
			r.Error, r.Found = "", true
		}
	}
	s = Analyze(h, Options{})
	if s.LostWrites != 7 || s.DivergentWrites != 0 {
		t.Errorf("with the old primary holding them: lost %d divergent %d, want 7 and 0", s.LostWrites, s.DivergentWrites)
	}
}

func TestSplitBrain(t *testing.T) {
	// partition at 10 writes/s: westeurope, cut off, keeps acknowledging
	// its clients' writes. At 15.05 s the controller fences it (the fence
	// cannot reach it) and at 15.1 s promotes northeurope. Until 18 s the
	// even writes still reach westeurope, the odd ones northeurope. At 25 s
	// westeurope rejoins and drops everything it took after the partition.
	build := func(model string, dataRegion bool) *History {
		h := &History{Run: testRun(10)}
		h.Run.Model = model
		for s := range int64(300) {
			t := s * 100_000_000
			o := Op{Seq: s, Op: OpWrite, Key: fmt.Sprintf("w%d", s), Service: "orders", Intended: t, Sent: t, Done: t + 20_000_000,
				Outcome: OK, Status: 201, Region: we, Attempt: 1, Path: PathFrontDoor, Conn: ConnPooled}
			if t >= at(15) && t < at(18) && s%2 == 1 || t >= at(18) {
				o.Region = ne
			}
			if dataRegion {
				o.DataRegion = o.Region
			}
			h.Ops = append(h.Ops, o)
		}
		h.End = &End{T: at(31), Scheduled: 300}
		h.Events = []Event{
			event(5, EventFault, func(e *Event) { e.Name, e.Region = "isolate-region", we }),
			step(15.05, StepFence, we),
			{T: at(15.1), Kind: EventFailoverStep, Step: StepPromote, Region: ne, Service: "orders", Gap: ptr(int64(100))},
			step(25, StepRejoin, we),
		}
		for _, r := range []string{we, ne} {
			for _, o := range h.Ops {
				lost := o.Region == we && o.Intended >= at(5)
				h.Readbacks = append(h.Readbacks, Readback{T: at(30), Region: r, Key: o.Key, Found: !lost})
			}
		}
		return h
	}
	for _, c := range []struct {
		name         string
		model        string
		dataRegion   bool
		lost, sb     int
		rpo          float64
		noteContains string
	}{
		// Lost: seq 50-149 (acknowledged by the primary before the fence)
		// and seq 150 (acknowledged at 15.02 s, before the fence): 101,
		// RPO 15.02 − 4.92 = 10.1 s. Split brain: the even seq 152-178,
		// acknowledged by westeurope after the fence: 14.
		{name: "active-passive, by serving region", model: "active-passive", lost: 101, sb: 14, rpo: 10.1},
		{name: "active-active with data_region", model: "active-active", dataRegion: true, lost: 101, sb: 14, rpo: 10.1},
		// Without data_region, an active-active stamp may have forwarded
		// the write to a remote primary: no attribution, all are loss.
		{name: "active-active without data_region", model: "active-active", lost: 115, sb: 0, rpo: 12.9,
			noteContains: "14 lost writes were acknowledged after a failover step by a region the history does not name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Analyze(build(c.model, c.dataRegion), Options{})
			if s.LostWrites != c.lost || s.SplitBrainWrites != c.sb || s.RPOSeconds != c.rpo {
				t.Errorf("lost %d split brain %d rpo %v, want %d %d %v", s.LostWrites, s.SplitBrainWrites, s.RPOSeconds, c.lost, c.sb, c.rpo)
			}
			if c.sb > 0 {
				if s.SplitBrainKeys[0] != "w152" || s.SplitBrainKeys[len(s.SplitBrainKeys)-1] != "w178" {
					t.Errorf("split_brain_keys = %v", s.SplitBrainKeys)
				}
				if !strings.Contains(strings.Join(s.Reasons, "\n"), "split brain: 14 writes acknowledged by a fenced or demoted primary were lost") {
					t.Errorf("reasons %q", s.Reasons)
				}
			}
			if c.noteContains != "" && !strings.Contains(strings.Join(s.Notes, "\n"), c.noteContains) {
				t.Errorf("notes %q, want one containing %q", s.Notes, c.noteContains)
			}
			if !strings.Contains(strings.Join(s.Notes, "\n"), "replication positions report a gap of 100 writes") {
				t.Errorf("notes %q: want the position gap cross-check", s.Notes)
			}
			eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(0))
			if s.Verdict != VerdictFail || !s.Valid {
				t.Errorf("verdict %s valid %v", s.Verdict, s.Valid)
			}
		})
	}
}

func TestStaleReads(t *testing.T) {
	// 100/s: seq n is intended at n×10 ms and sent on time.
	found, missing := ptr(true), ptr(false)
	op := func(seq int64, kind, key, outcome string, done int64, region string, f *bool) Op {
		t := seq * 10_000_000
		if done == 0 && outcome != Unknown {
			done = t + 2_000_000
		}
		return Op{Seq: seq, Op: kind, Key: key, Intended: t, Sent: t, Done: done, Outcome: outcome, Region: region, Found: f}
	}
	h := &History{Run: testRun(100), End: &End{T: at(1), Scheduled: 10}}
	h.Ops = []Op{
		op(0, OpWrite, "a", OK, 15_000_000, we, nil), // acknowledged at 15 ms
		op(1, OpRead, "a", OK, 0, ne, missing),       // sent at 10 ms, before the ack: not stale
		op(2, OpRead, "a", OK, 0, ne, missing),       // sent at 20 ms, after the ack: stale
		op(3, OpRead, "a", OK, 0, ne, found),         // fresh
		op(4, OpRead, "a", Fail, 0, ne, nil),         // failed: not judged
		op(5, OpWrite, "b", Unknown, 0, "", nil),     // outcome unknown
		op(6, OpRead, "b", OK, 0, we, missing),       // not stale: b was never acknowledged
		op(7, OpRead, "a", OK, 0, we, nil),           // no found field: not judged
		op(8, OpRead, "a", OK, 0, we, missing),       // stale
		op(9, OpRead, "zz", OK, 0, we, missing),      // never written
	}
	h.Readbacks = []Readback{{Region: we, Key: "a", Found: true}, {Region: ne, Key: "a", Found: true}}
	s := Analyze(h, Options{})
	if s.StaleReads != 2 {
		t.Errorf("stale_reads = %d, want 2", s.StaleReads)
	}
	by := map[string]int{}
	for _, r := range s.Regions {
		by[r.Region] = r.StaleReads
	}
	if by[ne] != 1 || by[we] != 1 {
		t.Errorf("stale reads by region = %v, want 1 in each", by)
	}
}

func TestCoordinatedOmission(t *testing.T) {
	// The platform stalls from 5 to 8 s (region-hang); every request in
	// flight then completes at 8 s. 200/s for 15 s.
	t.Run("open loop with a client timeout shows the outage", func(t *testing.T) {
		// Sent on schedule; the client gives up after 1 s. Requests sent
		// before 7 s time out; those sent in [7, 8) complete at 8 s.
		h := openLoop(200, 15, func(o *Op) {
			switch {
			case o.Intended >= at(5) && o.Intended < at(7):
				o.Outcome, o.Status, o.Region, o.Done, o.Error = Unknown, 0, "", o.Sent+at(1), "timeout"
			case o.Intended >= at(7) && o.Intended < at(8):
				o.Done = at(8)
			}
		})
		h.Events = []Event{event(5, EventFault, nil)}
		readBackAll(h, []string{we}, nil)
		s := Analyze(h, Options{})
		if s.FailedRequests != 400 || s.UnknownRequests != 400 {
			t.Errorf("failed_requests = %d (unknown %d), want 400", s.FailedRequests, s.UnknownRequests)
		}
		eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(2))
		if !s.Valid {
			t.Errorf("invalid: %q", s.Reasons)
		}
	})

	t.Run("closed loop hides it", func(t *testing.T) {
		// One worker, next request when the previous one is done, 5 ms
		// each: 200/s too, until one request takes 3 s. It records no
		// failure at all, and sends nothing during the stall.
		h := &History{Run: testRun(200)}
		now := int64(0)
		for s := int64(0); now < at(15); s++ {
			d := int64(5_000_000)
			if now >= at(5) && now < at(5)+d {
				d = at(8) - now
			}
			o := Op{Seq: s, Op: OpRead, Key: "k0", Intended: now, Sent: now, Done: now + d, Outcome: OK, Status: 200, Region: we}
			h.Ops = append(h.Ops, o)
			now += d
		}
		h.End = &End{T: now, Scheduled: int64(len(h.Ops))}
		h.Events = []Event{event(5, EventFault, nil)}
		s := Analyze(h, Options{})
		if s.FailedRequests != 0 {
			t.Errorf("failed_requests = %d: a closed-loop client sees no failure", s.FailedRequests)
		}
		if s.Valid || s.Verdict != VerdictFail {
			t.Errorf("valid %v verdict %s: a closed-loop history must not pass", s.Valid, s.Verdict)
		}
		if !strings.Contains(strings.Join(s.Reasons, "\n"), "off the open-loop schedule") {
			t.Errorf("reasons %q", s.Reasons)
		}
	})

	t.Run("intended-based latency shows the stall, sent-based does not", func(t *testing.T) {
		// The schedule is kept (intended = seq/rate) but one connection
		// serves the requests in order: the request intended at 5 s takes
		// 3 s, the 599 scheduled behind it are sent when it is done, 0.1 ms
		// apart, and each takes 0.1 ms.
		h := openLoop(200, 15, nil)
		free := int64(0)
		for i := range h.Ops {
			o := &h.Ops[i]
			o.Op, o.Key, o.Service, o.Status = OpRead, "k0", "", 200
			o.Sent = max(o.Intended, free)
			d := int64(100_000)
			if o.Intended == at(5) {
				d = at(3)
			}
			o.Done = o.Sent + d
			free = o.Done
		}
		h.Events = []Event{event(5, EventFault, nil)}
		s := Analyze(h, Options{})
		var rec *PhaseStats
		for i := range s.Phases {
			if s.Phases[i].Name == PhaseRecovery {
				rec = &s.Phases[i]
			}
		}
		if rec == nil || rec.Latency == nil || rec.ServiceTime == nil {
			t.Fatalf("no recovery phase: %+v", s.Phases)
		}
		if rec.Latency.P99Ms < 2900 || rec.ServiceTime.P99Ms > 1 || rec.ServiceTime.MaxMs != 3000 {
			t.Errorf("latency p99 %v ms, service time p99 %v ms max %v ms: want ≥ 2900, ≤ 1 and 3000",
				rec.Latency.P99Ms, rec.ServiceTime.P99Ms, rec.ServiceTime.MaxMs)
		}
		if s.FailedRequests != 0 {
			t.Errorf("failed_requests = %d", s.FailedRequests)
		}
		// The 599 queued behind the stall were sent late, and so were the
		// first 8 scheduled after 8 s, while the queue drained (seq 1600+m
		// is sent 59.9 − 4.9m ms late): the generator (one connection) did
		// not keep the schedule, so the run is invalid.
		if s.Valid || s.Generator.LateOps != 607 {
			t.Errorf("valid %v late %d, want invalid with 607 late", s.Valid, s.Generator.LateOps)
		}
	})
}

func TestValidity(t *testing.T) {
	cases := []struct {
		name   string
		change func(h *History)
		reason string // "" for a valid run
	}{
		{name: "valid", change: func(h *History) {}},
		{name: "generator behind", reason: "the generator fell behind: 400 of 4000 operations (10%) were sent more than 25ms after",
			change: func(h *History) {
				for i := range h.Ops {
					if o := &h.Ops[i]; o.Seq%10 == 5 {
						o.Sent, o.Done = o.Intended+at(0.1), o.Intended+at(0.102)
					}
				}
			}},
		{name: "late but within the tolerated share", change: func(h *History) {
			for i := range h.Ops {
				if o := &h.Ops[i]; o.Seq%200 == 5 {
					o.Sent, o.Done = o.Intended+at(0.1), o.Intended+at(0.102)
				}
			}
		}},
		{name: "self-reported", reason: "the generator reported that it fell behind",
			change: func(h *History) { h.End.GeneratorBehind = true }},
		{name: "missing operations", reason: "10 scheduled operations have no record",
			change: func(h *History) { h.Ops = h.Ops[:len(h.Ops)-10] }},
		{name: "off schedule", reason: "1 operations are off the open-loop schedule",
			change: func(h *History) {
				h.Ops[100].Intended += at(0.01)
				h.Ops[100].Sent += at(0.01)
				h.Ops[100].Done += at(0.01)
			}},
		{name: "duplicate record", reason: "1 duplicate records",
			change: func(h *History) { h.Ops = append(h.Ops, h.Ops[7]) }},
		{name: "no readback", reason: "1200 acknowledged writes were never read back",
			change: func(h *History) { h.Readbacks = nil }},
		{name: "no rate", reason: "the run header has no rate",
			change: func(h *History) { h.Run.Rate = 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := openLoop(200, 20, nil)
			readBackAll(h, []string{we}, nil)
			c.change(h)
			s := Analyze(h, Options{})
			if c.reason == "" {
				if !s.Valid || s.Verdict != VerdictPass {
					t.Fatalf("valid %v verdict %s: %q", s.Valid, s.Verdict, s.Reasons)
				}
				return
			}
			if s.Valid || s.Verdict != VerdictFail {
				t.Errorf("valid %v verdict %s: an invalid run cannot pass", s.Valid, s.Verdict)
			}
			if !strings.Contains(strings.Join(s.Reasons, "\n"), "invalid run: "+c.reason) {
				t.Errorf("reasons %q, want one containing %q", s.Reasons, c.reason)
			}
		})
	}
}

func TestClientRetries(t *testing.T) {
	// The generator retries failed operations itself: seq n's first
	// attempt fails, the second succeeds 1 s after the intended instant.
	h := openLoop(200, 20, nil)
	var extra []Op
	for i := range h.Ops {
		o := &h.Ops[i]
		if o.Intended >= at(5) && o.Intended < at(6) {
			retry := *o
			retry.Attempt, retry.Sent, retry.Done, retry.Region = 2, o.Intended+at(0.9), o.Intended+at(1), ne
			failWhere(o, 5, 6)
			extra = append(extra, retry)
		}
	}
	h.Ops = append(h.Ops, extra...)
	h.Events = []Event{event(5, EventFault, nil)}
	readBackAll(h, []string{we, ne}, nil)
	s := Analyze(h, Options{})
	if s.Ops != 4000 || s.Attempts != 4200 || s.FailedRequests != 0 {
		t.Errorf("ops %d attempts %d failed %d, want 4000, 4200, 0", s.Ops, s.Attempts, s.FailedRequests)
	}
	if !s.Valid {
		t.Errorf("retries are not lateness: %q", s.Reasons)
	}
	for _, p := range s.Phases {
		if p.Name == PhaseFault || p.Name == PhaseRecovery {
			if p.Latency.MaxMs != 1000 {
				t.Errorf("%s latency max %v ms, want 1000 (from the intended instant of the first attempt)", p.Name, p.Latency.MaxMs)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{Window: -time.Second, Hold: time.Second, RecoveryRatio: 2, MaxLateFraction: -1}.Validate()
	for _, want := range []string{"window: must not be negative", "recoveryRatio: want 0 to 1, got 2", "maxLateFraction: want 0 to 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to contain %q", err, want)
		}
	}
	if err := (Options{Window: 2 * time.Second, Hold: time.Second}).Validate(); err == nil || !strings.Contains(err.Error(), "longer than hold") {
		t.Errorf("Validate() = %v", err)
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
}

// TestInFlightAtTheFault: operations sent just before the fault and cut
// off by it belong to the outage, not to the steady state the
// availability objective is checked against.
func TestInFlightAtTheFault(t *testing.T) {
	h := openLoop(200, 20, func(o *Op) {
		// In flight at 5 s: sent at 4.99 s, reset by the kill at 5.001 s.
		if o.Intended >= at(4.99) && o.Intended < at(5) {
			o.Outcome, o.Status, o.Region, o.Error = Fail, 0, "", "connection reset by peer"
			o.Done = at(5.001)
		}
		failWhere(o, 5, 6)
	})
	h.Events = []Event{event(5, EventFault, func(e *Event) { e.Name, e.Region = "kill-region", we })}
	readBackAll(h, []string{we}, nil)
	s := Analyze(h, Options{})
	eqPtr(t, "rto_seconds", s.RTOSeconds, fptr(1))
	eqPtr(t, "steady_availability_percent", s.SteadyAvailabilityPercent, fptr(100))
	if s.FailedRequests != 202 || s.Verdict != VerdictPass {
		t.Fatalf("failed %d, verdict %s %q", s.FailedRequests, s.Verdict, s.Reasons)
	}
}

func TestFloorGroups(t *testing.T) {
	terms := []FloorTerm{{Name: "detection", Seconds: 3.5, Group: FloorRouting}, {Name: "promotion", Seconds: 15, Group: FloorData}}
	if f := FloorSeconds(terms); f != 15 {
		t.Errorf("parallel chains: floor %g, want 15", f)
	}
	terms = []FloorTerm{{Name: "detection", Seconds: 0.6, Group: FloorRouting}, {Name: "ttl", Seconds: 1, Group: FloorRouting}, {Name: "promotion", Seconds: 0, Group: FloorData}}
	if f := FloorSeconds(terms); f != 1.6 {
		t.Errorf("one chain: floor %g, want 1.6", f)
	}
	if f := FloorSeconds([]FloorTerm{{Seconds: 1}, {Seconds: 2}}); f != 3 {
		t.Errorf("terms without a group add up: %g", f)
	}
}
