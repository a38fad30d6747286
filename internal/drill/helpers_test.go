package drill

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// Hand-built histories. Times are exact nanoseconds so every expected
// number below is exact.

const (
	we = "westeurope"
	ne = "northeurope"
)

// at converts seconds to nanoseconds on the run's clock.
func at(s float64) int64 { return int64(math.Round(s * 1e9)) }

func testRun(rate float64) Run {
	return Run{
		Version:  Version,
		Scenario: "region-outage",
		Topology: "contoso",
		Model:    "active-passive",
		Regions:  []string{we, ne},
		Services: []Service{{Name: "orders", Kind: "primary-secondary", Replication: "async", Primary: we}},
		Target:   "lab:test",
		Started:  time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
		Rate:     rate,
		Objectives: Objectives{
			RTOSeconds:          30,
			RPOSeconds:          5,
			AvailabilityPercent: 99.95,
		},
		Floor: []FloorTerm{
			{Name: "detection", Seconds: 3.5, Formula: "front door probes: interval 1s × (4 − 2 + 1) + timeout 500ms"},
		},
	}
}

// openLoop builds a history at rate operations per second for dur seconds:
// seq s is intended at s/rate, sent 0.1 ms later and done 2 ms after that,
// ok, served by westeurope through the front door. Three in ten are writes
// (seq%10 < 3) of key k<seq> to orders; the others read the key of the
// write that opened their group of ten, acknowledged before they are sent.
// shape may change each operation.
func openLoop(rate, dur float64, shape func(o *Op)) *History {
	h := &History{Run: testRun(rate)}
	n := int64(math.Round(rate * dur))
	for s := range n {
		t := int64(math.Round(float64(s) * 1e9 / rate))
		o := Op{
			Seq: s, Intended: t, Sent: t + 100_000, Done: t + 2_100_000,
			Outcome: OK, Status: 200, Region: we, Attempt: 1, Path: PathFrontDoor, Conn: ConnPooled,
		}
		if s%10 < 3 {
			o.Op, o.Key, o.Service, o.Status = OpWrite, fmt.Sprintf("k%d", s), "orders", 201
		} else {
			o.Op, o.Key = OpRead, fmt.Sprintf("k%d", s-s%10)
		}
		if shape != nil {
			shape(&o)
		}
		h.Ops = append(h.Ops, o)
	}
	h.End = &End{T: at(dur) + at(1), Scheduled: n}
	return h
}

// failWhere makes operations intended in [from, to) fail as a dead region
// does: connection refused, no response.
func failWhere(o *Op, from, to float64) bool {
	if o.Intended >= at(from) && o.Intended < at(to) {
		o.Outcome, o.Status, o.Region, o.Error = Fail, 0, "", "connection refused"
		return true
	}
	return false
}

// readBackAll reads every write back from regions. A region holds the
// acknowledged writes, except those missing reports.
func readBackAll(h *History, regions []string, missing func(region string, o *Op) bool) {
	t := h.End.T
	for _, r := range regions {
		for i := range h.Ops {
			o := &h.Ops[i]
			if o.Op != OpWrite {
				continue
			}
			found := o.Outcome == OK && (missing == nil || !missing(r, o))
			h.Readbacks = append(h.Readbacks, Readback{T: t, Region: r, Key: o.Key, Service: o.Service, Found: found})
		}
	}
}

func event(t float64, kind string, f func(e *Event)) Event {
	e := Event{T: at(t), Kind: kind}
	if f != nil {
		f(&e)
	}
	return e
}

func step(t float64, step, region string) Event {
	return Event{T: at(t), Kind: EventFailoverStep, Step: step, Region: region, Service: "orders"}
}

// outageHistory is region-outage at 200/s for 20 s: the fault at 5.000 s
// kills westeurope; every operation intended before 7.300 s fails, later
// ones are served by northeurope; nothing is lost.
func outageHistory() *History {
	h := openLoop(200, 20, func(o *Op) {
		if !failWhere(o, 5, 7.3) && o.Intended >= at(7.3) {
			o.Region = ne
		}
	})
	h.Events = []Event{
		event(0, EventPhase, func(e *Event) { e.Phase = PhaseSteady }),
		event(5, EventFault, func(e *Event) { e.Name, e.Region = "kill-region", we }),
		step(5.8, StepDetect, we),
		step(6.5, StepDecide, ne),
		step(6.6, StepFence, we),
		step(6.9, StepPromote, ne),
		step(7.0, StepRepoint, ne),
	}
	readBackAll(h, []string{we, ne}, nil)
	return h
}

func fptr(v float64) *float64 { return &v }

func eqPtr(t *testing.T, name string, got *float64, want *float64) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", name, deref(got), deref(want))
	case *got != *want:
		t.Errorf("%s = %v, want %v", name, *got, *want)
	}
}

func deref(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}
