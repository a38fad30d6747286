package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/drill"
	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/topology"
)

// Drill tests run `geostamp drill` against a lab with short windows (a few
// seconds of steady state, the fault, 10 s or so of observation) and check
// summary.json. Timing bounds follow from the topology.

// runDrill runs `geostamp drill ARGS --lab DIR --out OUT --json` and returns
// the summary, the progress output and the exit status.
func (l *runningLab) runDrill(t *testing.T, out string, args ...string) (drill.Summary, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{"drill"}, append(args, "--lab", l.dir, "--out", out, "--json")...)
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("geostamp %v: %v\n%s", args, err, e.String())
	}
	t.Logf("geostamp %s: exit %d\n%s", strings.Join(args, " "), code, e.String())
	if code == 2 {
		t.Fatalf("the drill failed to run (exit 2)")
	}
	var s drill.Summary
	if err := json.Unmarshal(o.Bytes(), &s); err != nil {
		t.Fatalf("summary on stdout: %v\n%s", err, o.String())
	}
	// The same summary is in DIR/summary.json, and exit status 0 means pass.
	b, err := os.ReadFile(filepath.Join(out, drill.SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var file drill.Summary
	if err := json.Unmarshal(b, &file); err != nil || file.Verdict != s.Verdict || file.Ops != s.Ops {
		t.Fatalf("summary.json differs from stdout: %v", err)
	}
	if (code == 0) != (s.Verdict == drill.VerdictPass) {
		t.Fatalf("exit %d with verdict %s", code, s.Verdict)
	}
	checkReportWritten(t, out, s)
	return s, e.String(), code
}

// checkReportWritten checks, on every run, that report.html was rendered
// with the run's verdict and timeline (checkReportInBrowser lays it out).
func checkReportWritten(t *testing.T, out string, s drill.Summary) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, drill.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if page := string(b); !strings.Contains(page, `<meta name="geostamp-verdict" content="`+s.Verdict+`"`) || !strings.Contains(page, `<svg id="timeline"`) {
		t.Errorf("report.html lacks the verdict %q or the timeline (%d bytes)", s.Verdict, len(b))
	}
}

// runDrillWatching is runDrill that calls watch with each line of the
// drill's progress output as it comes.
func (l *runningLab) runDrillWatching(t *testing.T, out string, watch func(line string), args ...string) (drill.Summary, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{"drill"}, append(args, "--lab", l.dir, "--out", out, "--json")...)
	cmd := exec.CommandContext(ctx, binary, args...)
	var o bytes.Buffer
	cmd.Stdout = &o
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	var e bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			e.WriteString(sc.Text() + "\n")
			watch(sc.Text())
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	code := cmd.ProcessState.ExitCode()
	t.Logf("geostamp %s: exit %d\n%s", strings.Join(args, " "), code, e.String())
	if err != nil && code < 0 || code == 2 {
		t.Fatalf("the drill failed to run: %v", err)
	}
	var s drill.Summary
	if err := json.Unmarshal(o.Bytes(), &s); err != nil {
		t.Fatalf("summary on stdout: %v\n%s", err, o.String())
	}
	checkReportWritten(t, out, s)
	return s, e.String(), code
}

func ptrString(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%.3f", *p)
}

// logSummary prints the numbers a reader of the test output wants.
func logSummary(t *testing.T, s drill.Summary) {
	t.Helper()
	f := ptrString
	gap := "null"
	if s.PositionGap != nil {
		gap = fmt.Sprint(*s.PositionGap)
	}
	disc := "null"
	if s.DiscardedWrites != nil {
		disc = fmt.Sprint(*s.DiscardedWrites)
	}
	t.Logf("%s: verdict %s valid %v; rto %s ± %.3f s (floor %s, objective %g); failed %d (unknown %d) of %d; acked %d, lost %d, rpo %.3f s, gap %s, discarded %s; split brain %d; stale reads %d; failback rto %s; max send lag %.1f ms, late %d; reasons %q; notes %q",
		s.Scenario, s.Verdict, s.Valid, f(s.RTOSeconds), s.RTOResolutionSeconds, f(s.FloorRTOSeconds), s.Objectives.RTOSeconds,
		s.FailedRequests, s.UnknownRequests, s.Ops, s.AckedWrites, s.LostWrites, s.RPOSeconds, gap, disc, s.SplitBrainWrites, s.StaleReads,
		f(s.FailbackRTOSeconds), s.Generator.MaxSendLagMs, s.Generator.LateOps, s.Reasons, s.Notes)
}

// logFailures summarizes the failed operations of the run in out by
// half-second, serving region and error, to explain a failed assertion.
func logFailures(t *testing.T, out string) {
	t.Helper()
	h, err := drill.ReadFile(filepath.Join(out, drill.HistoryFile))
	if err != nil {
		t.Log(err)
		return
	}
	type key struct {
		at            float64
		region, error string
	}
	n := map[key]int{}
	var keys []key
	for _, o := range h.Ops {
		if o.Outcome == drill.OK {
			continue
		}
		k := key{float64(o.Intended/5e8) / 2, o.Region, o.Outcome + " " + o.Error}
		if n[k] == 0 {
			keys = append(keys, k)
		}
		n[k]++
	}
	for i, k := range keys {
		if i == 40 {
			t.Logf("... %d more", len(keys)-i)
			break
		}
		t.Logf("failed at %4.1f s: %3d × region %q: %s", k.at, n[k], k.region, k.error)
	}
	for _, e := range h.Events {
		t.Logf("event %6.3f s %s %s%s %s %s", float64(e.T)/1e9, e.Kind, e.Name, e.Step, e.Region, e.Detail)
	}
}

// trustworthy runs a drill up to twice until its generator kept the
// schedule, and says whether the last run's timing can be judged. What
// does not depend on timing (loss, readback, split brain, stale reads, the
// floor as a lower bound, re-analysis, the report) is checked on every
// run; only the timing bounds wait for a valid one (see timing).
func trustworthy(t *testing.T, run func(attempt int) drill.Summary) (s drill.Summary, timed bool) {
	t.Helper()
	for attempt := 1; attempt <= 2; attempt++ {
		s = run(attempt)
		if !generatorBehind(s) {
			return s, true
		}
		t.Logf("attempt %d: the generator fell behind (%.1f%% of operations late, max %.0f ms): the machine is too busy to measure timing",
			attempt, 100*s.Generator.LateFraction, s.Generator.MaxSendLagMs)
	}
	return s, false
}

// timing runs the timing bounds of a drill as the subtest "timing". When
// the generator could not keep its schedule on any attempt the bounds
// would judge an invalid measurement: they are waived, and with
// GEOSTAMP_REQUIRE_TIMING=1 (CI) that is a failure.
func timing(t *testing.T, timed bool, s drill.Summary, bounds func(t *testing.T)) {
	t.Helper()
	t.Run("timing", func(t *testing.T) {
		if !timed {
			testenv.Skip(t, "TIMING", "the generator fell behind its open-loop schedule on every attempt (last: %.1f%% of operations late, max %.0f ms): the run is invalid and its timing bounds are waived",
				100*s.Generator.LateFraction, s.Generator.MaxSendLagMs)
		}
		bounds(t)
	})
}

func generatorBehind(s drill.Summary) bool {
	return s.Generator.LateFraction > drill.DefaultMaxLateFraction || s.Generator.SelfReportedBehind
}

// checkMeasured asserts what every drill must deliver whatever the
// verdict and the machine's load: the schedule was complete, every
// acknowledged write was read back, and a measured RTO is not below the
// floor, which is a lower bound (the RTO's true instant lies within one
// resolution before the measured one).
func checkMeasured(t *testing.T, s drill.Summary, scenario string) {
	t.Helper()
	if s.Scenario != scenario || s.Ops == 0 || s.Generator.Missing != 0 || s.Generator.OffSchedule != 0 || s.Generator.Duplicate != 0 {
		t.Fatalf("scenario %q ops %d generator %+v", s.Scenario, s.Ops, s.Generator)
	}
	if s.AckedWrites == 0 || s.UnverifiedWrites != 0 {
		t.Fatalf("acked %d, never read back %d", s.AckedWrites, s.UnverifiedWrites)
	}
	// summary.json's resolution is the send interval of the whole load. On
	// the dns path the RTO ends at the last failed operation of the last
	// client to move, and each client (the tests run the default number)
	// sends one round of operations every clients × streams / rate: its
	// recovery is known to that resolution only.
	res := s.RTOResolutionSeconds
	for _, st := range s.Streams {
		if st.Path == drill.PathDNS && s.Rate > 0 {
			res = max(res, float64(drill.DefaultDNSClients*len(s.Streams))/s.Rate)
		}
	}
	if s.FloorRTOSeconds == nil {
		t.Errorf("no floor in the summary: %q", s.Notes)
	} else if s.RTOSeconds != nil && *s.RTOSeconds < *s.FloorRTOSeconds-res-1e-9 {
		t.Errorf("rto %.3f s below the floor %.3f s − resolution %.3f s: the floor is not a lower bound (terms %+v)",
			*s.RTOSeconds, *s.FloorRTOSeconds, res, s.Floor)
	}
}

// checkReanalysis re-analyses the run in out with `geostamp drill analyze`
// and checks that it gives the same exit status and the same summary,
// field by field: the analysis is a pure function of history.jsonl.
func checkReanalysis(t *testing.T, out string, s drill.Summary, code int) {
	t.Helper()
	o, e, code2 := cli(t, "drill", "analyze", out, "--json")
	var again drill.Summary
	if err := json.Unmarshal([]byte(o), &again); err != nil {
		t.Fatalf("%v: %s %s", err, o, e)
	}
	fields := func(s drill.Summary) map[string]json.RawMessage {
		b, _ := json.Marshal(s)
		var m map[string]json.RawMessage
		json.Unmarshal(b, &m)
		return m
	}
	a, b := fields(s), fields(again)
	var differ []string
	for k := range a {
		if string(a[k]) != string(b[k]) {
			differ = append(differ, fmt.Sprintf("%s: run %.200s, analyze %.200s", k, a[k], b[k]))
		}
	}
	if code2 != code || len(differ) > 0 || len(a) != len(b) {
		t.Errorf("analyze gave exit %d (the run %d) and a summary that differs in %d fields:\n%s", code2, code, len(differ), strings.Join(differ, "\n"))
	}
}

// TestDrillRegionOutage kills northeurope, which holds no primary, under
// load through the front door: the front door routes to westeurope
// (priority 1), and not one request may fail. The report is then checked
// in a browser and the run re-analysed from its history.
func TestDrillRegionOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a lab and a 13 s drill")
	}
	l := startLab(t)
	var out, progress string
	var code int
	s, timed := trustworthy(t, func(attempt int) drill.Summary {
		out = filepath.Join(t.TempDir(), "region-outage")
		var s drill.Summary
		s, progress, code = l.runDrill(t, out, "region-outage", "--region", "northeurope", "--fault-at", "3s", "--duration", "13s")
		logSummary(t, s)
		checkMeasured(t, s, "region-outage")
		return s
	})
	// Whatever the load: nothing lost, no split brain, no stale read (the
	// data stays in westeurope, which holds every primary).
	if s.LostWrites != 0 || s.SplitBrainWrites != 0 || s.StaleReads != 0 {
		t.Errorf("lost %d, split brain %d, stale reads %d", s.LostWrites, s.SplitBrainWrites, s.StaleReads)
	}
	// Killing a region without a primary involves no promotion, and the
	// front door retries a refused connection on the other region at once:
	// the floor is 0.
	if s.FloorRTOSeconds == nil || *s.FloorRTOSeconds != 0 {
		t.Errorf("floor %v, want 0 s", s.FloorRTOSeconds)
	}
	if !strings.Contains(progress, "fault: region kill") {
		t.Errorf("progress output lacks the fault:\n%s", progress)
	}
	if len(s.Streams) != 2 || s.Streams[0].Conn != drill.ConnFresh || s.Streams[1].Conn != drill.ConnPooled {
		t.Errorf("streams %+v, want front door fresh and pooled", s.Streams)
	}
	t.Run("analyze", func(t *testing.T) { checkReanalysis(t, out, s, code) })
	t.Run("report-in-browser", func(t *testing.T) { checkReportInBrowser(t, filepath.Join(out, drill.ReportFile), s) })
	timing(t, timed, s, func(t *testing.T) {
		if s.FailedRequests != 0 {
			t.Errorf("%d failed requests, want 0", s.FailedRequests)
			logFailures(t, out)
		}
		if s.RTOSeconds == nil || *s.RTOSeconds >= s.Objectives.RTOSeconds {
			t.Errorf("rto %v, want under the objective %g s", s.RTOSeconds, s.Objectives.RTOSeconds)
		}
		if s.Valid && code != 0 {
			t.Errorf("a valid run with no failure must pass: exit %d, reasons %q", code, s.Reasons)
		}
		if !strings.Contains(progress, "served by westeurope") {
			t.Errorf("progress output lacks the serving region:\n%s", progress)
		}
	})
}

// TestDrillDNSFailover kills westeurope, where the GSLB sends clients,
// while clients resolve through the GSLB and cache each answer for its
// TTL. The data primaries are in northeurope (testdata/drill-dns.yaml), so
// the outage lasts until the GSLB marks westeurope down and the clients'
// cached answers expire.
func TestDrillDNSFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a lab and a 13 s drill")
	}
	const file = "testdata/drill-dns.yaml"
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	l := startLab(t, "-f", file)
	var out string
	var code int
	s, timed := trustworthy(t, func(attempt int) drill.Summary {
		// The GSLB must send clients to westeurope when the drill kills it
		// (after a first attempt, the restarted region must be back).
		eventually(t, 20*time.Second, "the GSLB answers westeurope", func() error {
			a, err := l.resolveA(t)
			if err == nil && a != l.eps.Regions["westeurope"].Address {
				err = fmt.Errorf("answer %s", a)
			}
			return err
		})
		out = filepath.Join(t.TempDir(), "dns-failover")
		var s drill.Summary
		s, _, code = l.runDrill(t, out, "dns-failover", "-f", file, "--region", "westeurope", "--fault-at", "3s", "--duration", "13s")
		logSummary(t, s)
		checkMeasured(t, s, "dns-failover")
		return s
	})
	interval, ttl := topo.GSLB.Probe.Interval.D().Seconds(), topo.GSLB.TTL.D().Seconds()
	// The floor: the GSLB's detection at best (the first failed probe right
	// after the kill, then toleratedFailures more, each at the shortest
	// wait of the probe schedule; a dead region fails each at once), plus
	// the TTL of the last client's answer, which it took up to TTL/clients
	// before the change.
	floor := health.GSLBConfig(topo.GSLB).MinDetection().Seconds() + ttl - ttl/drill.DefaultDNSClients
	if s.FloorRTOSeconds == nil || fmt.Sprintf("%.3f", *s.FloorRTOSeconds) != fmt.Sprintf("%.3f", floor) {
		t.Errorf("floor %v, want %.3f", ptrString(s.FloorRTOSeconds), floor)
	}
	// The primaries are in northeurope, which lives on: nothing is lost.
	if s.LostWrites != 0 || s.SplitBrainWrites != 0 || s.StaleReads != 0 {
		t.Errorf("lost %d, split brain %d, stale reads %d", s.LostWrites, s.SplitBrainWrites, s.StaleReads)
	}
	if s.FailedRequests == 0 {
		t.Errorf("no failed request: clients on DNS must see the outage until their cache expires")
	}
	if len(s.Streams) != 2 || s.Streams[0].Path != drill.PathDNS {
		t.Errorf("streams %+v, want dns fresh and pooled", s.Streams)
	}
	t.Run("analyze", func(t *testing.T) { checkReanalysis(t, out, s, code) })
	timing(t, timed, s, func(t *testing.T) {
		if s.RTOSeconds == nil {
			t.Fatalf("never recovered: %q", s.Reasons)
		}
		rto := *s.RTOSeconds
		// Upper bound (unchanged from before the floor counted the jitter and
		// the client spacing): detection at best interval × toleratedFailures
		// plus the TTL, plus the TTL plus one probe interval (the first
		// failed probe may come an interval after the kill), plus the RTO's
		// resolution.
		upper := interval*float64(topo.GSLB.Probe.Tolerated()+1) + 2*ttl + s.RTOResolutionSeconds
		t.Logf("rto %.3f s; upper bound %.3f; floor %.3f", rto, upper, floor)
		if rto > upper {
			t.Errorf("rto %.3f s above %.3f", rto, upper)
		}
		for _, r := range s.Regions {
			if r.Region == "northeurope" && r.OK == 0 {
				t.Errorf("northeurope served nothing after the failover")
			}
		}
	})
}

// TestDrillDataPrimaryLoss crashes the data engine of orders' primary
// (async replication) and cross-checks the loss the drill's ledger counts
// against the replication positions. So that there is something to lose,
// the replication is stopped first: the WAN link from westeurope to
// northeurope is cut one way (the witness still reaches both) before the
// drill and healed as soon as the drill reports the crash, so every write
// acknowledged between the two is missing from northeurope when it is
// promoted. testdata/failover.yaml is the default topology with a 3 s lease
// and a 1 s grace, to keep the test short. Before its readback the drill
// repairs the lab: it restarts westeurope, which rejoins and discards its
// divergent tail, the exact loss by positions.
func TestDrillDataPrimaryLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a lab and a 20 s drill")
	}
	const file = "testdata/failover.yaml"
	var out string
	var code int
	// The drill moves orders' primary, so each attempt runs on a lab of
	// its own, stopped before the next one starts (the labs' fixed ports).
	s, timed := trustworthy(t, func(attempt int) drill.Summary {
		var s drill.Summary
		out = filepath.Join(t.TempDir(), "data-primary-loss")
		if !t.Run(fmt.Sprintf("attempt-%d", attempt), func(t *testing.T) {
			l := startLab(t, "-f", file)
			l.mustInject(t, "link", "cut", "westeurope", "northeurope", "--one-way")
			healed := make(chan struct{})
			s, _, code = l.runDrillWatching(t, out, func(line string) {
				if strings.Contains(line, "fault: the data engine") {
					if err := l.inject("link", "heal", "westeurope", "northeurope", "--one-way"); err != nil {
						t.Error(err)
					}
					close(healed)
				}
			}, "data-primary-loss", "-f", file, "--fault-at", "4s", "--duration", "20s")
			logSummary(t, s)
			select {
			case <-healed:
			default:
				t.Fatal("the drill never reported the crash")
			}
			checkMeasured(t, s, "data-primary-loss")
		}) {
			t.FailNow()
		}
		return s
	})
	h, err := drill.ReadFile(filepath.Join(out, drill.HistoryFile))
	if err != nil {
		t.Fatal(err)
	}
	var promote *drill.Event
	var crashAt int64 = -1
	for i, e := range h.Events {
		switch {
		case e.Kind == drill.EventFault && e.Name == "crash-data":
			crashAt = e.T
			if e.Region != "westeurope" {
				t.Errorf("crashed %s, want orders' primary westeurope", e.Region)
			}
		case e.Kind == drill.EventFailoverStep && e.Step == drill.StepPromote && e.Service == "orders" && promote == nil:
			promote = &h.Events[i]
		}
	}
	if crashAt < 0 || promote == nil || promote.Region != "northeurope" || promote.Gap == nil {
		t.Fatalf("crash at %d, promote %+v", crashAt, promote)
	}
	if s.PositionGap == nil || *s.PositionGap != *promote.Gap {
		t.Fatalf("summary position_gap %v, promote event gap %d", s.PositionGap, *promote.Gap)
	}
	// Writes in flight at the crash may have been committed by the old
	// primary without their acknowledgement reaching the client: they
	// count in the positions, not as acknowledged loss. The promote step's
	// gap comes from the old primary's last position report (every
	// 250 ms), so it can miss the writes acknowledged in the last half
	// second or so.
	inFlight, lastAcked := 0, 0
	for _, o := range h.Ops {
		if o.Op != drill.OpWrite {
			continue
		}
		if o.Outcome != drill.OK && o.Sent <= crashAt && (o.Done == 0 || o.Done >= crashAt) {
			inFlight++
		}
		if o.Outcome == drill.OK && o.Done <= crashAt && o.Done > crashAt-int64(time.Second) {
			lastAcked++
		}
	}
	t.Logf("crash at %.3f s; promote at %.3f s with gap %d; lost %d; acknowledged in the last second before the crash %d; unacknowledged in flight %d",
		float64(crashAt)/1e9, float64(promote.T)/1e9, *promote.Gap, s.LostWrites, lastAcked, inFlight)
	if g := int(*s.PositionGap); g > s.LostWrites+inFlight || g < s.LostWrites-lastAcked {
		t.Errorf("position gap %d, want lost_writes %d (+ %d in flight, − up to %d acknowledged after the last report)", g, s.LostWrites, inFlight, lastAcked)
	}
	if s.SplitBrainWrites != 0 {
		t.Errorf("%d split-brain writes", s.SplitBrainWrites)
	}
	// A read may miss a lost write (loss is counted as such), never one
	// that survived.
	survived := map[string]bool{}
	for _, r := range h.Readbacks {
		survived[r.Key] = survived[r.Key] || r.Found
	}
	acked := map[string]int64{}
	for _, o := range h.Ops {
		if _, dup := acked[o.Key]; o.Op == drill.OpWrite && o.Outcome == drill.OK && !dup {
			acked[o.Key] = o.Done
		}
	}
	staleSurvivors := 0
	for _, o := range h.Ops {
		if done, ok := acked[o.Key]; ok && o.Op == drill.OpRead && o.Outcome == drill.OK && o.Found != nil && !*o.Found && done < o.Sent && survived[o.Key] {
			staleSurvivors++
		}
	}
	t.Logf("stale reads %d, of surviving writes %d", s.StaleReads, staleSurvivors)
	if staleSurvivors != 0 {
		t.Errorf("%d reads missed a write that was acknowledged before them and survived", staleSurvivors)
	}
	// The drill's repair restarted westeurope before the readback; it
	// rejoined and reported what it discarded: the exact loss by positions.
	if s.DiscardedWrites == nil {
		t.Fatalf("no rejoin of westeurope with a discarded count in the run")
	}
	if d := int(*s.DiscardedWrites); d < s.LostWrites || d > s.LostWrites+inFlight {
		t.Errorf("discarded %d, want lost_writes %d (+ up to %d unacknowledged in flight)", d, s.LostWrites, inFlight)
	}
	t.Run("analyze", func(t *testing.T) { checkReanalysis(t, out, s, code) })
	timing(t, timed, s, func(t *testing.T) {
		if s.LostWrites < 20 {
			t.Errorf("only %d acknowledged writes lost: with the replication stopped for the steady state, most of its writes must be", s.LostWrites)
		}
		if s.RTOSeconds == nil || *s.RTOSeconds >= s.Objectives.RTOSeconds {
			t.Errorf("rto %v, want under the objective %g s", s.RTOSeconds, s.Objectives.RTOSeconds)
		}
	})
}

// TestDrillCLI covers what needs no drill run: the catalog, the help, the
// plan, refusals and validation errors, and the exit statuses.
func TestDrillCLI(t *testing.T) {
	o, _, code := cli(t, "drill", "list")
	for _, name := range []string{"region-outage", "region-hang", "region-brownout", "partition", "isolate-region",
		"data-primary-loss", "planned-failover", "dns-failover", "frontdoor-outage", "kill-region", "crash-data"} {
		if code != 0 || !strings.Contains(o, name) {
			t.Errorf("drill list (exit %d) lacks %s", code, name)
		}
	}
	if _, e, code := cli(t, "drill", "-h"); code != 0 || !strings.Contains(e, "Examples:") || !strings.Contains(e, "Exit status") {
		t.Errorf("drill -h: exit %d\n%s", code, e)
	}
	if _, e, code := cli(t, "drill", "dns-failover", "-h"); code != 0 || !strings.Contains(e, "TTL") || !strings.Contains(e, "timeline") {
		t.Errorf("drill dns-failover -h: exit %d\n%s", code, e)
	}
	dir := t.TempDir() // no lab there: a dry run needs none
	o, e, code := cli(t, "drill", "region-outage", "--lab", dir, "--region", "westeurope", "--fault-at", "5s", "--duration", "40s", "--dry-run")
	if code != 0 || !strings.Contains(o, "5s  fault: kill-region region=westeurope") || !strings.Contains(o, "repair (not measured): restart-region region=westeurope") ||
		!strings.Contains(o, "floor     13.666 s") { // default orders group: lease 5 s − one renewal period 4/3 s + grace 10 s
		t.Errorf("dry run: exit %d\n%s%s", code, o, e)
	}
	if _, e, code := cli(t, "drill", "region-outage", "--target", "http://127.0.0.1:9"); code != 2 || !strings.Contains(e, "refused") {
		t.Errorf("a lab fault against real endpoints: exit %d, %s", code, e)
	}
	if _, e, code := cli(t, "drill", "region-outage", "--lab", dir); code != 2 || !strings.Contains(e, "no lab found") {
		t.Errorf("no lab: exit %d, %s", code, e)
	}
	if _, e, code := cli(t, "drill", "region-outages"); code != 2 || !strings.Contains(e, `unknown scenario "region-outages"`) {
		t.Errorf("unknown scenario: exit %d, %s", code, e)
	}
	if _, e, code := cli(t, "drill", "region-outage", "--region", "mars", "--dry-run", "--lab", dir); code != 2 || !strings.Contains(e, `--region: "mars" is not a region`) {
		t.Errorf("bad region: exit %d, %s", code, e)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nduration: 20s\nsteps:\n  - {at: 5s, action: kill-region, args: {region: mars}}\n  - {action: nap}\n"), 0o644)
	if _, e, code := cli(t, "drill", "run", bad, "--dry-run", "--lab", dir); code != 2 ||
		!strings.Contains(e, "steps[0].args.region") || !strings.Contains(e, "steps[1].at: required") || !strings.Contains(e, `steps[1].action: unknown action "nap"`) {
		t.Errorf("bad custom scenario: exit %d, %s", code, e)
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("name: hang\nduration: 20s\nsteps:\n  - {at: 5s, action: freeze-region, args: {region: westeurope}}\n  - {at: 12s, action: resume-region, args: {region: westeurope}, phase: failback}\n"), 0o644)
	if o, e, code := cli(t, "drill", "run", good, "--dry-run", "--lab", dir); code != 0 || !strings.Contains(o, "12s  heal: resume-region region=westeurope (starts the failback)") {
		t.Errorf("custom dry run: exit %d\n%s%s", code, o, e)
	}
	if _, e, code := cli(t, "drill", "analyze", dir); code != 2 || !strings.Contains(e, "history.jsonl") {
		t.Errorf("analyze without a history: exit %d, %s", code, e)
	}
}

// checkReportInBrowser opens report.html in headless Chromium and checks
// that the timeline was laid out: every plotted series has a non-empty
// geometry inside its panel, and the fault marker sits inside the plot.
// The checks run as a script appended to a copy of the page, which writes
// its findings into the DOM that --dump-dom prints.
func checkReportInBrowser(t *testing.T, report string, s drill.Summary) {
	chromium := ""
	for _, c := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(c); err == nil {
			chromium = c
			break
		}
	}
	if chromium == "" {
		testenv.Skip(t, "BROWSER", "chromium is not installed (apt-get install chromium); .ci/run installs it")
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	const probe = `<script>
(function () {
  var out = {series: [], faults: [], panels: {}};
  var svg = document.getElementById('timeline');
  out.svg = svg ? svg.getBoundingClientRect().width : 0;
  document.querySelectorAll('#timeline g.panel').forEach(function (g) {
    var f = g.querySelector('rect.frame').getBBox();
    out.panels[g.id] = {x: f.x, y: f.y, w: f.width, h: f.height};
    g.querySelectorAll('path.series').forEach(function (p) {
      var bb = p.getBBox();
      out.series.push({panel: g.id, name: p.textContent, length: p.getTotalLength(),
        inside: bb.x >= f.x - 1 && bb.x + bb.width <= f.x + f.width + 1 && bb.y >= f.y - 1 && bb.y + bb.height <= f.y + f.height + 1,
        w: bb.width, stroke: getComputedStyle(p).stroke});
    });
  });
  document.querySelectorAll('#timeline line.ev-fault').forEach(function (l) { out.faults.push(l.getBBox().x); });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`
	page := strings.Replace(string(b), "</body>", probe+"</body>", 1)
	dir := t.TempDir()
	probed := filepath.Join(dir, "report-probed.html")
	if err := os.WriteFile(probed, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	// A browser that dies of a signal (seen once on a machine under heavy
	// load) has not judged the page: try again, twice at most.
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
			"--user-data-dir="+filepath.Join(dir, fmt.Sprintf("profile%d", try)), "--window-size=1100,2400", "--virtual-time-budget=5000",
			"--dump-dom", "file://"+probed)
		o.Reset()
		e.Reset()
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		cancel()
		if err == nil {
			break
		}
		var ee *exec.ExitError
		if try < 3 && errors.As(err, &ee) && ee.ProcessState.ExitCode() < 0 {
			t.Logf("chromium died (%v), trying again", err)
			continue
		}
		t.Fatalf("chromium: %v\n%s", err, e.String())
	}
	dom := o.String()
	if !strings.Contains(dom, `<meta name="geostamp-verdict" content="`+s.Verdict+`">`) {
		t.Errorf("the rendered page lacks the verdict %q", s.Verdict)
	}
	i := strings.Index(dom, `<pre id="probe">`)
	if i < 0 {
		t.Fatalf("the probe did not run:\n%.2000s", dom)
	}
	raw := dom[i+len(`<pre id="probe">`):]
	raw = raw[:strings.Index(raw, "</pre>")]
	raw = strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(raw)
	var res struct {
		SVG    float64 `json:"svg"`
		Panels map[string]struct{ X, Y, W, H float64 }
		Series []struct {
			Panel, Name, Stroke string
			Length, W           float64
			Inside              bool
		}
		Faults []float64
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("probe output %q: %v", raw, err)
	}
	if res.SVG < 500 || len(res.Panels) != 3 {
		t.Fatalf("timeline width %g, panels %v", res.SVG, res.Panels)
	}
	perPanel, overall := map[string]int{}, map[string]bool{}
	for _, sr := range res.Series {
		if sr.Length <= 0 || sr.W <= 0 || !sr.Inside || sr.Stroke == "" || sr.Stroke == "none" {
			t.Errorf("series %q in %s not drawn: %+v (panel %+v)", sr.Name, sr.Panel, sr, res.Panels[sr.Panel])
		}
		// The overall series has a point in every one-second bucket of the
		// run: it spans most of the plot.
		if sr.Name == "all operations" || sr.Name == "p50 all" {
			overall[sr.Panel] = true
			if sr.W < res.Panels[sr.Panel].W/2 {
				t.Errorf("series %q in %s spans %g of %g units", sr.Name, sr.Panel, sr.W, res.Panels[sr.Panel].W)
			}
		}
		perPanel[sr.Panel]++
	}
	// Every panel plots the serving region (westeurope); success and
	// latency also plot all operations.
	for id := range res.Panels {
		if perPanel[id] < 1 || id != "panel-served" && !overall[id] {
			t.Errorf("panel %s: %d plotted series, overall %v", id, perPanel[id], overall[id])
		}
	}
	plot := res.Panels["panel-success"]
	if len(res.Faults) != 1 || res.Faults[0] <= plot.X || res.Faults[0] >= plot.X+plot.W {
		t.Errorf("fault marker at %v, want one inside the plot [%g, %g]", res.Faults, plot.X, plot.X+plot.W)
	}
	t.Logf("chromium laid out %d series in %d panels; fault marker at x=%v", len(res.Series), len(res.Panels), res.Faults)
}
