package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/stamp"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/topology"
)

const defaultStateDir = ".geostamp"

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("up", "up [-f FILE] [--state-dir DIR] [--prometheus]", stderr)
	file := fs.String("f", "", "topology `file` (default: the embedded default topology)")
	dir := fs.String("state-dir", defaultStateDir, "`directory` for endpoints.json, the control token, logs and region data")
	logLevel := fs.String("log-level", "info", "log level of the lab and region logs (debug, info, warn, error)")
	probeInterval := fs.Duration("probe-interval", 2*time.Second, "time between two synthetic user flows (write an order, read it back) through each front door POP and at each stamp, once the lab is ready; 0 turns the probes off")
	prom := fs.Bool("prometheus", false, "also run Prometheus (Debian's prometheus package) on DIR/prometheus/, the scrape configuration and rules up writes")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	topo, err := topology.Load(*file)
	if err != nil {
		printProblems(stderr, err)
		return exitError{1}
	}
	if err := os.MkdirAll(filepath.Join(*dir, "logs"), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(*dir, "logs", "up.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	logger, err := telemetry.NewLogger(logf, telemetry.LogConfig{Level: *logLevel})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// What libraries print with the log package lands in the same file.
	slog.SetDefault(telemetry.Component(logger.With(telemetry.RegionKey, lab.GlobalRegion), "stdlog"))
	traces, stopTracing, err := startLabTracing(ctx, topo.Lab.Host, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	l, err := lab.New(lab.Config{
		Traces:        traces,
		ProbeInterval: *probeInterval,

		Topology:   topo,
		StateDir:   *dir,
		Logger:     logger,
		Progress:   stdout,
		RegionLog:  lab.LogSpec{Format: "json", Level: *logLevel},
		Prometheus: *prom,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "geostamp: starting %q (%s, %d regions)\n", topo.Name, topo.Model, len(topo.Regions))
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-l.Ready():
	}
	printEndpoints(stdout, l.Endpoints(), topo.Preferred())
	return <-errc
}

func printEndpoints(w io.Writer, eps *lab.Endpoints, preferred string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREGION\tADDRESS\tINGRESS\tHEALTH")
	names := make([]string, 0, len(eps.Regions))
	for n := range eps.Regions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := eps.Regions[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n, r.Address, r.Ingress, r.Health)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, p := range eps.POPs {
		fmt.Fprintf(w, "front door   %-9s %s  %s  (CA: %s)\n", p.Name, p.HTTPS, p.HTTP, eps.CAFile)
	}
	if eps.GSLB != "" {
		host, port, _ := strings.Cut(eps.GSLB, ":")
		fmt.Fprintf(w, "GSLB DNS     %s  (dig @%s -p %s %s A)\n", eps.GSLB, host, port, eps.Host)
	}
	fmt.Fprintf(w, "control API  %s (bearer token in %s)\n", eps.Control, eps.TokenFile)
	fmt.Fprintf(w, "endpoints    %s\n", filepath.Join(eps.StateDir, "endpoints.json"))
	fmt.Fprintf(w, "logs         %s\n", filepath.Join(eps.StateDir, "logs"))
	if eps.Prometheus != "" {
		fmt.Fprintf(w, "prometheus   %s  (config, targets and rules in %s)\n", eps.Prometheus, filepath.Join(eps.StateDir, "prometheus"))
	} else {
		fmt.Fprintf(w, "prometheus   config, targets and rules in %s (up --prometheus runs it)\n", filepath.Join(eps.StateDir, "prometheus"))
	}
	if len(eps.POPs) > 0 {
		fmt.Fprintf(w, "\nTry: curl -s --cacert %s -XPOST %s/orders -d '{\"item\":\"book\",\"qty\":1}'\n", eps.CAFile, eps.POPs[0].HTTPS)
	} else {
		fmt.Fprintf(w, "\nTry: curl -s -XPOST -H 'X-Geostamp-FDID: %s' %s/orders -d '{\"item\":\"book\",\"qty\":1}'\n", eps.FDID, eps.Regions[names[0]].Ingress)
	}
	fmt.Fprintf(w, "     geostamp region kill %s      (Ctrl-C stops everything)\n\n", preferred)
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "validate [-f FILE]", stderr)
	file := fs.String("f", "", "topology `file` (default: the embedded default topology)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	name := *file
	if name == "" {
		name = "embedded default topology"
	}
	if _, err := topology.Load(*file); err != nil {
		printProblems(stderr, err)
		return exitError{1}
	}
	fmt.Fprintf(stdout, "%s: valid\n", name)
	return nil
}

func printProblems(w io.Writer, err error) {
	probs := topology.Problems(err)
	if len(probs) == 0 {
		fmt.Fprintln(w, "geostamp:", err)
		return
	}
	fmt.Fprintf(w, "%d problem(s):\n", len(probs))
	for _, p := range probs {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func cmdTopology(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("topology", "topology [-f FILE] [--json]", stderr)
	file := fs.String("f", "", "topology `file` (default: the embedded default topology)")
	asJSON := fs.Bool("json", false, "print JSON instead of YAML")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	t, err := topology.Load(*file)
	if err != nil {
		printProblems(stderr, err)
		return exitError{1}
	}
	if *asJSON {
		return printJSON(stdout, t)
	}
	b, err := topology.Marshal(t)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

func cmdRegion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "region kill|freeze|resume|restart|drain|undrain|brownout NAME [--state-dir DIR]\n\n" +
		"  kill     SIGKILL the region process (a regional outage)\n" +
		"  freeze   SIGSTOP it (a hang: connections open, nothing answers)\n" +
		"  resume   SIGCONT a frozen region\n" +
		"  restart  start it again (killing it first if it runs), same addresses and data\n" +
		"  drain    take its stamp out of rotation (/health/stamp answers 503 \"drained\")\n" +
		"  undrain  put it back\n" +
		"  brownout make a share of its requests fail or slow down (--share, --status, --delay);\n" +
		"           --share 0 ends it. /health/stamp is not affected."
	fs := newFlags("region", synopsis, stderr)
	dial := labFlag(fs)
	spec := fs.String("spec", "", "region spec `file` (for `region run`, started by the lab)")
	share := fs.Float64("share", 1, "brownout: share of requests affected, 0 to 1 (0 ends the brownout)")
	status := fs.Int("status", 503, "brownout: status answered to affected requests (0: only delay them)")
	delay := fs.Duration("delay", 0, "brownout: delay added to affected requests")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "run" {
		return runRegion(ctx, *spec, stdout, stderr)
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("%w: want an action and a region name", errUsage)
	}
	action, name := pos[0], pos[1]
	switch action {
	case "kill", "freeze", "resume", "restart", "drain", "undrain", "brownout":
	default:
		fs.Usage()
		return fmt.Errorf("%w: unknown region action %q", errUsage, action)
	}
	c, err := dial()
	if err != nil {
		return err
	}
	var body any
	if action == "brownout" {
		body = stamp.Fault{Share: *share, Status: *status, Delay: topology.Duration(*delay)}
	}
	var p lab.RegionProcess
	if err := c.Do(ctx, http.MethodPost, "/v1/regions/"+name+"/"+action, body, &p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "region %s: %s", name, p.State)
	if p.PID != 0 {
		fmt.Fprintf(stdout, " (pid %d)", p.PID)
	}
	fmt.Fprintln(stdout)
	return nil
}

func runRegion(ctx context.Context, specFile string, stdout, stderr io.Writer) error {
	if specFile == "" {
		return fmt.Errorf("%w: region run needs --spec FILE", errUsage)
	}
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var spec lab.RegionSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	logger, err := telemetry.NewLogger(stderr, telemetry.LogConfig{Format: spec.Log.Format, Level: spec.Log.Level})
	if err != nil {
		return err
	}
	// Every line of a region process belongs to its region.
	logger = logger.With(telemetry.RegionKey, spec.Name)
	slog.SetDefault(telemetry.Component(logger, "stdlog"))
	stopTracing, _, err := startTracing(ctx, telemetry.TraceConfig{Process: "region", Region: spec.Name}, logger)
	if err != nil {
		return err
	}
	defer stopTracing()
	if err := lab.RunRegion(ctx, spec, logger, stdout); err != nil {
		telemetry.Component(logger, "lab").Error("region failed", "err", err)
		return err
	}
	return nil
}

func cmdLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "link list | link cut|heal A B | link latency A B DURATION [--jitter D] [--one-way]\n\n" +
		"  cut      drop all traffic between sites A and B (a partition); --one-way: only A to B\n" +
		"  heal     let traffic pass again\n" +
		"  latency  set the one-way latency of both directions (or A to B with --one-way)"
	fs := newFlags("link", synopsis, stderr)
	dial := labFlag(fs)
	oneWay := fs.Bool("one-way", false, "act only on traffic from A to B")
	jitter := fs.Duration("jitter", 0, "latency jitter")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: want an action", errUsage)
	}
	c, err := dial()
	if err != nil {
		return err
	}
	if pos[0] == "list" {
		var raw json.RawMessage
		if err := c.Do(ctx, http.MethodGet, "/v1/links", nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		return printLinks(stdout, raw)
	}
	var req lab.LinkRequest
	req.OneWay = *oneWay
	switch {
	case (pos[0] == "cut" || pos[0] == "heal") && len(pos) == 3:
	case pos[0] == "latency" && len(pos) == 4:
		d, err := topology.ParseDuration(pos[3])
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		req.Latency, req.Jitter = d, topology.Duration(*jitter)
	default:
		fs.Usage()
		return fmt.Errorf("%w: bad link command %q", errUsage, strings.Join(pos, " "))
	}
	var raw json.RawMessage
	if err := c.Do(ctx, http.MethodPost, "/v1/links/"+pos[1]+"/"+pos[2]+"/"+pos[0], req, &raw); err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	return printLinks(stdout, []byte("["+string(raw)+"]"))
}

func printLinks(w io.Writer, raw []byte) error {
	var links []struct {
		Name string
		A, B string
		AToB struct {
			Latency, Jitter string
			Cut             bool
		} `json:"a_to_b"`
		BToA struct {
			Latency, Jitter string
			Cut             bool
		} `json:"b_to_a"`
	}
	if err := json.Unmarshal(raw, &links); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tA->B\tB->A")
	dir := func(latency, jitter string, cut bool) string {
		if cut {
			return "CUT"
		}
		if jitter != "" && jitter != "0s" {
			return latency + " ±" + jitter
		}
		return latency
	}
	for _, l := range links {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, dir(l.AToB.Latency, l.AToB.Jitter, l.AToB.Cut), dir(l.BToA.Latency, l.BToA.Jitter, l.BToA.Cut))
	}
	return tw.Flush()
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [--json] [--state-dir DIR]", stderr)
	dial := labFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := dial()
	if err != nil {
		return err
	}
	var regions []lab.RegionInfo
	if err := c.Do(ctx, http.MethodGet, "/v1/regions", nil, &regions); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, regions)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tSTATE\tPID\tHEALTH\tINGRESS")
	for _, r := range regions {
		health := "-"
		var h struct{ Status, Reason string }
		if json.Unmarshal(r.Health, &h) == nil && h.Status != "" {
			health = h.Status
		} else if r.Error != "" {
			health = "unreachable"
		}
		state := r.State
		if r.Detail != "" {
			state += " (" + r.Detail + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Name, state, r.PID, health, r.Ingress)
	}
	return tw.Flush()
}

func cmdData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("data", "data [--json] [--state-dir DIR]", stderr)
	dial := labFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := dial()
	if err != nil {
		return err
	}
	var out map[string]lab.RegionStatus
	if err := c.Do(ctx, http.MethodGet, "/v1/data", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREGION\tROLE\tPRIMARY\tEPOCH\tSEQ\tLAG\tLAG(s)\tREAD\tWRITE")
	regions := make([]string, 0, len(out))
	for r := range out {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, r := range regions {
		if len(out[r].Data) == 0 {
			fmt.Fprintf(tw, "-\t%s\tunreachable\t\t\t\t\t\t\t\n", r)
		}
		for _, s := range out[r].Data {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%v\t%v\n", s.Service, r, s.Role, s.Primary, s.Epoch, s.LastSeq, s.LagWrites, s.LagSeconds, s.Readable, s.Writable)
		}
	}
	return tw.Flush()
}

// labFlag registers --state-dir on a command that talks to a running lab and
// returns the function that dials it.
func labFlag(fs *flag.FlagSet) func() (*lab.Client, error) {
	dir := fs.String("state-dir", defaultStateDir, "`directory` of the running lab")
	return func() (*lab.Client, error) { return lab.Dial(*dir) }
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
