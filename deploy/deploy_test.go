package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/testprom"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Skip(t, "PROMETHEUS", "promtool (Debian's prometheus package) is not installed")
	}
	return p
}

// TestRulesPassPromtool: the rendered rules are valid, and their unit tests
// (each alert firing on a synthetic series and silent on a healthy one)
// pass.
func TestRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	rules, _ := filepath.Glob("prometheus/rules/*.yml")
	tests, _ := filepath.Glob("prometheus/tests/*.test.yml")
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rules %v, tests %v: want both", rules, tests)
	}
	for _, args := range [][]string{append([]string{"check", "rules"}, rules...), append([]string{"test", "rules"}, tests...)} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// recorded are the names the recording rules define.
func recorded(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("prometheus/rules/recording.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- record: (\S+)$`).FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = true
	}
	return out
}

// TestDashboardQueries: every panel of the Grafana dashboard has queries,
// each parses with Prometheus's own PromQL parser, and each metric it
// selects is geostamp's (recorded by the rules or exported by a process),
// Prometheus's own up or ALERTS. e2e/prometheus_test.go checks, against a
// running lab, that each one has series.
func TestDashboardQueries(t *testing.T) {
	panels, err := testprom.ReadDashboard("grafana/geostamp.json")
	if err != nil {
		t.Fatal(err)
	}
	rec := recorded(t)
	queries := 0
	for _, p := range panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			names, err := testprom.SelectedMetrics(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			for _, n := range names {
				if !rec[n] && !strings.HasPrefix(n, "geostamp_") && n != "up" && n != "ALERTS" {
					t.Errorf("panel %q selects %s: neither recorded nor a geostamp metric", p.Title, n)
				}
				if strings.Contains(n, ":") && !rec[n] {
					t.Errorf("panel %q selects %s, which no recording rule defines", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("%d queries: the dashboard lost its panels", queries)
	}
}
