package gslb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/topology"
)

// Record parameters that do not come from the topology.
const (
	// infraTTL is the TTL of the SOA, NS and glue records.
	infraTTL = 3600
	// SOA timers: no secondary transfers this zone (AXFR is refused), so
	// they only matter to tools that read them.
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 604800
	// whyLabel is the first label of the explain name.
	whyLabel = "_why"
)

type nodeKind uint8

const (
	kindApex   nodeKind = iota + 1
	kindHost            // the routed name
	kindRegion          // <region>.<zone>
	kindNS              // an in-zone nameserver
	kindWhy             // _why.<host>.<zone>
	kindENT             // empty non-terminal
)

type node struct {
	kind  nodeKind
	index int // region index (kindRegion) or nameserver index (kindNS)
}

// zone is the static part of what the server answers: names and the
// records that do not depend on health, precomputed in wire format.
//
// Record "tails" are a resource record without its owner name (type,
// class, TTL, RDLENGTH, RDATA); the owner is written as a compression
// pointer to the question when the response is built.
type zone struct {
	origin string // lower-case, fully qualified
	wire   []byte // origin in wire format, lower case
	host   string // <host>.<zone>
	names  map[string]node

	serial uint32
	negTTL uint32

	soa    []byte   // SOA tail, TTL infraTTL (answers)
	soaNeg []byte   // SOA tail, TTL negTTL (authority of negative answers)
	ns     [][]byte // NS tails
	nsA    [][]byte // per nameserver: A tail of its glue, nil when none
	nsAAAA [][]byte // per nameserver: AAAA tail, nil when none
	glue   []byte   // the glue records (full, uncompressed owner), for NS answers
	glueN  uint16
}

// newZone builds the zone of t, with the nameserver glue taken from the
// listen address and the SOA serial from now.
func newZone(t *topology.Topology, listen netip.AddrPort, now time.Time) (*zone, error) {
	g := t.GSLB
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf(path+": "+format, args...))
	}
	origin := strings.ToLower(dns.Fqdn(g.Zone))
	if _, ok := dns.IsDomainName(origin); !ok || origin == "." {
		return nil, fmt.Errorf("topology.gslb.zone: %q is not a domain name", g.Zone)
	}
	z := &zone{
		origin: origin,
		host:   strings.ToLower(g.Host) + "." + origin,
		names:  map[string]node{},
		serial: uint32(now.Unix()),
		negTTL: uint32(g.TTL.D() / time.Second),
	}
	z.wire = wireName(origin)
	owner := map[string]string{} // name -> what defines it, for conflicts
	define := func(name string, n node, what string) {
		name = strings.ToLower(name)
		if prev, ok := owner[name]; ok {
			add(what, "%s is also %s", strings.TrimSuffix(name, "."), prev)
			return
		}
		owner[name] = what
		z.names[string(wireName(name))] = n
	}
	define(origin, node{kind: kindApex}, "topology.gslb.zone")
	define(z.host, node{kind: kindHost}, "topology.gslb.host")
	define(whyLabel+"."+z.host, node{kind: kindWhy}, "the explain name")
	for i, r := range t.Regions {
		define(r.Name+"."+origin, node{kind: kindRegion, index: i}, fmt.Sprintf("regions[%d].name", i))
	}

	// Nameservers: ns1 (the first in-zone one named ns1, or else none) is
	// answered with the listen address.
	if len(g.Nameservers) == 0 {
		add("topology.gslb.nameservers", "at least one nameserver is required")
	}
	var mname string
	glueAddr := listen.Addr().Unmap()
	for i, ns := range g.Nameservers {
		fq := strings.ToLower(ns)
		if !strings.HasSuffix(fq, ".") {
			fq += "." + origin
		}
		if _, ok := dns.IsDomainName(fq); !ok {
			add(fmt.Sprintf("topology.gslb.nameservers[%d]", i), "%q is not a domain name", ns)
			continue
		}
		if mname == "" {
			mname = fq
		}
		tail, err := rrTail(&dns.NS{Hdr: hdr(dns.TypeNS, infraTTL), Ns: fq})
		if err != nil {
			add(fmt.Sprintf("topology.gslb.nameservers[%d]", i), "%v", err)
			continue
		}
		z.ns = append(z.ns, tail)
		var a, aaaa []byte
		if dns.IsSubDomain(origin, fq) && fq != origin {
			if fq == "ns1."+origin && glueAddr.IsValid() && !glueAddr.IsUnspecified() {
				if glueAddr.Is4() {
					a, _ = rrTail(&dns.A{Hdr: hdr(dns.TypeA, infraTTL), A: glueAddr.AsSlice()})
				} else {
					aaaa, _ = rrTail(&dns.AAAA{Hdr: hdr(dns.TypeAAAA, infraTTL), AAAA: glueAddr.AsSlice()})
				}
			}
			if owner[fq] == "a nameserver" {
				a, aaaa = nil, nil // listed twice: answer and glue it once
			} else {
				define(fq, node{kind: kindNS, index: len(z.nsA)}, "a nameserver")
			}
			for _, t := range [][]byte{a, aaaa} {
				if t != nil {
					z.glue = append(z.glue, wireName(fq)...)
					z.glue = append(z.glue, t...)
					z.glueN++
				}
			}
		}
		z.nsA = append(z.nsA, a)
		z.nsAAAA = append(z.nsAAAA, aaaa)
	}
	// Empty non-terminals: every proper ancestor of a name, below the apex.
	for name := range owner {
		for p := parentName(name); p != "" && p != origin && dns.IsSubDomain(origin, p); p = parentName(p) {
			if _, ok := z.names[string(wireName(p))]; !ok {
				z.names[string(wireName(p))] = node{kind: kindENT}
			}
		}
	}
	if mname == "" {
		mname = "ns1." + origin
	}
	soa := &dns.SOA{
		Hdr: hdr(dns.TypeSOA, infraTTL), Ns: mname, Mbox: "hostmaster." + origin,
		Serial: z.serial, Refresh: soaRefresh, Retry: soaRetry, Expire: soaExpire, Minttl: z.negTTL,
	}
	var err error
	if z.soa, err = rrTail(soa); err != nil {
		add("topology.gslb.zone", "%v", err)
	}
	soa.Hdr.Ttl = min(infraTTL, z.negTTL)
	z.soaNeg, _ = rrTail(soa)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return z, nil
}

func hdr(t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: ".", Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// rrTail packs rr with the root as owner and returns what follows the
// owner: type, class, TTL, RDLENGTH and RDATA.
func rrTail(rr dns.RR) ([]byte, error) {
	rr.Header().Name = "."
	buf := make([]byte, 1024)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[1:n]...), nil
}

// wireName returns a fully qualified name in wire format.
func wireName(name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		panic("gslb: wireName(" + name + "): " + err.Error())
	}
	return buf[:n]
}

func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[i:]
}

// contains reports whether the lower-case wire name lname is the zone or
// below it.
func (z *zone) contains(lname []byte) bool {
	off := 0
	for len(lname)-off > len(z.wire) {
		off += int(lname[off]) + 1
	}
	return len(lname)-off == len(z.wire) && string(lname[off:]) == string(z.wire)
}

// addrTails returns the A and AAAA tails of a region's addresses with the
// given TTL (nil when it has none of that family).
func addrTails(r topology.Region, ttl uint32) (a, aaaa []byte) {
	add := func(s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && a == nil:
			a, _ = rrTail(&dns.A{Hdr: hdr(dns.TypeA, ttl), A: net.IP(ip.AsSlice())})
		case ip.Is6() && aaaa == nil:
			aaaa, _ = rrTail(&dns.AAAA{Hdr: hdr(dns.TypeAAAA, ttl), AAAA: net.IP(ip.AsSlice())})
		}
	}
	add(r.Address6)
	add(r.Address)
	return a, aaaa
}
