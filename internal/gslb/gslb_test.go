package gslb

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/topology"
)

// TestFailoverWithinBound: the routed answer is the preferred region, and
// once its stamp dies (connections refused) or hangs (probes time out) the
// answer moves to the other region within the health package's detection
// bound for the topology's probe settings, plus a stated margin, which in
// turn fits in the bound this package publishes.
func TestFailoverWithinBound(t *testing.T) {
	for _, fault := range []string{"killed", "hung"} {
		t.Run(fault, func(t *testing.T) {
			topo := parseTopo(t, twoRegions("priority"))
			we, ne := newStamp(t), newStamp(t)
			r := start(t, topo, map[string]*stamp{"westeurope": we, "northeurope": ne})
			r.waitHealthy(t, "westeurope", "northeurope")

			p := topo.GSLB.Probe
			interval, timeout, tolerated := p.Interval.D(), p.Timeout.D(), p.Tolerated()
			bound := (interval+timeout)*time.Duration(tolerated+1) + interval
			if bound != 800*time.Millisecond || FailoverBound(topo.GSLB) != bound {
				t.Fatalf("bound for 200ms/100ms/1 tolerated = %s (FailoverBound %s), want 800ms", bound, FailoverBound(topo.GSLB))
			}
			// The checker's fixed cadence marks the stamp unhealthy by
			// interval×(tolerated+1)+timeout after the fault at the latest
			// (health package doc: the fault just after a probe started, the
			// detecting probe hanging until its timeout), and the answer
			// changes on that event. Margin: one probe interval, for late
			// timers and goroutines on a loaded machine (-race) and for the
			// polling below (a query and a 5 ms sleep).
			detect := interval*time.Duration(tolerated+1) + timeout
			margin := interval
			if detect+margin > bound {
				t.Fatalf("detection %s + margin %s exceeds the published bound %s", detect, margin, bound)
			}

			a := ask(t, r.addr, "app.example.test.", dns.TypeA)
			if got := addrs(a.Answer); !slices.Equal(got, []string{"127.0.1.1"}) {
				t.Fatalf("before the failure: answer %v, want the preferred region [127.0.1.1]", got)
			}
			if ttl := a.Answer[0].Header().Ttl; ttl != 30 {
				t.Errorf("TTL while healthy = %d, want the configured 30", ttl)
			}

			t0 := time.Now()
			if fault == "killed" {
				we.srv.Close() // connections are refused from now on
			} else {
				we.hang.Store(true) // connections are accepted, nothing answers
			}
			var last []string
			for {
				a := ask(t, r.addr, "app.example.test.", dns.TypeA)
				last = addrs(a.Answer)
				if slices.Equal(last, []string{"127.0.2.1"}) {
					if ttl := a.Answer[0].Header().Ttl; ttl != 2 {
						t.Errorf("TTL while degraded = %d, want the degraded 2", ttl)
					}
					break
				}
				if time.Since(t0) > 3*bound {
					t.Fatalf("answer still %v %s after the stamp %s", last, time.Since(t0), fault)
				}
				time.Sleep(5 * time.Millisecond)
			}
			took := time.Since(t0)
			t.Logf("stamp %s: answer moved to northeurope after %s (detection bound %s + margin %s)", fault, took.Round(time.Millisecond), detect, margin)
			if took > detect+margin {
				t.Errorf("failover took %s, more than interval×(tolerated+1)+timeout = %s plus the margin %s", took, detect, margin)
			}
		})
	}
}

// TestFailoverBoundDefault: the figure the documentation gives for the
// default topology.
func TestFailoverBoundDefault(t *testing.T) {
	g := topology.Default().GSLB
	if got := FailoverBound(g); got != 70*time.Second {
		t.Errorf("FailoverBound(default) = %s, want 70s ((10s+5s)×4+10s)", got)
	}
	if got := ClientFailoverBound(g); got != 80*time.Second {
		t.Errorf("ClientFailoverBound(default) = %s, want 80s", got)
	}
}

// TestRecords covers the records of the zone, over UDP, with the
// preferred region healthy.
func TestRecords(t *testing.T) {
	topo := parseTopo(t, twoRegions("priority"))
	r := start(t, topo, map[string]*stamp{"westeurope": newStamp(t), "northeurope": newStamp(t)})
	r.waitHealthy(t, "westeurope", "northeurope")

	soaOf := func(t *testing.T, rrs []dns.RR) *dns.SOA {
		t.Helper()
		if len(rrs) != 1 {
			t.Fatalf("want one SOA, got %v", rrs)
		}
		soa, ok := rrs[0].(*dns.SOA)
		if !ok {
			t.Fatalf("want a SOA, got %v", rrs[0])
		}
		return soa
	}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string // rendered answer records, TTL included
		negSOA bool     // a SOA in the authority section (NXDOMAIN, NODATA)
		extra  []string
	}{
		{name: "A of the routed name", qname: "app.example.test.", qtype: dns.TypeA,
			answer: []string{"app.example.test.\t30\tIN\tA\t127.0.1.1"}},
		{name: "AAAA of the routed name", qname: "app.example.test.", qtype: dns.TypeAAAA,
			answer: []string{"app.example.test.\t30\tIN\tAAAA\tfd00::1"}},
		{name: "case is preserved (0x20)", qname: "ApP.ExAmPlE.tEsT.", qtype: dns.TypeA,
			answer: []string{"ApP.ExAmPlE.tEsT.\t30\tIN\tA\t127.0.1.1"}},
		{name: "region name answers that region", qname: "northeurope.example.test.", qtype: dns.TypeA,
			answer: []string{"northeurope.example.test.\t30\tIN\tA\t127.0.2.1"}},
		{name: "NS with glue", qname: "example.test.", qtype: dns.TypeNS,
			answer: []string{"example.test.\t3600\tIN\tNS\tns1.example.test."},
			extra:  []string{"ns1.example.test.\t3600\tIN\tA\t127.0.0.1"}},
		{name: "nameserver address", qname: "ns1.example.test.", qtype: dns.TypeA,
			answer: []string{"ns1.example.test.\t3600\tIN\tA\t127.0.0.1"}},
		{name: "NXDOMAIN below the routed name", qname: "x.app.example.test.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, negSOA: true},
		{name: "NXDOMAIN in the zone", qname: "nope.example.test.", qtype: dns.TypeAAAA,
			rcode: dns.RcodeNameError, negSOA: true},
		{name: "NODATA: no TXT at the routed name", qname: "app.example.test.", qtype: dns.TypeTXT, negSOA: true},
		{name: "NODATA: region without IPv6", qname: "northeurope.example.test.", qtype: dns.TypeAAAA, negSOA: true},
		{name: "NODATA: MX at the apex", qname: "example.test.", qtype: dns.TypeMX, negSOA: true},
		{name: "REFUSED outside the zone", qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "REFUSED for the parent", qname: "test.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ask(t, r.addr, tt.qname, tt.qtype)
			if resp.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", rcode(resp), dns.RcodeToString[tt.rcode])
			}
			if q := resp.Question; len(q) != 1 || q[0].Name != tt.qname || q[0].Qtype != tt.qtype {
				t.Errorf("question echoed as %v", q)
			}
			wantAA := tt.rcode != dns.RcodeRefused
			if resp.Authoritative != wantAA {
				t.Errorf("AA = %v, want %v", resp.Authoritative, wantAA)
			}
			var got []string
			for _, rr := range resp.Answer {
				got = append(got, rr.String())
			}
			if !slices.Equal(got, tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", got, tt.answer)
			}
			var extra []string
			for _, rr := range resp.Extra {
				extra = append(extra, rr.String())
			}
			if !slices.Equal(extra, tt.extra) {
				t.Errorf("additional\n got %q\nwant %q", extra, tt.extra)
			}
			if !tt.negSOA {
				if len(resp.Ns) != 0 {
					t.Errorf("authority section %v, want empty", resp.Ns)
				}
				return
			}
			soa := soaOf(t, resp.Ns)
			if soa.Hdr.Name != "example.test." || soa.Hdr.Ttl != soa.Minttl || soa.Minttl != 30 {
				t.Errorf("negative answer SOA %v: want owner example.test. and TTL = MINIMUM = 30", soa)
			}
		})
	}

	t.Run("SOA", func(t *testing.T) {
		resp := ask(t, r.addr, "example.test.", dns.TypeSOA)
		soa := soaOf(t, resp.Answer)
		if soa.Ns != "ns1.example.test." || soa.Mbox != "hostmaster.example.test." || soa.Serial == 0 ||
			soa.Refresh != 3600 || soa.Retry != 600 || soa.Expire != 604800 || soa.Minttl != 30 || soa.Hdr.Ttl != 3600 {
			t.Errorf("SOA %v", soa)
		}
	})
	t.Run("TCP", func(t *testing.T) {
		resp := exchange(t, r.addr, "tcp", msg("app.example.test.", dns.TypeA))
		if got := addrs(resp.Answer); !slices.Equal(got, []string{"127.0.1.1"}) {
			t.Errorf("TCP answer %v", got)
		}
	})
	t.Run("EDNS", func(t *testing.T) {
		resp := exchange(t, r.addr, "udp", msg("app.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(4096, true) }))
		o := resp.IsEdns0()
		if o == nil || o.UDPSize() != 1232 || o.Version() != 0 || !o.Do() {
			t.Errorf("OPT %v: want payload 1232, version 0, DO copied", o)
		}
	})
}

// TestTCPFallback: a multivalue answer with 32 regions (542 bytes) does not
// fit 512 bytes: UDP gets TC and no records, TCP gets them all, and an
// EDNS client with room gets them over UDP.
func TestTCPFallback(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: big\nregions:\n")
	for i := range 32 {
		fmt.Fprintf(&b, "  - {name: r%02d, priority: 1}\n", i)
	}
	b.WriteString("gslb: {zone: example.test., routing: multivalue, maxRecords: 32, probe: {interval: 200ms, timeout: 100ms}}\n")
	topo := parseTopo(t, b.String())
	st := newStamp(t)
	stamps := map[string]*stamp{}
	var names []string
	for _, reg := range topo.Regions {
		stamps[reg.Name] = st
		names = append(names, reg.Name)
	}
	r := start(t, topo, stamps)
	r.waitHealthy(t, names...)

	tests := []struct {
		name    string
		netw    string
		opts    []func(*dns.Msg)
		tc      bool
		records int
	}{
		{"UDP without EDNS: 512 bytes", "udp", nil, true, 0},
		{"UDP with EDNS 512", "udp", []func(*dns.Msg){edns(512)}, true, 0},
		{"UDP with EDNS 4096: up to 1232", "udp", []func(*dns.Msg){edns(4096)}, false, 32},
		{"TCP", "tcp", nil, false, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := exchange(t, r.addr, tt.netw, msg("app.example.test.", dns.TypeA, tt.opts...))
			if resp.Truncated != tt.tc || len(resp.Answer) != tt.records || resp.Rcode != dns.RcodeSuccess {
				t.Errorf("TC %v with %d records (%s), want TC %v with %d", resp.Truncated, len(resp.Answer), rcode(resp), tt.tc, tt.records)
			}
			if len(resp.Question) != 1 {
				t.Errorf("question not echoed: %v", resp.Question)
			}
			limit := 512
			if o := resp.IsEdns0(); o != nil {
				limit = max(512, min(int(o.UDPSize()), 1232))
			}
			if tt.netw == "udp" && resp.Len() > limit {
				t.Errorf("UDP answer of %d bytes, limit %d", resp.Len(), limit)
			}
		})
	}
	// A client that follows TC (as resolvers do) ends with the full answer.
	resp := ask(t, r.addr, "app.example.test.", dns.TypeA)
	if resp.Truncated {
		resp = exchange(t, r.addr, "tcp", msg("app.example.test.", dns.TypeA))
	}
	if len(resp.Answer) != 32 {
		t.Errorf("after TCP fallback: %d records, want 32", len(resp.Answer))
	}
}

// TestECSScope: the client subnet is echoed with the scope the answer
// holds for.
func TestECSScope(t *testing.T) {
	perf := `
name: test
regions:
  - {name: westeurope, priority: 1, networks: [10.0.0.0/8]}
  - {name: northeurope, priority: 2, networks: [10.2.0.0/16, "2001:db8:2::/48"]}
gslb: {zone: example.test., routing: performance, probe: {interval: 200ms, timeout: 100ms}}
`
	tests := []struct {
		name   string
		topo   string
		subnet string
		answer string // "": either region (routed by RTT)
		scope  uint8
	}{
		{"performance: in 10.2.0.0/16", perf, "10.2.3.0/24", "127.0.2.1", 16},
		// 10.1.0.0/24 matches only 10.0.0.0/8, but shares 14 bits with
		// 10.2.0.0/16: the answer holds for 10.0.0.0/15, not all of /8.
		{"performance: /8 with a /16 nearby", perf, "10.1.0.0/24", "127.0.1.1", 15},
		{"performance: far from every network (by RTT)", perf, "192.0.2.0/24", "", 1},
		{"performance: IPv6", perf, "2001:db8:2:100::/56", "127.0.2.1", 48},
		{"priority: answer independent of the client", twoRegions("priority"), "10.2.3.0/24", "127.0.1.1", 0},
		{"source 0: not used (by RTT)", twoRegions("performance"), "0.0.0.0/0", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := parseTopo(t, tt.topo)
			r := start(t, topo, map[string]*stamp{"westeurope": newStamp(t), "northeurope": newStamp(t)})
			r.waitHealthy(t, "westeurope", "northeurope")
			resp := ask(t, r.addr, "app.example.test.", dns.TypeA, ecs(tt.subnet))
			got := addrs(resp.Answer)
			if len(got) != 1 || tt.answer != "" && got[0] != tt.answer {
				t.Errorf("answer %v, want [%s]", got, tt.answer)
			}
			e := subnetOpt(t, resp)
			want := netip.MustParsePrefix(tt.subnet)
			if e.SourceNetmask != uint8(want.Bits()) || !e.Address.Equal(want.Addr().AsSlice()) && want.Bits() > 0 {
				t.Errorf("ECS echoed as %s/%d, want %s", e.Address, e.SourceNetmask, tt.subnet)
			}
			if e.SourceScope != tt.scope {
				t.Errorf("scope /%d, want /%d", e.SourceScope, tt.scope)
			}
		})
	}
}

// TestPerformanceRouting: the client's network picks the region, by ECS
// or by the query's source, and an unhealthy nearest region falls back.
func TestPerformanceRouting(t *testing.T) {
	topo := parseTopo(t, twoRegions("performance"))
	we, ne := newStamp(t), newStamp(t)
	r := start(t, topo, map[string]*stamp{"westeurope": we, "northeurope": ne})
	r.waitHealthy(t, "westeurope", "northeurope")
	for subnet, want := range map[string]string{"10.1.7.0/24": "127.0.1.1", "10.2.7.0/24": "127.0.2.1"} {
		if got := addrs(ask(t, r.addr, "app.example.test.", dns.TypeA, ecs(subnet)).Answer); !slices.Equal(got, []string{want}) {
			t.Errorf("ECS %s: answer %v, want [%s]", subnet, got, want)
		}
	}
	// Without ECS the source (127.0.0.1, in no network) is routed by RTT,
	// then priority: one of the two, and always the same one.
	first := addrs(ask(t, r.addr, "app.example.test.", dns.TypeA).Answer)
	if len(first) != 1 {
		t.Fatalf("answer %v", first)
	}
	ne.up.Store(false)
	r.waitHealthy(t, "westeurope")
	if got := addrs(ask(t, r.addr, "app.example.test.", dns.TypeA, ecs("10.2.7.0/24")).Answer); !slices.Equal(got, []string{"127.0.1.1"}) {
		t.Errorf("nearest region down: answer %v, want the next one [127.0.1.1]", got)
	}
}

// TestGeographicRouting: client subnet -> geo code -> region, with WORLD
// as the default.
func TestGeographicRouting(t *testing.T) {
	topo := parseTopo(t, twoRegions("geographic"))
	r := start(t, topo, map[string]*stamp{"westeurope": newStamp(t), "northeurope": newStamp(t)})
	r.waitHealthy(t, "westeurope", "northeurope")
	tests := []struct{ subnet, geo, want string }{
		{"10.1.2.0/24", "GB", "127.0.1.1"},
		{"10.2.2.0/24", "IE", "127.0.2.1"},
		{"10.3.2.0/24", "US (no region: WORLD)", "127.0.2.1"},
		{"192.0.2.0/24", "unknown (WORLD)", "127.0.2.1"},
	}
	for _, tt := range tests {
		resp := ask(t, r.addr, "app.example.test.", dns.TypeA, ecs(tt.subnet))
		if got := addrs(resp.Answer); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("%s (%s): answer %v, want [%s]", tt.subnet, tt.geo, got, tt.want)
		}
		if sc := subnetOpt(t, resp).SourceScope; sc < 16 && tt.subnet[:3] == "10." {
			t.Errorf("%s: scope /%d, want at least the geoip /16", tt.subnet, sc)
		}
	}
}

// TestWeightedDistribution: weighted routing answers one record per query,
// chosen by weight: a chi-square goodness-of-fit test over 10,000 queries
// must not reject the weights at p = 0.001.
func TestWeightedDistribution(t *testing.T) {
	topo := parseTopo(t, `
name: test
regions:
  - {name: a, weight: 100}
  - {name: b, weight: 300}
  - {name: c, weight: 600}
gslb: {zone: example.test., routing: weighted, probe: {interval: 200ms, timeout: 100ms}}
`)
	st := newStamp(t)
	r := start(t, topo, map[string]*stamp{"a": st, "b": st, "c": st})
	r.waitHealthy(t, "a", "b", "c")

	const n = 10000
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
			conn, err := c.Dial(r.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			for range n / 8 {
				resp, _, err := c.ExchangeWithConn(msg("app.example.test.", dns.TypeA), conn)
				if err != nil {
					t.Error(err)
					return
				}
				got := addrs(resp.Answer)
				if len(got) != 1 {
					t.Errorf("weighted answer %v, want one record", got)
					return
				}
				mu.Lock()
				counts[got[0]]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := map[string]float64{"127.0.1.1": 0.1, "127.0.2.1": 0.3, "127.0.3.1": 0.6}
	chi2 := 0.0
	total := 0
	for a, p := range want {
		e := p * n
		chi2 += (float64(counts[a]) - e) * (float64(counts[a]) - e) / e
		total += counts[a]
	}
	// Critical value of chi-square with 2 degrees of freedom at p = 0.001.
	const critical = 13.816
	t.Logf("counts %v, chi-square %.2f (critical %.3f at p=0.001, df=2)", counts, chi2, critical)
	if total != n {
		t.Fatalf("%d answers, want %d", total, n)
	}
	if chi2 > critical || math.IsNaN(chi2) {
		t.Errorf("chi-square %.2f > %.3f: the answers do not follow the weights 10/30/60%%", chi2, critical)
	}
}

// TestFailOpen: when every region is unhealthy the answer names all of
// them (never NXDOMAIN or an empty answer), with the degraded TTL.
func TestFailOpen(t *testing.T) {
	topo := parseTopo(t, twoRegions("priority"))
	we, ne := newStamp(t), newStamp(t)
	we.up.Store(false)
	ne.up.Store(false)
	r := start(t, topo, map[string]*stamp{"westeurope": we, "northeurope": ne})
	r.waitHealthy(t)

	resp := ask(t, r.addr, "app.example.test.", dns.TypeA)
	if resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("rcode %s", rcode(resp))
	}
	if got := addrs(resp.Answer); !slices.Equal(got, []string{"127.0.1.1", "127.0.2.1"}) {
		t.Errorf("fail-open answer %v, want every region in preference order", got)
	}
	for _, rr := range resp.Answer {
		if rr.Header().Ttl != 2 {
			t.Errorf("TTL %d, want the degraded TTL 2", rr.Header().Ttl)
		}
	}
	why := ask(t, r.addr, "_why.app.example.test.", dns.TypeTXT)
	if len(why.Answer) != 1 || !strings.Contains(strings.Join(why.Answer[0].(*dns.TXT).Txt, ""), "fail_open=true") {
		t.Errorf("explain does not say fail-open: %v", why.Answer)
	}
	if !r.s.Health().FailOpen {
		t.Error("admin health does not say fail-open")
	}

	// A healthy region again: it alone is answered.
	ne.up.Store(true)
	r.waitHealthy(t, "northeurope")
	if got := addrs(ask(t, r.addr, "app.example.test.", dns.TypeA).Answer); !slices.Equal(got, []string{"127.0.2.1"}) {
		t.Errorf("after northeurope recovered: %v, want [127.0.2.1]", got)
	}
}

// TestExplainAndAdmin: _why TXT and the admin API explain the last answer
// for a subnet; the admin API wants its token.
func TestExplainAndAdmin(t *testing.T) {
	topo := parseTopo(t, twoRegions("geographic"))
	r := start(t, topo, map[string]*stamp{"westeurope": newStamp(t), "northeurope": newStamp(t)})
	r.waitHealthy(t, "westeurope", "northeurope")

	ask(t, r.addr, "app.example.test.", dns.TypeA, ecs("10.1.2.0/24"))
	resp := ask(t, r.addr, "_WHY.app.example.test.", dns.TypeTXT, ecs("10.1.2.0/24"))
	if len(resp.Answer) != 1 {
		t.Fatalf("_why answer %v", resp.Answer)
	}
	txt := resp.Answer[0].(*dns.TXT)
	text := strings.Join(txt.Txt, "")
	for _, want := range []string{"last answer for 10.1.2.0/24", "127.0.1.1", "target=westeurope", "method=geographic", "geo GB", "client=10.1.2.0"} {
		if !strings.Contains(text, want) {
			t.Errorf("_why TXT %q lacks %q", text, want)
		}
	}
	if txt.Hdr.Ttl != 0 {
		t.Errorf("_why TTL %d, want 0", txt.Hdr.Ttl)
	}
	if sc := subnetOpt(t, resp).SourceScope; sc != 24 {
		t.Errorf("_why scope /%d, want the source /24", sc)
	}
	// Nothing recorded for another subnet: the decision it would get now.
	if text := strings.Join(ask(t, r.addr, "_why.app.example.test.", dns.TypeTXT, ecs("10.2.9.0/24")).Answer[0].(*dns.TXT).Txt, ""); !strings.Contains(text, "no answer recorded for 10.2.9.0/24") || !strings.Contains(text, "target=northeurope") {
		t.Errorf("_why without a recorded answer: %q", text)
	}

	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	for _, path := range []string{"/admin/explain?client=10.1.2.3", "/admin/health", "/metrics"} {
		for _, tok := range []string{"", "wrong"} {
			if code, _ := get(path, tok); code != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d, want 401", path, tok, code)
			}
		}
	}
	code, body := get("/admin/explain?client=10.1.2.3", testToken)
	var e Explanation
	if err := json.Unmarshal(body, &e); code != http.StatusOK || err != nil {
		t.Fatalf("explain: %d %s %v", code, body, err)
	}
	if !e.Recorded || e.Subnet != "10.1.2.0/24" || e.Target != "westeurope" || !slices.Equal(e.A, []string{"127.0.1.1"}) || e.QType != "A" {
		t.Errorf("explain %+v", e)
	}
	if code, _ := get("/admin/explain?client=nonsense", testToken); code != http.StatusBadRequest {
		t.Errorf("explain of a bad client: %d, want 400", code)
	}
	code, body = get("/admin/health", testToken)
	var h HealthReport
	if err := json.Unmarshal(body, &h); code != http.StatusOK || err != nil {
		t.Fatalf("health: %d %s %v", code, body, err)
	}
	if len(h.Regions) != 2 || len(h.Regions[0].History) == 0 || !h.Regions[0].Healthy || h.TTL != "30s" || h.Degraded {
		t.Errorf("health %+v", h)
	}
	code, body = get("/metrics", testToken)
	for _, want := range []string{
		`geostamp_gslb_queries_total{proto="udp",qtype="A",rcode="NOERROR"} 1`,
		`geostamp_gslb_queries_total{proto="udp",qtype="TXT",rcode="NOERROR"} 2`,
		`geostamp_gslb_answers_total{region="westeurope"} 1`,
		`geostamp_gslb_region_healthy{region="northeurope"} 1`,
		`geostamp_gslb_degraded 0`,
		`geostamp_gslb_ttl_seconds 30`,
	} {
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestProtocolErrors: malformed and unsupported queries get the right
// RCODE, and responses are never answered.
func TestProtocolErrors(t *testing.T) {
	topo := parseTopo(t, twoRegions("priority"))
	r := start(t, topo, nil)

	q := func(mods ...func(*dns.Msg)) []byte {
		return mustPack(t, msg("app.example.test.", dns.TypeA, mods...))
	}
	badECS := func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 24, 0, 10, 1, 2, 3}})
	}
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
		edns  bool
	}{
		{"NOTIFY: NOTIMP", q(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, false},
		{"UPDATE: NOTIMP", q(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented, false},
		{"two questions: FORMERR", q(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError, false},
		{"no question: FORMERR", q(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError, false},
		{"truncated question: FORMERR", q()[:20], dns.RcodeFormatError, false},
		{"trailing garbage: FORMERR", append(q(), 1, 2, 3), dns.RcodeFormatError, false},
		{"ECS with bits beyond the prefix: FORMERR", q(badECS), dns.RcodeFormatError, false},
		{"EDNS version 1: BADVERS", q(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, true},
		{"class CH: REFUSED", q(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, false},
		{"AXFR: REFUSED", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR }), dns.RcodeRefused, false},
		{"additional record: answered", extraRecordQuery(t), dns.RcodeSuccess, false},
		{"a response: not answered", q(func(m *dns.Msg) { m.Response = true }), -1, false},
		{"short packet: not answered", []byte{1, 2, 3}, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawUDP(t, r.addr, tt.pkt, 300*time.Millisecond)
			if tt.rcode < 0 {
				if out != nil {
					t.Fatalf("answered %x", out)
				}
				return
			}
			if out == nil {
				t.Fatal("no answer")
			}
			var m dns.Msg
			if err := m.Unpack(out); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			if m.Id != be16(tt.pkt) || !m.Response || m.Rcode != tt.rcode {
				t.Errorf("id %d QR %v rcode %s, want id %d QR and %s", m.Id, m.Response, rcode(&m), be16(tt.pkt), dns.RcodeToString[tt.rcode])
			}
			if (m.IsEdns0() != nil) != tt.edns {
				t.Errorf("OPT present %v, want %v", m.IsEdns0() != nil, tt.edns)
			}
		})
	}
}

// extraRecordQuery is a query with an additional A record whose owner is
// compressed: not the common shape, so the general parser reads it.
func extraRecordQuery(t *testing.T) []byte {
	t.Helper()
	m := msg("app.example.test.", dns.TypeA)
	m.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}}}
	m.Compress = true
	return mustPack(t, m)
}
