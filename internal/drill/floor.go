package drill

import (
	"fmt"
	"time"

	"github.com/geostamp/geostamp/internal/failover"
	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/health"
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
// to mark a dead origin unhealthy (health.Config.MinDetection): the first
// failed probe right after the fault and each failing at once (a refused
// connection), SampleSize−SuccessfulSamples waits between them, each at
// least Interval less the checker's largest jitter. The worst case adds an
// interval and the timeout.
func FrontDoorDetection(fd topology.FrontDoor) FloorTerm {
	p, c := fd.Probe, health.FrontDoorConfig(fd)
	return FloorTerm{
		Name:    "detection",
		Seconds: c.MinDetection().Seconds(),
		Formula: fmt.Sprintf("front door probes at best: (sampleSize %d − successfulSamples %d) × the shortest wait %s (interval %s less the jitter)",
			p.SampleSize, p.SuccessfulSamples, c.MinWait(), p.Interval),
		Group: FloorRouting,
	}
}

// DNSDetection is the least time the GSLB takes to mark a dead region down
// (Traffic Manager's rule: ToleratedFailures+1 failed probes in a row): the
// first failed probe right after the fault, each failing at once, so
// ToleratedFailures waits of at least Interval less the largest jitter
// (health.Config.MinDetection). The worst case, (Interval+Timeout) ×
// (ToleratedFailures+1) + Interval, is what Traffic Manager documents.
func DNSDetection(g topology.GSLB) FloorTerm {
	p, c := g.Probe, health.GSLBConfig(g)
	return FloorTerm{
		Name:    "detection",
		Seconds: c.MinDetection().Seconds(),
		Formula: fmt.Sprintf("gslb probes at best: toleratedFailures %d × the shortest wait %s (interval %s less the jitter)", p.Tolerated(), c.MinWait(), p.Interval),
		Group:   FloorRouting,
	}
}

// DNSTTL is how long, after the routed answer changed, the last of the
// load's clients keeps the old one: its TTL, less the spacing of the
// clients' refreshes. The generator's clients start staggered by TTL/clients
// and each refreshes as its answer expires, so one of them refreshed at
// most TTL/clients before the change, with the old answer and the full
// TTL. clients ≤ 0 means DefaultDNSClients.
func DNSTTL(g topology.GSLB, clients int) FloorTerm {
	if clients <= 0 {
		clients = DefaultDNSClients
	}
	ttl := g.TTL.D()
	return FloorTerm{Name: "ttl", Seconds: (ttl - ttl/time.Duration(clients)).Seconds(), Group: FloorRouting,
		Formula: fmt.Sprintf("gslb ttl %s less ttl/%d: the last of %d staggered client caches took the old answer at most ttl/%d before it changed", g.TTL, clients, clients, clients)}
}

// Promotion is the least wait before a failover group promotes a secondary
// after its primary's region is lost (killed, frozen or cut off from the
// witness): with an automatic policy, the lost primary's witness lease must
// end, then the grace period pass; 0 for a manual one (the operator's delay
// is not a property of the configuration). The primary renewed its lease
// at most one renewal period (failover.LeaseTiming) before the fault, so
// the lease ends lease − renew after the fault at the earliest.
func Promotion(d topology.DataService) FloorTerm {
	if d.Failover.Policy != "automatic" {
		return FloorTerm{Name: "promotion", Seconds: 0, Formula: fmt.Sprintf("%s: manual failover (operator's delay not included)", d.Name), Group: FloorData}
	}
	lease, grace := d.Failover.Lease.D(), d.Failover.Grace.D()
	tm, err := failover.LeaseTiming(lease)
	if err != nil {
		// Not a valid topology (its lease is at least 2 s); the grace alone
		// is still a lower bound.
		return FloorTerm{Name: "promotion", Seconds: grace.Seconds(), Group: FloorData,
			Formula: fmt.Sprintf("%s: automatic failover: the grace %s (lease %s: %v)", d.Name, d.Failover.Grace, d.Failover.Lease, err)}
	}
	return FloorTerm{
		Name:    "promotion",
		Seconds: (lease - tm.Renew + grace).Truncate(time.Millisecond).Seconds(), // down: still a lower bound
		Formula: fmt.Sprintf("%s: automatic failover: the lost primary's lease %s, last renewed at most one renewal period %s before the fault, ends, then the grace %s",
			d.Name, d.Failover.Lease, tm.Renew.Round(time.Millisecond), d.Failover.Grace),
		Group: FloorData,
	}
}

// Release is the least wait before a failover group promotes a secondary
// after its primary's data engine fails while the region lives on: the
// controller releases the lease once its replica has failed for
// failover.DefaultReplicaDownAfter, then the grace period passes.
func Release(d topology.DataService) FloorTerm {
	after := failover.DefaultReplicaDownAfter
	return FloorTerm{Name: "promotion", Seconds: (after + d.Failover.Grace.D()).Seconds(), Group: FloorData,
		Formula: fmt.Sprintf("%s: the primary releases its lease once its data engine has failed for %s, then the grace %s", d.Name, after, d.Failover.Grace)}
}

// FloorFor lists the floor terms of a drill through path (frontdoor, dns or
// direct) whose fault needs the data service named service to fail over
// ("" when no promotion is involved), with dnsClients clients on the DNS
// path (≤ 0: DefaultDNSClients). t must have its defaults set.
func FloorFor(t *topology.Topology, path, service string, dnsClients int) []FloorTerm {
	var terms []FloorTerm
	switch path {
	case PathFrontDoor:
		terms = append(terms, FrontDoorDetection(t.FrontDoor))
	case PathDNS:
		terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB, dnsClients))
	}
	if d, ok := t.DataService(service); ok && d.Kind == topology.KindPrimarySecondary {
		terms = append(terms, Promotion(d))
	}
	return terms
}

// FloorForPlan lists the floor terms of a drill plan: how its fault is
// detected on its load's path (fault.Plan.Detection) and, when a
// promotion is on the recovery path, how long that takes; dnsClients is
// the load's number of DNS clients (≤ 0: DefaultDNSClients).
func FloorForPlan(t *topology.Topology, pl fault.Plan, dnsClients int) []FloorTerm {
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
			terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB, dnsClients))
		} else {
			terms = append(terms, zero("the dead region refuses connections: the front door retries on another region at once and ejects it"))
		}
	case fault.DetectProbes:
		if dns {
			terms = append(terms, DNSDetection(t.GSLB), DNSTTL(t.GSLB, dnsClients))
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
		terms = append(terms, Release(d)) // the primary's region lives on
	default:
		terms = append(terms, Promotion(d))
	}
	return terms
}
