package frontdoor

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// raw sends bytes on a new TCP connection and returns the status code and
// body of the first final response ("" when there was none).
func raw(t *testing.T, addr, payload string) (string, string) {
	t.Helper()
	out := exchange(t, addr, payload)
	if len(out) == 0 {
		return "", "no response"
	}
	return strconv.Itoa(out[0].status), out[0].body
}

// TestMalformedRequests: requests that are not valid HTTP/1.1 are
// answered by the front door and never reach a region.
func TestMalformedRequests(t *testing.T) {
	we := newBackend(t, "westeurope")
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Limits.MaxHeaderBytes = 4096
		t.FrontDoor.Limits.MaxBodyBytes = 1 << 20
	}, "westeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin()}})
	fd.waitHealthy(t, "westeurope")
	big := strings.Repeat("a", 5000)
	cases := []struct{ name, req, want string }{
		{"bad request line", "GARBAGE\r\n\r\n", "400"},
		{"two spaces in request line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"no version", "GET /\r\nHost: x\r\n\r\n", "400"},
		{"bad version", "GET / HTTP/1.x\r\nHost: x\r\n\r\n", "400"},
		{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"},
		{"control character in target", "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"target not origin-form", "GET foo HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"oversized header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", "431"},
		{"oversized request line", "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", "431"},
		{"many headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 0123456789\r\n", 300) + "\r\n", "431"},
		{"invalid Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400"},
		{"negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "400"},
		{"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", "400"},
		{"conflicting Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "400"},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "400"},
		{"Transfer-Encoding twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
		{"bogus Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "400"},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400"},
		{"obsolete line folding", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", "400"},
		{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", "400"},
		{"control character in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "400"},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", "400"},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", "400"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"body over the limit", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\nabc", "413"},
		{"chunked body over the limit", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("8000\r\n"+strings.Repeat("z", 0x8000)+"\r\n", 40) + "0\r\n\r\n", "413"},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "400"},
		{"unsupported Expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", "417"},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "501"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := raw(t, fd.Addr(), tc.req)
			if !strings.HasPrefix(status, tc.want) {
				t.Errorf("status %q (%s), want %s", status, body, tc.want)
			}
		})
	}
	if n := we.hits.Load(); n != 0 {
		t.Errorf("the region saw %d malformed requests, want 0", n)
	}
	if v := metric(t, fd.reg, "geostamp_frontdoor_rejected_total", "reason", "malformed"); v == 0 {
		t.Errorf("rejected_total{reason=malformed} = 0")
	}
	// A valid request on the same listener still works.
	if status, body := raw(t, fd.Addr(), "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "200") {
		t.Errorf("valid request: %q %q", status, body)
	}
}

// TestHTTP1Forms covers framing: chunked bodies both ways, HTTP/1.0,
// pipelining, Expect: 100-continue, HEAD, streaming beyond the replay limit.
func TestHTTP1Forms(t *testing.T) {
	we := newBackend(t, "westeurope")
	we.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part1-"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "/echo":
			fmt.Fprintf(w, "%s %d %s", r.Method, len(b), r.Header.Get("X-Custom"))
		default:
			w.Write([]byte("ok"))
		}
	})
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Limits.MaxBodyBytes = 8 << 20
		t.FrontDoor.Retry.PerTryTimeout = topology.Duration(3 * time.Second) // a loaded -race run reads 3 MiB slowly
	}, "westeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin()}, ReplayLimit: 64 << 10})
	fd.waitHealthy(t, "westeurope")

	t.Run("chunked request, chunked response", func(t *testing.T) {
		status, body := raw(t, fd.Addr(), "POST /echo HTTP/1.1\r\nHost: x\r\nX-Custom: v\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n")
		if !strings.HasPrefix(status, "200") || body != "POST 5 v" {
			t.Errorf("%q %q", status, body)
		}
		status, body = raw(t, fd.Addr(), "GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(status, "200") || body != "part1-part2" {
			t.Errorf("%q %q", status, body)
		}
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		status, body := raw(t, fd.Addr(), "GET /chunked HTTP/1.0\r\n\r\n")
		if !strings.HasPrefix(status, "200") || body != "part1-part2" {
			t.Errorf("%q %q", status, body)
		}
	})
	t.Run("pipelining", func(t *testing.T) {
		conn, err := net.Dial("tcp", fd.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Custom: 1\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nX-Custom: 2\r\nContent-Length: 4\r\n\r\nbodyGET /echo HTTP/1.1\r\nHost: x\r\nX-Custom: 3\r\n\r\n")
		br := bufio.NewReader(conn)
		for i, want := range []string{"GET 0 1", "POST 4 2", "GET 0 3"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != want {
				t.Errorf("response %d: %q, want %q", i, b, want)
			}
		}
	})
	t.Run("Expect: 100-continue", func(t *testing.T) {
		conn, err := net.Dial("tcp", fd.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
		br := bufio.NewReader(conn)
		line, _ := br.ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("got %q before the body, want 100 Continue", line)
		}
		br.ReadString('\n')
		io.WriteString(conn, "abc")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "PUT 3 " {
			t.Errorf("%q", b)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		resp, err := client(time.Second).Head(fd.url("/echo"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != int64(len("HEAD 0 ")) {
			t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
		}
	})
	t.Run("streamed body beyond the replay limit", func(t *testing.T) {
		body := strings.Repeat("y", 3<<20)
		resp, err := client(5*time.Second).Post(fd.url("/echo"), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST %d ", len(body)); string(b) != want {
			t.Errorf("%q, want %q", b, want)
		}
		// Unknown length (chunked) beyond the limit.
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte(body)); pw.Close() }()
		resp, err = client(5*time.Second).Post(fd.url("/echo"), "text/plain", pr)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST %d ", len(body)); string(b) != want {
			t.Errorf("chunked: %q, want %q", b, want)
		}
	})
}

// TestForwardedHeaders: what the region sees and what the client gets.
func TestForwardedHeaders(t *testing.T) {
	we := newBackend(t, "westeurope")
	alog := &syncBuffer{}
	fd := start(t, Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, FDID: "the-fdid", AccessLog: alog})
	fd.waitHealthy(t, "westeurope")
	req, _ := http.NewRequest("GET", fd.url("/orders/7?x=1"), nil)
	req.Host = "app.contoso.test"
	req.Header.Set("X-Geostamp-FDID", "forged")
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must not pass")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("X-End", "passes")
	req.Header.Set(HeaderDebug, "1")
	resp, err := client(time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	got := we.lastRequest()
	wantHost := strings.TrimPrefix(we.srv.URL, "http://")
	checks := []struct{ what, got, want string }{
		{"request URI", got.uri, "/orders/7?x=1"},
		{"Host", got.host, wantHost},
		{"X-Geostamp-FDID", got.header.Get("X-Geostamp-FDID"), "the-fdid"},
		{"X-Forwarded-For", got.header.Get("X-Forwarded-For"), "192.0.2.7, 127.0.0.1"},
		{"X-Forwarded-Proto", got.header.Get("X-Forwarded-Proto"), "http"},
		{"X-Forwarded-Host", got.header.Get("X-Forwarded-Host"), "app.contoso.test"},
		{"X-Hop", got.header.Get("X-Hop"), ""},
		{"Keep-Alive", got.header.Get("Keep-Alive"), ""},
		{"X-Geostamp-Debug", got.header.Get(HeaderDebug), ""},
		{"X-End", got.header.Get("X-End"), "passes"},
		{"response X-Geostamp-Region", resp.Header.Get(HeaderRegion), "westeurope"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if route := resp.Header.Get(HeaderRoute); !strings.HasPrefix(route, "target=westeurope method=latency") || !strings.Contains(route, "tries=westeurope:200") {
		t.Errorf("X-Geostamp-Route = %q", route)
	}
	var line map[string]any
	first, _, _ := strings.Cut(alog.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("access log line %q: %v", first, err)
	}
	if line["status"] != 200.0 || line["region"] != "westeurope" || line["uri"] != "/orders/7?x=1" || line["method"] != "GET" {
		t.Errorf("access log line %v", line)
	}
}

// TestConcurrencyLimit: beyond MaxConcurrent, requests get an immediate
// 503 with Retry-After: it never reaches a region and comes while the
// first request is still held. The only wait such a request could make is
// on a region, which the per-try timeout ends; so the bound is that
// timeout (5s, the margin is all of it), not a guess at machine speed.
func TestConcurrencyLimit(t *testing.T) {
	we := newBackend(t, "westeurope")
	hold := make(chan struct{})
	we.setHandler(func(w http.ResponseWriter, r *http.Request) { <-hold })
	perTry := 5 * time.Second
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Limits.MaxConcurrent = 1
		t.FrontDoor.Retry.PerTryTimeout = topology.Duration(perTry)
	}, "westeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin()}})
	fd.waitHealthy(t, "westeurope")
	done := make(chan int, 1)
	go func() {
		code, _, _ := get(t, client(2*perTry), fd.url("/slow"))
		done <- code
	}()
	waitFor(t, "the first request in flight", 5*time.Second, func() bool { return we.hits.Load() == 1 })
	t0 := time.Now()
	resp, err := client(2 * perTry).Get(fd.url("/second"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(t0)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request: %d Retry-After=%q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	select {
	case code := <-done:
		t.Errorf("the first request ended (%d) before the second was shed", code)
	default:
	}
	if n := we.hits.Load(); n != 1 {
		t.Errorf("the region saw %d requests, want 1: the shed request must not reach it", n)
	}
	if took >= perTry {
		t.Errorf("the 503 took %s, as long as a wait on the region (per-try timeout %s)", took, perTry)
	}
	close(hold)
	if code := <-done; code != 200 {
		t.Errorf("first request: %d", code)
	}
}

func TestAdminAPI(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	base := "http://" + fd.AdminAddr()
	for _, auth := range []string{"", "Bearer wrong", "Basic " + testToken} {
		for _, path := range []string{"/admin/origins", "/metrics", "/debug/pprof/"} {
			req, _ := http.NewRequest("GET", base+path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := client(time.Second).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("GET %s with %q: %d, want 401", path, auth, resp.StatusCode)
			}
		}
	}
	req, _ := http.NewRequest("POST", base+"/admin/origins/westeurope", strings.NewReader(`{"drained":true}`))
	if resp, err := client(time.Second).Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("POST without token: %v %v", resp, err)
	}
	if fd.snap.Load().settings[0].Drained {
		t.Error("a POST without token changed the region")
	}

	code, b := admin(t, fd, "GET", "/admin/origins", "")
	var st Status
	if err := json.Unmarshal(b, &st); code != 200 || err != nil {
		t.Fatalf("GET /admin/origins: %d %v\n%s", code, err, b)
	}
	if st.POP != "pop" || st.Routing != "latency" || len(st.Origins) != 2 {
		t.Fatalf("status %+v", st)
	}
	o := st.Origins[0]
	if o.Name != "westeurope" || o.Priority != 1 || o.Weight != 50 || !o.Enabled || o.Drained || !o.Eligible ||
		o.URL != we.srv.URL || o.Health.Status != "healthy" || len(o.Health.History) == 0 || o.Health.History[0].To != "healthy" {
		t.Errorf("origin %+v", o)
	}
	for _, key := range []string{`"name"`, `"url"`, `"priority"`, `"weight"`, `"enabled"`, `"drained"`, `"eligible"`, `"health"`, `"history"`, `"rtt"`, `"fail_open"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("GET /admin/origins lacks %s", key)
		}
	}

	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/admin/origins/westeurope", `{"weight":7,"priority":3}`, 200, `"weight": 7`},
		{"/admin/origins/westeurope", `{"weight":0}`, 400, "weight: must be between 1 and 1000"},
		{"/admin/origins/westeurope", `{"priority":9}`, 400, "priority: must be between 1 and 5"},
		{"/admin/origins/westeurope", `{"wieght":7}`, 400, "unknown field"},
		{"/admin/origins/westeurope", `not json`, 400, "want a JSON object"},
		{"/admin/origins/mars", `{"drained":true}`, 404, "unknown region"},
	} {
		code, b := admin(t, fd, "POST", tc.path, tc.body)
		if code != tc.code || !strings.Contains(string(b), tc.msg) {
			t.Errorf("POST %s %s: %d %s; want %d containing %q", tc.path, tc.body, code, b, tc.code, tc.msg)
		}
	}
	code, b = admin(t, fd, "GET", "/admin/health", "")
	var states []map[string]any
	if err := json.Unmarshal(b, &states); code != 200 || err != nil || len(states) != 2 || states[0]["name"] != "westeurope" {
		t.Errorf("GET /admin/health: %d %v %s", code, err, b)
	}
	get(t, client(time.Second), fd.url("/"))
	code, b = admin(t, fd, "GET", "/metrics", "")
	for _, name := range []string{"geostamp_frontdoor_requests_total", "geostamp_frontdoor_request_duration_seconds", "geostamp_frontdoor_origin_healthy",
		"geostamp_frontdoor_retries_total", "geostamp_frontdoor_fail_open", "geostamp_frontdoor_ejections_total", "geostamp_frontdoor_retry_budget_exhausted_total"} {
		if code != 200 || !strings.Contains(string(b), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz without token: %v %v", resp, err)
	}
}

// testCA makes a CA and a certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "geostamp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "front door"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestTLSAndHTTP2(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	srvTLS, roots := testCA(t)
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()},
		ListenTLS: "127.0.0.1:0", TLS: srvTLS})
	fd.waitHealthy(t, "westeurope", "northeurope")
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, _ := http.NewRequest("POST", "https://"+fd.TLSAddr()+"/orders", strings.NewReader(`{"item":"book"}`))
		req.Header.Set(HeaderDebug, "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if resp.ProtoMajor != wantMajor || resp.StatusCode != 200 || resp.Header.Get(HeaderRegion) != "westeurope" || string(b) != "hello from westeurope\n" {
			t.Errorf("h2=%v: proto %s status %d region %q body %q", h2, resp.Proto, resp.StatusCode, resp.Header.Get(HeaderRegion), b)
		}
		if resp.Header.Get(HeaderRoute) == "" {
			t.Errorf("h2=%v: no route header", h2)
		}
		got := we.lastRequest()
		if got.header.Get("X-Forwarded-Proto") != "https" || string(got.body) != `{"item":"book"}` || got.header.Get(HeaderFDID) != "fdid-test" {
			t.Errorf("h2=%v: region saw proto %q body %q fdid %q", h2, got.header.Get("X-Forwarded-Proto"), got.body, got.header.Get(HeaderFDID))
		}
		tr.CloseIdleConnections()
	}
	// HTTP/2 failover works the same: the region dies, the client sees 200.
	we.kill()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + fd.TLSAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(HeaderRegion) != "northeurope" || resp.ProtoMajor != 2 {
		t.Errorf("after the kill over h2: %d from %q (%s)", resp.StatusCode, resp.Header.Get(HeaderRegion), resp.Proto)
	}
}

func TestNewValidates(t *testing.T) {
	tp := topo(nil, "westeurope", "northeurope")
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no topology", Config{}, []string{"topology: required"}},
		{"everything wrong", Config{Topology: tp, Origins: []Origin{{Name: "mars", URL: "http://x"}, {Name: "westeurope", URL: "ftp://x"}},
			Listen: "nope", ListenTLS: "127.0.0.1:0", AdminListen: "127.0.0.1:0"},
			[]string{`origins[0].name: "mars" is not a region`, `origins[westeurope]: "ftp://x" must be an http:// or https:// URL`,
				"origins[northeurope]: required", `listen: "nope" is not host:port`, "tls: listenTLS needs a certificate", "adminToken: required"}},
		{"origins from the topology", Config{Topology: tp, Listen: "127.0.0.1:0"}, []string{"topology.regions[0].origin: required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// New has no side effects and Run runs once.
	we := newBackend(t, "westeurope")
	f, err := New(Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Addr() != "" || we.probes.Load() != 0 {
		t.Error("New listened or probed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	<-f.Ready()
	if err := f.Run(ctx); err != ErrRunning {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRunStopsRightAfterReady: cancelling as soon as Ready is closed (before
// the accept loops run) still stops Run.
func TestRunStopsRightAfterReady(t *testing.T) {
	we := newBackend(t, "westeurope")
	srvTLS, _ := testCA(t)
	for range 20 {
		f, err := New(Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, Listen: "127.0.0.1:0",
			ListenTLS: "127.0.0.1:0", TLS: srvTLS, AdminListen: "127.0.0.1:0", AdminToken: testToken})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		<-f.Ready()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}
