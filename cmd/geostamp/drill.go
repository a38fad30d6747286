package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/geostamp/geostamp/internal/drill"
	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/topology"
)

const drillUsage = `geostamp drill — inject a fault under load and measure RTO and RPO against the objectives

Usage:
  geostamp drill list                              every scenario, and the actions of custom scenarios
  geostamp drill SCENARIO [flags]                  run a built-in scenario (see 'drill list')
  geostamp drill run FILE.yaml [flags]             run a custom scenario of timed steps
  geostamp drill analyze DIR [--json]              recompute summary.json and report.html from DIR/history.jsonl
  geostamp drill SCENARIO -h                       what a scenario does, and its plan with the defaults

A drill sends an open-loop load (default 200 operations/s, 70% reads, 30% unique
order writes) through the front door or DNS, injects the fault at --fault-at,
observes, optionally fails back, waits for replication to converge, reads every
write back from every region, and judges the run against the topology's
objectives. It writes DIR/history.jsonl (every operation and event), DIR/summary.json
and DIR/report.html (one self-contained page).

Examples:
  geostamp drill region-outage --region westeurope          kill the preferred region of the lab in .geostamp
  geostamp drill region-outage --region northeurope --fault-at 3s --duration 13s
  geostamp drill dns-failover --lab /tmp/lab -f fast-dns.yaml   clients on health-checked DNS
  geostamp drill data-primary-loss --json > summary.json    the data engine of orders' primary dies
  geostamp drill planned-failover --failback                 fail orders over and back
  geostamp drill region-hang --dry-run                      print the plan; change nothing
  geostamp drill manual --target https://app.contoso.com --fault-at 60s   you inject the fault
  geostamp drill run my-drill.yaml                          a custom scenario
  geostamp drill analyze drills/region-outage-20250301-120000

Exit status: 0 when every objective holds, 1 when one is missed (or the run is
invalid: the measurement cannot be trusted), 2 on an error (bad flags, no lab,
a fault that could not be injected).

Flags:
`

// drillFlags are the flags of every drill subcommand.
type drillFlags struct {
	fs                        *flag.FlagSet
	labDir, target, file, out string
	caFile                    string
	region, peer, service, to string
	pop, share, status, delay string
	rate, readShare           float64
	timeout                   time.Duration
	duration, faultAt         time.Duration
	promoteAfter, converge    time.Duration
	hold, window, slowAfter   time.Duration
	dnsClients                int
	failback, dryRun, asJSON  bool
	keepFaults, quiet         bool
}

func newDrillFlags(stderr io.Writer) *drillFlags {
	f := &drillFlags{}
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.fs = fs
	fs.StringVar(&f.labDir, "lab", defaultStateDir, "`directory` of the running lab (its endpoints.json)")
	fs.StringVar(&f.labDir, "state-dir", defaultStateDir, "same as --lab")
	fs.StringVar(&f.target, "target", "", "measure real endpoints at this front door `URL` instead of a lab (only faults that need no lab)")
	fs.StringVar(&f.file, "f", "", "topology `file` for the objectives and the floor (default: DIR/topology.yaml of the lab, else the embedded default)")
	fs.StringVar(&f.out, "out", "", "output `directory` (default drills/SCENARIO-TIME)")
	fs.StringVar(&f.caFile, "ca", "", "CA `file` that signed the target's certificate (default: the lab's CA, or the system's)")
	fs.StringVar(&f.region, "region", "", "region to fault (default: the preferred region)")
	fs.StringVar(&f.peer, "peer", "", "partition: the other region (default: the first other region)")
	fs.StringVar(&f.service, "service", "", "data service the load writes, crashed or failed over (default orders)")
	fs.StringVar(&f.to, "to", "", "planned-failover: the new primary (default: the first region that is not the primary)")
	fs.StringVar(&f.pop, "pop", "", "frontdoor-outage: the POP to kill (default: the first)")
	fs.StringVar(&f.share, "share", "", "region-brownout: share of requests affected (default 0.5)")
	fs.StringVar(&f.status, "status", "", "region-brownout: status answered, 0 only delays (default 503)")
	fs.StringVar(&f.delay, "delay", "", "region-brownout: delay added (default 0s)")
	fs.Float64Var(&f.rate, "rate", drill.DefaultRate, "open-loop `operations` per second, all paths together")
	fs.Float64Var(&f.readShare, "read-share", drill.DefaultReadShare, "share of reads in the load (the rest are unique order writes)")
	fs.DurationVar(&f.timeout, "timeout", drill.DefaultTimeout, "per-operation timeout (an operation without an answer is 'unknown')")
	fs.DurationVar(&f.duration, "duration", 0, "length of the load (default: fault-at + max(30s, RTO objective + 15s), twice that with --failback)")
	fs.DurationVar(&f.faultAt, "fault-at", fault.DefaultFaultAt, "when the fault is injected, after the load starts (the steady state before it)")
	fs.DurationVar(&f.promoteAfter, "promote-after", 0, "data-primary-loss with a manual failover policy: force the failover this long after the fault (default: the grace)")
	fs.DurationVar(&f.converge, "converge", drill.DefaultConverge, "how long to wait for replication to converge before the readback")
	fs.DurationVar(&f.hold, "hold", drill.DefaultHold, "RTO: how long the success ratio must hold for the platform to count as recovered")
	fs.DurationVar(&f.window, "window", drill.DefaultWindow, "RTO: the window the success ratio is computed over")
	fs.DurationVar(&f.slowAfter, "slow-after", 0, "count successful operations slower than this as failed (default: off)")
	fs.IntVar(&f.dnsClients, "dns-clients", drill.DefaultDNSClients, "simulated clients on the DNS path, each with its own TTL-respecting cache")
	fs.BoolVar(&f.failback, "failback", false, "add the failback phase (restart, resume, heal, fail back) halfway after the fault")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the plan and exit; change nothing")
	fs.BoolVar(&f.asJSON, "json", false, "print summary.json on stdout instead of the text verdict")
	fs.BoolVar(&f.keepFaults, "keep-faults", false, "leave the lab as the drill left it (no cleanup)")
	fs.BoolVar(&f.quiet, "quiet", false, "no live progress")
	return f
}

// drillError is a failure of the drill itself (exit status 2).
func drillError(stderr io.Writer, err error) error {
	fmt.Fprintln(stderr, "geostamp: drill:", strings.TrimPrefix(err.Error(), "drill: "))
	return exitError{2}
}

func cmdDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDrillFlags(stderr)
	first := firstPositional(f.fs, args)
	f.fs.Usage = func() { drillHelp(stderr, f.fs, first) }
	pos, err := parse(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		f.fs.Usage()
		return fmt.Errorf("%w: drill: want a scenario, list, run FILE or analyze DIR", errUsage)
	}
	switch pos[0] {
	case "help":
		drillHelp(stdout, f.fs, "")
		return nil
	case "list":
		return drillList(stdout)
	case "analyze":
		if len(pos) != 2 {
			return fmt.Errorf("%w: drill analyze DIR", errUsage)
		}
		return drillAnalyze(pos[1], f, stdout, stderr)
	case "run":
		if len(pos) != 2 {
			return fmt.Errorf("%w: drill run FILE.yaml", errUsage)
		}
		return drillRun(ctx, "", pos[1], f, stdout, stderr)
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: drill %s: unexpected arguments %q", errUsage, pos[0], pos[1:])
	}
	if _, ok := fault.LookupScenario(pos[0]); !ok {
		return fmt.Errorf("%w: drill: unknown scenario %q (scenarios: %s; custom ones: drill run FILE.yaml)",
			errUsage, pos[0], strings.Join(fault.ScenarioNames(), ", "))
	}
	return drillRun(ctx, pos[0], "", f, stdout, stderr)
}

// firstPositional finds the first argument that is not a flag or a flag's
// value, so that `drill NAME -h` can describe NAME.
func firstPositional(fs *flag.FlagSet, args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if fl := fs.Lookup(name); fl != nil {
			if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++ // the flag's value
			}
		}
	}
	return ""
}

func drillHelp(w io.Writer, fs *flag.FlagSet, name string) {
	if s, ok := fault.LookupScenario(name); ok {
		fmt.Fprintf(w, "geostamp drill %s — %s\n\n%s\n\nLoad: %s.\nParameters: %s.\n", s.Name, s.Summary, s.Description, s.Load, strings.Join(s.Params, "; "))
		if !s.NeedsLab {
			fmt.Fprintln(w, "Runs against real endpoints (--target URL) as well as a lab.")
		}
		if pl, err := s.Plan(fault.Params{}, topology.Default()); err == nil {
			fmt.Fprintf(w, "\nPlan on the default topology with the defaults (--dry-run prints yours):\n%s", indent(pl.Describe(), "  "))
		}
		fmt.Fprintf(w, "\nExample:\n  geostamp drill %s --fault-at 5s --duration 40s\n\nFlags:\n", s.Name)
		fs.SetOutput(w)
		fs.PrintDefaults()
		return
	}
	fmt.Fprint(w, drillUsage)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func drillList(w io.Writer) error {
	fmt.Fprintln(w, "Scenarios (geostamp drill NAME [flags]; geostamp drill NAME -h for details):")
	fmt.Fprintln(w)
	for _, s := range fault.Scenarios() {
		where := "lab"
		if !s.NeedsLab {
			where = "lab or real endpoints"
		}
		fmt.Fprintf(w, "  %-18s %s\n", s.Name, s.Summary)
		fmt.Fprintf(w, "  %-18s load: %s; runs against: %s\n", "", s.Load, where)
		fmt.Fprintf(w, "  %-18s %s\n\n", "", strings.Join(s.Params, "; "))
	}
	fmt.Fprintln(w, "Actions of custom scenarios (geostamp drill run FILE.yaml; * = required argument):")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range fault.Actions() {
		var ps []string
		for _, p := range a.Params {
			s := p.Name
			switch {
			case p.Required:
				s += "*"
			case p.Default != "":
				s += "=" + p.Default
			}
			ps = append(ps, s)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Name, a.Kind, strings.Join(ps, " "), a.Summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
A custom scenario:

  name: hang-then-kill
  description: freeze westeurope, then kill it
  load: {paths: [frontdoor], conns: [pooled, fresh]}   # paths: frontdoor, dns, frontdoor+dns
  duration: 60s
  steps:
    - {at: 10s, action: freeze-region, args: {region: westeurope}}
    - {at: 20s, action: kill-region, args: {region: westeurope}}
    - {at: 40s, action: restart-region, args: {region: westeurope}, phase: failback}
  cleanup:
    - {action: resume-region, args: {region: westeurope}}
`)
	return nil
}

// drillTopology picks the topology: -f, else the lab's DIR/topology.yaml,
// else the embedded default. With a lab, its regions must match.
func drillTopology(f *drillFlags, eps *lab.Endpoints) (*topology.Topology, string, error) {
	file := f.file
	if file == "" && eps != nil {
		if p := filepath.Join(f.labDir, "topology.yaml"); fileExists(p) {
			file = p
		}
	}
	t, err := topology.Load(file)
	if err != nil {
		return nil, "", err
	}
	name := file
	if name == "" {
		name = "the embedded default topology"
	}
	if eps != nil {
		var labRegions []string
		for r := range eps.Regions {
			labRegions = append(labRegions, r)
		}
		slices.Sort(labRegions)
		ours := t.RegionNames()
		slices.Sort(ours)
		if eps.Name != t.Name || !slices.Equal(labRegions, ours) {
			return nil, "", fmt.Errorf("the lab runs %q with regions %s, but %s is %q with regions %s: pass the lab's topology file with -f",
				eps.Name, strings.Join(labRegions, ", "), name, t.Name, strings.Join(ours, ", "))
		}
	}
	return t, name, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func drillRun(ctx context.Context, scenario, file string, f *drillFlags, stdout, stderr io.Writer) error {
	if f.target != "" && isSet(f.fs, "lab", "state-dir") {
		return fmt.Errorf("%w: drill: --lab and --target exclude each other", errUsage)
	}
	var (
		client *lab.Client
		eps    *lab.Endpoints
	)
	// A dry run changes nothing and needs no running lab.
	if f.target == "" && !f.dryRun {
		c, err := lab.Dial(f.labDir)
		if err != nil {
			return drillError(stderr, fmt.Errorf("%w (or measure real endpoints with --target URL)", err))
		}
		client, eps = c, c.Endpoints
	} else if f.target == "" {
		eps, _ = lab.ReadEndpoints(f.labDir)
	}
	topo, topoName, err := drillTopology(f, eps)
	if err != nil {
		printProblems(stderr, err)
		return exitError{2}
	}
	var primaries map[string]string
	if client != nil {
		if st, err := fault.DataStatus(ctx, client); err == nil {
			primaries = map[string]string{}
			for _, d := range topo.Data {
				if p := st.Primary(d.Name); p != "" {
					primaries[d.Name] = p
				}
			}
		}
	}
	var pl fault.Plan
	if file != "" {
		if isSet(f.fs, "duration", "fault-at", "failback", "region", "peer", "to", "pop", "share", "status", "delay", "service", "promote-after") {
			return fmt.Errorf("%w: drill run: the scenario file sets the timing and the arguments; only the load, target and output flags apply", errUsage)
		}
		pl, err = fault.LoadCustom(file, topo, primaries)
	} else {
		s, _ := fault.LookupScenario(scenario)
		pl, err = s.Plan(fault.Params{
			Region: f.region, Peer: f.peer, Service: f.service, To: f.to, POP: f.pop,
			Share: f.share, Status: f.status, Delay: f.delay,
			FaultAt: f.faultAt, Duration: f.duration, Failback: f.failback, PromoteAfter: f.promoteAfter,
			Primaries: primaries,
		}, topo)
	}
	if err != nil {
		printProblems(stderr, err)
		return exitError{2}
	}
	if f.target != "" && pl.NeedsLab {
		return drillError(stderr, fmt.Errorf("refused: %s injects its faults through a lab's control API, which %s does not have; "+
			"against real endpoints run `geostamp drill manual --target URL` and inject the fault yourself at --fault-at", pl.Scenario, f.target))
	}
	target := "lab:" + f.labDir
	if f.target != "" {
		target = f.target
	}
	floor := drill.FloorForPlan(topo, pl, f.dnsClients)
	obj := drill.ObjectivesOf(topo.Objectives)
	if f.dryRun {
		fmt.Fprint(stdout, pl.Describe())
		fmt.Fprintf(stdout, "target    %s (topology: %s)\n", target, topoName)
		fmt.Fprintf(stdout, "load      %g operations/s, %g%% reads, timeout %s\n", f.rate, 100*f.readShare, f.timeout)
		fmt.Fprintf(stdout, "floor     %g s, the longest chain of:\n", drill.FloorSeconds(floor))
		for _, t := range floor {
			fmt.Fprintf(stdout, "            %s: %s %g s (%s)\n", t.Group, t.Name, t.Seconds, t.Formula)
		}
		fmt.Fprintf(stdout, "objectives RTO %g s, RPO %g s, availability %g%%\n", obj.RTOSeconds, obj.RPOSeconds, obj.AvailabilityPercent)
		if pl.NeedsLab && f.target == "" && eps == nil {
			fmt.Fprintf(stdout, "note      no lab is running in %s; start one with `geostamp up --state-dir %s`\n", f.labDir, f.labDir)
		}
		return nil
	}
	tg, err := drillTargets(f, eps, pl)
	if err != nil {
		return drillError(stderr, err)
	}
	out := f.out
	if out == "" {
		out = filepath.Join("drills", pl.Scenario+"-"+time.Now().Format("20060102-150405"))
	}
	cfg := drill.Config{
		Plan: pl, Topology: topo, Targets: tg, Target: target, Out: out,
		Load:       drill.LoadConfig{Rate: f.rate, ReadShare: f.readShare, WriteOnly: f.readShare == 0, Timeout: f.timeout, DNSClients: f.dnsClients},
		Converge:   f.converge,
		KeepFaults: f.keepFaults,
		Analysis:   drill.Options{Hold: f.hold, Window: f.window, SlowAfter: f.slowAfter},
	}
	if client != nil {
		cfg.Control = client
	}
	if err := cfg.Analysis.Validate(); err != nil {
		return fmt.Errorf("%w: drill: %v", errUsage, err)
	}
	if !f.quiet {
		cfg.Progress = progressPrinter(stderr)
		fmt.Fprintf(stderr, "drill %s on %s: %s; writing %s\n", pl.Scenario, target, pl.Summary, out)
	}
	s, err := drill.Execute(ctx, cfg)
	if !f.quiet && isTerminal(stderr) {
		fmt.Fprintln(stderr) // end the progress line rewritten in place
	}
	if s.Verdict == "" { // no summary: nothing measured
		return drillError(stderr, err)
	}
	if f.asJSON {
		if perr := printJSON(stdout, s); perr != nil {
			return perr
		}
	} else {
		printVerdict(stdout, s, out)
	}
	if err != nil {
		return drillError(stderr, err)
	}
	if s.Verdict != drill.VerdictPass {
		return exitError{1}
	}
	return nil
}

// isSet reports whether any of the named flags was given.
func isSet(fs *flag.FlagSet, names ...string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || slices.Contains(names, f.Name) })
	return set
}

// drillTargets turns the lab's endpoints (or --target) into the load's
// targets.
func drillTargets(f *drillFlags, eps *lab.Endpoints, pl fault.Plan) (drill.Targets, error) {
	var tg drill.Targets
	caFile := f.caFile
	if f.target != "" {
		u, err := url.Parse(f.target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return tg, fmt.Errorf("--target %q is not an http(s) URL", f.target)
		}
		tg.FrontDoor = strings.TrimSuffix(f.target, "/")
	} else {
		tg.FDID, tg.Regions = eps.FDID, map[string]string{}
		for name, r := range eps.Regions {
			tg.Regions[name] = r.Ingress
			if u, err := url.Parse(r.Ingress); err == nil {
				tg.IngressPort = u.Port()
			}
		}
		tg.DNSServer, tg.DNSName = eps.GSLB, eps.Host
		// The POP the load uses: the one a frontdoor-outage kills, else the first.
		for i, p := range eps.POPs {
			if i == 0 || p.Name == pl.Region && pl.Detection == fault.DetectClient {
				tg.FrontDoor = p.HTTPS
				if tg.FrontDoor == "" {
					tg.FrontDoor = p.HTTP
				}
			}
		}
		if tg.FrontDoor == "" && len(eps.FrontDoor) > 0 {
			tg.FrontDoor = eps.FrontDoor[0]
		}
		if caFile == "" {
			caFile = eps.CAFile
		}
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return tg, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return tg, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tg.RootCAs = pool
	}
	return tg, nil
}

// progressPrinter prints one line per second, and each milestone on its
// own line. On a terminal the per-second line is rewritten in place.
func progressPrinter(w io.Writer) func(drill.Progress) {
	tty := isTerminal(w)
	return func(p drill.Progress) {
		el := p.Elapsed.Round(100 * time.Millisecond)
		if p.Message != "" {
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			fmt.Fprintf(w, "%7s  %-10s %s\n", el, p.Phase, p.Message)
			return
		}
		done := p.OK + p.Fail + p.Unknown
		ratio := "-"
		if done > 0 {
			ratio = fmt.Sprintf("%.1f%%", 100*float64(p.OK)/float64(done))
		}
		line := fmt.Sprintf("%7s  %-10s %4d/s  ok %-6s fail %-3d unknown %-3d in flight %-4d served by %s",
			el, p.Phase, p.Sent, ratio, p.Fail, p.Unknown, p.InFlight, drill.FormatRegions(p.Served))
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
			return
		}
		fmt.Fprintln(w, line)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printVerdict(w io.Writer, s drill.Summary, out string) {
	num := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprintf("%g s", roundTo(*p))
	}
	verdict := strings.ToUpper(s.Verdict)
	if !s.Valid {
		verdict += " (invalid run: the measurement cannot be trusted)"
	}
	fmt.Fprintf(w, "\nverdict      %s\n", verdict)
	rto := "never recovered"
	if s.RTOSeconds != nil {
		rto = fmt.Sprintf("%g s ± %g s", roundTo(*s.RTOSeconds), roundTo(s.RTOResolutionSeconds))
	}
	fmt.Fprintf(w, "RTO          %s (objective %g s, floor %s)\n", rto, s.Objectives.RTOSeconds, num(s.FloorRTOSeconds))
	fmt.Fprintf(w, "failed       %d of %d operations (%d unknown)", s.FailedRequests, s.Ops, s.UnknownRequests)
	if s.Outage != nil {
		fmt.Fprintf(w, ", outage %g s → %g s", roundTo(s.Outage.StartAtSeconds), roundTo(s.Outage.EndAtSeconds))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "lost writes  %d of %d acknowledged, RPO %g s (objective %g s)", s.LostWrites, s.AckedWrites, roundTo(s.RPOSeconds), s.Objectives.RPOSeconds)
	if s.PositionGap != nil {
		fmt.Fprintf(w, "; position gap at promotion %d", *s.PositionGap)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "split brain  %d writes   stale reads %d\n", s.SplitBrainWrites, s.StaleReads)
	if s.FailbackRTOSeconds != nil {
		fmt.Fprintf(w, "failback RTO %g s\n", roundTo(*s.FailbackRTOSeconds))
	}
	for _, r := range s.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintf(w, "report       %s\n", filepath.Join(out, drill.ReportFile))
}

func roundTo(x float64) float64 { return float64(int64(x*1000+0.5*sign(x))) / 1000 }

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}

func drillAnalyze(dir string, f *drillFlags, stdout, stderr io.Writer) error {
	s, err := drill.AnalyzeDir(dir, drill.Options{Hold: f.hold, Window: f.window, SlowAfter: f.slowAfter})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w (want a drill's output directory holding %s)", err, drill.HistoryFile)
		}
		return drillError(stderr, err)
	}
	if f.asJSON {
		if err := printJSON(stdout, s); err != nil {
			return err
		}
	} else {
		printVerdict(stdout, s, dir)
	}
	if s.Verdict != drill.VerdictPass {
		return exitError{1}
	}
	return nil
}
