package lab

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/geostamp/geostamp/internal/testenv"
	"github.com/geostamp/geostamp/internal/topology"
)

var update = flag.Bool("update", false, "rewrite deploy/prometheus/rules/ from the templates")

// TestDeployedRulesAreRendered: deploy/prometheus/rules/ is the templates'
// rendering for the default topology, so that what an operator copies from
// the repository is what `up` writes. Regenerate with
// go test ./internal/lab -run TestDeployedRulesAreRendered -update.
func TestDeployedRulesAreRendered(t *testing.T) {
	rules, err := RenderRules(topology.Default())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "deploy", "prometheus", "rules")
	if *update {
		for name, b := range rules {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var want []string
	for name := range rules {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("deploy/prometheus/rules holds %v, the templates render %v (run with -update)", names, want)
	}
	for name, b := range rules {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(b) {
			t.Errorf("deploy/prometheus/rules/%s differs from its template's rendering for the default topology (run with -update)", name)
		}
	}
}

// TestRulesFollowObjectives: the rendered rules carry the topology's
// availability budget and RPO, exactly.
func TestRulesFollowObjectives(t *testing.T) {
	topo := topology.Default()
	topo.Objectives.Availability = 99.9
	topo.Objectives.RPO = topology.Duration(12_500_000_000) // 12.5 s
	rules, err := RenderRules(topo)
	if err != nil {
		t.Fatal(err)
	}
	alerts, rec := string(rules["alerting.rules.yml"]), string(rules["recording.rules.yml"])
	for _, want := range []string{"> (14.4 * 0.001)", "> (6 * 0.001)", "> 12.5\n", "objective of 99.9 %"} {
		if !strings.Contains(alerts, want) {
			t.Errorf("alerting rules lack %q", want)
		}
	}
	for _, want := range []string{"vector(0.999)", "vector(12.5)", "/ 0.001"} {
		if !strings.Contains(rec, want) {
			t.Errorf("recording rules lack %q", want)
		}
	}
}

// TestPrometheusConfig: the configuration up writes names every process of
// the lab and passes promtool's check.
func TestPrometheusConfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &Lab{dir: dir, topo: topology.Default()}
	eps := &Endpoints{
		Control:   "http://127.0.0.1:7400",
		TokenFile: tokenFile,
		Regions:   map[string]RegionEndpoint{"westeurope": {Admin: "http://127.0.1.1:7501"}, "northeurope": {Admin: "http://127.0.2.1:7501"}},
		POPs:      []POPEndpoint{{Name: "pop-eu", Admin: "http://127.0.0.1:7410"}},
		GSLBAdmin: "http://127.0.0.1:7420",
	}
	if err := l.writePrometheus(eps); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "secret") {
		t.Error("prometheus.yml holds the token")
	}
	targets, _ := os.ReadFile(filepath.Join(dir, "prometheus", "targets", JobRegion+".json"))
	for _, want := range []string{"127.0.1.1:7501", "127.0.2.1:7501", `"region": "westeurope"`} {
		if !strings.Contains(string(targets), want) {
			t.Errorf("region targets %s lack %s", targets, want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Skip(t, "PROMETHEUS", "promtool (Debian's prometheus package) is not installed")
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

// TestFindPrometheusSaysHowToInstall: without the program, --prometheus
// fails with the way to get it.
func TestFindPrometheusSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPrometheus()
	if err == nil || !strings.Contains(err.Error(), "apt-get install prometheus") {
		t.Fatalf("findPrometheus without prometheus on PATH: %v", err)
	}
}
