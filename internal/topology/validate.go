package topology

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FieldError is one problem of a topology, located by its field path such as
// "regions[1].priority".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Problems returns the FieldErrors inside err (as joined by Validate or Load).
func Problems(err error) []*FieldError {
	switch e := err.(type) {
	case nil:
		return nil
	case *FieldError:
		return []*FieldError{e}
	case interface{ Unwrap() []error }:
		var out []*FieldError
		for _, c := range e.Unwrap() {
			out = append(out, Problems(c)...)
		}
		return out
	case interface{ Unwrap() error }:
		return Problems(e.Unwrap())
	}
	return nil
}

// problems collects Validate's FieldErrors as the YAML walker does.
type problems = Walker

var geoRE = regexp.MustCompile(`^[A-Z][A-Z0-9-]{1,15}$`)

func (p *problems) label(path, v string) {
	switch {
	case v == "":
		p.Add(path, "required")
	case !labelRE.MatchString(v):
		p.Add(path, "%q must be a lower-case DNS label (a-z, 0-9, '-')", v)
	}
}

func (p *problems) oneOf(path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.Add(path, "%q must be one of %s", v, strings.Join(allowed, ", "))
	}
}

func (p *problems) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		p.Add(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

// Validate reports every problem of a topology with defaults filled in, each
// as a *FieldError, joined with errors.Join. It is pure.
func (t *Topology) Validate() error {
	var p problems
	p.label("name", t.Name)
	p.oneOf("model", t.Model, ActiveActive, ActivePassive)

	if len(t.Regions) == 0 {
		p.Add("regions", "at least one region is required")
	}
	sites := map[string]string{} // site name -> path of its first definition
	addrs := map[string]string{}
	claim := func(path, name string) {
		if name == "" {
			return
		}
		if prev, ok := sites[name]; ok {
			p.Add(path, "%q is already used by %s", name, prev)
			return
		}
		sites[name] = path
	}
	for i, r := range t.Regions {
		at := fmt.Sprintf("regions[%d]", i)
		p.label(at+".name", r.Name)
		claim(at+".name", r.Name)
		p.between(at+".priority", r.Priority, 1, 5)
		p.between(at+".weight", r.Weight, 1, 1000)
		p.between(at+".replicas", r.Replicas, 1, 16)
		for j, g := range r.Geo {
			if !geoRE.MatchString(g) {
				p.Add(fmt.Sprintf("%s.geo[%d]", at, j), "%q must be an upper-case geo code such as EU, GB or WORLD", g)
			}
		}
		for j, n := range r.Networks {
			if _, err := netip.ParsePrefix(n); err != nil {
				p.Add(fmt.Sprintf("%s.networks[%d]", at, j), "%q is not a CIDR prefix such as 10.1.0.0/16", n)
			}
		}
		if r.Address6 != "" {
			if a, err := netip.ParseAddr(r.Address6); err != nil || !a.Is6() || a.Is4In6() {
				p.Add(at+".address6", "%q is not an IPv6 address", r.Address6)
			}
		}
		if r.Origin != "" {
			if u, err := url.Parse(r.Origin); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.Add(at+".origin", "%q is not an http(s) URL", r.Origin)
			}
		}
		if a, err := netip.ParseAddr(r.Address); err != nil {
			p.Add(at+".address", "%q is not an IP address", r.Address)
		} else if prev, ok := addrs[a.String()]; ok {
			p.Add(at+".address", "%s is already the address of %s", a, prev)
		} else {
			addrs[a.String()] = at
		}
	}
	if t.Model == ActivePassive && len(t.Regions) > 1 {
		best := t.Regions[0].Priority
		n := 0
		for _, r := range t.Regions {
			if r.Priority < best {
				best, n = r.Priority, 0
			}
			if r.Priority == best {
				n++
			}
		}
		if n > 1 {
			p.Add("regions", "active-passive needs exactly one region with the lowest priority, %d have priority %d", n, best)
		}
	}
	if t.Witness != "" {
		p.label("witness", t.Witness)
		claim("witness", t.Witness)
	}
	fd := t.FrontDoor
	if len(fd.POPs) == 0 {
		p.Add("frontdoor.pops", "at least one POP is required")
	}
	for i, pop := range fd.POPs {
		at := fmt.Sprintf("frontdoor.pops[%d]", i)
		p.label(at, pop)
		claim(at, pop)
	}
	for _, k := range sortedKeys(t.WAN) {
		at := fmt.Sprintf("wan[%q]", k)
		a, b, _, err := ParseWANKey(k)
		if err != nil {
			p.Add(at, "%v", err)
			continue
		}
		for _, s := range []string{a, b} {
			if _, ok := sites[s]; !ok {
				p.Add(at, "unknown site %q (sites are regions, the witness and front door POPs)", s)
			}
		}
		if a == b {
			p.Add(at, "a link joins two different sites")
		}
		l := t.WAN[k]
		if l.Latency < 0 || l.Latency.D() > 10*time.Second {
			p.Add(at+".latency", "must be between 0 and 10s, got %s", l.Latency)
		}
		if l.Jitter < 0 || l.Jitter > l.Latency {
			p.Add(at+".jitter", "must be between 0 and the latency (%s), got %s", l.Latency, l.Jitter)
		}
	}
	p.oneOf("frontdoor.routing", fd.Routing, "priority", "weighted", "latency")
	if fd.LatencyBand < 0 {
		p.Add("frontdoor.latencyBand", "must not be negative")
	}
	p.probe("frontdoor.probe", fd.Probe)
	p.between("frontdoor.probe.sampleSize", fd.Probe.SampleSize, 1, 32)
	if fd.Probe.SuccessfulSamples < 1 || fd.Probe.SuccessfulSamples > fd.Probe.SampleSize {
		p.Add("frontdoor.probe.successfulSamples", "must be between 1 and sampleSize (%d), got %d", fd.Probe.SampleSize, fd.Probe.SuccessfulSamples)
	}
	p.between("frontdoor.outlier.consecutiveErrors", fd.Outlier.ConsecutiveErrors, 1, 100)
	if fd.Outlier.EjectFor <= 0 {
		p.Add("frontdoor.outlier.ejectFor", "must be positive")
	}
	if fd.Outlier.MaxEjectFor < fd.Outlier.EjectFor {
		p.Add("frontdoor.outlier.maxEjectFor", "must be at least ejectFor (%s)", fd.Outlier.EjectFor)
	}
	if fd.Outlier.MaxEjected <= 0 || fd.Outlier.MaxEjected > 100 {
		p.Add("frontdoor.outlier.maxEjected", "must be above 0%% and at most 100%%, got %s", fd.Outlier.MaxEjected)
	}
	p.between("frontdoor.retry.attempts", fd.Retry.Attempts, 1, 5)
	if fd.Retry.Budget < 0 || fd.Retry.Budget > 100 {
		p.Add("frontdoor.retry.budget", "must be between 0%% and 100%%, got %s", fd.Retry.Budget)
	}
	if fd.Retry.MinRetries < 0 {
		p.Add("frontdoor.retry.minRetries", "must not be negative")
	}
	if fd.Retry.PerTryTimeout <= 0 {
		p.Add("frontdoor.retry.perTryTimeout", "must be positive")
	}
	p.oneOf("frontdoor.waf.mode", fd.WAF.Mode, "off", "detection", "prevention")
	p.hostPort("frontdoor.listen", fd.Listen)
	p.hostPort("frontdoor.listenTLS", fd.ListenTLS)
	p.hostPort("frontdoor.admin.listen", fd.Admin.Listen)
	if (fd.TLS.CertFile == "") != (fd.TLS.KeyFile == "") {
		p.Add("frontdoor.tls", "certFile and keyFile go together")
	}
	for i, c := range fd.TrustedProxies {
		if _, err := netip.ParsePrefix(c); err != nil {
			p.Add(fmt.Sprintf("frontdoor.trustedProxies[%d]", i), "%q is not a CIDR prefix", c)
		}
	}
	if fd.Limits.MaxHeaderBytes < 1024 {
		p.Add("frontdoor.limits.maxHeaderBytes", "must be at least 1024")
	}
	if fd.Limits.MaxBodyBytes < 0 {
		p.Add("frontdoor.limits.maxBodyBytes", "must not be negative")
	}
	if fd.Limits.ReadHeaderTimeout <= 0 || fd.Limits.IdleTimeout <= 0 {
		p.Add("frontdoor.limits", "readHeaderTimeout and idleTimeout must be positive")
	}
	if fd.Limits.MaxConcurrent < 1 {
		p.Add("frontdoor.limits.maxConcurrent", "must be at least 1")
	}
	for _, k := range sortedKeys(t.GeoIP) {
		if _, err := netip.ParsePrefix(k); err != nil {
			p.Add(fmt.Sprintf("geoip[%q]", k), "not a CIDR prefix such as 10.1.0.0/16")
		}
		if !geoRE.MatchString(t.GeoIP[k]) {
			p.Add(fmt.Sprintf("geoip[%q]", k), "%q must be an upper-case geo code", t.GeoIP[k])
		}
	}

	g := t.GSLB
	if g.Zone == "" {
		p.Add("gslb.zone", "required")
	} else {
		for _, l := range strings.Split(strings.TrimSuffix(g.Zone, "."), ".") {
			if !labelRE.MatchString(l) {
				p.Add("gslb.zone", "%q is not a domain name of DNS labels", g.Zone)
				break
			}
		}
	}
	p.label("gslb.host", g.Host)
	if g.TTL < 0 || g.TTL.D() > time.Hour || g.TTL.D()%time.Second != 0 {
		p.Add("gslb.ttl", "must be whole seconds between 0 and 1h, got %s", g.TTL)
	}
	if g.DegradedTTL < 0 || g.DegradedTTL > g.TTL || g.DegradedTTL.D()%time.Second != 0 {
		p.Add("gslb.degradedTTL", "must be whole seconds between 0 and ttl (%s), got %s", g.TTL, g.DegradedTTL)
	}
	p.oneOf("gslb.routing", g.Routing, "priority", "weighted", "performance", "geographic", "multivalue")
	p.between("gslb.maxRecords", g.MaxRecords, 1, 32)
	p.probe("gslb.probe", g.Probe)
	p.between("gslb.probe.toleratedFailures", g.Probe.Tolerated(), 0, 9)
	if _, err := netip.ParseAddrPort(g.Listen); err != nil {
		p.Add("gslb.listen", "%q is not an address:port", g.Listen)
	}
	p.hostPort("gslb.admin.listen", g.Admin.Listen)
	for i, ns := range g.Nameservers {
		for _, l := range strings.Split(strings.TrimSuffix(ns, "."), ".") {
			if !labelRE.MatchString(l) {
				p.Add(fmt.Sprintf("gslb.nameservers[%d]", i), "%q is not a domain name", ns)
				break
			}
		}
	}

	names := map[string]int{}
	for i, d := range t.Data {
		at := fmt.Sprintf("data[%d]", i)
		p.label(at+".name", d.Name)
		if j, ok := names[d.Name]; ok && d.Name != "" {
			p.Add(at+".name", "%q is already the name of data[%d]", d.Name, j)
		}
		names[d.Name] = i
		p.oneOf(at+".kind", d.Kind, KindPrimarySecondary, KindMultiWrite, KindCache)
		switch d.Kind {
		case KindPrimarySecondary:
			p.oneOf(at+".engine", d.Engine, "jetstream", "postgres")
			if _, ok := t.Region(d.Primary); !ok {
				p.Add(at+".primary", "%q is not a region", d.Primary)
			}
			p.oneOf(at+".replication", d.Replication, "async", "sync")
			p.oneOf(at+".failover.policy", d.Failover.Policy, "manual", "automatic")
			if d.Failover.Grace < 0 {
				p.Add(at+".failover.grace", "must not be negative")
			}
			if d.Failover.Lease < Duration(2*time.Second) || d.Failover.Lease > Duration(time.Minute) {
				p.Add(at+".failover.lease", "%s is not between 2s and 1m (the witness's lease granularity is one second)", d.Failover.Lease)
			}
			if d.Failover.Policy == "automatic" && t.Witness == "" {
				p.Add(at+".failover.policy", "automatic failover needs a witness site (set witness)")
			}
		case KindMultiWrite:
			p.oneOf(at+".engine", d.Engine, "jetstream")
			if d.Consistency == "strong" {
				p.Add(at+".consistency", "strong consistency is not allowed with multi-region writes (use bounded, session, prefix or eventual)")
			} else {
				p.oneOf(at+".consistency", d.Consistency, "bounded", "session", "prefix", "eventual")
			}
		case KindCache:
			p.oneOf(at+".engine", d.Engine, "memory")
		}
		if d.Kind != KindPrimarySecondary && d.Primary != "" {
			p.Add(at+".primary", "only primary-secondary services have a primary")
		}
	}
	if t.Objectives.RTO <= 0 {
		p.Add("objectives.rto", "must be positive")
	}
	if t.Objectives.RPO < 0 {
		p.Add("objectives.rpo", "must not be negative")
	}
	if a := t.Objectives.Availability; a <= 0 || a > 100 {
		p.Add("objectives.availability", "must be a percentage above 0 and at most 100, got %g", a)
	}
	if _, err := netip.ParseAddr(t.Lab.Host); err != nil {
		p.Add("lab.host", "%q is not an IP address", t.Lab.Host)
	}
	p.between("lab.ingressPort", t.Lab.IngressPort, 0, 65535)
	if t.Lab.StartTimeout <= 0 {
		p.Add("lab.startTimeout", "must be positive")
	}
	return p.Err()
}

func (p *problems) hostPort(path, v string) {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		p.Add(path, "%q is not a host:port address such as :8080 or 127.0.0.1:8080", v)
	}
}

func (p *problems) probe(at string, pr Probe) {
	if !strings.HasPrefix(pr.Path, "/") {
		p.Add(at+".path", "%q must start with /", pr.Path)
	}
	p.oneOf(at+".method", pr.Method, "HEAD", "GET")
	if pr.Interval.D() < 10*time.Millisecond {
		p.Add(at+".interval", "must be at least 10ms, got %s", pr.Interval)
	}
	if pr.Timeout <= 0 || pr.Timeout > pr.Interval {
		p.Add(at+".timeout", "must be positive and at most the interval (%s), got %s", pr.Interval, pr.Timeout)
	}
}
