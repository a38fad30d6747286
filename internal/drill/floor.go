package drill

import (
	"fmt"

	"github.com/geostamp/geostamp/internal/fault"
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

// FrontDoorDetection is the least time the front door's window rule takes
// to mark a dead origin unhealthy: SampleSize−SuccessfulSamples+1 failed
// probes, the first right after the fault and each failing at once (a
// refused connection), so Interval×(SampleSize−SuccessfulSamples). A floor
// is a lower bound; the worst case adds an interval and the timeout.
func FrontDoorDetection(fd topology.FrontDoor) FloorTerm {
	p := fd.Probe
	n := p.SampleSize - p.SuccessfulSamples
	return FloorTerm{
		Name:    "detection",
		Seconds: p.Interval.D().Seconds() * float64(n),
		Formula: fmt.Sprintf("front door probes at best: interval %s × (sampleSize %d − successfulSamples %d)",
			p.Interval, p.SampleSize, p.SuccessfulSamples),
		Group: FloorRouting,
	}
}

// DNSDetection is the least time the GSLB takes to mark a dead region down
// (Traffic Manager's rule: ToleratedFailures+1 failed probes in a row): the
// first failed probe right after the fault, each failing at once, so
// Interval×ToleratedFailures. The worst case, (Interval+Timeout) ×
// (ToleratedFailures+1) + Interval, is what Traffic Manager documents.
func DNSDetection(g topology.GSLB) FloorTerm {
	p := g.Probe
	return FloorTerm{
		Name:    "detection",
		Seconds: p.Interval.D().Seconds() * float64(p.Tolerated()),
		Formula: fmt.Sprintf("gslb probes at best: interval %s × toleratedFailures %d", p.Interval, p.Tolerated()),
		Group:   FloorRouting,
	}
}

// DNSTTL is the time clients keep the old answer: the TTL of routed answers.
func DNSTTL(g topology.GSLB) FloorTerm {
	return FloorTerm{Name: "ttl", Seconds: g.TTL.D().Seconds(), Formula: fmt.Sprintf("gslb ttl %s", g.TTL), Group: FloorRouting}
}

// Promotion is the wait before a failover group promotes a secondary
// after its primary is lost: with an automatic policy, the primary's
// witness lease must end, then the grace period pass; 0 for a manual one
// (the operator's delay is not a property of the configuration).
func Promotion(d topology.DataService) FloorTerm {
	if d.Failover.Policy != "automatic" {
		return FloorTerm{Name: "promotion", Seconds: 0, Formula: fmt.Sprintf("%s: manual failover (operator's delay not included)", d.Name), Group: FloorData}
	}
	return FloorTerm{
		Name:    "promotion",
		Seconds: (d.Failover.Lease.D() + d.Failover.Grace.D()).Seconds(),
		Formula: fmt.Sprintf("%s: automatic failover: the lost primary's lease %s ends, then the grace %s", d.Name, d.Failover.Lease, d.Failover.Grace),
		Group:   FloorData,
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

// FloorForPlan lists the floor terms of a drill plan: how its fault is
// detected on its load's path (fault.Plan.Detection) and, when a
// promotion is on the recovery path, how long that takes.
func FloorForPlan(t *topology.Topology, pl fault.Plan) []FloorTerm {
	dns := false
	for _, s := range pl.Streams {
		dns = dns || s.Path == fault.PathDNS
	}
	var terms []FloorTerm
	zero := func(why string) FloorTerm {
		return FloorTerm{Name: "detection", Seconds: 0, Formula: why, Group: FloorRouting}
	}
	switch pl.Detection {
	case fault.DetectRefused:
		if dns {
			terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB))
		} else {
			terms = append(terms, zero("the dead region refuses connections: the front door retries on another region at once and ejects it"))
		}
	case fault.DetectProbes:
		if dns {
			terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB))
		} else {
			terms = append(terms, FrontDoorDetection(t.FrontDoor))
		}
	case fault.DetectPassive:
		terms = append(terms, zero("probes keep passing; passive outlier ejection and retries react to the first failed request"))
	case fault.DetectClient:
		terms = append(terms, zero("the client falls back to DNS on the first refused connection"))
	case fault.DetectData:
		terms = append(terms, zero("routing is not affected; only the data layer notices"))
	default:
		terms = append(terms, zero("no client path crosses the fault"))
	}
	d, ok := t.DataService(pl.Promotes)
	switch {
	case pl.Promotes == "" || !ok:
	case pl.PromoteMode == fault.ModePlanned:
		terms = append(terms, FloorTerm{Name: "promotion", Seconds: 0, Group: FloorData,
			Formula: d.Name + ": planned failover: fence, catch up, promote (writes pause for the handover only)"})
	case pl.PromoteMode == fault.ModeForced:
		after := 0.0
		for _, s := range pl.Steps {
			if s.Action == "failover" && s.At >= pl.FaultAt {
				after = (s.At - pl.FaultAt).Seconds()
				break
			}
		}
		terms = append(terms, FloorTerm{Name: "promotion", Seconds: after, Group: FloorData,
			Formula: fmt.Sprintf("%s: manual policy; the drill forces the failover %gs after the fault", d.Name, after)})
	case pl.Detection == fault.DetectData && d.Failover.Policy == "automatic":
		// The primary's region lives on and releases the lease itself.
		terms = append(terms, FloorTerm{Name: "promotion", Seconds: 1 + d.Failover.Grace.D().Seconds(), Group: FloorData,
			Formula: fmt.Sprintf("%s: the primary releases its lease 1s after its data engine fails, then the grace %s", d.Name, d.Failover.Grace)})
	default:
		terms = append(terms, Promotion(d))
	}
	return terms
}
