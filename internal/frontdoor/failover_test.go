package frontdoor

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/health"
	"github.com/geostamp/geostamp/internal/topology"
)

// TestFailoverZeroErrors sends GETs on a steady schedule (open loop, 200/s)
// and breaks the preferred region three ways; no client may see anything
// but a 2xx, since every failed try moves to the other region.
func TestFailoverZeroErrors(t *testing.T) {
	faults := []struct {
		name  string
		apply func(b *backend)
	}{
		{"kill", func(b *backend) { b.kill() }},
		{"hang", func(b *backend) { b.mode.Store(modeHang) }},
		{"503", func(b *backend) { b.mode.Store(mode503) }},
	}
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
			alog := &syncBuffer{}
			fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}, AccessLog: alog})
			fd.waitHealthy(t, "westeurope", "northeurope")
			defer func() {
				if t.Failed() {
					for _, l := range strings.Split(fd.logs.String(), "\n") {
						if strings.Contains(l, "target") || strings.Contains(l, "fail") {
							t.Log(l)
						}
					}
					for _, l := range strings.Split(alog.String(), "\n")[:5] {
						if !strings.Contains(l, `"status":200`) {
							t.Log(l)
						}
					}
				}
			}()
			// The client's timeout (5s) exceeds the per-try timeout (1s),
			// so a hang costs latency, not an error.
			c := client(5 * time.Second)
			const rate, total, faultAt = 200, 300, 100 // requests/s, requests, fault after
			var mu sync.Mutex
			var errs []string
			served := map[string]int{}
			servedAfter := map[string]int{}
			var wg sync.WaitGroup
			t0 := time.Now()
			for i := range total {
				time.Sleep(time.Until(t0.Add(time.Duration(i) * time.Second / rate)))
				if i == faultAt {
					fault.apply(we)
				}
				wg.Go(func() {
					resp, err := c.Get(fd.url(fmt.Sprintf("/orders/%d", i)))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, fmt.Sprintf("request %d: %v", i, err))
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						errs = append(errs, fmt.Sprintf("request %d: status %d from %q", i, resp.StatusCode, resp.Header.Get(HeaderRegion)))
					}
					served[resp.Header.Get(HeaderRegion)]++
					if i > faultAt+20 {
						servedAfter[resp.Header.Get(HeaderRegion)]++
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("%d of %d requests failed at the client, e.g. %s", len(errs), total, strings.Join(errs[:min(5, len(errs))], "; "))
			}
			if served["westeurope"] < faultAt/2 {
				t.Errorf("westeurope served %d requests before the fault; want it preferred (served: %v)", served["westeurope"], served)
			}
			if servedAfter["westeurope"] > 0 || servedAfter["northeurope"] == 0 {
				t.Errorf("after the fault, served by %v; want only northeurope", servedAfter)
			}
			if st, _ := fd.Checker().State("westeurope"); st.Healthy {
				t.Errorf("westeurope still healthy after the fault: %+v", st)
			}
			t.Logf("served %v; retries %v", served, metric(t, fd.reg, "geostamp_frontdoor_retries_total"))
		})
	}
}

// TestProbeDetectionBound: with no traffic, probes alone mark a dead
// region unhealthy within interval×(N−S+1)+timeout.
func TestProbeDetectionBound(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(nil, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	p := tp.FrontDoor.Probe
	bound := p.Interval.D()*time.Duration(p.SampleSize-p.SuccessfulSamples+1) + p.Timeout.D()
	killed := time.Now()
	we.kill()
	waitFor(t, "westeurope unhealthy", 5*time.Second, func() bool { return !fd.Checker().Healthy("westeurope") })
	took := time.Since(killed)
	// Slack for the scheduler of a loaded test machine; the bound itself
	// is proven with a fake clock in package health.
	if slack := 750 * time.Millisecond; took > bound+slack {
		t.Errorf("detected after %s; bound interval×(N−S+1)+timeout = %s×%d+%s = %s", took, p.Interval, p.SampleSize-p.SuccessfulSamples+1, p.Timeout, bound)
	}
	st, _ := fd.Checker().State("westeurope")
	if st.Ejections != 0 {
		t.Errorf("ejected %d times without traffic; want detection by probes alone", st.Ejections)
	}
	t.Logf("detected in %s (bound %s)", took, bound)
}

// TestPassiveEjectionOnFirstFailure: probes are far too slow to notice,
// so the first failed request alone ejects the region (and is retried).
func TestPassiveEjectionOnFirstFailure(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) {
		// The first probe comes within jitter (10%) of the interval, the
		// second long after the test.
		t.FrontDoor.Probe.Interval = topology.Duration(time.Second)
		t.FrontDoor.Probe.Timeout = topology.Duration(500 * time.Millisecond)
	}, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	c := client(2 * time.Second)
	if code, region, _ := get(t, c, fd.url("/")); code != 200 || region != "westeurope" {
		t.Fatalf("before: %d from %q, want 200 from westeurope", code, region)
	}
	we.kill()
	if code, region, _ := get(t, c, fd.url("/")); code != 200 || region != "northeurope" {
		t.Fatalf("first request after the kill: %d from %q, want 200 from northeurope (retried)", code, region)
	}
	st, _ := fd.Checker().State("westeurope")
	if !st.Ejected || st.Ejections != 1 || st.Healthy {
		t.Fatalf("after one failed request: ejected=%v ejections=%d healthy=%v; want ejected once", st.Ejected, st.Ejections, st.Healthy)
	}
	if got := metric(t, fd.reg, "geostamp_frontdoor_ejections_total", "region", "westeurope"); got != 1 {
		waitFor(t, "ejection metric", time.Second, func() bool {
			return metric(t, fd.reg, "geostamp_frontdoor_ejections_total", "region", "westeurope") == 1
		})
	}
	// The next request goes straight to the healthy region: one try.
	before := ne.hits.Load()
	if code, region, _ := get(t, c, fd.url("/"), HeaderDebug, "1"); code != 200 || region != "northeurope" {
		t.Fatalf("second request: %d from %q", code, region)
	}
	if ne.hits.Load() != before+1 {
		t.Errorf("northeurope hits %d -> %d", before, ne.hits.Load())
	}
}

// TestRetryBudget: concurrent retries are capped; beyond the budget the
// region's own answer is passed through.
func TestRetryBudget(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) {
		t.FrontDoor.Retry.Budget = 0.0001 // 0% would be the default, 20%
		t.FrontDoor.Retry.MinRetries = 1
		t.FrontDoor.Retry.PerTryTimeout = topology.Duration(5 * time.Second)
		t.FrontDoor.Outlier.ConsecutiveErrors = 100 // keep westeurope in rotation
	}, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	we.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	hold := make(chan struct{})
	ne.setHandler(func(w http.ResponseWriter, r *http.Request) { <-hold; io.WriteString(w, "late\n") })
	c := client(10 * time.Second)

	first := make(chan string, 1)
	go func() {
		code, region, _ := get(t, c, fd.url("/first"))
		first <- fmt.Sprint(code, " ", region)
	}()
	// The first request's retry holds the only retry slot.
	waitFor(t, "the first request's retry to reach northeurope", 5*time.Second, func() bool { return ne.hits.Load() == 1 })
	code, region, _ := get(t, c, fd.url("/second"))
	if code != http.StatusServiceUnavailable || region != "westeurope" {
		t.Errorf("second request: %d from %q; want westeurope's 503 passed through (budget exhausted)", code, region)
	}
	if got := metric(t, fd.reg, "geostamp_frontdoor_retry_budget_exhausted_total"); got != 1 {
		t.Errorf("budget exhausted metric = %v, want 1", got)
	}
	close(hold)
	if got := <-first; got != "200 northeurope" {
		t.Errorf("first request: %s, want 200 northeurope", got)
	}
	// With the slot free again, a retry happens.
	ne.setHandler(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	if code, region, _ := get(t, c, fd.url("/third")); code != 200 || region != "northeurope" {
		t.Errorf("third request: %d from %q; want a retry to northeurope", code, region)
	}
}

// TestRetryOnlyIdempotent: a POST is retried only with an Idempotency-Key,
// and its body is replayed intact; a PUT is retried.
func TestRetryOnlyIdempotent(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) { t.FrontDoor.Outlier.ConsecutiveErrors = 100 }, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	we.setHandler(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	ne.setHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	c := client(5 * time.Second)
	send := func(method, key, body string) (int, string, string) {
		req, _ := http.NewRequest(method, fd.url("/orders"), strings.NewReader(body))
		if key != "" {
			req.Header.Set(HeaderIdempotencyKey, key)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get(HeaderRegion), string(b)
	}
	big := strings.Repeat("x", 100<<10)
	cases := []struct {
		name, method, key, body string
		wantCode                int
		wantRegion              string
	}{
		{"POST without key is not retried", "POST", "", `{"item":"book"}`, 503, "westeurope"},
		{"POST with key is retried", "POST", "k1", `{"item":"book"}`, 200, "northeurope"},
		{"PUT is retried with its body", "PUT", "", big, 200, "northeurope"},
		{"DELETE is retried", "DELETE", "", "", 200, "northeurope"},
		{"PATCH is not retried", "PATCH", "", "x", 503, "westeurope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, region, body := send(tc.method, tc.key, tc.body)
			if code != tc.wantCode || region != tc.wantRegion {
				t.Fatalf("%d from %q, want %d from %q", code, region, tc.wantCode, tc.wantRegion)
			}
			if code == 200 && body != tc.method+" "+tc.body {
				t.Errorf("northeurope got a body of %d bytes, want the %d sent", len(body)-len(tc.method)-1, len(tc.body))
			}
		})
	}
}

// TestEjectionPeriodOnFakeClock: the ejection of a region that failed a
// request lasts outlier.ejectFor on the front door's clock, then the
// region takes traffic again. The fake clock never fires probes, so both
// regions stay unprobed and routing fails open, preferring the regions that
// are not ejected.
func TestEjectionPeriodOnFakeClock(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	clk := health.NewFakeClock(time.Unix(1_700_000_000, 0))
	fd := start(t, Config{Topology: topo(nil, "westeurope", "northeurope"), Origins: []Origin{we.origin(), ne.origin()}, Clock: clk})
	c := client(5 * time.Second)
	if code, region, _ := get(t, c, fd.url("/")); code != 200 || region != "westeurope" {
		t.Fatalf("before: %d from %q, want westeurope (priority 1, failing open while unprobed)", code, region)
	}
	we.mode.Store(mode503)
	if code, region, _ := get(t, c, fd.url("/")); code != 200 || region != "northeurope" {
		t.Fatalf("westeurope answering 503: %d from %q, want a retry on northeurope", code, region)
	}
	we.mode.Store(modeOK)
	waitFor(t, "the ejection to reach the snapshot", 5*time.Second, func() bool {
		_, d := fd.snap.Load().route("", "", 0)
		return fd.origins[d.Order[0]].name == "northeurope"
	})
	clk.Advance(9 * time.Second)
	if got := spread(t, fd, 5); got["northeurope"] != 5 {
		t.Fatalf("9s into a 10s ejection: %v, want northeurope only", got)
	}
	clk.Advance(time.Second)
	waitFor(t, "westeurope back after ejectFor", 5*time.Second, func() bool {
		_, d := fd.snap.Load().route("", "", 0)
		return fd.origins[d.Order[0]].name == "westeurope"
	})
	if got := spread(t, fd, 5); got["westeurope"] != 5 {
		t.Fatalf("after the ejection: %v, want westeurope", got)
	}
}

// TestPOSTNeverSentIsRetried: a POST without Idempotency-Key may move to
// another region when its first try never left (the connection was
// refused), but not once it may have reached the region.
func TestPOSTNeverSentIsRetried(t *testing.T) {
	we, ne := newBackend(t, "westeurope"), newBackend(t, "northeurope")
	tp := topo(func(t *topology.Topology) { t.FrontDoor.Outlier.ConsecutiveErrors = 100 }, "westeurope", "northeurope")
	fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin(), ne.origin()}})
	fd.waitHealthy(t, "westeurope", "northeurope")
	c := client(5 * time.Second)
	post := func() (int, string) {
		resp, err := c.Post(fd.url("/orders"), "application/json", strings.NewReader(`{"item":"book"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get(HeaderRegion)
	}
	// Cut a connection after the request arrived: not retried.
	we.setHandler(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	if code, region := post(); code != http.StatusBadGateway || region != "" {
		t.Errorf("POST cut by westeurope: %d from %q, want 502 (it may have been processed)", code, region)
	}
	if ne.hits.Load() != 0 {
		t.Errorf("the POST reached northeurope too")
	}
	// Refused: never sent, so retried.
	we.kill()
	if code, region := post(); code != 200 || region != "northeurope" {
		t.Errorf("POST refused by westeurope: %d from %q, want 200 from northeurope", code, region)
	}
}
