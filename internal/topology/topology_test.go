package topology

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 examples, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDefaultMatchesExample(t *testing.T) {
	b, err := os.ReadFile("../../examples/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, DefaultYAML()) {
		t.Fatal("examples/default.yaml differs from the embedded internal/topology/default.yaml; keep them identical")
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if got := d.RegionNames(); len(got) != 2 || got[0] != "westeurope" || got[1] != "northeurope" {
		t.Fatalf("regions = %v", got)
	}
	if d.Witness != "francecentral" || d.Model != ActiveActive {
		t.Fatalf("witness %q model %q", d.Witness, d.Model)
	}
	if l := d.Latency("northeurope", "westeurope"); l.Latency.D() != 12*time.Millisecond {
		t.Fatalf("latency = %v", l)
	}
	if d.Regions[1].Address != "127.0.2.1" || d.Regions[0].Replicas != 2 {
		t.Fatalf("defaults not filled: %+v", d.Regions)
	}
	if o, _ := d.DataService("orders"); o.Primary != "westeurope" || o.Engine != "jetstream" {
		t.Fatalf("orders = %+v", o)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := Load("testdata/three-mistakes.yaml")
	if err == nil {
		t.Fatal("want errors")
	}
	got := Problems(err)
	want := []string{
		"regions[1].priority: must be between 1 and 5, got 9",
		"frontdoor.routing: \"fastest\" must be one of priority, weighted, latency",
		"frontdoor.prob: unknown field (line 7)",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestValidateCases(t *testing.T) {
	base := `name: t
regions:
  - {name: a, priority: 1}
  - {name: b, priority: 2}
witness: w
`
	cases := []struct {
		name, yaml, want string
	}{
		{"duplicate region", "name: t\nregions: [{name: a}, {name: a}]\n", `regions[1].name: "a" is already used by regions[0].name`},
		{"no regions", "name: t\n", "regions: at least one region is required"},
		{"bad weight", "name: t\nregions: [{name: a, weight: 5000}]\n", "regions[0].weight: must be between 1 and 1000"},
		{"bad label", "name: t\nregions: [{name: West_Europe}]\n", `regions[0].name: "West_Europe" must be a lower-case DNS label`},
		{"unknown wan site", base + "wan: {a<->x: 5ms}\n", `wan["a<->x"]: unknown site "x"`},
		{"bad wan key", base + "wan: {a-b: 5ms}\n", `wan["a-b"]: want "a<->b" or "a->b"`},
		{"bad duration", base + "wan: {a<->b: fast}\n", `"fast" is not a duration`},
		{"strong multiwrite", base + "data: [{name: c, kind: multi-write, consistency: strong}]\n", "data[0].consistency: strong consistency is not allowed with multi-region writes"},
		{"automatic needs witness", "name: t\nregions: [{name: a}]\ndata: [{name: o, kind: primary-secondary, failover: {policy: automatic}}]\n", "data[0].failover.policy: automatic failover needs a witness"},
		{"unknown primary", base + "data: [{name: o, kind: primary-secondary, primary: z}]\n", `data[0].primary: "z" is not a region`},
		{"active-passive tie", "name: t\nmodel: active-passive\nregions: [{name: a}, {name: b}]\n", "regions: active-passive needs exactly one region with the lowest priority"},
		{"probe timeout", base + "frontdoor: {probe: {interval: 1s, timeout: 2s}}\n", "frontdoor.probe.timeout: must be positive and at most the interval"},
		{"samples", base + "frontdoor: {probe: {sampleSize: 2, successfulSamples: 3}}\n", "frontdoor.probe.successfulSamples: must be between 1 and sampleSize (2), got 3"},
		{"tolerated", base + "gslb: {probe: {toleratedFailures: 10}}\n", "gslb.probe.toleratedFailures: must be between 0 and 9"},
		{"ttl", base + "gslb: {ttl: 1500ms}\n", "gslb.ttl: must be whole seconds"},
		{"same address", "name: t\nregions: [{name: a, address: 127.0.5.1}, {name: b, address: 127.0.5.1}]\n", "regions[1].address: 127.0.5.1 is already the address of regions[0]"},
		{"unknown nested", base + "gslb: {probe: {intervl: 1s}}\n", "gslb.probe.intervl: unknown field"},
		{"case hint", base + "frontdoor: {latencyband: 1s}\n", `did you mean "latencyBand"?`},
		{"not yaml", "name: [\n", "(file):"},
		{"wrong type", "name: t\nregions: [{name: a, priority: high}]\n", "cannot unmarshal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml))
			if err == nil {
				t.Fatalf("want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n%v\ndoes not contain\n%s", err, c.want)
			}
		})
	}
}

func TestLatencyOneWayOverride(t *testing.T) {
	tp, err := Parse([]byte("name: t\nregions: [{name: a}, {name: b}]\nwan: {a<->b: 10ms, b->a: {latency: 30ms, jitter: 5ms}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := tp.Latency("a", "b"); l.Latency.D() != 10*time.Millisecond {
		t.Fatalf("a->b %v", l)
	}
	if l := tp.Latency("b", "a"); l.Latency.D() != 30*time.Millisecond || l.Jitter.D() != 5*time.Millisecond {
		t.Fatalf("b->a %v", l)
	}
}

func TestToleratedFailuresZeroIsKept(t *testing.T) {
	tp, err := Parse([]byte("name: t\nregions: [{name: a}]\ngslb: {probe: {toleratedFailures: 0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.GSLB.Probe.Tolerated(); got != 0 {
		t.Fatalf("toleratedFailures 0 became %d", got)
	}
	if got := Default().GSLB.Probe.Tolerated(); got != 3 {
		t.Fatalf("default toleratedFailures = %d, want 3", got)
	}
}
