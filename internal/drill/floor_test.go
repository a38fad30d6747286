package drill

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

func TestFloorFor(t *testing.T) {
	topo := topology.Default()
	cases := []struct {
		path, service string
		want          float64
		terms         string
	}{
		// 1 s × (4 − 2 + 1) + 0.5 s.
		{PathFrontDoor, "", 3.5, "detection=3.5"},
		// (10 s + 5 s) × (3 + 1) + TTL 10 s.
		{PathDNS, "", 70, "detection=60 ttl=10"},
		// orders fails over automatically after a 10 s grace.
		{PathFrontDoor, "orders", 13.5, "detection=3.5 promotion=10"},
		// catalog fails over manually: the operator's delay is unknown.
		{PathDirect, "catalog", 0, "promotion=0"},
		{PathDirect, "cache", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.path+"/"+c.service, func(t *testing.T) {
			terms := FloorFor(topo, c.path, c.service)
			var sum float64
			var got []string
			for _, term := range terms {
				sum += term.Seconds
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
	if d := DNSDetection(topo.GSLB); d.Seconds != 15 || !strings.Contains(d.Formula, "toleratedFailures 0") {
		t.Errorf("DNS detection with 0 tolerated = %+v", d)
	}
}

func TestObjectivesOf(t *testing.T) {
	got := ObjectivesOf(topology.Default().Objectives)
	if want := (Objectives{RTOSeconds: 30, RPOSeconds: 5, AvailabilityPercent: 99.95}); got != want {
		t.Errorf("ObjectivesOf(default) = %+v, want %+v", got, want)
	}
}
