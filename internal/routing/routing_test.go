package routing

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// c builds a healthy, enabled candidate; flags: "down", "drained",
// "disabled".
func c(name string, priority, weight int, rtt time.Duration, flags ...string) Candidate {
	cd := Candidate{Name: name, Priority: priority, Weight: weight, Enabled: true, Healthy: true, RTT: rtt}
	for _, f := range flags {
		switch f {
		case "down":
			cd.Healthy = false
		case "drained":
			cd.Drained = true
		case "disabled":
			cd.Enabled = false
		default:
			panic("unknown flag " + f)
		}
	}
	return cd
}

func withGeo(cd Candidate, geo ...string) Candidate { cd.Geo = geo; return cd }

func withNets(cd Candidate, nets ...string) Candidate {
	for _, n := range nets {
		cd.Networks = append(cd.Networks, netip.MustParsePrefix(n))
	}
	return cd
}

const ms = time.Millisecond

func names(cands []Candidate, order []int) []string {
	out := []string{}
	for _, i := range order {
		out = append(out, cands[i].Name)
	}
	return out
}

func TestDecide(t *testing.T) {
	we := withNets(withGeo(c("westeurope", 1, 50, 3*ms), "EU", "GB"), "10.1.0.0/16")
	ne := withNets(withGeo(c("northeurope", 2, 50, 9*ms), "EU"), "10.0.0.0/8")
	us := withNets(withGeo(c("eastus", 3, 50, 80*ms), "US", World), "192.0.2.0/24")
	down := func(cd Candidate) Candidate { cd.Healthy = false; return cd }
	drained := func(cd Candidate) Candidate { cd.Drained = true; return cd }
	disabled := func(cd Candidate) Candidate { cd.Enabled = false; return cd }
	client := netip.MustParseAddr

	tests := []struct {
		name     string
		policy   Policy
		cands    []Candidate
		req      Request
		want     []string
		failOpen bool
		reason   string // the whole reason, or, with a leading "~", a part of it
	}{
		// priority
		{"priority", Policy{Method: Priority}, []Candidate{ne, we}, Request{},
			[]string{"westeurope", "northeurope"}, false, "priority 1 of [westeurope]"},
		{"priority is the zero method", Policy{}, []Candidate{ne, we}, Request{},
			[]string{"westeurope", "northeurope"}, false, "priority 1 of [westeurope]"},
		{"priority tie weighted, rand 0", Policy{Method: Priority},
			[]Candidate{c("a", 1, 30, 0), c("b", 1, 70, 0), c("z", 2, 50, 0)}, Request{Rand: 0},
			[]string{"b", "a", "z"}, false, "priority 1 of [b a]; weighted 70/30 -> b"},
		{"priority tie weighted, rand 75", Policy{Method: Priority},
			[]Candidate{c("a", 1, 30, 0), c("b", 1, 70, 0), c("z", 2, 50, 0)}, Request{Rand: 75},
			[]string{"a", "b", "z"}, false, "priority 1 of [b a]; weighted 70/30 -> a"},
		{"priority skips unhealthy", Policy{Method: Priority}, []Candidate{down(we), ne}, Request{},
			[]string{"northeurope"}, false, "priority 2 of [northeurope]"},
		{"priority skips drained", Policy{Method: Priority}, []Candidate{drained(we), ne}, Request{},
			[]string{"northeurope"}, false, ""},
		{"priority skips disabled", Policy{Method: Priority}, []Candidate{disabled(we), ne}, Request{},
			[]string{"northeurope"}, false, ""},
		{"unknown method", Policy{Method: "fastest"}, []Candidate{ne, we}, Request{},
			[]string{"westeurope", "northeurope"}, false, `unknown method "fastest", using priority; priority 1 of [westeurope]`},

		// fail-open
		{"fail-open: all unhealthy", Policy{Method: Priority}, []Candidate{down(ne), down(we)}, Request{},
			[]string{"westeurope", "northeurope"}, true,
			"fail-open: no eligible candidate, answering every enabled, undrained candidate; priority 1 of [westeurope]"},
		{"fail-open skips drained and disabled", Policy{Method: Priority}, []Candidate{down(drained(we)), down(ne), disabled(us)}, Request{},
			[]string{"northeurope"}, true, ""},
		{"fail-open to drained as a last resort", Policy{Method: Priority}, []Candidate{drained(we), down(drained(ne)), disabled(us)}, Request{},
			[]string{"westeurope", "northeurope"}, true, "~answering every enabled candidate, drained included"},
		{"all disabled: no answer", Policy{Method: Priority}, []Candidate{disabled(we), disabled(ne)}, Request{},
			[]string{}, false, "no enabled candidate"},
		{"no candidates", Policy{Method: Latency}, nil, Request{}, []string{}, false, "no enabled candidate"},

		// weighted
		{"weighted ignores priority", Policy{Method: Weighted}, []Candidate{c("a", 1, 10, 0), c("b", 2, 90, 0)}, Request{Rand: 190},
			[]string{"a", "b"}, false, "weighted 90/10 of [b a] -> a"},
		{"weighted rand 89", Policy{Method: Weighted}, []Candidate{c("a", 1, 10, 0), c("b", 2, 90, 0)}, Request{Rand: 89},
			[]string{"b", "a"}, false, ""},
		{"weighted: zero weight counts as 1", Policy{Method: Weighted}, []Candidate{c("a", 1, 0, 0), c("b", 1, 0, 0)}, Request{Rand: 1},
			[]string{"b", "a"}, false, "weighted 1/1 of [a b] -> b"},

		// latency
		{"latency band", Policy{Method: Latency, LatencyBand: 50 * ms},
			[]Candidate{c("a", 1, 50, 30*ms), c("b", 1, 50, 3*ms), c("c", 1, 50, 60*ms), c("d", 2, 50, ms)}, Request{Rand: 0},
			[]string{"b", "a", "c", "d"}, false,
			"priority 1 of [b a c]; latency band 50ms of fastest 3ms: [b a]; weighted 50/50 -> b"},
		{"latency band, other pick", Policy{Method: Latency, LatencyBand: 50 * ms},
			[]Candidate{c("a", 1, 50, 30*ms), c("b", 1, 50, 3*ms), c("c", 1, 50, 60*ms), c("d", 2, 50, ms)}, Request{Rand: 50},
			[]string{"a", "b", "c", "d"}, false, "~weighted 50/50 -> a"},
		{"latency band 0: fastest only", Policy{Method: Latency},
			[]Candidate{c("a", 1, 50, 30*ms), c("b", 1, 50, 3*ms)}, Request{Rand: 50},
			[]string{"b", "a"}, false, "priority 1 of [b a]; latency band 0ms of fastest 3ms: [b]"},
		{"latency: priority first", Policy{Method: Latency, LatencyBand: 50 * ms}, []Candidate{c("a", 1, 50, 100*ms), c("b", 2, 50, ms)}, Request{},
			[]string{"a", "b"}, false, "priority 1 of [a]; latency band 50ms of fastest 100ms: [a]"},
		{"latency: unknown rtt outside the band", Policy{Method: Latency, LatencyBand: time.Second},
			[]Candidate{c("a", 1, 50, 0), c("b", 1, 50, 5*ms)}, Request{},
			[]string{"b", "a"}, false, "~fastest 5ms: [b]"},
		{"latency: no rtt known", Policy{Method: Latency}, []Candidate{c("a", 1, 50, 0), c("b", 1, 50, 0)}, Request{Rand: 99},
			[]string{"b", "a"}, false, "priority 1 of [a b]; no rtt known: [a b]; weighted 50/50 -> b"},
		{"latency: band edge inclusive", Policy{Method: Latency, LatencyBand: 10 * ms},
			[]Candidate{c("a", 1, 50, 13*ms), c("b", 1, 50, 3*ms)}, Request{Rand: 50},
			[]string{"a", "b"}, false, "~fastest 3ms: [b a]"},
		{"latency: tiers by rtt", Policy{Method: Latency},
			[]Candidate{c("a", 1, 50, 3*ms), c("b", 2, 50, 30*ms), c("c", 2, 50, 20*ms), c("d", 3, 50, ms)}, Request{},
			[]string{"a", "c", "b", "d"}, false, ""},

		// performance
		{"performance: longest prefix", Policy{Method: Performance}, []Candidate{ne, we, us}, Request{Client: client("10.1.2.3")},
			[]string{"westeurope", "northeurope", "eastus"}, false, "client 10.1.2.3 in 10.1.0.0/16 of westeurope"},
		{"performance: shorter prefix", Policy{Method: Performance}, []Candidate{ne, we, us}, Request{Client: client("10.9.2.3")},
			[]string{"northeurope", "westeurope", "eastus"}, false, "client 10.9.2.3 in 10.0.0.0/8 of northeurope"},
		{"performance: IPv4-mapped client", Policy{Method: Performance}, []Candidate{ne, we}, Request{Client: client("::ffff:10.1.2.3")},
			[]string{"westeurope", "northeurope"}, false, "client 10.1.2.3 in 10.1.0.0/16 of westeurope"},
		{"performance: nearest not eligible", Policy{Method: Performance}, []Candidate{ne, down(we), us}, Request{Client: client("10.1.2.3")},
			[]string{"northeurope", "eastus"}, false, "client 10.1.2.3 nearest westeurope not eligible; in 10.0.0.0/8 of northeurope"},
		{"performance: IPv6 /128 beats /64", Policy{Method: Performance},
			[]Candidate{withNets(c("a", 1, 50, 0), "2001:db8::/64"), withNets(c("b", 1, 50, 0), "2001:db8::7/128")}, Request{Client: client("2001:db8::7")},
			[]string{"b", "a"}, false, "client 2001:db8::7 in 2001:db8::7/128 of b"},
		{"performance: no match, lowest rtt", Policy{Method: Performance}, []Candidate{us, ne, we}, Request{Client: client("198.51.100.7")},
			[]string{"westeurope", "northeurope", "eastus"}, false, "client 198.51.100.7 in no listed network; lowest rtt 3ms: westeurope"},
		{"performance: no client, no rtt", Policy{Method: Performance}, []Candidate{c("b", 2, 50, 0), c("a", 1, 50, 0)}, Request{},
			[]string{"a", "b"}, false, "client unknown in no listed network; no rtt known; priority 1: a"},

		// geographic
		{"geographic: single region", Policy{Method: Geographic}, []Candidate{ne, we, us}, Request{Geo: "GB"},
			[]string{"westeurope"}, false, "geo GB: [westeurope]; priority 1 of [westeurope]"},
		{"geographic: several regions", Policy{Method: Geographic}, []Candidate{ne, we, us}, Request{Geo: "EU"},
			[]string{"westeurope", "northeurope"}, false, "geo EU: [northeurope westeurope]; priority 1 of [westeurope]"},
		{"geographic: WORLD default", Policy{Method: Geographic}, []Candidate{ne, we, us}, Request{Geo: "FR"},
			[]string{"eastus"}, false, "geo FR not listed; WORLD: [eastus]; priority 3 of [eastus]"},
		{"geographic: unknown geo", Policy{Method: Geographic}, []Candidate{ne, we, us}, Request{},
			[]string{"eastus"}, false, "~geo unknown not listed; WORLD"},
		{"geographic: no answer", Policy{Method: Geographic}, []Candidate{ne, we}, Request{Geo: "FR"},
			[]string{}, false, "no region serves geo FR"},
		{"geographic: unhealthy region answered anyway", Policy{Method: Geographic}, []Candidate{ne, down(we), us}, Request{Geo: "GB"},
			[]string{"westeurope"}, true, "geo GB: [westeurope]; fail-open: no eligible candidate in the geo, answering it anyway; priority 1 of [westeurope]"},
		{"geographic: unhealthy among several", Policy{Method: Geographic}, []Candidate{ne, down(we), us}, Request{Geo: "EU"},
			[]string{"northeurope"}, false, ""},
		{"geographic: disabled region falls to WORLD", Policy{Method: Geographic}, []Candidate{ne, disabled(we), us}, Request{Geo: "GB"},
			[]string{"eastus"}, false, ""},

		// multivalue
		{"multivalue", Policy{Method: MultiValue, MaxRecords: 2}, []Candidate{c("c", 2, 50, 0), c("a", 1, 10, 0), c("b", 1, 90, 0)}, Request{Rand: 95},
			[]string{"a", "b"}, false, "priority 1 of [b a]; weighted 90/10 -> a; 2 of 3 records (max 2): [a b]"},
		{"multivalue unbounded, unhealthy left out", Policy{Method: MultiValue}, []Candidate{c("c", 2, 50, 0), c("a", 1, 10, 0, "down"), c("b", 1, 90, 0)}, Request{},
			[]string{"b", "c"}, false, "priority 1 of [b]; 2 of 2 records: [b c]"},

		// affinity
		{"affinity holds while healthy", Policy{Method: Latency, LatencyBand: 50 * ms}, []Candidate{we, ne}, Request{Affinity: "northeurope"},
			[]string{"northeurope", "westeurope"}, false, "affinity northeurope; otherwise priority 1 of [westeurope]; latency band 50ms of fastest 3ms: [westeurope]"},
		{"affinity dropped when unhealthy", Policy{Method: Latency}, []Candidate{we, down(ne)}, Request{Affinity: "northeurope"},
			[]string{"westeurope"}, false, "~; affinity northeurope not eligible"},
		{"affinity dropped when drained", Policy{Method: Priority}, []Candidate{we, drained(ne)}, Request{Affinity: "northeurope"},
			[]string{"westeurope"}, false, "~affinity northeurope not eligible"},
		{"affinity to an unknown region", Policy{Method: Priority}, []Candidate{we, ne}, Request{Affinity: "mars"},
			[]string{"westeurope", "northeurope"}, false, "~affinity mars not eligible"},
		{"affinity within fail-open", Policy{Method: Priority}, []Candidate{down(we), down(ne)}, Request{Affinity: "northeurope"},
			[]string{"northeurope", "westeurope"}, true, "~; affinity northeurope; otherwise priority 1"},
		{"affinity does not cross geos", Policy{Method: Geographic}, []Candidate{we, ne, us}, Request{Geo: "US", Affinity: "westeurope"},
			[]string{"eastus"}, false, "~affinity westeurope not eligible"},
		{"affinity with multivalue", Policy{Method: MultiValue, MaxRecords: 1}, []Candidate{we, ne}, Request{Affinity: "northeurope"},
			[]string{"northeurope"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cands := slices.Clone(tt.cands)
			d := Decide(tt.policy, cands, tt.req)
			if got := names(cands, d.Order); !slices.Equal(got, tt.want) {
				t.Errorf("order %v, want %v (reason %q)", got, tt.want, d.Reason)
			}
			if d.FailOpen != tt.failOpen {
				t.Errorf("FailOpen %v, want %v", d.FailOpen, tt.failOpen)
			}
			want := tt.policy.Method
			if want == "" || want == "fastest" {
				want = Priority
			}
			if d.Method != want {
				t.Errorf("method %q, want %q", d.Method, want)
			}
			switch {
			case tt.reason == "":
			case strings.HasPrefix(tt.reason, "~"):
				if !strings.Contains(d.Reason, tt.reason[1:]) {
					t.Errorf("reason %q does not contain %q", d.Reason, tt.reason[1:])
				}
			case d.Reason != tt.reason:
				t.Errorf("reason %q\n           want %q", d.Reason, tt.reason)
			}
			if !slices.EqualFunc(cands, tt.cands, func(x, y Candidate) bool {
				return x.Name == y.Name && x.Healthy == y.Healthy && x.Priority == y.Priority && x.RTT == y.RTT
			}) {
				t.Error("Decide modified its candidates")
			}
			if len(d.Order) > 0 && d.Target() != d.Order[0] || len(d.Order) == 0 && d.Target() != -1 {
				t.Errorf("Target() = %d with order %v", d.Target(), d.Order)
			}
		})
	}
}

func TestWeightedDistribution(t *testing.T) {
	cands := []Candidate{c("a", 1, 70, 0), c("b", 1, 30, 0), c("c", 2, 100, 0)}
	for _, m := range []Method{Priority, Latency, MultiValue} {
		t.Run(string(m), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			counts := map[string]int{}
			const n = 10000
			for range n {
				d := Decide(Policy{Method: m, LatencyBand: 50 * ms}, cands, Request{Rand: rng.Uint64()})
				counts[cands[d.Order[0]].Name]++
			}
			if share := float64(counts["a"]) / n; share < 0.68 || share > 0.72 {
				t.Errorf("a got %.1f%% (%v), want 70%% ± 2", 100*share, counts)
			}
			if counts["c"] != 0 {
				t.Errorf("lower priority chosen %d times", counts["c"])
			}
		})
	}
	// A counter gives an exact weighted round robin.
	counts := map[string]int{}
	for r := range uint64(100) {
		d := Decide(Policy{Method: Weighted}, cands[:2], Request{Rand: r})
		counts[cands[d.Order[0]].Name]++
	}
	if counts["a"] != 70 || counts["b"] != 30 {
		t.Errorf("counter 0..99: %v, want a:70 b:30", counts)
	}
}

func TestExplain(t *testing.T) {
	cands := []Candidate{c("westeurope", 1, 50, 3*ms), c("northeurope", 1, 50, 9*ms), c("eastus", 2, 50, 80*ms)}
	d := Decide(Policy{Method: Latency, LatencyBand: 50 * ms}, cands, Request{Rand: 0})
	want := `target=westeurope method=latency fallbacks=northeurope,eastus reason="priority 1 of [westeurope northeurope]; latency band 50ms of fastest 3ms: [westeurope northeurope]; weighted 50/50 -> westeurope"`
	if got := d.Explain(cands); got != want {
		t.Errorf("Explain:\n got %s\nwant %s", got, want)
	}
	for i := range cands {
		cands[i].Healthy = false
	}
	d = Decide(Policy{Method: Priority}, cands[2:], Request{})
	if got := d.Explain(cands[2:]); !strings.HasPrefix(got, `target=eastus method=priority fail_open=true reason="fail-open: `) {
		t.Errorf("fail-open Explain: %s", got)
	}
	d = Decide(Policy{Method: Geographic}, cands, Request{Geo: "FR"})
	if got := d.Explain(cands); got != `target=none method=geographic reason="no region serves geo FR"` {
		t.Errorf("empty Explain: %s", got)
	}
	// Printable ASCII whatever the names, and robust to a stale slice.
	weird := []Candidate{c("répartition\n", 1, 50, 0)}
	d = Decide(Policy{}, weird, Request{})
	if got := (Decision{Order: []int{0, 5}, Method: Priority, Reason: d.Reason}).Explain(weird); strings.ContainsAny(got, "\n\r") || !strings.Contains(got, "fallbacks=#5") {
		t.Errorf("Explain not header-safe: %q", got)
	}
}

func TestAppendDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ms", 50 * ms: "50ms", 3200 * time.Microsecond: "3.2ms", 125 * time.Microsecond: "0.125ms",
		1500 * ms: "1500ms", 10*ms + 50*time.Microsecond: "10.05ms", 999: "0ms", -2 * ms: "-2ms",
	} {
		if got := string(appendDuration(nil, d)); got != want {
			t.Errorf("appendDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestPolicy(t *testing.T) {
	if err := (Policy{Method: Latency, LatencyBand: 50 * ms}).Validate(); err != nil {
		t.Errorf("valid policy: %v", err)
	}
	if err := (Policy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
	err := Policy{Method: "fastest", LatencyBand: -1, MaxRecords: -1}.Validate()
	for _, w := range []string{`method: unknown method "fastest"`, "latencyBand: must not be negative, got -1ns", "maxRecords: must not be negative, got -1"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
	for _, m := range Methods {
		if got, err := ParseMethod(string(m)); got != m || err != nil {
			t.Errorf("ParseMethod(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMethod("round-robin"); err == nil || !strings.Contains(err.Error(), `unknown method "round-robin"`) {
		t.Errorf("ParseMethod(round-robin): %v", err)
	}
}

func TestManyCandidates(t *testing.T) {
	// More candidates than the scratch arrays hold.
	var cands []Candidate
	for i := range 40 {
		cd := c(string(rune('A'+i)), 1+i%5, 10+i, time.Duration(40-i)*ms)
		cd.Networks = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)}
		cands = append(cands, cd)
	}
	for _, m := range Methods {
		d := Decide(Policy{Method: m}, cands, Request{Client: netip.MustParseAddr("10.33.1.1"), Rand: 7})
		if m == Geographic {
			if len(d.Order) != 0 {
				t.Errorf("%s: order %v, want none", m, d.Order)
			}
			continue
		}
		seen := map[int]bool{}
		for _, i := range d.Order {
			seen[i] = true
		}
		if len(d.Order) != 40 || len(seen) != 40 {
			t.Errorf("%s: order has %d entries, %d distinct, want 40", m, len(d.Order), len(seen))
		}
		if m == Performance && cands[d.Order[0]].Name != cands[33].Name {
			t.Errorf("performance chose %s, want %s", cands[d.Order[0]].Name, cands[33].Name)
		}
	}
}

var sink Decision

func BenchmarkDecide(b *testing.B) {
	cands := []Candidate{
		withNets(withGeo(c("westeurope", 1, 50, 3*ms), "EU", "GB"), "10.1.0.0/16"),
		withNets(withGeo(c("northeurope", 1, 50, 9*ms), "EU"), "10.2.0.0/16"),
		withNets(withGeo(c("eastus", 2, 50, 80*ms), "US", World), "10.3.0.0/16"),
	}
	req := Request{Client: netip.MustParseAddr("10.2.3.4"), Geo: "EU", Affinity: "northeurope"}
	for _, m := range Methods {
		b.Run(string(m), func(b *testing.B) {
			p := Policy{Method: m, LatencyBand: 50 * ms, MaxRecords: 8}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				req.Rand = uint64(i)
				sink = Decide(p, cands, req)
			}
		})
	}
	b.Run("latency/8-candidates", func(b *testing.B) {
		var many []Candidate
		for i := range 8 {
			many = append(many, c(string(rune('a'+i)), 1+i%2, 50, time.Duration(3+i)*ms))
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = Decide(Policy{Method: Latency, LatencyBand: 50 * ms}, many, Request{Rand: uint64(i)})
		}
	})
	b.Run("latency+explain", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d := Decide(Policy{Method: Latency, LatencyBand: 50 * ms}, cands, Request{Rand: uint64(i)})
			_ = d.Explain(cands)
		}
	})
}

// TestRandSpan checks the memoization contract of Decision.RandSpan: Rand
// values equal mod RandSpan give identical decisions, and RandSpan is 0
// exactly when Rand cannot change the decision.
func TestRandSpan(t *testing.T) {
	cands := []Candidate{
		withGeo(c("a", 1, 30, 3*ms), "EU"),
		withGeo(c("b", 1, 70, 4*ms), "EU"),
		withGeo(c("c", 2, 50, 5*ms), "US"),
	}
	tests := []struct {
		p    Policy
		geo  string
		span uint64
	}{
		{Policy{Method: Priority}, "", 100},
		{Policy{Method: Weighted}, "", 150},
		{Policy{Method: Latency, LatencyBand: 50 * ms}, "", 100},
		{Policy{Method: Latency}, "", 0},
		{Policy{Method: Performance}, "", 0},
		{Policy{Method: Geographic}, "EU", 100},
		{Policy{Method: Geographic}, "US", 0},
		{Policy{Method: MultiValue}, "", 100},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(string(tt.p.Method)+"/"+tt.geo, func(t *testing.T) {
			seen := map[int]bool{}
			for range 200 {
				r := rng.Uint64()
				d := Decide(tt.p, cands, Request{Geo: tt.geo, Rand: r})
				if d.RandSpan != tt.span {
					t.Fatalf("RandSpan = %d, want %d", d.RandSpan, tt.span)
				}
				seen[d.Target()] = true
				if d.RandSpan == 0 {
					continue
				}
				m := Decide(tt.p, cands, Request{Geo: tt.geo, Rand: r % d.RandSpan})
				if !slices.Equal(d.Order, m.Order) || d.Reason != m.Reason || d.FailOpen != m.FailOpen {
					t.Fatalf("Rand %d and %d (mod %d) differ: %v %q vs %v %q", r, r%d.RandSpan, d.RandSpan, d.Order, d.Reason, m.Order, m.Reason)
				}
			}
			if tt.span == 0 && len(seen) != 1 {
				t.Errorf("RandSpan 0 but Rand changed the target: %v", seen)
			}
		})
	}
}
