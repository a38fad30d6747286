package drill

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/failover"
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
		// At best (4 − 2) waits of 1 s less the 10 % jitter: the first
		// failed probe right after the fault.
		{PathFrontDoor, "", 1.8, "detection=1.800"},
		// At best 3 tolerated failures × 9 s, + TTL 10 s less the 0.5 s
		// spacing of 20 staggered client caches.
		{PathDNS, "", 36.5, "detection=27.000 ttl=9.500"},
		// orders fails over automatically: lease 5 s less one renewal
		// period (5 s − 1 s margin)/3, then grace 10 s; in parallel with the
		// routing's detection. A region-outage of the orders primary
		// measured 14.89 s, under the former floor of lease + grace.
		{PathFrontDoor, "orders", 13.666, "detection=1.800 promotion=13.666"},
		// catalog fails over manually: the operator's delay is unknown.
		{PathDirect, "catalog", 0, "promotion=0.000"},
		{PathDirect, "cache", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.path+"/"+c.service, func(t *testing.T) {
			terms := FloorFor(topo, c.path, c.service, 0)
			sum := FloorSeconds(terms)
			var got []string
			for _, term := range terms {
				got = append(got, fmt.Sprintf("%s=%.3f", term.Name, term.Seconds))
				if term.Formula == "" {
					t.Errorf("term %s has no formula", term.Name)
				}
			}
			if fmt.Sprintf("%.3f", sum) != fmt.Sprintf("%.3f", c.want) || strings.Join(got, " ") != c.terms {
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
		// The lease, last renewed up to (5 s − 1 s)/3 before the kill, then
		// the grace 10 s.
		{"outage of the primary", topo, "region-outage", fault.Params{}, 13.666, "routing:detection=0.000 data:promotion=13.666"},
		{"outage of a secondary", topo, "region-outage", fault.Params{Region: "northeurope"}, 0, "routing:detection=0.000"},
		{"hang of a secondary", topo, "region-hang", fault.Params{Region: "northeurope"}, 1.8, "routing:detection=1.800"},
		// The fast probes (1 tolerated failure, one wait of 200ms less the
		// 10 % jitter), with the default TTL of 10s less 10s/20.
		{"dns", fast, "dns-failover", fault.Params{Region: "northeurope"}, 9.68, "routing:detection=0.180 routing:ttl=9.500"},
		{"brownout", topo, "region-brownout", fault.Params{}, 0, "routing:detection=0.000"},
		// The crashed engine's region releases the lease once its replica
		// has failed for 1 s, then grace 10 s.
		{"data", topo, "data-primary-loss", fault.Params{}, 11, "routing:detection=0.000 data:promotion=11.000"},
		{"planned", topo, "planned-failover", fault.Params{}, 0, "routing:detection=0.000 data:promotion=0.000"},
		{"pop", topo, "frontdoor-outage", fault.Params{}, 0, "routing:detection=0.000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			terms := FloorForPlan(c.topo, plan(t, c.topo, c.scenario, c.p), 0)
			var got []string
			for _, term := range terms {
				got = append(got, fmt.Sprintf("%s:%s=%.3f", term.Group, term.Name, term.Seconds))
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

// TestFloorFromControllerConfig: the data terms come from the failover
// controller's own timing, not from copies of its values.
func TestFloorFromControllerConfig(t *testing.T) {
	d, ok := topology.Default().DataService("orders")
	if !ok || d.Failover.Policy != "automatic" {
		t.Fatalf("default topology: orders %+v, want an automatic failover group", d)
	}
	tm, err := failover.LeaseTiming(d.Failover.Lease.D())
	if err != nil {
		t.Fatal(err)
	}
	if tm.Renew <= 0 || tm.Renew >= d.Failover.Lease.D() {
		t.Fatalf("renewal period %s of lease %s", tm.Renew, d.Failover.Lease)
	}
	p := Promotion(d)
	if want := (d.Failover.Lease.D() - tm.Renew + d.Failover.Grace.D()).Truncate(time.Millisecond).Seconds(); p.Seconds != want || want != 13.666 {
		t.Errorf("Promotion = %v s, want lease − renew + grace = %v s (13.666 s, in whole ms rounded down)", p.Seconds, want)
	}
	if p.Seconds >= (d.Failover.Lease.D() + d.Failover.Grace.D()).Seconds() {
		t.Errorf("Promotion %v s is not below lease + grace: the lost lease was renewed before the fault", p.Seconds)
	}
	for _, s := range []string{"lease 5s", "1.333s", "grace 10s"} {
		if !strings.Contains(p.Formula, s) {
			t.Errorf("Promotion formula %q does not name %s", p.Formula, s)
		}
	}
	r := Release(d)
	if want := (failover.DefaultReplicaDownAfter + d.Failover.Grace.D()).Seconds(); r.Seconds != want {
		t.Errorf("Release = %v s, want ReplicaDownAfter + grace = %v s", r.Seconds, want)
	}
	if !strings.Contains(r.Formula, failover.DefaultReplicaDownAfter.String()) {
		t.Errorf("Release formula %q does not name ReplicaDownAfter %s", r.Formula, failover.DefaultReplicaDownAfter)
	}

	manual := d
	manual.Failover.Policy = "manual"
	if p := Promotion(manual); p.Seconds != 0 {
		t.Errorf("Promotion of a manual group = %v s, want 0", p.Seconds)
	}
	// Fewer DNS clients space their refreshes further apart.
	g := topology.Default().GSLB
	for clients, want := range map[int]float64{1: 0, 2: 5, 20: 9.5} {
		if got := DNSTTL(g, clients).Seconds; got != want {
			t.Errorf("DNSTTL(ttl 10s, %d clients) = %v s, want %v", clients, got, want)
		}
	}
}
