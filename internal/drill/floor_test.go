package drill

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/topology"
)

func TestFloorFor(t *testing.T) {
	topo := topology.Default()
	cases := []struct {
		path, service string
		want          float64
		terms         string
	}{
		// At best 1 s × (4 − 2): the first failed probe right after the fault.
		{PathFrontDoor, "", 2, "detection=2"},
		// At best 10 s × 3 tolerated failures, + TTL 10 s.
		{PathDNS, "", 40, "detection=30 ttl=10"},
		// orders fails over automatically: lease 5 s, then grace 10 s; in
		// parallel with the routing's detection.
		{PathFrontDoor, "orders", 15, "detection=2 promotion=15"},
		// catalog fails over manually: the operator's delay is unknown.
		{PathDirect, "catalog", 0, "promotion=0"},
		{PathDirect, "cache", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.path+"/"+c.service, func(t *testing.T) {
			terms := FloorFor(topo, c.path, c.service)
			sum := FloorSeconds(terms)
			var got []string
			for _, term := range terms {
				got = append(got, fmt.Sprintf("%s=%v", term.Name, term.Seconds))
				if term.Formula == "" {
					t.Errorf("term %s has no formula", term.Name)
				}
			}
			if sum != c.want || strings.Join(got, " ") != c.terms {
				t.Errorf("floor %v (%s), want %v (%s)", sum, strings.Join(got, " "), c.want, c.terms)
			}
		})
	}
	zero := 0
	topo.GSLB.Probe.ToleratedFailures = &zero
	topo.GSLB.Probe.Interval = topology.Duration(10 * time.Second)
	topo.GSLB.Probe.Timeout = topology.Duration(5 * time.Second)
	topo.GSLB.TTL = 0
	if d := DNSDetection(topo.GSLB); d.Seconds != 0 || !strings.Contains(d.Formula, "toleratedFailures 0") {
		t.Errorf("DNS detection with 0 tolerated = %+v", d)
	}
}

func TestObjectivesOf(t *testing.T) {
	got := ObjectivesOf(topology.Default().Objectives)
	if want := (Objectives{RTOSeconds: 30, RPOSeconds: 5, AvailabilityPercent: 99.95}); got != want {
		t.Errorf("ObjectivesOf(default) = %+v, want %+v", got, want)
	}
}

func TestFloorForPlan(t *testing.T) {
	topo := topology.Default()
	fast, err := topology.Parse([]byte(strings.Replace(string(topology.DefaultYAML()),
		"probe: {interval: 10s, timeout: 5s, toleratedFailures: 3}", "probe: {interval: 200ms, timeout: 100ms, toleratedFailures: 1}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	plan := func(t *testing.T, topo *topology.Topology, name string, p fault.Params) fault.Plan {
		s, _ := fault.LookupScenario(name)
		pl, err := s.Plan(p, topo)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	cases := []struct {
		name     string
		topo     *topology.Topology
		scenario string
		p        fault.Params
		floor    float64
		terms    string
	}{
		// A dead region refuses connections: the front door retries at once.
		{"outage of the primary", topo, "region-outage", fault.Params{}, 15, "routing:detection=0 data:promotion=15"},
		{"outage of a secondary", topo, "region-outage", fault.Params{Region: "northeurope"}, 0, "routing:detection=0"},
		{"hang of a secondary", topo, "region-hang", fault.Params{Region: "northeurope"}, 2, "routing:detection=2"},
		// The fast probes (200ms × 1 tolerated failure), with the default TTL of 10s.
		{"dns", fast, "dns-failover", fault.Params{Region: "northeurope"}, 10.2, "routing:detection=0.2 routing:ttl=10"},
		{"brownout", topo, "region-brownout", fault.Params{}, 0, "routing:detection=0"},
		// The crashed engine's region releases the lease after 1 s, then grace 10 s.
		{"data", topo, "data-primary-loss", fault.Params{}, 11, "routing:detection=0 data:promotion=11"},
		{"planned", topo, "planned-failover", fault.Params{}, 0, "routing:detection=0 data:promotion=0"},
		{"pop", topo, "frontdoor-outage", fault.Params{}, 0, "routing:detection=0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			terms := FloorForPlan(c.topo, plan(t, c.topo, c.scenario, c.p))
			var got []string
			for _, term := range terms {
				got = append(got, fmt.Sprintf("%s:%s=%v", term.Group, term.Name, term.Seconds))
				if term.Formula == "" {
					t.Errorf("%s has no formula", term.Name)
				}
			}
			if f := FloorSeconds(terms); fmt.Sprintf("%.3f", f) != fmt.Sprintf("%.3f", c.floor) || strings.Join(got, " ") != c.terms {
				t.Errorf("floor %v (%s), want %v (%s)", f, strings.Join(got, " "), c.floor, c.terms)
			}
		})
	}
}
