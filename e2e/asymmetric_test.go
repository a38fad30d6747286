package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestOneWayCutToWitness is issue 11's report, run on the real binary: a
// one-way cut from the orders primary's region to the witness site, held
// for three leases. The primary's lease must end at the witness (its
// keepalives no longer reach the quorum), so northeurope takes over after
// lease + grace; the old primary acknowledges nothing after its lease could
// have expired; sync replication loses no acknowledged write. The other
// directions and faults are covered in-process by internal/failover's
// TestAsymmetricFaults, which is much faster.
func TestOneWayCutToWitness(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			needEngine(t, e.name)
			l := startLab(t, "-f", e.sync)
			if p, _ := settled(t, l, 30*time.Second); p != we {
				t.Fatalf("primary %s at start, want %s", p, we)
			}
			g, stop := writeLoad(t, l, 100, we, ne)
			time.Sleep(time.Second)
			cut := l.mustInject(t, "link", "cut", we, "francecentral", "--one-way")
			margin := lease / 5
			// etcd revokes expired leases in a scan every 500 ms.
			bound := lease + grace + margin + 500*time.Millisecond
			eventually(t, 3*lease, "northeurope promoted while westeurope cannot reach the witness", func() error {
				if p := primaries(t, l); !slices.Equal(p, []string{ne}) {
					return fmt.Errorf("primaries %v", p)
				}
				return nil
			})
			// The promotion's own event times it (the polling above adds the
			// control API's status probes).
			evs := failoverEvents(t, l, cut.start)
			promote, ok := findEvent(evs, ne, "promote")
			if !ok {
				t.Fatalf("no promote event of %s: %+v", ne, evs)
			}
			detect, _ := findEvent(evs, ne, "detect")
			decide, _ := findEvent(evs, ne, "decide")
			took := promote.Time.Sub(cut.start)
			t.Logf("%s: after the one-way cut: the lease ended at the witness (detect) +%v, decide +%v, promoted +%v (lease + grace + margin = %v, + etcd's expiry scan: %v)",
				e.name, detect.Time.Sub(cut.start).Round(time.Millisecond), decide.Time.Sub(cut.start).Round(time.Millisecond), took.Round(time.Millisecond), lease+grace+margin, bound)
			// The configuration bounds the decision; the promotion itself
			// then takes the engine's time (pg_promote: up to ~0.7 s).
			if d := decide.Time.Sub(cut.start); decide.Time.IsZero() || d > bound {
				t.Errorf("decided to promote %v after the cut, later than %v", d, bound)
			}
			if decide.Time.Sub(detect.Time) < grace {
				t.Errorf("decided %v after the lease ended, before grace %v", decide.Time.Sub(detect.Time), grace)
			}
			if rest := 3*lease - time.Since(cut.start); rest > 0 {
				time.Sleep(rest)
			}
			l.mustInject(t, "link", "heal", we, "francecentral", "--one-way")
			if p, _ := settled(t, l, 30*time.Second); p != ne {
				t.Fatalf("primary %s after the heal, want %s", p, ne)
			}
			time.Sleep(time.Second)
			stop()
			acks := g.acked()
			lastOld := map[string]time.Time{} // by the region whose ingress answered
			for _, a := range acks {
				if a.Data == we && a.At.After(lastOld[a.Via]) {
					lastOld[a.Via] = a.At
				}
				// Received by the client after the earliest time a new
				// primary could have been granted (the last renewal came
				// before the cut) means acknowledged late.
				if a.Data == we && a.At.After(cut.end.Add(lease)) {
					t.Errorf("write %s acknowledged by the old primary at cut+%v, after its lease could have expired", a.ID, a.At.Sub(cut.start))
				}
			}
			// Received by the client: the acknowledgement left the server
			// earlier, by the front door's and the WAN's latency.
			t.Logf("%s: last write acknowledged by the old primary received through %s at cut+%v, through %s at cut+%v (its deadline: at the latest cut+%v)",
				e.name, we, lastOld[we].Sub(cut.start).Round(time.Millisecond), ne, lastOld[ne].Sub(cut.start).Round(time.Millisecond), lease-margin)
			if lost := missing(t, l, ne, acks); len(lost) > 0 {
				t.Errorf("%d of %d acknowledged writes lost, e.g. %+v", len(lost), len(acks), lost[0])
			}
			t.Logf("%s: %d acknowledged writes, none lost", e.name, len(acks))
		})
	}
}
