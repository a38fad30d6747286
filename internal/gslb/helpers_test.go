package gslb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/topology"
)

const testToken = "s3cret"

// stamp is an in-test health endpoint: 200 while up, 503 while down, and
// connection refused once stopped.
type stamp struct {
	srv     *httptest.Server
	up      atomic.Bool
	hang    atomic.Bool   // requests get no answer until the test ends
	release chan struct{} // closed when the test ends
}

func newStamp(t *testing.T) *stamp {
	t.Helper()
	st := &stamp{release: make(chan struct{})}
	st.up.Store(true)
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st.hang.Load() {
			select {
			case <-st.release:
			case <-r.Context().Done():
			}
			return
		}
		if !st.up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(st.srv.Close)
	t.Cleanup(func() { close(st.release) }) // runs first: unblock hung requests
	return st
}

func (st *stamp) url() string { return st.srv.URL + "/health/stamp" }

// parseTopo parses a topology file body with defaults and validation.
func parseTopo(t testing.TB, y string) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse([]byte(y))
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	return topo
}

// twoRegions is the topology of most tests: two regions with IPv4 and
// IPv6 addresses, networks and geos, fast probes.
func twoRegions(routing string) string {
	return `
name: test
regions:
  - {name: westeurope, priority: 1, weight: 50, geo: [GB], networks: [10.1.0.0/16], address6: "fd00::1"}
  - {name: northeurope, priority: 2, weight: 50, geo: [IE, WORLD], networks: [10.2.0.0/16]}
geoip: {10.1.0.0/16: GB, 10.2.0.0/16: IE, 10.3.0.0/16: US, 10.4.0.0/16: FR}
gslb:
  zone: example.test.
  host: app
  ttl: 30s
  degradedTTL: 2s
  routing: ` + routing + `
  probe: {interval: 200ms, timeout: 100ms, toleratedFailures: 1}
`
}

type running struct {
	s     *Server
	addr  string
	admin string
}

// start runs a server for topo whose regions are probed at the stamps
// given by region name (regions without a stamp are probed at an address
// that refuses connections).
func start(t *testing.T, topo *topology.Topology, stamps map[string]*stamp, mutate ...func(*Config)) *running {
	t.Helper()
	urls := map[string]string{}
	for _, r := range topo.Regions {
		if st := stamps[r.Name]; st != nil {
			urls[r.Name] = st.url()
		} else {
			urls[r.Name] = "http://127.0.0.1:1/health/stamp"
		}
	}
	cfg := Config{
		Topology:    topo,
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		AdminToken:  testToken,
		ProbeURLs:   urls,
		Logger:      slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return 5s after its context ended")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready after 5s")
	}
	return &running{s: s, addr: s.Addr(), admin: s.AdminAddr()}
}

// tWriter sends logs to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitHealthy waits until the server has a verdict on every region and
// the given ones are healthy.
func (r *running) waitHealthy(t *testing.T, healthy ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok := true
		want := map[string]bool{}
		for _, h := range healthy {
			want[h] = true
		}
		for _, ts := range r.s.checker.States() {
			if ts.Status == "unknown" || ts.Healthy != want[ts.Name] {
				ok = false
			}
		}
		if ok && r.s.state.Load().healthy == len(healthy) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("regions not in the wanted state after 5s (want healthy %v): %+v", healthy, r.s.checker.States())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// msg builds a query; opts modify it.
func msg(name string, qtype uint16, opts ...func(*dns.Msg)) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	for _, o := range opts {
		o(m)
	}
	return m
}

func edns(size uint16) func(*dns.Msg) { return func(m *dns.Msg) { m.SetEdns0(size, false) } }

// ecs adds EDNS0 with a client subnet option.
func ecs(prefix string) func(*dns.Msg) {
	return func(m *dns.Msg) {
		p := netip.MustParsePrefix(prefix)
		o := m.IsEdns0()
		if o == nil {
			m.SetEdns0(1232, false)
			o = m.IsEdns0()
		}
		e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice())}
		if p.Addr().Is6() {
			e.Family = 2
		}
		o.Option = append(o.Option, e)
	}
}

// exchange sends m over net ("udp" or "tcp") and returns the response.
func exchange(t testing.TB, addr, netw string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", netw, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if r.Id != m.Id || !r.Response {
		t.Fatalf("response id %d (want %d), QR %v", r.Id, m.Id, r.Response)
	}
	return r
}

func ask(t testing.TB, addr string, name string, qtype uint16, opts ...func(*dns.Msg)) *dns.Msg {
	t.Helper()
	return exchange(t, addr, "udp", msg(name, qtype, opts...))
}

// addrs lists the A/AAAA addresses of an answer section.
func addrs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

// subnetOpt returns the ECS option of a response.
func subnetOpt(t testing.TB, r *dns.Msg) *dns.EDNS0_SUBNET {
	t.Helper()
	o := r.IsEdns0()
	if o == nil {
		t.Fatal("response has no OPT record")
	}
	for _, e := range o.Option {
		if s, ok := e.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	t.Fatal("response has no ECS option")
	return nil
}

// rawUDP sends a raw packet and returns the raw answer, or nil when none
// comes within wait.
func rawUDP(t testing.TB, addr string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func mustPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rcode(r *dns.Msg) string { return fmt.Sprintf("%s", dns.RcodeToString[r.Rcode]) }
