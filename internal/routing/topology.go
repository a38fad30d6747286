package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// FromRegions returns one Candidate per region, in order: Name, Priority,
// Weight, Enabled (not Disabled), Geo and Networks (parsed). Healthy,
// Drained and RTT are the caller's to fill (see Refresh). regions are
// expected to carry the topology's defaults; every unparsable network is
// reported at once.
func FromRegions(regions []topology.Region) ([]Candidate, error) {
	out := make([]Candidate, len(regions))
	var errs []error
	for i, r := range regions {
		c := Candidate{
			Name:     r.Name,
			Priority: r.Priority,
			Weight:   r.Weight,
			Enabled:  !r.Disabled,
			Geo:      append([]string(nil), r.Geo...),
		}
		for j, n := range r.Networks {
			p, err := netip.ParsePrefix(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("regions[%d].networks[%d]: %q is not a CIDR prefix such as 10.1.0.0/16", i, j, n))
				continue
			}
			c.Networks = append(c.Networks, p.Masked())
		}
		out[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	return out, nil
}

// FrontDoorPolicy is the policy of the front door: its routing method and
// latency band.
func FrontDoorPolicy(fd topology.FrontDoor) Policy {
	return Policy{Method: Method(fd.Routing), LatencyBand: fd.LatencyBand.D()}
}

// GSLBPolicy is the policy of the GSLB: its routing method and multivalue
// bound.
func GSLBPolicy(g topology.GSLB) Policy {
	return Policy{Method: Method(g.Routing), MaxRecords: g.MaxRecords}
}

// HealthSource is what Refresh reads; *health.Checker implements it.
type HealthSource interface {
	Healthy(name string) bool
	RTT(name string) time.Duration
}

// Refresh sets Healthy and RTT of every candidate from h, by name. It is
// cheap (lock-free reads) and meant to run before each Decide.
func Refresh(cands []Candidate, h HealthSource) {
	for i := range cands {
		cands[i].Healthy = h.Healthy(cands[i].Name)
		cands[i].RTT = h.RTT(cands[i].Name)
	}
}
