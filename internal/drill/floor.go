package drill

import (
	"fmt"

	"github.com/geostamp/geostamp/internal/topology"
)

// ObjectivesOf converts the topology's objectives to the units of the
// history and summary.json.
func ObjectivesOf(o topology.Objectives) Objectives {
	return Objectives{
		RTOSeconds:          o.RTO.D().Seconds(),
		RPOSeconds:          o.RPO.D().Seconds(),
		AvailabilityPercent: o.Availability,
	}
}

// FrontDoorDetection is the time the front door's window rule takes to
// mark a dead origin unhealthy: Interval×(SampleSize−SuccessfulSamples+1) +
// Timeout (see package health).
func FrontDoorDetection(fd topology.FrontDoor) FloorTerm {
	p := fd.Probe
	n := p.SampleSize - p.SuccessfulSamples + 1
	return FloorTerm{
		Name:    "detection",
		Seconds: p.Interval.D().Seconds()*float64(n) + p.Timeout.D().Seconds(),
		Formula: fmt.Sprintf("front door probes: interval %s × (sampleSize %d − successfulSamples %d + 1) + timeout %s",
			p.Interval, p.SampleSize, p.SuccessfulSamples, p.Timeout),
	}
}

// DNSDetection is the Traffic Manager detection time of the GSLB:
// (Interval + Timeout) × (ToleratedFailures + 1).
func DNSDetection(g topology.GSLB) FloorTerm {
	p := g.Probe
	return FloorTerm{
		Name:    "detection",
		Seconds: (p.Interval.D() + p.Timeout.D()).Seconds() * float64(p.Tolerated()+1),
		Formula: fmt.Sprintf("gslb probes: (interval %s + timeout %s) × (toleratedFailures %d + 1)",
			p.Interval, p.Timeout, p.Tolerated()),
	}
}

// DNSTTL is the time clients keep the old answer: the TTL of routed answers.
func DNSTTL(g topology.GSLB) FloorTerm {
	return FloorTerm{Name: "ttl", Seconds: g.TTL.D().Seconds(), Formula: fmt.Sprintf("gslb ttl %s", g.TTL)}
}

// Promotion is the wait before a failover group promotes its secondary:
// the grace period of an automatic policy; 0 for a manual one (the
// operator's delay is not a property of the configuration).
func Promotion(d topology.DataService) FloorTerm {
	if d.Failover.Policy != "automatic" {
		return FloorTerm{Name: "promotion", Seconds: 0, Formula: fmt.Sprintf("%s: manual failover (operator's delay not included)", d.Name)}
	}
	return FloorTerm{
		Name:    "promotion",
		Seconds: d.Failover.Grace.D().Seconds(),
		Formula: fmt.Sprintf("%s: automatic failover after grace %s", d.Name, d.Failover.Grace),
	}
}

// FloorFor lists the floor terms of a drill through path (frontdoor, dns or
// direct) whose fault needs the data service named service to fail over
// ("" when no promotion is involved). t must have its defaults set.
func FloorFor(t *topology.Topology, path, service string) []FloorTerm {
	var terms []FloorTerm
	switch path {
	case PathFrontDoor:
		terms = append(terms, FrontDoorDetection(t.FrontDoor))
	case PathDNS:
		terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB))
	}
	if d, ok := t.DataService(service); ok && d.Kind == topology.KindPrimarySecondary {
		terms = append(terms, Promotion(d))
	}
	return terms
}
