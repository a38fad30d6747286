package routing

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/topology"
)

var _ HealthSource = (*health.Checker)(nil)

func TestGeoTable(t *testing.T) {
	g, err := NewGeoTable(map[string]string{
		"10.0.0.0/8":    "EU",
		"10.1.0.0/16":   "GB",
		"10.1.2.0/24":   "IE",
		"10.1.2.3":      "XX", // a single address
		"0.0.0.0/0":     "WORLD",
		"2001:db8::/32": "DE",
		"2001:db8::/48": "FR",
		"10.9.9.9/16":   "NL", // host bits ignored, as topology allows them
		"10.9.0.0/16":   "NL", // the same network again, same code
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 8 {
		t.Errorf("Len = %d, want 8", g.Len())
	}
	tests := []struct {
		addr string
		want string
		ok   bool
	}{
		{"10.1.2.3", "XX", true},
		{"10.1.2.4", "IE", true},
		{"10.1.3.1", "GB", true},
		{"10.200.0.1", "EU", true},
		{"192.0.2.1", "WORLD", true},
		{"::ffff:10.1.3.1", "GB", true}, // IPv4-mapped is looked up as IPv4
		{"2001:db8::1", "FR", true},
		{"2001:db8:1::1", "DE", true},
		{"10.9.200.1", "NL", true},
		{"fe80::1%eth0", "", false},
		{"2001:db9::1", "", false},
	}
	for _, tt := range tests {
		got, ok := g.Lookup(netip.MustParseAddr(tt.addr))
		if got != tt.want || ok != tt.ok {
			t.Errorf("Lookup(%s) = %q, %v, want %q, %v", tt.addr, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := g.Lookup(netip.Addr{}); ok {
		t.Error("Lookup of the zero Addr found something")
	}
	var nilTable *GeoTable
	if _, ok := nilTable.Lookup(netip.MustParseAddr("10.0.0.1")); ok || nilTable.Len() != 0 {
		t.Error("nil table found something")
	}
	allocs := testing.AllocsPerRun(100, func() { g.Lookup(netip.MustParseAddr("10.1.2.4")) })
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times", allocs)
	}
}

func TestGeoTableErrors(t *testing.T) {
	_, err := NewGeoTable(map[string]string{
		"nonsense":          "EU",
		"10.2.0.0/16":       "",
		"::ffff:0.0.0.0/96": "EU",
		"10.3.0.0/16":       "IE",
		"10.3.7.7/16":       "GB", // the same network as 10.3.0.0/16
		"10.4.0.0/16":       "OK",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"routing: geo table: ",
		`"nonsense": not a prefix such as 10.1.0.0/16 or an address`,
		`"10.2.0.0/16": empty geo code`,
		`"::ffff:0.0.0.0/96": IPv4-mapped IPv6 prefix`,
		`"10.3.7.7/16": 10.3.0.0/16 is listed twice, as IE and as GB`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 4 {
		t.Errorf("%d problems, want 4: %v", n, err)
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name, peer, xff string
		trusted         []netip.Prefix
		want            string
	}{
		{"untrusted peer ignores xff", "203.0.113.9", "198.51.100.1", trusted, "203.0.113.9"},
		{"no trusted proxies", "127.0.0.1", "198.51.100.1", nil, "127.0.0.1"},
		{"trusted peer, one hop", "127.0.0.1", "198.51.100.1", trusted, "198.51.100.1"},
		{"right-most untrusted wins", "127.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2", trusted, "198.51.100.1"},
		{"spoofed left entries ignored", "10.0.0.1", "6.6.6.6,198.51.100.1", trusted, "198.51.100.1"},
		{"every entry trusted: left-most", "127.0.0.1", "10.0.0.3, 10.0.0.2", trusted, "10.0.0.3"},
		{"empty xff", "127.0.0.1", "", trusted, "127.0.0.1"},
		{"blank entries skipped", "127.0.0.1", " , 198.51.100.1 ,, ", trusted, "198.51.100.1"},
		{"ports", "127.0.0.1", "198.51.100.1:4711, [2001:db8::1]:443", trusted, "2001:db8::1"},
		{"bracketed v6", "127.0.0.1", "[2001:db8::2]", trusted, "2001:db8::2"},
		{"garbage stops at the last trusted hop", "127.0.0.1", "198.51.100.1, unknown, 10.0.0.2", trusted, "10.0.0.2"},
		{"garbage right away", "127.0.0.1", "_hidden", trusted, "127.0.0.1"},
		{"mapped peer", "::ffff:127.0.0.1", "198.51.100.1", trusted, "198.51.100.1"},
		{"mapped hop", "127.0.0.1", "::ffff:198.51.100.1", trusted, "198.51.100.1"},
		{"v6 proxy", "fd00::1", "2001:db8::7", trusted, "2001:db8::7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClientAddr(netip.MustParseAddr(tt.peer), tt.xff, tt.trusted)
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("ClientAddr = %s, want %s", got, tt.want)
			}
		})
	}
	peer := netip.MustParseAddr("127.0.0.1")
	if allocs := testing.AllocsPerRun(100, func() { ClientAddr(peer, "1.1.1.1, 198.51.100.1, 10.0.0.2", trusted) }); allocs != 0 {
		t.Errorf("ClientAddr allocates %v times", allocs)
	}
}

func TestFromTopology(t *testing.T) {
	topo := topology.Topology{Name: "contoso", Regions: []topology.Region{
		{Name: "westeurope", Priority: 1, Geo: []string{"EU", "GB"}, Networks: []string{"10.1.0.0/16"}},
		{Name: "northeurope", Priority: 2, Disabled: true},
	}}
	topo.SetDefaults()
	cands, err := FromRegions(topo.Regions)
	if err != nil {
		t.Fatal(err)
	}
	we, ne := cands[0], cands[1]
	if we.Name != "westeurope" || we.Priority != 1 || we.Weight != 50 || !we.Enabled || we.Healthy ||
		len(we.Geo) != 2 || we.Networks[0] != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("westeurope = %+v", we)
	}
	if ne.Enabled || ne.Priority != 2 {
		t.Errorf("northeurope = %+v, want disabled", ne)
	}
	if p := FrontDoorPolicy(topo.FrontDoor); p.Method != Latency || p.LatencyBand != 50*time.Millisecond || p.Validate() != nil {
		t.Errorf("front door policy %+v", p)
	}
	if p := GSLBPolicy(topo.GSLB); p.Method != Priority || p.MaxRecords != 8 || p.Validate() != nil {
		t.Errorf("gslb policy %+v", p)
	}
	_, err = FromRegions([]topology.Region{{Name: "a", Networks: []string{"10.0.0.0/8", "ten"}}})
	if err == nil || !strings.Contains(err.Error(), `regions[0].networks[1]: "ten" is not a CIDR prefix`) {
		t.Errorf("bad network: %v", err)
	}
}

func TestRefreshFromChecker(t *testing.T) {
	// The way frontdoor and gslb tests can drive a Checker: a FakeClock
	// that settles the probe goroutines after each timer.
	clk := health.NewFakeClock(time.Unix(0, 0))
	chk, err := health.New(health.Config{Clock: clk, Jitter: -1, Prober: health.ProberFunc(func(_ context.Context, tg health.Target) health.Result {
		if tg.Name == "northeurope" {
			return health.Result{Err: errors.New("connection refused")}
		}
		return health.Result{Status: 200, Latency: 4 * time.Millisecond}
	})}, []health.Target{{Name: "westeurope"}, {Name: "northeurope"}})
	if err != nil {
		t.Fatal(err)
	}
	clk.SettleProbes(chk, nil)
	cands := []Candidate{{Name: "westeurope", Priority: 2, Enabled: true, Healthy: true, RTT: time.Second}, {Name: "northeurope", Priority: 1, Enabled: true}}
	Refresh(cands, chk) // nothing probed yet: not healthy, no RTT
	if cands[0].Healthy || cands[0].RTT != 0 {
		t.Errorf("before probing: %+v", cands[0])
	}
	if d := Decide(Policy{Method: Latency}, cands, Request{}); !d.FailOpen || len(d.Order) != 2 {
		t.Errorf("before probing: %+v, want fail-open over both", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- chk.Run(ctx) }()
	clk.WaitPending(2) // Run has scheduled the first probes
	clk.Advance(0)
	Refresh(cands, chk)
	if !cands[0].Healthy || cands[0].RTT != 4*time.Millisecond || cands[1].Healthy {
		t.Errorf("after probing: %+v", cands)
	}
	if d := Decide(Policy{Method: Latency}, cands, Request{}); d.FailOpen || d.Target() != 0 {
		t.Errorf("after probing: %+v, want westeurope", d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDefaultTopology(t *testing.T) {
	// What frontdoor and gslb will build from the embedded default.
	topo := topology.Default()
	g, err := NewGeoTable(topo.GeoIP)
	if err != nil {
		t.Fatal(err)
	}
	cands, err := FromRegions(topo.Regions)
	if err != nil {
		t.Fatal(err)
	}
	var trusted []netip.Prefix
	for _, s := range topo.FrontDoor.TrustedProxies {
		trusted = append(trusted, netip.MustParsePrefix(s))
	}
	for i := range cands {
		cands[i].Healthy = true
	}
	for _, p := range []Policy{FrontDoorPolicy(topo.FrontDoor), GSLBPolicy(topo.GSLB)} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
		client := ClientAddr(netip.MustParseAddr("127.0.0.1"), "10.1.2.3", trusted)
		geo, _ := g.Lookup(client)
		d := Decide(p, cands, Request{Client: client, Geo: geo})
		if len(d.Order) == 0 || d.FailOpen {
			t.Errorf("%s: %+v", p.Method, d)
		}
	}
}
