// Package topology is the model of a geostamp platform: regions, the global
// layer, WAN links, data services and objectives. It reads the topology file
// (YAML), fills defaults in one place (SetDefaults) and validates it (Validate,
// every problem at once with its field path). Two things other packages
// share live here too: Walker, which reports every problem of a YAML
// document with its field path (custom drill scenarios use it), and
// Duration, the one duration type of files and API bodies ("5s"). It
// imports no other package of geostamp.
package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Deployment models.
const (
	ActiveActive  = "active-active"
	ActivePassive = "active-passive"
)

// Topology is one platform: the content of a topology file.
type Topology struct {
	// Name of the platform; required.
	Name string `yaml:"name" json:"name"`
	// Model is active-active (default) or active-passive.
	Model string `yaml:"model" json:"model"`
	// Regions are the deployment stamps, at least one.
	Regions []Region `yaml:"regions" json:"regions"`
	// Witness is a third site that holds a vote for automatic failover; it
	// runs no stamp. Optional, required by automatic failover.
	Witness string `yaml:"witness,omitempty" json:"witness,omitempty"`
	// WAN sets one-way latency between sites (regions, witness, POPs), lab
	// only. Keys are "a<->b" (both directions) or "a->b" (one direction,
	// overriding a "<->" entry). Pairs not listed have no added latency.
	WAN map[string]Latency `yaml:"wan,omitempty" json:"wan,omitempty"`
	// FrontDoor is the global L7 entry point.
	FrontDoor FrontDoor `yaml:"frontdoor" json:"frontdoor"`
	// GSLB is the health-checked authoritative DNS.
	GSLB GSLB `yaml:"gslb" json:"gslb"`
	// Data lists the geo-replicated data services.
	Data []DataService `yaml:"data,omitempty" json:"data,omitempty"`
	// GeoIP maps client networks (CIDR) to geo codes, for geographic routing
	// by the front door and the GSLB, e.g. {"10.1.0.0/16": GB}.
	GeoIP map[string]string `yaml:"geoip,omitempty" json:"geoip,omitempty"`
	// Objectives are the recovery objectives drills are judged against.
	Objectives Objectives `yaml:"objectives" json:"objectives"`
	// Lab holds settings used only by `geostamp up`.
	Lab Lab `yaml:"lab" json:"lab"`
}

// Region is one deployment stamp.
type Region struct {
	// Name of the region, e.g. westeurope; a DNS label.
	Name string `yaml:"name" json:"name"`
	// Priority 1–5, lower is preferred; default 1.
	Priority int `yaml:"priority" json:"priority"`
	// Weight 1–1000 for weighted routing; default 50.
	Weight int `yaml:"weight" json:"weight"`
	// Geo lists the client geographies this region serves (geographic routing).
	Geo []string `yaml:"geo,omitempty" json:"geo,omitempty"`
	// Networks lists client networks (CIDR) nearest to this region
	// (performance routing).
	Networks []string `yaml:"networks,omitempty" json:"networks,omitempty"`
	// Disabled takes the region out of routing without removing it.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Address is the region's own IP in the lab; default 127.0.i.1 for the
	// i-th region (counting from 1).
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Replicas is the number of workload replicas behind the ingress; default 2.
	Replicas int `yaml:"replicas" json:"replicas"`
	// Address6 is the region's IPv6 address, answered to AAAA queries; optional.
	Address6 string `yaml:"address6,omitempty" json:"address6,omitempty"`
	// Origin is the URL of the region's ingress as the front door reaches it
	// in production (e.g. https://westeurope.contoso.internal); the lab sets
	// it to the region's WAN link.
	Origin string `yaml:"origin,omitempty" json:"origin,omitempty"`
}

// FrontDoor configures the global L7 reverse proxy.
type FrontDoor struct {
	// POPs are the edge locations; each runs its own front door and probes
	// on its own. Default [pop].
	POPs []string `yaml:"pops" json:"pops"`
	// Routing is priority, weighted or latency (default: priority, then the
	// latency band of the fastest, then weight).
	Routing string `yaml:"routing" json:"routing"`
	// LatencyBand is the latency sensitivity for latency routing; default 50ms.
	LatencyBand Duration `yaml:"latencyBand" json:"latencyBand"`
	// Probe is the active health probe; defaults below.
	Probe Probe `yaml:"probe" json:"probe"`
	// Outlier is passive outlier ejection.
	Outlier Outlier `yaml:"outlier" json:"outlier"`
	// Retry is the cross-region retry policy.
	Retry Retry `yaml:"retry" json:"retry"`
	// WAF configures the web application firewall.
	WAF WAF `yaml:"waf" json:"waf"`
	// Listen is the plain HTTP address; default ":8080" (the lab uses its
	// host and a free port). ListenTLS is the HTTPS address (HTTP/1.1 and
	// HTTP/2); default ":8443".
	Listen    string `yaml:"listen" json:"listen"`
	ListenTLS string `yaml:"listenTLS" json:"listenTLS"`
	// TLS holds the certificate; the lab generates a local CA when empty.
	TLS TLS `yaml:"tls" json:"tls"`
	// FDID is the id sent to stamps in X-Geostamp-FDID (origin lock); the
	// lab generates one.
	FDID string `yaml:"fdid,omitempty" json:"fdid,omitempty"`
	// TrustedProxies are networks whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trustedProxies,omitempty" json:"trustedProxies,omitempty"`
	// Affinity enables cookie session affinity (off by default, as in Front Door).
	Affinity bool `yaml:"affinity,omitempty" json:"affinity,omitempty"`
	// Limits protect the front door from slow or abusive clients.
	Limits Limits `yaml:"limits" json:"limits"`
	// Admin is the token-protected admin API.
	Admin Admin `yaml:"admin" json:"admin"`
}

// TLS names a certificate and key in PEM files.
type TLS struct {
	CertFile string `yaml:"certFile,omitempty" json:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
}

// Limits of the front door.
type Limits struct {
	// MaxHeaderBytes default 64KiB (larger requests get 431).
	MaxHeaderBytes int `yaml:"maxHeaderBytes" json:"maxHeaderBytes"`
	// MaxBodyBytes default 10MiB (larger bodies get 413).
	MaxBodyBytes int64 `yaml:"maxBodyBytes" json:"maxBodyBytes"`
	// ReadHeaderTimeout default 10s, IdleTimeout default 120s.
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout" json:"readHeaderTimeout"`
	IdleTimeout       Duration `yaml:"idleTimeout" json:"idleTimeout"`
	// MaxConcurrent requests in flight; beyond it requests get a fast 503.
	// Default 10000.
	MaxConcurrent int `yaml:"maxConcurrent" json:"maxConcurrent"`
}

// Admin is a token-protected admin API.
type Admin struct {
	// Listen address; default 127.0.0.1:9080 (front door), 127.0.0.1:9053 (gslb).
	Listen string `yaml:"listen" json:"listen"`
	// TokenFile holds the bearer token; required outside the lab.
	TokenFile string `yaml:"tokenFile,omitempty" json:"tokenFile,omitempty"`
}

// Probe is an active HTTP health probe.
type Probe struct {
	// Path probed on each stamp; default /health/stamp.
	Path string `yaml:"path" json:"path"`
	// Method HEAD (default) or GET.
	Method string `yaml:"method" json:"method"`
	// Interval between probes; default 1s (front door), 10s (gslb).
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout of one probe; default 500ms (front door), 5s (gslb).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// SampleSize and SuccessfulSamples: healthy when at least
	// SuccessfulSamples of the last SampleSize probes passed (front door);
	// defaults 4 and 2.
	SampleSize        int `yaml:"sampleSize,omitempty" json:"sampleSize,omitempty"`
	SuccessfulSamples int `yaml:"successfulSamples,omitempty" json:"successfulSamples,omitempty"`
	// ToleratedFailures: degraded on the (ToleratedFailures+1)-th consecutive
	// failure (Traffic Manager, gslb); default 3.
	// A pointer, since 0 is a valid setting distinct from "unset".
	ToleratedFailures *int `yaml:"toleratedFailures,omitempty" json:"toleratedFailures,omitempty"`
}

// Outlier configures passive ejection of failing origins.
type Outlier struct {
	// ConsecutiveErrors ejects an origin after this many failed requests in a
	// row; default 1 (eject on the first failure).
	ConsecutiveErrors int `yaml:"consecutiveErrors" json:"consecutiveErrors"`
	// EjectFor is the base ejection time, doubled on each repeated ejection
	// up to MaxEjectFor; defaults 10s and 5m.
	EjectFor    Duration `yaml:"ejectFor" json:"ejectFor"`
	MaxEjectFor Duration `yaml:"maxEjectFor" json:"maxEjectFor"`
	// MaxEjected caps the share of origins ejected at once; default 50%.
	MaxEjected Percent `yaml:"maxEjected" json:"maxEjected"`
}

// Retry is the front door's cross-region retry policy.
type Retry struct {
	// Attempts in total, first try included; default 2.
	Attempts int `yaml:"attempts" json:"attempts"`
	// Budget caps concurrent retries as a share of active requests; default
	// 20% (with a floor of MinRetries, default 3).
	Budget     Percent `yaml:"budget" json:"budget"`
	MinRetries int     `yaml:"minRetries" json:"minRetries"`
	// PerTryTimeout bounds one attempt; default 2s.
	PerTryTimeout Duration `yaml:"perTryTimeout" json:"perTryTimeout"`
}

// WAF configures the web application firewall.
type WAF struct {
	// Mode off, detection or prevention (default).
	Mode string `yaml:"mode" json:"mode"`
}

// GSLB configures the authoritative DNS server.
type GSLB struct {
	// Zone served, fully qualified; default <name>.test.
	Zone string `yaml:"zone" json:"zone"`
	// Host is the routed name within the zone; default app.
	Host string `yaml:"host" json:"host"`
	// TTL of routed answers; default 10s. DegradedTTL is used while any
	// region is unhealthy; default 5s.
	TTL         Duration `yaml:"ttl" json:"ttl"`
	DegradedTTL Duration `yaml:"degradedTTL" json:"degradedTTL"`
	// Routing is priority (default), weighted, performance, geographic or multivalue.
	Routing string `yaml:"routing" json:"routing"`
	// MaxRecords bounds multivalue answers; default 8.
	MaxRecords int `yaml:"maxRecords" json:"maxRecords"`
	// Probe uses Traffic Manager semantics (interval, timeout, toleratedFailures).
	Probe Probe `yaml:"probe" json:"probe"`
	// Listen is the DNS address (UDP and TCP); default 127.0.0.1:5353.
	Listen string `yaml:"listen" json:"listen"`
	// Nameservers are the zone's NS names, relative to the zone or fully
	// qualified; default [ns1]. ns1 is answered with the listen address.
	Nameservers []string `yaml:"nameservers" json:"nameservers"`
	// Admin is the token-protected admin API (explain, health history).
	Admin Admin `yaml:"admin" json:"admin"`
	// QueryLog writes one JSON line per query to the log; default off.
	QueryLog bool `yaml:"queryLog,omitempty" json:"queryLog,omitempty"`
}

// Kinds of data service.
const (
	KindPrimarySecondary = "primary-secondary"
	KindMultiWrite       = "multi-write"
	KindCache            = "cache"
)

// DataService is one geo-replicated data service.
type DataService struct {
	// Name, a DNS label; the sample workload uses "orders" and "catalog".
	Name string `yaml:"name" json:"name"`
	// Kind is primary-secondary, multi-write or cache.
	Kind string `yaml:"kind" json:"kind"`
	// Engine: jetstream (default for primary-secondary and multi-write),
	// postgres (primary-secondary), memory (default for cache).
	Engine string `yaml:"engine" json:"engine"`
	// Primary is the initial primary region (primary-secondary); default the
	// preferred region (lowest priority, first on a tie).
	Primary string `yaml:"primary,omitempty" json:"primary,omitempty"`
	// Replication async (default) or sync (primary-secondary).
	Replication string `yaml:"replication,omitempty" json:"replication,omitempty"`
	// Consistency for multi-write: bounded, session (default), prefix or
	// eventual. Strong is not allowed with multi-region writes.
	Consistency string `yaml:"consistency,omitempty" json:"consistency,omitempty"`
	// Failover policy of a primary-secondary service.
	Failover Failover `yaml:"failover" json:"failover"`
}

// Failover is the policy of a failover group.
type Failover struct {
	// Policy manual (default) or automatic.
	Policy string `yaml:"policy" json:"policy"`
	// Grace is how long the primary must be lost before automatic failover;
	// default 10s.
	Grace Duration `yaml:"grace" json:"grace"`
	// Lease is the primary's witness lease: a primary cut off from the
	// witness stops accepting writes within it, and a lost primary is
	// detected when it ends; default 5s.
	Lease Duration `yaml:"lease" json:"lease"`
}

// Objectives are the recovery objectives.
type Objectives struct {
	// RTO is the maximum acceptable downtime; default 30s.
	RTO Duration `yaml:"rto" json:"rto"`
	// RPO is the maximum acceptable data loss as a time span; default 5s.
	RPO Duration `yaml:"rpo" json:"rpo"`
	// Availability target in percent; default 99.95.
	Availability float64 `yaml:"availability" json:"availability"`
}

// Lab holds settings of the one-machine lab.
type Lab struct {
	// Host of the global layer (control API, front door, GSLB); default 127.0.0.1.
	Host string `yaml:"host" json:"host"`
	// StartTimeout bounds how long `up` waits for every stamp to be healthy;
	// default 30s.
	StartTimeout Duration `yaml:"startTimeout" json:"startTimeout"`
	// IngressPort is the port of every region's ingress, the same in all
	// regions so that a DNS answer (an address) is enough to reach a stamp;
	// default 0: a port free on every region address, chosen at start.
	IngressPort int `yaml:"ingressPort,omitempty" json:"ingressPort,omitempty"`
}

// SetDefaults fills every unset field with its documented default. It is the
// only place defaults live.
func (t *Topology) SetDefaults() {
	if t.Model == "" {
		t.Model = ActiveActive
	}
	for i := range t.Regions {
		r := &t.Regions[i]
		if r.Priority == 0 {
			r.Priority = 1
		}
		if r.Weight == 0 {
			r.Weight = 50
		}
		if r.Address == "" {
			r.Address = fmt.Sprintf("127.0.%d.1", i+1)
		}
		if r.Replicas == 0 {
			r.Replicas = 2
		}
	}
	fd := &t.FrontDoor
	if len(fd.POPs) == 0 {
		fd.POPs = []string{"pop"}
	}
	if fd.Routing == "" {
		fd.Routing = "latency"
	}
	if fd.LatencyBand == 0 {
		fd.LatencyBand = Duration(50 * time.Millisecond)
	}
	fd.Probe.setDefaults(time.Second, 500*time.Millisecond)
	if fd.Probe.SampleSize == 0 {
		fd.Probe.SampleSize = 4
	}
	if fd.Probe.SuccessfulSamples == 0 {
		fd.Probe.SuccessfulSamples = 2
	}
	if fd.Outlier.ConsecutiveErrors == 0 {
		fd.Outlier.ConsecutiveErrors = 1
	}
	if fd.Outlier.EjectFor == 0 {
		fd.Outlier.EjectFor = Duration(10 * time.Second)
	}
	if fd.Outlier.MaxEjectFor == 0 {
		fd.Outlier.MaxEjectFor = Duration(5 * time.Minute)
	}
	if fd.Outlier.MaxEjected == 0 {
		fd.Outlier.MaxEjected = 50
	}
	if fd.Retry.Attempts == 0 {
		fd.Retry.Attempts = 2
	}
	if fd.Retry.Budget == 0 {
		fd.Retry.Budget = 20
	}
	if fd.Retry.MinRetries == 0 {
		fd.Retry.MinRetries = 3
	}
	if fd.Retry.PerTryTimeout == 0 {
		fd.Retry.PerTryTimeout = Duration(2 * time.Second)
	}
	if fd.WAF.Mode == "" {
		fd.WAF.Mode = "prevention"
	}
	if fd.Listen == "" {
		fd.Listen = ":8080"
	}
	if fd.ListenTLS == "" {
		fd.ListenTLS = ":8443"
	}
	if fd.Limits.MaxHeaderBytes == 0 {
		fd.Limits.MaxHeaderBytes = 64 << 10
	}
	if fd.Limits.MaxBodyBytes == 0 {
		fd.Limits.MaxBodyBytes = 10 << 20
	}
	if fd.Limits.ReadHeaderTimeout == 0 {
		fd.Limits.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if fd.Limits.IdleTimeout == 0 {
		fd.Limits.IdleTimeout = Duration(120 * time.Second)
	}
	if fd.Limits.MaxConcurrent == 0 {
		fd.Limits.MaxConcurrent = 10000
	}
	if fd.Admin.Listen == "" {
		fd.Admin.Listen = "127.0.0.1:9080"
	}
	g := &t.GSLB
	if g.Zone == "" && t.Name != "" {
		g.Zone = t.Name + ".test."
	}
	if g.Zone != "" && !strings.HasSuffix(g.Zone, ".") {
		g.Zone += "."
	}
	if g.Host == "" {
		g.Host = "app"
	}
	if g.TTL == 0 {
		g.TTL = Duration(10 * time.Second)
	}
	if g.DegradedTTL == 0 {
		g.DegradedTTL = Duration(min(5*time.Second, g.TTL.D()))
	}
	if g.Routing == "" {
		g.Routing = "priority"
	}
	if g.MaxRecords == 0 {
		g.MaxRecords = 8
	}
	g.Probe.setDefaults(10*time.Second, 5*time.Second)
	if g.Probe.ToleratedFailures == nil {
		three := 3
		g.Probe.ToleratedFailures = &three
	}
	if g.Listen == "" {
		g.Listen = "127.0.0.1:5353"
	}
	if len(g.Nameservers) == 0 {
		g.Nameservers = []string{"ns1"}
	}
	if g.Admin.Listen == "" {
		g.Admin.Listen = "127.0.0.1:9053"
	}
	for i := range t.Data {
		d := &t.Data[i]
		if d.Engine == "" {
			switch d.Kind {
			case KindCache:
				d.Engine = "memory"
			default:
				d.Engine = "jetstream"
			}
		}
		switch d.Kind {
		case KindPrimarySecondary:
			if d.Primary == "" {
				d.Primary = t.Preferred()
			}
			if d.Replication == "" {
				d.Replication = "async"
			}
			if d.Failover.Policy == "" {
				d.Failover.Policy = "manual"
			}
			if d.Failover.Grace == 0 {
				d.Failover.Grace = Duration(10 * time.Second)
			}
			if d.Failover.Lease == 0 {
				d.Failover.Lease = Duration(5 * time.Second)
			}
		case KindMultiWrite:
			if d.Consistency == "" {
				d.Consistency = "session"
			}
		}
	}
	if t.Objectives.RTO == 0 {
		t.Objectives.RTO = Duration(30 * time.Second)
	}
	if t.Objectives.RPO == 0 {
		t.Objectives.RPO = Duration(5 * time.Second)
	}
	if t.Objectives.Availability == 0 {
		t.Objectives.Availability = 99.95
	}
	if t.Lab.Host == "" {
		t.Lab.Host = "127.0.0.1"
	}
	if t.Lab.StartTimeout == 0 {
		t.Lab.StartTimeout = Duration(30 * time.Second)
	}
}

func (p *Probe) setDefaults(interval, timeout time.Duration) {
	if p.Path == "" {
		p.Path = "/health/stamp"
	}
	if p.Method == "" {
		p.Method = "HEAD"
	}
	if p.Interval == 0 {
		p.Interval = Duration(interval)
	}
	if p.Timeout == 0 {
		p.Timeout = Duration(min(timeout, p.Interval.D()))
	}
}

// Tolerated returns ToleratedFailures, 0 when unset.
func (p Probe) Tolerated() int {
	if p.ToleratedFailures == nil {
		return 0
	}
	return *p.ToleratedFailures
}

// Preferred returns the name of the region with the lowest priority number
// (the first on a tie), or "" when there is none.
func (t *Topology) Preferred() string {
	best := -1
	for i, r := range t.Regions {
		if best < 0 || r.Priority < t.Regions[best].Priority {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return t.Regions[best].Name
}

// Region returns the region called name.
func (t *Topology) Region(name string) (Region, bool) {
	for _, r := range t.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

// RegionNames lists the regions in file order.
func (t *Topology) RegionNames() []string {
	out := make([]string, len(t.Regions))
	for i, r := range t.Regions {
		out[i] = r.Name
	}
	return out
}

// Sites lists every site: regions, then the witness, then the POPs.
func (t *Topology) Sites() []string {
	out := t.RegionNames()
	if t.Witness != "" {
		out = append(out, t.Witness)
	}
	return append(out, t.FrontDoor.POPs...)
}

// Latency returns the one-way WAN latency from site a to site b: an "a->b"
// entry wins over "a<->b" or "b<->a"; unlisted pairs have none.
func (t *Topology) Latency(a, b string) Latency {
	if l, ok := t.WAN[a+"->"+b]; ok {
		return l
	}
	if l, ok := t.WAN[a+"<->"+b]; ok {
		return l
	}
	return t.WAN[b+"<->"+a]
}

// ParseWANKey splits "a<->b" or "a->b"; both reports a two-way entry.
func ParseWANKey(k string) (a, b string, both bool, err error) {
	if x, y, ok := strings.Cut(k, "<->"); ok {
		return strings.TrimSpace(x), strings.TrimSpace(y), true, nil
	}
	if x, y, ok := strings.Cut(k, "->"); ok {
		return strings.TrimSpace(x), strings.TrimSpace(y), false, nil
	}
	return "", "", false, fmt.Errorf("want \"a<->b\" or \"a->b\", got %q", k)
}

// DataService returns the data service called name.
func (t *Topology) DataService(name string) (DataService, bool) {
	for _, d := range t.Data {
		if d.Name == name {
			return d, true
		}
	}
	return DataService{}, false
}

// RegionAddr returns the lab address of a region as a netip.Addr.
func (r Region) Addr() (netip.Addr, error) { return netip.ParseAddr(r.Address) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
