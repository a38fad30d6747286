package gslb

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/health"
)

// offlineServer is a server that is not running: New builds its zone and
// first state (every region unknown, so answers fail open), and tests call
// handle directly.
func offlineServer(t testing.TB, y string) *Server {
	t.Helper()
	s, err := New(Config{
		Topology:    parseTopo(t, y),
		Listen:      "127.0.0.1:5300",
		AdminListen: AdminOff,
		Clock:       health.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewErrors(t *testing.T) {
	topo := parseTopo(t, twoRegions("priority"))
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no topology", Config{}, []string{"topology: required"}},
		{"bad listen and no token", Config{Topology: topo, Listen: "localhost"}, []string{
			`listen: "localhost" is not an address:port`, "adminToken: required",
		}},
		{"unknown probe region", Config{Topology: topo, AdminListen: AdminOff, ProbeURLs: map[string]string{"mars": "http://x/"}}, []string{
			`probeURLs: "mars" is not a region`,
		}},
		{"bad probe URL", Config{Topology: topo, AdminListen: AdminOff, ProbeURLs: map[string]string{"westeurope": "ftp://x/"}}, []string{
			`probeURLs["westeurope"]: "ftp://x/" is not an http(s) URL`,
		}},
		{"region named like the host", Config{Topology: parseTopo(t, strings.Replace(twoRegions("priority"), "name: northeurope", "name: app", 1)), AdminListen: AdminOff}, []string{
			"regions[1].name: app.example.test is also topology.gslb.host",
		}},
		{"region named like the nameserver", Config{Topology: parseTopo(t, strings.Replace(twoRegions("priority"), "name: northeurope", "name: ns1", 1)), AdminListen: AdminOff}, []string{
			"a nameserver: ns1.example.test is also regions[1].name",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// variants are queries that exercise every branch of the answer path.
func variants(t testing.TB) map[string][]byte {
	q := func(name string, qtype uint16, opts ...func(*dns.Msg)) []byte {
		return mustPack(t, msg(name, qtype, opts...))
	}
	cookie := func(m *dns.Msg) {
		m.SetEdns0(1232, true)
		m.IsEdns0().Option = append(m.IsEdns0().Option,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
			&dns.EDNS0_PADDING{Padding: make([]byte, 12)})
	}
	return map[string][]byte{
		"A":             q("app.example.test.", dns.TypeA),
		"A 0x20":        q("aPp.EXAMPLE.test.", dns.TypeA),
		"AAAA":          q("app.example.test.", dns.TypeAAAA),
		"ANY":           q("app.example.test.", dns.TypeANY),
		"A EDNS":        q("app.example.test.", dns.TypeA, edns(4096)),
		"A cookie":      q("app.example.test.", dns.TypeA, cookie),
		"A ECS v4":      q("app.example.test.", dns.TypeA, ecs("10.1.2.0/24")),
		"A ECS v6":      q("app.example.test.", dns.TypeAAAA, ecs("2001:db8::/56")),
		"A ECS /0":      q("app.example.test.", dns.TypeA, ecs("0.0.0.0/0")),
		"SOA":           q("example.test.", dns.TypeSOA),
		"NS":            q("example.test.", dns.TypeNS, edns(1232)),
		"ANY apex":      q("example.test.", dns.TypeANY),
		"region":        q("westeurope.example.test.", dns.TypeA),
		"ns1":           q("ns1.example.test.", dns.TypeA),
		"why":           q("_why.app.example.test.", dns.TypeTXT, ecs("10.1.2.0/24")),
		"NXDOMAIN":      q("nope.example.test.", dns.TypeA, edns(1232)),
		"NODATA":        q("app.example.test.", dns.TypeMX),
		"REFUSED":       q("example.org.", dns.TypeA),
		"CH":            q("version.bind.", dns.TypeTXT, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
		"BADVERS":       q("app.example.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }),
		"NOTIFY":        q("example.test.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }),
		"AXFR":          q("example.test.", dns.TypeAXFR),
		"RD CD":         q("app.example.test.", dns.TypeA, func(m *dns.Msg) { m.RecursionDesired, m.CheckingDisabled = true, true }),
		"qtype OPT":     q("app.example.test.", dns.TypeOPT),
		"root":          q(".", dns.TypeNS),
		"escaped label": q(`a\.b.example.test.`, dns.TypeA),
	}
}

// TestParsersAgree: the common-shape parser and the general (miekg/dns)
// parser lead to the same bytes.
func TestParsersAgree(t *testing.T) {
	s := offlineServer(t, twoRegions("priority"))
	w := newWorker(s.stats.newShard("test"))
	src := netip.MustParseAddr("192.0.2.1")
	for name, pkt := range variants(t) {
		fast := append([]byte(nil), s.handle(w, pkt, src, false)...)
		s.forceSlow = true
		slow := append([]byte(nil), s.handle(w, pkt, src, false)...)
		s.forceSlow = false
		if !bytes.Equal(fast, slow) {
			t.Errorf("%s: common-shape parser and general parser differ:\n%x\n%x", name, fast, slow)
		}
		var m dns.Msg
		if err := m.Unpack(fast); err != nil {
			t.Errorf("%s: response does not unpack: %v", name, err)
		}
	}
}

// TestQueryPathAllocs: once its answers are memoized, the query path does
// not allocate.
func TestQueryPathAllocs(t *testing.T) {
	for _, routing := range []string{"priority", "weighted", "performance", "geographic", "multivalue"} {
		s := offlineServer(t, twoRegions(routing))
		w := newWorker(s.stats.newShard("test"))
		src := netip.MustParseAddr("10.1.2.3")
		for name, pkt := range variants(t) {
			if name == "why" || name == "escaped label" || name == "NOTIFY" {
				continue // explain renders text; the rest take the general parser
			}
			for range 300 { // fill the memo (weighted choices are random)
				s.handle(w, pkt, src, false)
			}
			if n := testing.AllocsPerRun(200, func() { s.handle(w, pkt, src, false) }); n != 0 {
				t.Errorf("%s %s: %.1f allocations per query, want 0", routing, name, n)
			}
		}
	}
}

func BenchmarkHandle(b *testing.B) {
	for _, tc := range []struct{ name, routing string }{
		{"A", "priority"}, {"A ECS v4", "performance"}, {"A", "weighted"}, {"NXDOMAIN", "priority"},
	} {
		b.Run(tc.routing+"/"+tc.name, func(b *testing.B) {
			s := offlineServer(b, twoRegions(tc.routing))
			w := newWorker(s.stats.newShard("bench"))
			pkt := variants(b)[tc.name]
			src := netip.MustParseAddr("10.1.2.3")
			b.ReportAllocs()
			for b.Loop() {
				s.handle(w, pkt, src, false)
			}
		})
	}
}
