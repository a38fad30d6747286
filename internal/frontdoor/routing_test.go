package frontdoor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/topology"
)

// admin sends an admin API request with the test token.
func admin(t *testing.T, fd *started, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+fd.AdminAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := client(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// spread sends n GETs and counts the answering regions.
func spread(t *testing.T, fd *started, n int, hdr ...string) map[string]int {
	t.Helper()
	c := client(5 * time.Second)
	out := map[string]int{}
	for range n {
		code, region, _ := get(t, c, fd.url("/"), hdr...)
		if code != 200 {
			t.Fatalf("status %d from %q", code, region)
		}
		out[region]++
	}
	return out
}

func TestFailOpen(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	// Both health models fail, but both stamps still serve.
	we.health.Store(503)
	ne.health.Store(503)
	waitFor(t, "both unhealthy", 5*time.Second, func() bool {
		return !fd.Checker().Healthy("westeurope") && !fd.Checker().Healthy("northeurope")
	})
	fd.rebuild()
	got := spread(t, fd, 20, HeaderDebug, "1")
	if got["westeurope"]+got["northeurope"] != 20 {
		t.Fatalf("served %v; want every request answered while failing open", got)
	}
	req, _ := http.NewRequest("GET", fd.url("/"), nil)
	req.Header.Set(HeaderDebug, "1")
	resp, err := client(time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if route := resp.Header.Get(HeaderRoute); !strings.Contains(route, "fail_open=true") {
		t.Errorf("route header %q does not say fail_open=true", route)
	}
	if v := metric(t, fd.reg, "geostamp_frontdoor_fail_open"); v != 1 {
		t.Errorf("fail_open gauge = %v, want 1", v)
	}
	if v := metric(t, fd.reg, "geostamp_frontdoor_fail_open_requests_total"); v < 21 {
		t.Errorf("fail_open_requests_total = %v, want >= 21", v)
	}
	if !strings.Contains(fd.logs.String(), `"level":"WARN","msg":"routing fails open`) {
		t.Errorf("no warning logged for fail-open; logs:\n%s", fd.logs.String())
	}
	if code, b := admin(t, fd, "GET", "/admin/origins", ""); code != 200 || !bytes.Contains(b, []byte(`"fail_open": true`)) {
		t.Errorf("admin status %d %s; want fail_open true", code, b)
	}
	// Recovery clears the flag.
	we.health.Store(0)
	waitFor(t, "westeurope healthy again", 5*time.Second, func() bool { return fd.Checker().Healthy("westeurope") })
	fd.rebuild()
	if v := metric(t, fd.reg, "geostamp_frontdoor_fail_open"); v != 0 {
		t.Errorf("fail_open gauge = %v after recovery, want 0", v)
	}
}

func TestDrain(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	if got := spread(t, fd, 10); got["westeurope"] != 10 {
		t.Fatalf("before drain: %v, want all on westeurope (priority 1)", got)
	}
	if code, b := admin(t, fd, "POST", "/admin/origins/westeurope", `{"drained":true}`); code != 200 {
		t.Fatalf("drain: %d %s", code, b)
	}
	if got := spread(t, fd, 10); got["northeurope"] != 10 {
		t.Fatalf("drained: %v, want all on northeurope", got)
	}
	if code, b := admin(t, fd, "POST", "/admin/origins/westeurope", `{"drained":false}`); code != 200 {
		t.Fatalf("undrain: %d %s", code, b)
	}
	if got := spread(t, fd, 10); got["westeurope"] != 10 {
		t.Fatalf("undrained: %v, want all on westeurope", got)
	}
	// A disabled region gets nothing, even as a retry target.
	if code, b := admin(t, fd, "POST", "/admin/origins/northeurope", `{"enabled":false}`); code != 200 {
		t.Fatalf("disable: %d %s", code, b)
	}
	we.mode.Store(mode503)
	c := client(time.Second)
	if code, region, _ := get(t, c, fd.url("/")); code != 503 || region != "westeurope" {
		t.Errorf("with northeurope disabled: %d from %q; want westeurope's 503 (no retry target)", code, region)
	}
}

// TestRuntimeWeights: a weight change through the admin API applies to
// the very next request. The front door runs on a fake clock that never
// moves, so neither probes nor the periodic snapshot refresh (refreshEvery)
// run: the change can only reach requests through the admin API's own
// rebuild, before it answers. No wall-clock bound is needed. (Unprobed,
// routing fails open over both regions, by weight.)
func TestRuntimeWeights(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Routing = "weighted"
		t.Regions[0].Weight, t.Regions[1].Weight = 1000, 1
		t.Regions[1].Priority = 1
	}, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}, Clock: health.NewFakeClock(time.Unix(0, 0))})
	if got := spread(t, fd, 100); got["westeurope"] < 90 {
		t.Fatalf("weights 1000/1: %v, want nearly all on westeurope", got)
	}
	before := fd.snap.Load()
	admin(t, fd, "POST", "/admin/origins/westeurope", `{"weight":1}`)
	admin(t, fd, "POST", "/admin/origins/northeurope", `{"weight":1000}`)
	if s := fd.snap.Load(); s == before || s.settings[0].Weight != 1 || s.settings[1].Weight != 1000 {
		t.Fatalf("the snapshot after the admin calls has weights %d/%d, want 1/1000 at once", s.settings[0].Weight, s.settings[1].Weight)
	}
	if got := spread(t, fd, 100); got["northeurope"] < 90 {
		t.Fatalf("after changing weights to 1/1000: %v, want nearly all on northeurope", got)
	}
	code, b := admin(t, fd, "GET", "/admin/origins/northeurope", "")
	var st OriginStatus
	if err := json.Unmarshal(b, &st); code != 200 || err != nil || st.Weight != 1000 {
		t.Errorf("admin shows %d %+v (%v); want weight 1000", code, st, err)
	}
}

// TestLatencyBand: within the band both regions share traffic; outside it
// only the fastest serves.
func TestLatencyBand(t *testing.T) {
	for _, tc := range []struct {
		band     time.Duration
		wantBoth bool
	}{{20 * time.Millisecond, false}, {500 * time.Millisecond, true}} {
		t.Run(fmt.Sprint("band=", tc.band), func(t *testing.T) {
			slow, fast := newBackend(t, "westeurope"), newBackend(t, "northeurope")
			slow.hdelay.Store(int64(60 * time.Millisecond)) // probe RTT ~60ms
			tp := topo(func(t *topology.Topology) {
				t.FrontDoor.Routing = "latency"
				t.FrontDoor.LatencyBand = topology.Duration(tc.band)
				t.FrontDoor.Probe.Interval = topology.Duration(150 * time.Millisecond)
				t.FrontDoor.Probe.Timeout = topology.Duration(150 * time.Millisecond)
				t.Regions[1].Priority = 1
			}, "westeurope", "northeurope")
			fd := start(t, Config{Topology: tp, Origins: []Origin{slow.origin(), fast.origin()}})
			fd.waitHealthy(t, "westeurope", "northeurope")
			got := spread(t, fd, 60, HeaderDebug, "1")
			if both := got["westeurope"] > 0 && got["northeurope"] > 0; both != tc.wantBoth || got["northeurope"] == 0 {
				t.Errorf("rtt westeurope %s, northeurope %s, band %s: served %v",
					fd.Checker().RTT("westeurope"), fd.Checker().RTT("northeurope"), tc.band, got)
			}
		})
	}
}

// TestGeoPinning: the client's address (from X-Forwarded-For, since the
// peer is a trusted proxy) maps to a geo; the regions of that geo serve
// it, and the others only when none of them can.
func TestGeoPinning(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	edit := func(trusted []string) func(*topology.Topology) {
		return func(t *topology.Topology) {
			t.Regions[0].Geo = []string{"GB"}
			t.Regions[1].Geo = []string{"EU", "WORLD"}
			t.Regions[1].Priority = 1
			t.GeoIP = map[string]string{"10.1.0.0/16": "GB", "10.2.0.0/16": "IE", "10.3.0.0/16": "EU"}
			t.FrontDoor.TrustedProxies = trusted
		}
	}
	fd := start(t, Config{Topology: topo(edit([]string{"127.0.0.0/8"}), "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	for _, tc := range []struct{ xff, want string }{
		{"10.1.2.3", "westeurope"},            // GB
		{"10.3.2.3", "northeurope"},           // EU
		{"10.2.2.3", "northeurope"},           // IE: no region lists it, WORLD serves it
		{"192.0.2.1, 10.1.2.3", "westeurope"}, // right-most untrusted hop
	} {
		if got := spread(t, fd, 20, "X-Forwarded-For", tc.xff); got[tc.want] != 20 {
			t.Errorf("client %s: served %v, want all on %s", tc.xff, got, tc.want)
		}
	}
	code, b := admin(t, fd, "GET", "/admin/explain?client=10.1.2.3", "")
	var ex Explanation
	if err := json.Unmarshal(b, &ex); code != 200 || err != nil || ex.Geo != "GB" || ex.Target != "westeurope" ||
		len(ex.Order) != 2 || !strings.Contains(ex.Pinned, "[westeurope]") || !strings.HasPrefix(ex.Route, "target=westeurope") {
		t.Errorf("explain 10.1.2.3: %d %s", code, b)
	}
	if code, b := admin(t, fd, "GET", "/admin/explain?client=nope", ""); code != 400 {
		t.Errorf("explain without a valid client: %d %s", code, b)
	}
	// Spill-over: with westeurope drained, GB clients go elsewhere.
	admin(t, fd, "POST", "/admin/origins/westeurope", `{"drained":true}`)
	if got := spread(t, fd, 10, "X-Forwarded-For", "10.1.2.3"); got["northeurope"] != 10 {
		t.Errorf("GB client with westeurope drained: %v, want northeurope", got)
	}

	// Without trusted proxies, X-Forwarded-For is the client's own claim
	// and is ignored: the peer (127.0.0.1) has no geo, both regions serve.
	fd2 := start(t, Config{Topology: topo(edit(nil), "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}})
	fd2.waitHealthy(t, "westeurope", "northeurope")
	if got := spread(t, fd2, 60, "X-Forwarded-For", "10.1.2.3"); got["northeurope"] == 0 || got["westeurope"] == 0 {
		t.Errorf("untrusted X-Forwarded-For: %v, want both regions (no geo)", got)
	}
}

// TestAffinity: the cookie binds a session to its region while that
// region is eligible.
func TestAffinity(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Affinity = true
		t.Regions[1].Priority = 1
	}, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	c := client(time.Second)
	resp, err := c.Get(fd.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	first := resp.Header.Get(HeaderRegion)
	cookie := resp.Header.Get("Set-Cookie")
	if want := AffinityCookie + "=" + first + ";"; !strings.HasPrefix(cookie, want) {
		t.Fatalf("Set-Cookie %q, want prefix %q", cookie, want)
	}
	got := spread(t, fd, 40, "Cookie", "a=b; "+AffinityCookie+"="+first)
	if got[first] != 40 {
		t.Fatalf("with the cookie for %s: %v", first, got)
	}
	// The session moves when its region is drained, and the cookie follows.
	admin(t, fd, "POST", "/admin/origins/"+first, `{"drained":true}`)
	req, _ := http.NewRequest("GET", fd.url("/"), nil)
	req.Header.Set("Cookie", AffinityCookie+"="+first)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	other := resp.Header.Get(HeaderRegion)
	if other == first || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), AffinityCookie+"="+other) {
		t.Errorf("after draining %s: served by %s with Set-Cookie %q", first, other, resp.Header.Get("Set-Cookie"))
	}
	// No Set-Cookie when the cookie already names the serving region.
	req.Header.Set("Cookie", AffinityCookie+"="+other)
	resp, _ = c.Do(req)
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); sc != "" {
		t.Errorf("Set-Cookie %q on a request whose cookie already matches", sc)
	}
}
