package drill

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/testenv"
)

// TestDNSClientsRespectTheTTL: the authoritative answer moves from one
// address to another at 0.5 s; with a TTL of 1 s the simulated clients
// keep the old answer until their cache expires, so the last operation
// served by the old address comes between TTL − TTL/clients − one client's
// send interval and TTL after the change, and none later.
func TestDNSClientsRespectTheTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("2.5 s of real time")
	}
	// Two "regions" on 127.0.0.1 and 127.0.0.2, on one port.
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(lnA.Addr().(*net.TCPAddr).Port)
	lnB, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		lnA.Close()
		testenv.Skip(t, "LOOPBACK", "127.0.0.2:%s: %v (needs the whole 127/8 on loopback, as on Linux)", port, err)
	}
	serve := func(ln net.Listener, region string) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderRegion, region)
			w.Write([]byte(`{"orders":[]}`))
		})}
		go srv.Serve(ln)
		return srv
	}
	defer serve(lnA, "a").Close()
	defer serve(lnB, "b").Close()

	t0 := time.Now()
	const change = 500 * time.Millisecond
	var queries atomic.Int64
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		ip := net.ParseIP("127.0.0.1")
		if time.Since(t0) >= change {
			ip = net.ParseIP("127.0.0.2")
		}
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: ip})
		w.WriteMsg(m)
	})}
	go ds.ActivateAndServe()
	defer ds.Shutdown()

	var buf bytes.Buffer
	w := NewWriter(&buf)
	const rate, clients = 200.0, 10
	gen, err := NewLoadGenerator(LoadConfig{Rate: rate, Duration: 2500 * time.Millisecond, RunID: "dns", DNSClients: clients, ReadShare: 1,
		Streams: []fault.Stream{{Path: fault.PathDNS, Conn: fault.ConnPooled}, {Path: fault.PathDNS, Conn: fault.ConnFresh}}},
		Targets{DNSServer: pc.LocalAddr().String(), DNSName: "app.test.", IngressPort: port}, w, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	gen.Run(context.Background())
	w.Flush()
	h, err := ReadHistory(bytes.NewReader(append([]byte(`{"type":"run","version":1,"scenario":"dns","rate":200,"started":"2025-03-01T12:00:00Z","load_start":0,"objectives":{"rto_seconds":1,"rpo_seconds":0,"availability_percent":0}}`+"\n"), buf.Bytes()...)))
	if err != nil {
		t.Fatal(err)
	}
	var lastA time.Duration
	for _, o := range h.Ops {
		if o.Outcome != OK || o.Path != PathDNS || o.Addr == "" {
			t.Fatalf("op %+v", o)
		}
		if o.Region == "a" {
			lastA = max(lastA, time.Duration(o.Sent))
		}
	}
	// One client's operations come in pairs (one per stream), clients ×
	// streams / rate apart.
	const streams = 2
	interval := time.Duration(float64(clients*streams) / rate * float64(time.Second))
	lower := change + time.Second - time.Second/clients - interval
	upper := change + time.Second + 50*time.Millisecond // + the query's own time
	t.Logf("last operation on the old answer sent at %s (bounds %s, %s); %d queries", lastA, lower, upper, queries.Load())
	if lastA < lower || lastA > upper {
		t.Errorf("last operation on the old answer at %s, want within [%s, %s]", lastA, lower, upper)
	}
	// Each client asks about once per TTL, not once per operation.
	if q := queries.Load(); q > 4*clients {
		t.Errorf("%d DNS queries for %d clients over 2.5 TTLs: the answers are not cached", q, clients)
	}
}
