package fault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

func TestCatalog(t *testing.T) {
	want := []string{"region-outage", "region-hang", "region-brownout", "partition", "isolate-region",
		"data-primary-loss", "planned-failover", "dns-failover", "frontdoor-outage", "manual"}
	if got := strings.Join(ScenarioNames(), " "); got != strings.Join(want, " ") {
		t.Fatalf("catalog %s, want %s", got, strings.Join(want, " "))
	}
	topo := topology.Default()
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			if s.Summary == "" || s.Description == "" || s.Load == "" || len(s.Params) == 0 {
				t.Fatalf("undocumented: %+v", s)
			}
			for _, fb := range []bool{false, true} {
				pl, err := s.Plan(Params{Failback: fb}, topo)
				if err != nil {
					t.Fatalf("failback %v: %v", fb, err)
				}
				if pl.FaultAt != DefaultFaultAt || len(pl.Steps) == 0 || pl.Steps[0].At != pl.FaultAt || pl.Steps[0].EventKind() != KindFault {
					t.Fatalf("the first step must be the fault at T: %+v", pl)
				}
				// Default observation: max(30s, RTO objective 30s + 15s).
				observe := 45 * time.Second
				if fb {
					observe *= 2
				}
				if pl.Duration != pl.FaultAt+observe {
					t.Errorf("duration %s, want %s", pl.Duration, pl.FaultAt+observe)
				}
				if pl.NeedsLab != s.NeedsLab {
					t.Errorf("plan needs a lab: %v, scenario says %v", pl.NeedsLab, s.NeedsLab)
				}
				for i, st := range pl.Steps {
					a, ok := Lookup(st.Action)
					if !ok {
						t.Fatalf("step %d: unknown action %q", i, st.Action)
					}
					if errs := a.Check("step", st.Args, topo); len(errs) > 0 {
						t.Errorf("step %d (%s): %v", i, st, errs)
					}
					if st.At >= pl.Duration {
						t.Errorf("step %d at %s after the end %s", i, st.At, pl.Duration)
					}
				}
				if fb && s.Name != "manual" {
					if pl.FailbackAt != pl.FaultAt+45*time.Second || pl.Steps[len(pl.Steps)-1].Phase != PhaseFailback || len(pl.Cleanup) != 0 {
						t.Errorf("failback: at %s, steps %v, cleanup %v", pl.FailbackAt, pl.Steps, pl.Cleanup)
					}
				}
				if !fb && (pl.FailbackAt != 0 || pl.Steps[len(pl.Steps)-1].Phase != "") {
					t.Errorf("no failback asked: %+v", pl.Steps)
				}
				if !strings.Contains(pl.Describe(), s.Name) {
					t.Errorf("describe: %s", pl.Describe())
				}
			}
		})
	}
}

func TestScenarioDefaults(t *testing.T) {
	topo := topology.Default()
	plan := func(name string, p Params) Plan {
		t.Helper()
		s, _ := LookupScenario(name)
		pl, err := s.Plan(p, topo)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	// The preferred region holds orders' primary: killing it puts a
	// promotion on the recovery path; killing the other does not.
	if pl := plan("region-outage", Params{}); pl.Region != "westeurope" || pl.Promotes != "orders" || pl.PromoteMode != "automatic" || pl.Detection != DetectRefused {
		t.Errorf("region-outage default: %+v", pl)
	}
	if pl := plan("region-outage", Params{Region: "northeurope"}); pl.Promotes != "" || pl.Steps[0].Args["region"] != "northeurope" {
		t.Errorf("region-outage northeurope: %+v", pl)
	}
	// The lab says the primary has moved.
	if pl := plan("region-outage", Params{Region: "northeurope", Primaries: map[string]string{"orders": "northeurope"}}); pl.Promotes != "orders" {
		t.Errorf("with the lab's primaries: %+v", pl)
	}
	if pl := plan("region-brownout", Params{}); pl.Promotes != "" || pl.Detection != DetectPassive || pl.Steps[0].Args["share"] != "0.5" || pl.Steps[0].Args["status"] != "503" {
		t.Errorf("brownout: %+v", pl)
	}
	if pl := plan("partition", Params{}); pl.Steps[0].Args["a"] != "westeurope" || pl.Steps[0].Args["b"] != "northeurope" {
		t.Errorf("partition: %+v", pl.Steps)
	}
	pl := plan("planned-failover", Params{FaultAt: 3 * time.Second, Duration: 13 * time.Second})
	if st := pl.Steps[0]; st.At != 3*time.Second || st.Args["to"] != "northeurope" || st.Args["mode"] != ModePlanned {
		t.Errorf("planned-failover: %+v", pl.Steps)
	}
	if len(pl.Cleanup) != 1 || pl.Cleanup[0].Args["to"] != "westeurope" {
		t.Errorf("planned-failover cleanup fails back: %+v", pl.Cleanup)
	}
	if pl := plan("data-primary-loss", Params{}); pl.Region != "westeurope" || pl.Promotes != "orders" || pl.Detection != DetectData || len(pl.Steps) != 1 {
		t.Errorf("data-primary-loss: %+v", pl)
	}
	if pl := plan("dns-failover", Params{}); pl.Streams[0].Path != PathDNS {
		t.Errorf("dns-failover streams: %+v", pl.Streams)
	}
	if pl := plan("frontdoor-outage", Params{}); pl.Streams[0].Path != PathFallback || pl.Steps[0].Args["pop"] != "pop-eu" {
		t.Errorf("frontdoor-outage: %+v", pl)
	}
	if pl := plan("manual", Params{}); pl.NeedsLab || pl.Announce == "" {
		t.Errorf("manual: %+v", pl)
	}

	// A manual failover policy: the drill forces the failover after the grace.
	manual := topology.Default()
	for i := range manual.Data {
		if manual.Data[i].Name == "orders" {
			manual.Data[i].Failover.Policy = "manual"
		}
	}
	s, _ := LookupScenario("data-primary-loss")
	mp, err := s.Plan(Params{FaultAt: 2 * time.Second, Duration: 30 * time.Second}, manual)
	if err != nil {
		t.Fatal(err)
	}
	if len(mp.Steps) != 2 || mp.Steps[1].Action != "failover" || mp.Steps[1].At != 12*time.Second || mp.Steps[1].Args["mode"] != ModeForced ||
		mp.Steps[1].EventKind() != KindNote || mp.PromoteMode != ModeForced {
		t.Errorf("manual policy: %+v", mp.Steps)
	}
	if _, err := s.Plan(Params{FaultAt: 2 * time.Second, Duration: 8 * time.Second}, manual); err == nil || !strings.Contains(err.Error(), "--duration: 8s ends before the step at 12s") {
		t.Errorf("a step after the end: %v", err)
	}
}

func TestScenarioParamErrors(t *testing.T) {
	s, _ := LookupScenario("region-brownout")
	_, err := s.Plan(Params{Region: "mars", Share: "2", Service: "nope", FaultAt: 10 * time.Second, Duration: 10500 * time.Millisecond}, topology.Default())
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`--region: "mars" is not a region of the topology`,
		`--share: "2" is not a share`,
		`--service: "nope" is not a data service`,
		`--duration: 10.5s leaves 500ms to observe after the fault at 10s`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q not in:\n%v", w, err)
		}
	}
	if n := len(topology.Problems(err)); n != 4 {
		t.Errorf("%d problems, want 4: %v", n, err)
	}
	pf, _ := LookupScenario("planned-failover")
	if _, err := pf.Plan(Params{To: "westeurope"}, topology.Default()); err == nil || !strings.Contains(err.Error(), "westeurope is already the primary of orders") {
		t.Errorf("failover to the primary: %v", err)
	}
	if _, err := pf.Plan(Params{Service: "cache"}, topology.Default()); err == nil || !strings.Contains(err.Error(), "needs a primary-secondary one") {
		t.Errorf("failover of a cache: %v", err)
	}
}

const validCustom = `
name: hang-then-kill
description: freeze westeurope, then kill it
load:
  paths: [frontdoor, dns]
  conns: [fresh]
duration: 60s
steps:
  - {at: 10s, action: freeze-region, args: {region: westeurope}}
  - {at: 20s, action: kill-region, args: {region: westeurope}}
  - {at: 40s, action: restart-region, args: {region: westeurope}, phase: failback}
cleanup:
  - {action: resume-region, args: {region: westeurope}}
`

func TestParseCustom(t *testing.T) {
	pl, err := ParseCustom([]byte(validCustom), topology.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Scenario != "hang-then-kill" || pl.Duration != time.Minute || pl.FaultAt != 10*time.Second || pl.FailbackAt != 40*time.Second {
		t.Fatalf("plan %+v", pl)
	}
	if len(pl.Streams) != 2 || pl.Streams[0] != (Stream{PathFrontDoor, ConnFresh}) || pl.Streams[1] != (Stream{PathDNS, ConnFresh}) {
		t.Fatalf("streams %+v", pl.Streams)
	}
	if pl.Detection != DetectProbes || pl.Region != "westeurope" || pl.Promotes != "orders" || !pl.NeedsLab || len(pl.Cleanup) != 1 {
		t.Fatalf("derived %+v", pl)
	}
	if pl.Steps[2].EventKind() != KindHeal {
		t.Fatalf("restart is a heal: %+v", pl.Steps[2])
	}
}

func TestParseCustomNamesEveryProblem(t *testing.T) {
	const bad = `
name: Region Outage
load:
  paths: [frontdoor, carrier-pigeon]
  connz: [pooled]
duration: 1m
steps:
  - {at: 20s, action: kill-region, args: {region: mars}}
  - {at: 10s, action: kil-region, args: {region: westeurope}}
  - {action: brownout, args: {region: westeurope, share: lots}, phase: later}
  - {at: 90s, action: heal-link, args: {a: westeurope}, kind: repair}
  - {at: 50s, action: mark, args: {name: x}, when: now}
cleanup:
  - {at: 1s, action: restart-region}
`
	_, err := ParseCustom([]byte(bad), topology.Default(), nil)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`name: "Region Outage" must be a lower-case DNS label`,
		`load.connz: unknown field (line 5)`,
		`load.paths[1]: "carrier-pigeon" must be one of frontdoor, dns, frontdoor+dns`,
		`steps[0].args.region: "mars" is not a region of the topology`,
		`steps[1].action: unknown action "kil-region"; did you mean "kill-region"?`,
		`steps[1].at: 10s is before the previous step (20s)`,
		`steps[2].at: required`,
		`steps[2].args.share: "lots" is not a share`,
		`steps[2].phase: "later" must be failback`,
		`steps[3].args: heal-link needs argument "b"`,
		`steps[3].kind: "repair" must be one of fault, heal, note`,
		`steps[3].at: 1m30s is not within the load's duration (1m0s)`,
		`steps[4].when: unknown field (line 12)`,
		`steps[4].at: 50s is before the previous step (1m30s)`,
		`cleanup[0].at: unknown field`,
		`cleanup[0].args: restart-region needs argument "region"`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q", w)
		}
	}
	if n := len(topology.Problems(err)); n != len(want) {
		t.Errorf("%d problems, want %d:\n%s", n, len(want), msg)
	}
	var fe *topology.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("not FieldErrors: %T", err)
	}
}

func TestParseCustomShape(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"empty", ``, "(file): empty scenario"},
		{"not yaml", "name: [", "(file): "},
		{"list", "- a\n- b\n", "(file): want a mapping"},
		{"no steps", "name: x\nduration: 10s\n", "steps: at least one step is required"},
		{"empty steps", "name: x\nduration: 10s\nsteps: []\n", "steps: at least one step is required"},
		{"no duration", "name: x\nsteps: [{at: 1s, action: mark}]\n", "duration: required"},
		{"builtin name", "name: region-outage\nduration: 10s\nsteps: [{at: 1s, action: mark}]\n", `name: "region-outage" is a built-in scenario`},
		{"args list", "name: x\nduration: 10s\nsteps: [{at: 1s, action: mark, args: [a]}]\n", "steps[0].args: want a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCustom([]byte(c.doc), topology.Default(), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
