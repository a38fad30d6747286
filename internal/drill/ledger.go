package drill

import (
	"fmt"
	"sort"

	"github.com/geostamp/geostamp/internal/topology"
)

// ledger applies the loss definitions to the acknowledged writes and the
// readback: lost writes, RPO, split brain, divergence, and what became of
// writes whose outcome was unknown or failed.
func (a *analysis) ledger() {
	s := &a.s
	// key → region → found (a region counts only if it answered).
	readback := map[string]map[string]bool{}
	for _, r := range a.h.Readbacks {
		if r.Error != "" {
			continue
		}
		m := readback[r.Key]
		if m == nil {
			m = map[string]bool{}
			readback[r.Key] = m
		}
		m[r.Region] = m[r.Region] || r.Found
	}
	anyFound := func(m map[string]bool) bool {
		for _, f := range m {
			if f {
				return true
			}
		}
		return false
	}

	seen := map[string]bool{}
	var acked []*opv
	for _, v := range a.ops {
		if v.Op.Op != OpWrite {
			continue
		}
		if seen[v.Key] {
			s.Generator.Duplicate++
			continue
		}
		seen[v.Key] = true
		m, read := readback[v.Key]
		switch v.Outcome {
		case OK:
			acked = append(acked, v)
		case Unknown:
			if read && anyFound(m) {
				s.UnknownWritesApplied++
			} else if read {
				s.UnknownWritesAbsent++
			}
		case Fail:
			if read && anyFound(m) {
				s.FailedWritesApplied++
			}
		}
	}
	sort.SliceStable(acked, func(i, j int) bool { return acked[i].Done < acked[j].Done })
	s.AckedWrites = len(acked)

	var lost, survived []*opv
	unattributed := 0
	for _, w := range acked {
		m := readback[w.Key]
		if len(m) == 0 {
			s.UnverifiedWrites++
			continue
		}
		isLost := !anyFound(m)
		if auth := a.authority(w); auth != "" {
			if found, ok := m[auth]; ok {
				isLost = !found
			}
		}
		if !isLost {
			survived = append(survived, w)
			for _, found := range m {
				if !found {
					s.DivergentWrites++
					break
				}
			}
			continue
		}
		switch sb, known := a.splitBrain(w); {
		case sb:
			s.SplitBrainWrites++
			if len(s.SplitBrainKeys) < MaxKeys {
				s.SplitBrainKeys = append(s.SplitBrainKeys, w.Key)
			}
		default:
			if !known {
				unattributed++
			}
			lost = append(lost, w)
			if len(s.LostKeys) < MaxKeys {
				s.LostKeys = append(s.LostKeys, w.Key)
			}
		}
	}
	if unattributed > 0 {
		a.note(fmt.Sprintf("%d lost writes were acknowledged after a failover step by a region the history does not name "+
			"(no data_region, model %q): they are counted as lost writes, not as split brain", unattributed, a.h.Run.Model))
	}
	s.LostWrites = len(lost)
	if len(lost) > 0 {
		firstLost, lastLost := lost[0].Done, lost[len(lost)-1].Done
		point := a.start
		for _, w := range survived {
			if w.Done < firstLost {
				point = max(point, w.Done)
			}
		}
		s.RPOSeconds = sec(lastLost - point)
		s.Loss = &LossRange{LastSurvivingAtSeconds: sec(point), FirstLostAtSeconds: sec(firstLost), LastLostAtSeconds: sec(lastLost)}
	}

	var gap int64
	gaps := false
	for _, e := range a.events {
		if e.Kind == EventFailoverStep && e.Step == StepPromote && e.Gap != nil {
			gap += *e.Gap
			gaps = true
		}
	}
	var discarded int64
	rejoined := false
	for _, e := range a.events {
		if e.Kind == EventFailoverStep && e.Step == StepRejoin && e.Discarded != nil {
			discarded += *e.Discarded
			rejoined = true
		}
	}
	if rejoined {
		s.DiscardedWrites = ptr(discarded)
		if lost := int64(s.LostWrites + s.SplitBrainWrites); discarded < lost {
			a.note(fmt.Sprintf("old primaries discarded %d writes when they rejoined, fewer than the %d acknowledged writes lost", discarded, lost))
		}
	}
	if gaps {
		s.PositionGap = ptr(gap)
		if gap != int64(s.LostWrites+s.SplitBrainWrites) {
			a.note(fmt.Sprintf("replication positions report a gap of %d writes at promotion; the ledger counts %d lost (%d split brain)",
				gap, s.LostWrites+s.SplitBrainWrites, s.SplitBrainWrites))
		}
	}
}

// service returns the header's entry for a write's data service. An
// unnamed service is the only primary-secondary one, when there is one.
func (a *analysis) service(name string) (Service, bool) {
	var only []Service
	for _, s := range a.h.Run.Services {
		if name != "" && s.Name == name {
			return s, true
		}
		if s.Kind == topology.KindPrimarySecondary {
			only = append(only, s)
		}
	}
	if name == "" && len(only) == 1 {
		return only[0], true
	}
	return Service{Name: name}, false
}

// hasPrimary reports whether writes to svc go through a single primary.
func hasPrimary(svc Service, known bool) bool {
	return !known || svc.Kind == "" || svc.Kind == topology.KindPrimarySecondary
}

func stepFor(e *Event, step, service string) bool {
	return e.Kind == EventFailoverStep && e.Step == step && e.Region != "" && (e.Service == "" || e.Service == service)
}

// primaryAt is the primary of svc just before t: the region of the last
// promote step before t, else the header's initial primary.
func (a *analysis) primaryAt(svc Service, t int64) string {
	p := svc.Primary
	for i := range a.events {
		if e := &a.events[i]; e.T < t && stepFor(e, StepPromote, svc.Name) {
			p = e.Region
		}
	}
	return p
}

// authority is the region whose readback decides whether w survived: the
// primary of its service at the end of the run. Empty for services without
// a single primary (multi-write, cache) and when unknown.
func (a *analysis) authority(w *opv) string {
	svc, known := a.service(w.Service)
	if !hasPrimary(svc, known) {
		return ""
	}
	return a.primaryAt(svc, 1<<62)
}

// splitBrain reports whether the lost write w was acknowledged by a region
// that was fenced, or no longer the primary, at acknowledgement time.
// known is false when that cannot be told: the region that acknowledged
// is not recorded and a failover step happened before the acknowledgement.
func (a *analysis) splitBrain(w *opv) (sb, known bool) {
	svc, ok := a.service(w.Service)
	if !hasPrimary(svc, ok) {
		return false, true
	}
	writer := w.DataRegion
	if writer == "" && a.h.Run.Model == topology.ActivePassive {
		writer = w.Region
	}
	fenced, stepped := false, false
	for i := range a.events {
		e := &a.events[i]
		if e.T >= w.Done {
			break
		}
		switch {
		case stepFor(e, StepFence, svc.Name):
			stepped = true
			fenced = fenced || e.Region == writer
		case stepFor(e, StepPromote, svc.Name):
			stepped = true
			if e.Region == writer {
				fenced = false
			}
		}
	}
	if writer == "" {
		return false, !stepped
	}
	p := a.primaryAt(svc, w.Done)
	return fenced || p != "" && p != writer, true
}

// staleReads marks successful reads that did not find the key of a write
// acknowledged before the read was sent.
func (a *analysis) staleReads() {
	ackedAt := map[string]int64{}
	for _, v := range a.ops {
		if v.Op.Op == OpWrite && v.Outcome == OK {
			if _, dup := ackedAt[v.Key]; !dup {
				ackedAt[v.Key] = v.Done
			}
		}
	}
	for _, v := range a.ops {
		if v.Op.Op != OpRead || v.Outcome != OK || v.Found == nil || *v.Found {
			continue
		}
		if done, ok := ackedAt[v.Key]; ok && done < v.Sent {
			v.stale = true
			a.s.StaleReads++
		}
	}
}
