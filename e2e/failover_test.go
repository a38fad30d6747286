package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/testenv"
)

// Failover tests run the lab with fast failover settings
// (testdata/failover*.yaml: lease 3s, grace 1s, automatic) and check
// from the client side, with a ledger of acknowledged writes.

const (
	we    = "westeurope"
	ne    = "northeurope"
	lease = 3 * time.Second
	grace = time.Second
)

// engines are the primary-secondary engines the failover tests run on.
var engines = []struct{ name, async, sync string }{
	{"jetstream", "testdata/failover.yaml", "testdata/failover-sync.yaml"},
	{"postgres", "testdata/failover-pg.yaml", "testdata/failover-pg-sync.yaml"},
}

func needEngine(t *testing.T, engine string) {
	t.Helper()
	if engine != "postgres" {
		return
	}
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
		testenv.Skip(t, "POSTGRES", "PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
	}
}

// ack is one acknowledged write.
type ack struct {
	ID     string
	Seq    uint64
	Via    string // region whose ingress answered
	Data   string // region whose primary acknowledged (data_region)
	At     time.Time
	Status int
}

// ledger records every write attempt's outcome, outside the data store.
type ledger struct {
	mu     sync.Mutex
	acks   []ack
	failed []ack // ID empty; At and Status (0: no answer) set
}

func (g *ledger) acked() []ack {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.acks)
}

// writeLoad sends order writes at rate per second in total, spread over
// the given regions' ingresses, open loop, until stop is called.
func writeLoad(t *testing.T, l *runningLab, rate int, regions ...string) (g *ledger, stop func()) {
	t.Helper()
	g = &ledger{}
	ctx, cancel := context.WithCancel(context.Background())
	client := &http.Client{Timeout: 3 * time.Second}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 128)
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			region := regions[i%len(regions)]
			select {
			case sem <- struct{}{}:
			default:
				continue // 128 in flight: the region is stuck; the ledger shows it
			}
			wg.Go(func() {
				defer func() { <-sem }()
				a := ack{Via: region}
				req, _ := http.NewRequest(http.MethodPost, l.eps.Regions[region].Ingress+"/orders", strings.NewReader(`{"item":"e2e","qty":1}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Geostamp-FDID", l.eps.FDID)
				resp, err := client.Do(req)
				a.At = time.Now()
				if err == nil {
					var body struct {
						ID   string `json:"id"`
						Seq  uint64 `json:"seq"`
						Data string `json:"data_region"`
					}
					a.Status = resp.StatusCode
					if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&body) == nil {
						a.ID, a.Seq, a.Data = body.ID, body.Seq, body.Data
					}
					resp.Body.Close()
				}
				g.mu.Lock()
				if a.ID != "" {
					g.acks = append(g.acks, a)
				} else {
					g.failed = append(g.failed, a)
				}
				g.mu.Unlock()
			})
		}
	})
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop) // a test that fails early stops its load too
	return g, stop
}

// missing reads every acknowledged write back from region and returns the
// ones it does not have; it retries reads that get no clear answer.
func missing(t *testing.T, l *runningLab, region string, acks []ack) []ack {
	t.Helper()
	out, err := missingErr(l, region, acks)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func missingErr(l *runningLab, region string, acks []ack) ([]ack, error) {
	var out []ack
	for _, a := range acks {
		for attempt := 0; ; attempt++ {
			code, _, body, err := l.send(http.MethodGet, l.eps.Regions[region].Ingress+"/orders/"+a.ID, "")
			if err == nil && code == http.StatusOK {
				break
			}
			if err == nil && code == http.StatusNotFound {
				out = append(out, a)
				break
			}
			if attempt > 50 {
				return nil, fmt.Errorf("read back %s from %s: %d %s %v", a.ID, region, code, body, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return out, nil
}

// converged waits until every region holds every acknowledged write, or
// returns what the given region still lacks after the bound.
func converged(t *testing.T, l *runningLab, region string, acks []ack, bound time.Duration) []ack {
	t.Helper()
	out, err := convergedErr(l, region, acks, bound)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func convergedErr(l *runningLab, region string, acks []ack, bound time.Duration) ([]ack, error) {
	deadline := time.Now().Add(bound)
	for {
		m, err := missingErr(l, region, acks)
		if err != nil || len(m) == 0 || time.Now().After(deadline) {
			return m, err
		}
		acks = m
		time.Sleep(200 * time.Millisecond)
	}
}

// orders returns the orders service's status in each reachable region.
func orders(t *testing.T, l *runningLab) map[string]data.Status {
	t.Helper()
	out, err := ordersErr(t.Context(), l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ordersErr(ctx context.Context, l *runningLab) (map[string]data.Status, error) {
	var st map[string]lab.RegionStatus
	if err := l.client.Do(ctx, http.MethodGet, "/v1/data", nil, &st); err != nil {
		return nil, err
	}
	out := map[string]data.Status{}
	for r, st := range st {
		for _, s := range st.Data {
			if s.Service == "orders" {
				out[r] = s
			}
		}
	}
	return out, nil
}

// primaries lists the regions whose orders replica says it is primary.
func primaries(t *testing.T, l *runningLab) []string {
	var out []string
	for r, s := range orders(t, l) {
		if s.Role == data.RolePrimary {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// settled waits until exactly one region is the writable primary of orders
// and every other region follows it at the same epoch.
func settled(t *testing.T, l *runningLab, bound time.Duration) (primary string, epoch uint64) {
	t.Helper()
	primary, epoch, err := settledErr(l, bound)
	if err != nil {
		t.Fatal(err)
	}
	return primary, epoch
}

func settledErr(l *runningLab, bound time.Duration) (primary string, epoch uint64, err error) {
	_, err = within(bound, "one primary, every other region following it", func() error {
		st, err := ordersErr(context.Background(), l)
		if err != nil {
			return err
		}
		primary, epoch = "", 0
		for r, s := range st {
			if s.Role == data.RolePrimary && s.Writable {
				if primary != "" {
					return fmt.Errorf("two primaries: %s and %s", primary, r)
				}
				primary, epoch = r, s.Epoch
			}
		}
		if primary == "" || len(st) != len(l.eps.Regions) {
			return fmt.Errorf("no writable primary among %d regions: %+v", len(st), st)
		}
		for r, s := range st {
			if r != primary && (s.Role != data.RoleSecondary || s.Primary != primary || s.Epoch != epoch) {
				return fmt.Errorf("%s is %s of %s at epoch %d, want secondary of %s at %d", r, s.Role, s.Primary, s.Epoch, primary, epoch)
			}
			if s.Rebuilding {
				return fmt.Errorf("%s is still rebuilding: %s", r, s.Detail)
			}
		}
		return nil
	})
	return primary, epoch, err
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func failoverEvents(t *testing.T, l *runningLab, since time.Time) []lab.Event {
	t.Helper()
	var evs []lab.Event
	if err := l.client.Do(t.Context(), http.MethodGet, "/v1/events", nil, &evs); err != nil {
		t.Fatal(err)
	}
	var out []lab.Event
	for _, e := range evs {
		if e.Kind == "failover" && e.Service == "orders" && !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

func findEvent(evs []lab.Event, region, step string) (lab.Event, bool) {
	for _, e := range evs {
		if e.Region == region && e.Step == step {
			return e, true
		}
	}
	return lab.Event{}, false
}

// longestGap is the longest time without an acknowledged write between
// from and to: the write unavailability a client saw.
func longestGap(acks []ack, from, to time.Time) time.Duration {
	times := []time.Time{from}
	for _, a := range acks {
		if a.At.After(from) && a.At.Before(to) {
			times = append(times, a.At)
		}
	}
	times = append(times, to)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

func TestFailoverPlanned(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			needEngine(t, e.name)
			l := startLab(t, "-f", e.async)
			settled(t, l, 20*time.Second)
			g, stop := writeLoad(t, l, 200, we, ne)
			time.Sleep(2 * time.Second)
			for _, to := range []string{ne, we} { // failover, then failback
				asked := time.Now()
				out, errOut, code := l.cli("failover", "orders", "--to", to, "--json")
				if code != 0 {
					stop()
					t.Fatalf("failover to %s: exit %d: %s %s", to, code, out, errOut)
				}
				res := decode[lab.FailoverResult](t, []byte(out))
				time.Sleep(1500 * time.Millisecond)
				gap := longestGap(g.acked(), asked.Add(-500*time.Millisecond), time.Now())
				t.Logf("%s: planned failover to %s: promoted %.3fs after the request; longest time without an acknowledged write %s; steps:", e.name, to, res.Seconds, gap.Round(time.Millisecond))
				for _, s := range res.Steps {
					t.Logf("  %s %-12s %-8s epoch %d pos %d %s", s.Time.Format("15:04:05.000"), s.Region, s.Step, s.Epoch, s.Position, s.Detail)
				}
				if _, ok := findEvent(res.Steps, to, "promote"); !ok {
					t.Errorf("no promote step of %s", to)
				}
				checkReplicationState(t, l, to, res.Epoch)
			}
			stop()
			acks := g.acked()
			if len(acks) < 500 {
				t.Fatalf("only %d writes acknowledged in ~5s at 200/s", len(acks))
			}
			primary, _ := settled(t, l, 10*time.Second)
			for _, r := range []string{primary, ne} {
				if m := converged(t, l, r, acks, 10*time.Second); len(m) > 0 {
					t.Errorf("%d of %d acknowledged writes missing in %s after planned failovers, e.g. %+v", len(m), len(acks), r, m[0])
				}
			}
			t.Logf("%s: %d writes acknowledged, %d failed or unanswered, 0 lost", e.name, len(acks), len(g.failed))
		})
	}
}

// checkReplicationState checks that the control API's read-write endpoint,
// the primary's metrics and its /health/stamp all name the new primary.
func checkReplicationState(t *testing.T, l *runningLab, primary string, epoch uint64) {
	t.Helper()
	var g lab.Group
	if err := l.client.Do(t.Context(), http.MethodGet, "/v1/failover/orders", nil, &g); err != nil {
		t.Fatal(err)
	}
	if g.Primary != primary || g.Epoch != epoch || !strings.Contains(g.ReadWrite, l.eps.Regions[primary].Address+":") || len(g.ReadOnly) != 1 {
		t.Errorf("GET /v1/failover/orders = %+v, want primary %s at epoch %d with its read-write endpoint", g, primary, epoch)
	}
	eventually(t, 2*time.Second, "metrics and health of the new primary", func() error {
		_, _, metrics := l.request(http.MethodGet, l.eps.Regions[primary].Admin+"/metrics", "")
		want := fmt.Sprintf(`geostamp_data_role{region=%q,role="primary",service="orders"} 1`, primary)
		if !strings.Contains(string(metrics), want) {
			return fmt.Errorf("metrics lack %s", want)
		}
		_, _, health := l.request(http.MethodGet, l.eps.Regions[primary].Health, "")
		if !strings.Contains(string(health), fmt.Sprintf("primary, primary %s, epoch %d", primary, epoch)) {
			return fmt.Errorf("/health/stamp does not show the role: %s", health)
		}
		return nil
	})
}

func TestFailoverForcedAsync(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			needEngine(t, e.name)
			l := startLab(t, "-f", e.async)
			settled(t, l, 20*time.Second)
			g, stop := writeLoad(t, l, 200, we)
			time.Sleep(time.Second)
			// Replication to northeurope stops; westeurope keeps its lease
			// through the witness and acknowledges writes only it has.
			l.mustInject(t, "link", "cut", we, ne)
			time.Sleep(time.Second)
			l.mustInject(t, "region", "kill", we)
			stop()
			killed := time.Now()
			out, errOut, code := l.cli("failover", "orders", "--to", ne, "--forced", "--json")
			if code != 0 {
				t.Fatalf("forced failover: exit %d: %s %s", code, out, errOut)
			}
			res := decode[lab.FailoverResult](t, []byte(out))
			promote, ok := findEvent(failoverEvents(t, l, killed.Add(-time.Second)), ne, "promote")
			if !ok {
				t.Fatalf("no promote event of %s: %+v", ne, res.Steps)
			}
			acks := g.acked()
			var beyond []string
			for _, a := range acks {
				if a.Seq > promote.Position {
					beyond = append(beyond, a.ID)
				}
			}
			lost := missing(t, l, ne, acks)
			var lostIDs []string
			for _, a := range lost {
				lostIDs = append(lostIDs, a.ID)
			}
			slices.Sort(beyond)
			slices.Sort(lostIDs)
			t.Logf("%s: forced failover %.3fs after the kill; %d writes acknowledged; promoted at position %d; %d acknowledged writes beyond it; %d missing by the ledger; promote gap (last report) %d",
				e.name, res.Seconds, len(acks), promote.Position, len(beyond), len(lostIDs), deref(promote.Gap))
			if len(beyond) == 0 {
				t.Fatal("the cut link left no unreplicated tail; the test proves nothing")
			}
			if !slices.Equal(beyond, lostIDs) {
				t.Errorf("lost writes by the ledger (%d) differ from the writes beyond the promoted position (%d)", len(lostIDs), len(beyond))
			}
			// The old primary comes back and rejoins, discarding its tail.
			l.mustInject(t, "link", "heal", we, ne)
			back := time.Now()
			l.mustInject(t, "region", "restart", we)
			primary, _ := settled(t, l, 30*time.Second)
			if primary != ne {
				t.Errorf("primary after the old one came back: %s, want %s", primary, ne)
			}
			var ev lab.Event
			eventually(t, 30*time.Second, "the old primary's rejoin", func() error {
				var ok bool
				if ev, ok = findEvent(failoverEvents(t, l, back), we, "rejoin"); !ok {
					return fmt.Errorf("no rejoin event of %s", we)
				}
				return nil
			})
			discarded := deref(ev.Discarded)
			t.Logf("%s: %s rejoined %s after its restart and discarded %d writes (%d acknowledged ones among them)", e.name, we, ev.Time.Sub(back).Round(time.Millisecond), discarded, len(lostIDs))
			if discarded < uint64(len(lostIDs)) {
				t.Errorf("rejoin discarded %d writes, fewer than the %d acknowledged ones lost", discarded, len(lostIDs))
			}
		})
	}
}

func TestFailoverSyncLosesNothing(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			needEngine(t, e.name)
			l := startLab(t, "-f", e.sync)
			settled(t, l, 20*time.Second)
			g, stop := writeLoad(t, l, 200, we, ne)
			time.Sleep(2 * time.Second)
			killed := time.Now()
			l.mustInject(t, "region", "kill", we)
			eventually(t, lease+grace+10*time.Second, "automatic promotion of northeurope", func() error {
				if p := primaries(t, l); !slices.Equal(p, []string{ne}) {
					return fmt.Errorf("primaries %v", p)
				}
				return nil
			})
			took := time.Since(killed)
			time.Sleep(time.Second)
			stop()
			acks := g.acked()
			lost := missing(t, l, ne, acks)
			t.Logf("%s sync: automatic failover %s after the kill; %d acknowledged, %d lost", e.name, took.Round(time.Millisecond), len(acks), len(lost))
			if len(lost) > 0 {
				t.Errorf("sync replication lost %d acknowledged writes, e.g. %+v", len(lost), lost[0])
			}
		})
	}
}

func TestAutomaticFailoverNeedsTheWitness(t *testing.T) {
	l := startLab(t, "-f", "testdata/failover.yaml")
	settled(t, l, 20*time.Second)

	// The primary region dies: promoted after lease + grace, not before.
	kill := l.mustInject(t, "region", "kill", we)
	killed := kill.start // the earliest the kill can have been: a lower bound is checked from it
	eventually(t, lease+grace+10*time.Second, "automatic promotion of northeurope", func() error {
		if p := primaries(t, l); !slices.Equal(p, []string{ne}) {
			return fmt.Errorf("primaries %v", p)
		}
		return nil
	})
	took := time.Since(killed)
	// The lease ends lease after its last renewal, which came up to one
	// renewal period ((lease − lease/5)/3) before the kill.
	if floor := lease - (lease-lease/5)/3 + grace; took < floor {
		t.Errorf("promoted %s after the kill, before lease %s − one renewal period + grace %s", took, lease, grace)
	}
	evs := failoverEvents(t, l, killed)
	detect, _ := findEvent(evs, ne, "detect")
	decide, _ := findEvent(evs, ne, "decide")
	t.Logf("primary killed: detected %s, decided %s, promoted %s after the kill", detect.Time.Sub(killed).Round(time.Millisecond), decide.Time.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	if decide.Time.Sub(detect.Time) < grace-50*time.Millisecond {
		t.Errorf("decided %s after detecting, before grace %s", decide.Time.Sub(detect.Time), grace)
	}
	l.mustInject(t, "region", "restart", we)
	settled(t, l, 30*time.Second)

	// Now northeurope is primary. westeurope also loses the witness, then
	// the primary dies: westeurope alone has no quorum and must not promote.
	l.mustInject(t, "link", "cut", we, "francecentral")
	l.mustInject(t, "region", "kill", ne)
	time.Sleep(lease + grace + 3*time.Second)
	if p := primaries(t, l); len(p) != 0 {
		t.Fatalf("primaries %v without a witness quorum, want none", p)
	}
	code, _, body := l.request(http.MethodPost, l.eps.Regions[we].Ingress+"/orders", `{"item":"x","qty":1}`)
	if code/100 == 2 {
		t.Fatalf("westeurope acknowledged a write with no primary anywhere: %s", body)
	}
	healed := time.Now()
	l.mustInject(t, "link", "heal", we, "francecentral")
	eventually(t, lease+grace+10*time.Second, "promotion once the witness is back", func() error {
		if p := primaries(t, l); !slices.Equal(p, []string{we}) {
			return fmt.Errorf("primaries %v", p)
		}
		return nil
	})
	t.Logf("no promotion without the witness; promoted %s after the witness link healed", time.Since(healed).Round(time.Millisecond))
	l.mustInject(t, "region", "restart", ne)
	settled(t, l, 30*time.Second)

	// A partition isolates the primary (westeurope): it must refuse writes
	// within the lease, and never acknowledge one again until it follows the
	// new primary.
	g, stop := writeLoad(t, l, 100, we)
	time.Sleep(time.Second)
	cut := l.mustInject(t, "link", "cut", we, ne).start
	// The primary is isolated once it loses the witness too; an upper
	// bound is checked from then.
	isolated := l.mustInject(t, "link", "cut", we, "francecentral").end
	var refused time.Duration
	eventually(t, lease+2*time.Second, "westeurope refusing writes", func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, f := range g.failed {
			if f.At.After(cut) {
				refused = f.At.Sub(isolated)
				return nil
			}
		}
		return fmt.Errorf("still accepting")
	})
	if refused > lease+300*time.Millisecond {
		t.Errorf("isolated primary refused writes %s after the cut, later than its lease %s", refused, lease)
	}
	eventually(t, lease+grace+10*time.Second, "northeurope promoted", func() error {
		if p := primaries(t, l); !slices.Contains(p, ne) {
			return fmt.Errorf("primaries %v", p)
		}
		return nil
	})
	time.Sleep(time.Second)
	l.mustInject(t, "link", "heal", we, ne)
	l.mustInject(t, "link", "heal", we, "francecentral")
	settled(t, l, 20*time.Second)
	time.Sleep(time.Second)
	stop()
	fence, ok := findEvent(failoverEvents(t, l, cut), we, "fence")
	if !ok {
		t.Fatal("no fence event of the isolated primary")
	}
	var after []ack
	for _, a := range g.acked() {
		if a.At.After(fence.Time) {
			after = append(after, a)
			if a.Data != ne {
				t.Errorf("write %s acknowledged after the fence by the primary of %q, want %s", a.ID, a.Data, ne)
			}
		}
	}
	if lost := missing(t, l, ne, after); len(lost) > 0 {
		t.Errorf("the fenced old primary acknowledged %d writes that the new primary does not have, e.g. %+v", len(lost), lost[0])
	}
	t.Logf("isolated primary: first refusal %s after the cut (lease %s), fenced at %s; %d writes acknowledged through it afterwards, all on the new primary",
		refused.Round(time.Millisecond), lease, fence.Time.Sub(cut).Round(time.Millisecond), len(after))
}

// TestRandomizedFailoverTrials injects 20 seeded random faults into one lab
// with sync replication; after each, exactly one writable primary must
// remain and no acknowledged write may be lost. GEOSTAMP_SEED replays a run.
func TestRandomizedFailoverTrials(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			needEngine(t, e.name)
			randomTrials(t, e.sync)
		})
	}
}

func randomTrials(t *testing.T, topology string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GEOSTAMP_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("GEOSTAMP_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with GEOSTAMP_SEED=%d)", seed, seed)
	l := startLab(t, "-f", topology)
	settled(t, l, 20*time.Second)
	g, stop := writeLoad(t, l, 100, we, ne)
	defer stop()
	lg := &labGroup{l: l, g: g}
	tr := trialRunner{seed: seed, trials: 20, faults: failoverFaults}
	err := tr.run(t.Context(), lg, lg, func(r trialResult) {
		t.Logf("trial %2d: %-28s %5s: primary %s -> %s, %d acknowledged writes, none lost", r.trial, r.fault, r.hold.Round(100*time.Millisecond), r.before.primary, r.after.primary, lg.checked)
	})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	primary, _ := settled(t, l, 30*time.Second)
	acks := g.acked()
	if lost := converged(t, l, primary, acks, 5*time.Second); len(lost) > 0 {
		t.Fatalf("seed %d: %d of %d acknowledged writes missing at the end", seed, len(lost), len(acks))
	}
}

// failoverFaults are the random trials' faults. Every command is checked
// (labGroup.apply): a fault that fails to inject fails its trial.
var failoverFaults = []trialFault{
	{name: "kill primary", inject: do([]string{"region", "kill", primary}), heal: do([]string{"region", "restart", primary})},
	{name: "kill secondary", inject: do([]string{"region", "kill", secondary}), heal: do([]string{"region", "restart", secondary})},
	{name: "freeze primary", inject: do([]string{"region", "freeze", primary}), heal: do([]string{"region", "resume", primary})},
	{name: "isolate primary",
		inject: do([]string{"link", "cut", primary, secondary}, []string{"link", "cut", primary, witness}),
		heal:   do([]string{"link", "heal", primary, secondary}, []string{"link", "heal", primary, witness})},
	{name: "isolate secondary",
		inject: do([]string{"link", "cut", secondary, primary}, []string{"link", "cut", secondary, witness}),
		heal:   do([]string{"link", "heal", secondary, primary}, []string{"link", "heal", secondary, witness})},
	{name: "partition regions", inject: do([]string{"link", "cut", primary, secondary}), heal: do([]string{"link", "heal", primary, secondary})},
	{name: "secondary loses the witness", inject: do([]string{"link", "cut", secondary, witness}), heal: do([]string{"link", "heal", secondary, witness})},
	// Asymmetric faults (issue 11): one-way cuts, a latency spike, the
	// primary killed during a planned failover.
	oneWayFault(primary, witness),
	oneWayFault(witness, primary),
	oneWayFault(primary, secondary),
	oneWayFault(secondary, primary),
	{name: "300ms latency spike between the regions",
		inject: do([]string{"link", "latency", primary, secondary, "300ms"}),
		heal:   do([]string{"link", "latency", primary, secondary, "12ms"})}, // the topologies' latency
	{name: "primary killed before its planned fence", inject: killDuringPlanned(0), heal: do([]string{"region", "restart", primary})},
	{name: "primary killed after its planned fence", inject: killDuringPlanned(200 * time.Millisecond), heal: do([]string{"region", "restart", primary})},
}

func oneWayFault(from, to string) trialFault {
	name := "one-way " + strings.Trim(from, "{}") + "->" + strings.Trim(to, "{}")
	return trialFault{name: name,
		inject: do([]string{"link", "cut", from, to, "--one-way"}),
		heal:   do([]string{"link", "heal", from, to, "--one-way"})}
}

// killDuringPlanned requests a planned failover to the secondary and kills
// the primary after (a controller tick, 100 ms, is when it fences; 200 ms:
// usually after its fence, before the target took over), or with after 0
// just before the request. The failover must complete all the same: the
// command succeeds and the secondary is the primary.
func killDuringPlanned(after time.Duration) action {
	return func(_ context.Context, inj injector, r roles) error {
		lg := inj.(*labGroup)
		kill := func() error { return inj.apply(r.expand([]string{"region", "kill", primary})) }
		if after == 0 {
			if err := kill(); err != nil {
				return err
			}
		}
		done := make(chan error, 1)
		go func() {
			args := []string{"failover", "orders", "--to", r.secondary, "--planned", "--timeout", "15s"}
			_, stderr, code, err := lg.l.run(args...)
			if err == nil && code != 0 {
				err = fmt.Errorf("%s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(stderr))
			}
			if err == nil {
				var st map[string]data.Status
				if st, err = ordersErr(context.Background(), lg.l); err == nil && st[r.secondary].Role != data.RolePrimary {
					err = fmt.Errorf("%s: exit 0 but %s is %s", strings.Join(args, " "), r.secondary, st[r.secondary].Role)
				}
			}
			done <- err
		}()
		var err error
		if after > 0 {
			time.Sleep(after)
			err = kill()
		}
		return errors.Join(err, <-done)
	}
}

// labGroup is the orders failover group of a running lab under sync
// replication, with a write load whose ledger must never lose a write.
type labGroup struct {
	l       *runningLab
	g       *ledger
	checked int // acknowledged writes verified so far (sync: none may go missing later)
	primary string
}

func (lg *labGroup) apply(args []string) error { return lg.l.inject(args...) }

func (lg *labGroup) settle(context.Context) (roles, error) {
	p, _, err := settledErr(lg.l, 30*time.Second)
	if err != nil {
		return roles{}, err
	}
	lg.primary = p
	s := ne
	if p == ne {
		s = we
	}
	return roles{primary: p, secondary: s, witness: "francecentral"}, nil
}

// sample: never two primaries at once.
func (lg *labGroup) sample(ctx context.Context) error {
	st, err := ordersErr(ctx, lg.l)
	if err != nil {
		return err
	}
	var p []string
	for r, s := range st {
		if s.Role == data.RolePrimary {
			p = append(p, r)
		}
	}
	if len(p) > 1 {
		slices.Sort(p)
		return fmt.Errorf("two primaries %v", p)
	}
	return nil
}

// verify: the settled primary has every write acknowledged since the last
// trial, and still has a sample of the earlier ones (so that a trial that
// loses old writes is named, not only the end of the run).
func (lg *labGroup) verify(context.Context) error {
	acks := lg.g.acked()
	check := slices.Clone(acks[lg.checked:])
	for i, stride := 0, max(1, lg.checked/50); i < lg.checked; i += stride {
		check = append(check, acks[i])
	}
	lost, err := convergedErr(lg.l, lg.primary, check, 5*time.Second)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("%d of %d acknowledged writes lost, e.g. %+v", len(lost), len(acks), lost[0])
	}
	lg.checked = len(acks)
	return nil
}
