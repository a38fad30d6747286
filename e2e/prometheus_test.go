package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/testprom"
)

// promArgs are the `up` flags of a lab that checkPrometheus checks: a real
// Prometheus, and probes so that the SLI series exist.
func promArgs(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("prometheus"); err != nil {
		testenv.Skip(t, "PROMETHEUS", "prometheus (Debian's prometheus package) is not installed")
	}
	return []string{"--prometheus", "--probe-interval", "1s"}
}

// promQuery runs an instant query: region, job and instance of each
// series ("" for none) -> value.
func promQuery(t *testing.T, base, q string) (map[string]float64, error) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, err
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, ans.Error)
	}
	out := map[string]float64{}
	for _, r := range ans.Data.Result {
		var v float64
		fmt.Sscan(fmt.Sprint(r.Value[1]), &v)
		keys := []string{}
		for _, k := range []string{"region", "job", "instance"} {
			if r.Metric[k] != "" {
				keys = append(keys, k+"="+r.Metric[k])
			}
		}
		out[strings.Join(keys, ",")] = v
	}
	return out, nil
}

// popRequests sums the POPs' own geostamp_frontdoor_requests_total by
// the answering region, read from their admin /metrics.
func popRequests(t *testing.T, l *runningLab) map[string]float64 {
	t.Helper()
	tok, err := os.ReadFile(l.eps.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, p := range l.eps.POPs {
		req, _ := http.NewRequest(http.MethodGet, p.Admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("POP %s /metrics: %v", p.Name, err)
		}
		if f := fams["geostamp_frontdoor_requests_total"]; f != nil {
			for _, m := range f.Metric {
				for _, lp := range m.Label {
					if lp.GetName() == "region" {
						out["region="+lp.GetValue()] += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return out
}

// checkPrometheus checks the Prometheus of a lab started with promArgs:
// it scrapes every process; per region, the front door's request counts
// it holds are within 5 % of the POPs' own counters; every metric the
// Grafana dashboard selects has series.
func checkPrometheus(t *testing.T, l *runningLab) {
	base := l.eps.Prometheus
	if base == "" {
		t.Fatal("endpoints.json has no prometheus URL")
	}
	targets := len(l.eps.Regions) + len(l.eps.POPs) + 2 // GSLB and the control API
	eventually(t, 30*time.Second, "every target scraped and up", func() error {
		up, err := promQuery(t, base, "up")
		if err != nil {
			return err
		}
		if len(up) != targets {
			return fmt.Errorf("%d targets, want %d: %v", len(up), targets, up)
		}
		for k, v := range up {
			if v != 1 {
				return fmt.Errorf("%s is down", k)
			}
		}
		return nil
	})

	// Traffic through every POP, then the counts Prometheus scraped against
	// the POPs' own, bracketed by two reads of the POPs (probes go on).
	for _, p := range l.eps.POPs {
		for range 100 {
			resp, err := http.Get(p.HTTP + "/catalog/book")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	eventually(t, 20*time.Second, "Prometheus's per-region request counts within 5 % of the POPs'", func() error {
		before := popRequests(t, l)
		got, err := promQuery(t, base, "sum by (region) (geostamp_frontdoor_requests_total)")
		if err != nil {
			return err
		}
		after := popRequests(t, l)
		for region, b := range before {
			g, a := got[region], after[region]
			if g < 0.95*b || g > 1.05*a {
				return fmt.Errorf("%s: Prometheus %v, POPs %v..%v", region, g, b, a)
			}
		}
		t.Logf("requests by region: Prometheus %v, POPs %v", got, after)
		return nil
	})
	rates, err := promQuery(t, base, "sum by (region) (rate(geostamp_frontdoor_requests_total[1m]))")
	if err != nil || len(rates) == 0 {
		t.Errorf("per-region request rates: %v %v", rates, err)
	}

	// Every metric of the dashboard has series (recording rules included:
	// they are evaluated every second).
	panels, err := testprom.ReadDashboard("../deploy/grafana/geostamp.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range panels {
		for _, tg := range p.Targets {
			names, err := testprom.SelectedMetrics(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
			for _, n := range names {
				if n == "ALERTS" {
					continue // series only while an alert fires
				}
				eventually(t, 15*time.Second, "series of "+n+" (panel "+p.Title+")", func() error {
					v, err := promQuery(t, base, fmt.Sprintf(`count({__name__=%q})`, n))
					if err != nil {
						return err
					}
					if len(v) == 0 || math.IsNaN(v[""]) {
						return fmt.Errorf("no series")
					}
					return nil
				})
			}
		}
	}
}

// checkMetricsLint scrapes every process's /metrics — each region's admin,
// each POP's admin, the GSLB's admin and the control API — checks that
// promtool reports nothing on any of them, and that each serves what it
// should.
func checkMetricsLint(t *testing.T, l *runningLab) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Skip(t, "PROMETHEUS", "promtool (Debian's prometheus package) is not installed")
	}
	tok, err := os.ReadFile(l.eps.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		name, url string
		want      []string // metric families it must serve
	}
	targets := []target{{"control API", l.eps.Control + "/metrics",
		[]string{"geostamp_wan_bytes_total", "geostamp_wan_link_cut", "geostamp_lab_faults_total", "geostamp_probe_flows_total", "go_goroutines"}}}
	for name, r := range l.eps.Regions {
		targets = append(targets, target{"region " + name, r.Admin + "/metrics", []string{
			"geostamp_stamp_requests_total", "geostamp_stamp_request_duration_seconds", "geostamp_stamp_health_check_up",
			"geostamp_workload_operations_total", "geostamp_data_role", "geostamp_failover_transitions_total",
			"geostamp_witness_lease_held", "process_cpu_seconds_total"}})
	}
	for _, p := range l.eps.POPs {
		targets = append(targets, target{"POP " + p.Name, p.Admin + "/metrics", []string{"geostamp_frontdoor_requests_total", "geostamp_frontdoor_request_duration_seconds"}})
	}
	if l.eps.GSLBAdmin != "" {
		targets = append(targets, target{"GSLB", l.eps.GSLBAdmin + "/metrics", []string{"geostamp_gslb_region_healthy"}})
	}
	for _, tg := range targets {
		req, _ := http.NewRequest(http.MethodGet, tg.url, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /metrics: %d %v", tg.name, resp.StatusCode, err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics on %s: %v\n%s", tg.name, err, out)
		}
		for _, w := range tg.want {
			if !strings.Contains(string(body), "# TYPE "+w+" ") {
				t.Errorf("%s /metrics lacks %s", tg.name, w)
			}
		}
	}
	t.Logf("promtool check metrics: nothing reported on %d processes", len(targets))
}
