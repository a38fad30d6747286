package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/geostamp/geostamp/deploy"
	"github.com/geostamp/geostamp/internal/topology"
)

// DIR/prometheus/ is what `up` writes for Prometheus: prometheus.yml (the
// scrape configuration, with file-based discovery), targets/JOB.json (every
// process's /metrics) and rules/ (the recording and alerting rules rendered
// for the topology). `up --prometheus` runs Prometheus on it.
const (
	// PrometheusBinary is the program `up --prometheus` starts, looked up
	// on PATH.
	PrometheusBinary = "prometheus"
	// prometheusInterval is the scrape and rule evaluation interval: short,
	// so that the lab's faults show within seconds.
	prometheusInterval = "1s"
)

// Scrape jobs, one per kind of process; each has a targets file.
const (
	JobRegion    = "geostamp-region"    // each region process's admin /metrics
	JobFrontDoor = "geostamp-frontdoor" // each POP's admin /metrics
	JobGSLB      = "geostamp-gslb"      // the GSLB's admin /metrics
	JobLab       = "geostamp-lab"       // the control API's /metrics (lab process)
)

// burn is one multi-window, multi-burn-rate alert (The Site Reliability
// Workbook, ch. 5, table 5-8).
type burn struct {
	Alert, Long, Short, Factor, Severity string
}

var burns = []burn{
	{"GeostampAvailabilityBurnRate1h", "1h", "5m", "14.4", "page"},
	{"GeostampAvailabilityBurnRate6h", "6h", "30m", "6", "page"},
	{"GeostampAvailabilityBurnRate1d", "1d", "2h", "3", "ticket"},
	{"GeostampAvailabilityBurnRate3d", "3d", "6h", "1", "ticket"},
}

// ruleData is what the rule templates of package deploy read.
type ruleData struct {
	Topology string
	// Availability is the objective in percent, AvailabilityRatio as a
	// ratio and Budget the error budget (1 - ratio), exact decimals.
	Availability, AvailabilityRatio, Budget string
	RPOSeconds                              string
	// Windows are the SLI's recorded windows: every window of Burns.
	Windows []string
	Burns   []burn
}

// RenderRules renders the Prometheus rule files of package deploy for t
// (its availability and RPO objectives): file name -> content.
func RenderRules(t *topology.Topology) (map[string][]byte, error) {
	d, err := newRuleData(t)
	if err != nil {
		return nil, err
	}
	tmpls := deploy.RuleTemplates()
	names, err := fs.Glob(tmpls, "*.yml.tmpl")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range names {
		src, err := fs.ReadFile(tmpls, name)
		if err != nil {
			return nil, err
		}
		tm, err := template.New(name).Delims(deploy.TemplateLeft, deploy.TemplateRight).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("lab: rules template %s: %w", name, err)
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("lab: rules template %s: %w", name, err)
		}
		out[strings.TrimSuffix(name, ".tmpl")] = b.Bytes()
	}
	if len(out) == 0 {
		return nil, errors.New("lab: no rule templates embedded")
	}
	return out, nil
}

func newRuleData(t *topology.Topology) (ruleData, error) {
	pct, ok := new(big.Rat).SetString(strconv.FormatFloat(t.Objectives.Availability, 'f', -1, 64))
	if !ok {
		return ruleData{}, fmt.Errorf("lab: availability objective %v", t.Objectives.Availability)
	}
	hundred := big.NewRat(100, 1)
	ratio := new(big.Rat).Quo(pct, hundred)
	budget := new(big.Rat).Sub(big.NewRat(1, 1), ratio)
	d := ruleData{
		Topology:          t.Name,
		Availability:      decimal(pct),
		AvailabilityRatio: decimal(ratio),
		Budget:            decimal(budget),
		RPOSeconds:        strconv.FormatFloat(t.Objectives.RPO.D().Seconds(), 'f', -1, 64),
		Burns:             burns,
	}
	seen := map[string]bool{}
	for _, b := range burns {
		for _, w := range []string{b.Short, b.Long} {
			if !seen[w] {
				seen[w] = true
				d.Windows = append(d.Windows, w)
			}
		}
	}
	sort.Slice(d.Windows, func(i, j int) bool { return windowLen(d.Windows[i]) < windowLen(d.Windows[j]) })
	return d, nil
}

// windowLen is the length of a Prometheus duration of one unit (5m, 1h,
// 3d).
func windowLen(w string) time.Duration {
	n, _ := strconv.Atoi(w[:len(w)-1])
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[w[len(w)-1]]
	return time.Duration(n) * unit
}

// decimal writes r, a ratio with a finite decimal expansion (it came from
// a decimal), exactly and without trailing zeros.
func decimal(r *big.Rat) string {
	for prec := 0; prec < 30; prec++ {
		s := r.FloatString(prec)
		if back, _ := new(big.Rat).SetString(s); back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(30)
}

// promTarget is one entry of a file_sd targets file.
type promTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

func (l *Lab) prometheusDir() string { return filepath.Join(l.dir, "prometheus") }

// writePrometheus writes DIR/prometheus/ for the lab's endpoints: the
// scrape configuration, a targets file per job and the rules.
func (l *Lab) writePrometheus(eps *Endpoints) error {
	dir := l.prometheusDir()
	for _, d := range []string{dir, filepath.Join(dir, "targets"), filepath.Join(dir, "rules")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	rules, err := RenderRules(l.topo)
	if err != nil {
		return err
	}
	for name, b := range rules {
		if err := os.WriteFile(filepath.Join(dir, "rules", name), b, 0o644); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	for job, ts := range scrapeTargets(eps) {
		if err := writeJSONFile(filepath.Join(dir, "targets", job+".json"), ts, 0o644); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), prometheusConfig(l.topo.Name, dir, l.tokenFile()), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// scrapeTargets lists every process's /metrics by job. Each target's
// labels name the process's place (region, pop); the series a process
// exports carry their own, which win (honor_labels).
func scrapeTargets(eps *Endpoints) map[string][]promTarget {
	hostPort := func(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://") }
	out := map[string][]promTarget{JobRegion: {}, JobFrontDoor: {}, JobGSLB: {}, JobLab: {}}
	names := make([]string, 0, len(eps.Regions))
	for n := range eps.Regions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out[JobRegion] = append(out[JobRegion], promTarget{Targets: []string{hostPort(eps.Regions[n].Admin)}, Labels: map[string]string{"region": n}})
	}
	for _, p := range eps.POPs {
		out[JobFrontDoor] = append(out[JobFrontDoor], promTarget{Targets: []string{hostPort(p.Admin)}, Labels: map[string]string{"pop": p.Name}})
	}
	if eps.GSLBAdmin != "" {
		out[JobGSLB] = append(out[JobGSLB], promTarget{Targets: []string{hostPort(eps.GSLBAdmin)}})
	}
	out[JobLab] = append(out[JobLab], promTarget{Targets: []string{hostPort(eps.Control)}})
	return out
}

// prometheusConfig is DIR/prometheus/prometheus.yml. The POP and GSLB
// admin APIs serve /metrics behind the lab's bearer token, which
// Prometheus reads from the token file.
func prometheusConfig(name, dir, tokenFile string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by geostamp up for the lab %q: scrape every process of the lab,
# evaluate the rules of rules/. Targets are discovered from targets/*.json.
global:
  scrape_interval: %[2]s
  scrape_timeout: %[2]s
  evaluation_interval: %[2]s
  external_labels:
    lab: %[1]q
rule_files:
  - %[3]q
scrape_configs:
`, name, prometheusInterval, filepath.Join(dir, "rules", "*.yml"))
	for _, job := range []string{JobRegion, JobFrontDoor, JobGSLB, JobLab} {
		fmt.Fprintf(&b, "  - job_name: %s\n    honor_labels: true\n", job)
		if job == JobFrontDoor || job == JobGSLB {
			fmt.Fprintf(&b, "    authorization:\n      credentials_file: %q\n", tokenFile)
		}
		fmt.Fprintf(&b, "    file_sd_configs:\n      - files: [%q]\n        refresh_interval: 5s\n", filepath.Join(dir, "targets", job+".json"))
	}
	return []byte(b.String())
}

// findPrometheus returns the path of the prometheus binary, or an error
// that says how to install it.
func findPrometheus() (string, error) {
	p, err := exec.LookPath(PrometheusBinary)
	if err != nil {
		return "", fmt.Errorf("lab: --prometheus needs the %q program on PATH: install Debian's prometheus package (apt-get install prometheus)", PrometheusBinary)
	}
	return p, nil
}

// runPrometheus starts Prometheus on DIR/prometheus/prometheus.yml, data in
// DIR/prometheus/data and its log in DIR/prometheus/prometheus.log, and
// waits until it is ready. It returns Prometheus's URL and a channel closed
// once it has exited; it stops when ctx ends.
func (l *Lab) runPrometheus(ctx context.Context, bin string) (string, <-chan struct{}, error) {
	dir := l.prometheusDir()
	ports, err := freePorts(l.topo.Lab.Host, 1)
	if err != nil {
		return "", nil, fmt.Errorf("lab: prometheus port: %w", err)
	}
	addr := net.JoinHostPort(l.topo.Lab.Host, strconv.Itoa(ports[0]))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("lab: %w", err)
	}
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.format=json",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGTERM if the lab dies, so Prometheus does not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, fmt.Errorf("lab: start prometheus: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	done := make(chan struct{})
	failed := make(chan struct{}) // closed when it never became ready
	go func() {
		defer close(done)
		select {
		case <-exited:
			if ctx.Err() == nil {
				l.printf("prometheus exited on its own; see %s\n", logPath)
				l.event(Event{Kind: "prometheus-exited", Detail: "see " + logPath})
			}
			return
		case <-ctx.Done():
		case <-failed:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(l.topo.Lab.StartTimeout.D())
	for {
		if resp, err := client.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, done, nil
			}
		}
		select {
		case <-exited:
			return "", done, fmt.Errorf("lab: prometheus exited before it was ready; see %s", logPath)
		case <-ctx.Done():
			return "", done, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			close(failed)
			return "", done, fmt.Errorf("lab: prometheus not ready within %s; see %s", l.topo.Lab.StartTimeout, logPath)
		}
	}
}
