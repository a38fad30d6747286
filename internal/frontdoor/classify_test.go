package frontdoor

import (
	"crypto/tls"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestListenersForwardAlike: the plain listener (the lean parser) and the
// TLS listener (net/http) classify request fields with the same function,
// so a region sees the same fields from both, X-Forwarded-Proto aside.
func TestListenersForwardAlike(t *testing.T) {
	we := newBackend(t, "westeurope")
	srvTLS, roots := testCA(t)
	fd := start(t, Config{Topology: topo(nil, "westeurope"), Origins: []Origin{we.origin()}, ListenTLS: "127.0.0.1:0", TLS: srvTLS})
	fd.waitHealthy(t, "westeurope")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr.CloseIdleConnections()
	clients := map[string]*http.Client{
		"http://" + fd.Addr():     client(5 * time.Second),
		"https://" + fd.TLSAddr(): {Transport: tr, Timeout: 5 * time.Second},
	}
	seen := map[string]http.Header{}
	for base, c := range clients {
		req, _ := http.NewRequest("GET", base+"/orders", nil)
		req.Host = "app.contoso.test"
		h := req.Header
		h["X-Forwarded-For"] = []string{"192.0.2.7", "192.0.2.8"}
		h.Set("X-Forwarded-Host", "forged")
		h.Set("X-Forwarded-Proto", "forged")
		h.Set(HeaderFDID, "forged")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "hop")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Trailer", "X-T")
		h.Set(HeaderDebug, "1")
		h.Set(HeaderIdempotencyKey, "k1")
		h.Set("Cookie", "a=b")
		h.Set("X-End", "passes")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(HeaderRoute) == "" {
			t.Fatalf("%s: %d, route %q", base, resp.StatusCode, resp.Header.Get(HeaderRoute))
		}
		got := we.lastRequest().header
		if want := map[bool]string{true: "https", false: "http"}[base[4] == 's']; got.Get("X-Forwarded-Proto") != want {
			t.Errorf("%s: X-Forwarded-Proto %q, want %q", base, got.Get("X-Forwarded-Proto"), want)
		}
		got.Del("X-Forwarded-Proto")
		seen[base] = got
	}
	var first http.Header
	for _, base := range slices.Sorted(maps.Keys(seen)) {
		h := seen[base]
		for name, want := range map[string]string{
			"X-Forwarded-For": "192.0.2.7, 192.0.2.8, 127.0.0.1", "X-Forwarded-Host": "app.contoso.test", HeaderFDID: "fdid-test",
			"X-Hop": "", "Keep-Alive": "", "Proxy-Connection": "", "Trailer": "", "Connection": "", HeaderDebug: "",
			HeaderIdempotencyKey: "k1", "Cookie": "a=b", "X-End": "passes",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: the region saw %s %q, want %q", base, name, got, want)
			}
		}
		if first == nil {
			first = h
		} else if !maps.EqualFunc(first, h, slices.Equal) {
			t.Errorf("the listeners forward different fields:\n%v\n%v", first, h)
		}
	}
}
