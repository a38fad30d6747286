package stamp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testRegion    = "westeurope"
	testInterval  = 50 * time.Millisecond
	headerReplica = "X-Test-Replica"
)

// testWorkload identifies the replica that served a request (by the
// replica's listen address) and can fail /healthz per replica.
type testWorkload struct {
	mu         sync.Mutex
	failHealth map[string]bool
}

func (h *testWorkload) setHealthFail(addr string, fail bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failHealth == nil {
		h.failHealth = make(map[string]bool)
	}
	h.failHealth[addr] = fail
}

func (h *testWorkload) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
	w.Header().Set(headerReplica, addr)
	switch r.URL.Path {
	case "/healthz":
		h.mu.Lock()
		fail := h.failHealth[addr]
		h.mu.Unlock()
		if fail {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	case "/orders":
		w.Header().Set(HeaderRegion, testRegion)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"orders":[],"next":0}`)
	case "/echo":
		// Reports what the replica received; no region header on purpose.
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]any{
			"xff":      r.Header.Get("X-Forwarded-For"),
			"xfh":      r.Header.Get("X-Forwarded-Host"),
			"has_fdid": r.Header.Get(HeaderFDID) != "",
			"body":     string(body),
			"method":   r.Method,
		})
	default:
		http.NotFound(w, r)
	}
}

type running struct {
	*Stamp
	cancel context.CancelFunc
	done   chan error
}

// start runs a stamp built from cfg (region, handler and short intervals
// filled in) and stops it at the end of the test.
func start(t *testing.T, cfg Config) (*running, *testWorkload) {
	t.Helper()
	wl := &testWorkload{}
	if cfg.Region == "" {
		cfg.Region = testRegion
	}
	if cfg.Handler == nil {
		cfg.Handler = wl
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = testInterval
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 500 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Stamp: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-r.done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("stamp not ready after 5s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10s after cancel")
		}
	})
	return r, wl
}

// tWriter sends logs to the test log while the test runs.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitHealthy(t *testing.T, s *running) {
	t.Helper()
	waitFor(t, "stamp healthy", func() bool { return s.Health().Status == StatusHealthy })
}

type result struct {
	status int
	header http.Header
	body   []byte
}

var client = &http.Client{Timeout: 5 * time.Second}

func send(t *testing.T, method, url string, header http.Header, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, s *running, path string) result {
	t.Helper()
	return send(t, "GET", "http://"+s.IngressAddr()+path, nil, "")
}

func TestNewValidates(t *testing.T) {
	run := func(context.Context) (string, error) { return "", nil }
	_, err := New(Config{
		IngressPort: 70000,
		Replicas:    -1,
		Checks: []Check{
			{Name: "orders", Run: run},
			{Name: "orders", Run: run},
			{Name: "replicas", Run: run},
			{Name: "", Run: run},
			{Name: "cache"},
		},
		CheckInterval: -time.Second,
	})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{
		"region: required",
		"handler: required",
		"ingressPort: must be 0 to 65535, got 70000",
		"replicas: must be at least 1, got -1",
		`checks[1].name: "orders" is already used`,
		`checks[2].name: "replicas" is already used`,
		"checks[3].name: required",
		"checks[4].run: required",
		"checkInterval: must be positive",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not mention %q", err, want)
		}
	}
}

func TestNewHasNoSideEffects(t *testing.T) {
	s, err := New(Config{Region: testRegion, Handler: &testWorkload{}})
	if err != nil {
		t.Fatal(err)
	}
	if s.IngressAddr() != "" || s.ReplicaAddrs() != nil {
		t.Errorf("addresses before Run: %q %v", s.IngressAddr(), s.ReplicaAddrs())
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed before Run")
	default:
	}
	h := s.Health()
	if h.Status != StatusUnhealthy || h.Reason != ReasonStarting || h.Checks == nil {
		t.Errorf("Health before Run = %+v; want unhealthy, starting, empty checks", h)
	}
}

func TestSpreadAndReadiness(t *testing.T) {
	s, wl := start(t, Config{})
	addrs := s.ReplicaAddrs()
	if len(addrs) != 2 {
		t.Fatalf("ReplicaAddrs = %v; want 2 (default)", addrs)
	}
	waitHealthy(t, s)

	count := func(n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			r := get(t, s, "/orders")
			if r.status != 200 {
				t.Fatalf("GET /orders = %d %s", r.status, r.body)
			}
			seen[r.header.Get(headerReplica)]++
		}
		return seen
	}

	seen := count(20)
	for _, a := range addrs {
		if seen[a] < 8 {
			t.Errorf("replica %s served %d of 20 requests; want round robin (%v)", a, seen[a], seen)
		}
	}

	// Replica 0 fails its health check: after a round, only replica 1 serves.
	wl.setHealthFail(addrs[0], true)
	waitFor(t, "replica 0 out of rotation", func() bool {
		for _, c := range s.Health().Checks {
			if c.Name == CheckReplicas && strings.HasPrefix(c.Detail, "1/2 ready") {
				return true
			}
		}
		return false
	})
	seen = count(10)
	if seen[addrs[1]] != 10 {
		t.Errorf("with replica 0 unready, traffic went to %v; want all on %s", seen, addrs[1])
	}
	if h := s.Health(); h.Status != StatusHealthy {
		t.Errorf("one of two replicas ready: status %s (%s); want healthy", h.Status, h.Reason)
	}

	// No replica ready: the ingress answers 503 itself, the stamp is unhealthy.
	wl.setHealthFail(addrs[1], true)
	waitFor(t, "no replica ready", func() bool { return s.Health().Status == StatusUnhealthy })
	r := get(t, s, "/orders")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" ||
		r.header.Get(HeaderRegion) != testRegion || !strings.Contains(string(r.body), `"error": "no ready replica`) {
		t.Errorf("GET with no ready replica = %d %v %s", r.status, r.header, r.body)
	}
	h := s.Health()
	if !strings.Contains(h.Reason, CheckReplicas) {
		t.Errorf("reason %q does not name the replicas check", h.Reason)
	}

	// Recovery brings both back.
	wl.setHealthFail(addrs[0], false)
	wl.setHealthFail(addrs[1], false)
	waitHealthy(t, s)
	waitFor(t, "both replicas ready", func() bool { return len(*s.routable.Load()) == 2 })
	seen = count(10)
	if seen[addrs[0]] == 0 || seen[addrs[1]] == 0 {
		t.Errorf("after recovery traffic went to %v; want both", seen)
	}
}

func TestHealthEndpoint(t *testing.T) {
	var ordersErr atomic.Pointer[error]
	release := make(chan struct{})
	s, _ := start(t, Config{
		Replicas:     3,
		CheckTimeout: 2 * time.Second,
		Checks: []Check{{Name: "orders", Run: func(ctx context.Context) (string, error) {
			select {
			case <-release: // holds the first round until the test says so
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if p := ordersErr.Load(); p != nil {
				return "", *p
			}
			return "primary, writable", nil
		}}},
	})
	url := "http://" + s.IngressAddr() + HealthPath

	// The first round cannot complete while the orders check is held.
	r := send(t, "GET", url, nil, "")
	if r.status != 503 || !strings.Contains(string(r.body), `"reason": "starting"`) {
		t.Fatalf("before the first round: %d %s; want 503 reason starting", r.status, r.body)
	}
	close(release)
	waitHealthy(t, s)

	r = send(t, "GET", url, nil, "")
	if r.status != 200 {
		t.Fatalf("healthy stamp: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" || r.header.Get(HeaderRegion) != testRegion {
		t.Errorf("headers = %v", r.header)
	}
	// Check the JSON shape by field name.
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["status"] != "healthy" || raw["region"] != testRegion {
		t.Errorf("report = %s", r.body)
	}
	if _, ok := raw["reason"]; ok {
		t.Errorf("healthy report has a reason: %s", r.body)
	}
	if ts, _ := raw["time"].(string); ts == "" {
		t.Errorf("report has no time: %s", r.body)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time: %v", err)
	}
	checks, _ := raw["checks"].([]any)
	var names []string
	for _, c := range checks {
		m := c.(map[string]any)
		for _, k := range []string{"name", "status", "duration_ms", "detail"} {
			if _, ok := m[k]; !ok {
				t.Errorf("check %v lacks %q", m, k)
			}
		}
		names = append(names, m["name"].(string))
		if m["status"] != CheckPass {
			t.Errorf("check %v did not pass", m)
		}
		if m["name"] == CheckReplicas && m["detail"] != "3/3 ready" {
			t.Errorf("replicas detail = %v; want 3/3 ready", m["detail"])
		}
		if m["name"] == "orders" && m["detail"] != "primary, writable" {
			t.Errorf("orders detail = %v", m["detail"])
		}
	}
	if strings.Join(names, ",") != "ingress,replicas,orders" {
		t.Errorf("checks = %v; want ingress,replicas,orders", names)
	}

	// HEAD: same status and headers, no body.
	r = send(t, "HEAD", url, nil, "")
	if r.status != 200 || len(r.body) != 0 || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD = %d %v body %q", r.status, r.header, r.body)
	}

	// A failing data check makes the stamp unhealthy and is named.
	e := errors.New("orders: replica is fenced")
	ordersErr.Store(&e)
	waitFor(t, "orders failure reported", func() bool { return s.Health().Status == StatusUnhealthy })
	r = send(t, "GET", url, nil, "")
	var rep Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatal(err)
	}
	if r.status != 503 || rep.Status != StatusUnhealthy || !strings.Contains(rep.Reason, "orders") {
		t.Errorf("failing check: %d %s", r.status, r.body)
	}
	for _, c := range rep.Checks {
		want := CheckPass
		if c.Name == "orders" {
			want = CheckFail
			if c.Detail != "orders: replica is fenced" {
				t.Errorf("orders detail = %q", c.Detail)
			}
		}
		if c.Status != want {
			t.Errorf("check %s = %s; want %s", c.Name, c.Status, want)
		}
	}
	r = send(t, "HEAD", url, nil, "")
	if r.status != 503 || len(r.body) != 0 {
		t.Errorf("HEAD unhealthy = %d body %q", r.status, r.body)
	}

	// Other methods are refused by the ingress itself.
	r = send(t, "POST", url, nil, "")
	if r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST %s = %d Allow %q", HealthPath, r.status, r.header.Get("Allow"))
	}
}

func TestDrain(t *testing.T) {
	s, _ := start(t, Config{})
	waitHealthy(t, s)
	url := "http://" + s.IngressAddr() + HealthPath

	s.SetDrained(true)
	if !s.Drained() {
		t.Fatal("Drained() = false after SetDrained(true)")
	}
	r := send(t, "GET", url, nil, "")
	var rep Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatal(err)
	}
	if r.status != 503 || rep.Status != StatusDrained || rep.Reason != ReasonDrained || len(rep.Checks) != 2 {
		t.Errorf("drained: %d %s", r.status, r.body)
	}
	if r := get(t, s, "/orders"); r.status != 200 {
		t.Errorf("GET /orders while drained = %d %s; want 200", r.status, r.body)
	}

	s.SetDrained(false)
	if r := send(t, "GET", url, nil, ""); r.status != 200 {
		t.Errorf("undrained: %d %s", r.status, r.body)
	}
}

func TestOriginLock(t *testing.T) {
	s, _ := start(t, Config{FDID: "fd-123"})
	waitHealthy(t, s)
	base := "http://" + s.IngressAddr()

	tests := []struct {
		name   string
		path   string
		fdid   string
		status int
	}{
		{"no header", "/orders", "", 403},
		{"wrong id", "/orders", "fd-999", 403},
		{"right id", "/orders", "fd-123", 200},
		{"health without header", HealthPath, "", 200},
		{"health with wrong id", HealthPath, "nope", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.fdid != "" {
				h.Set(HeaderFDID, tt.fdid)
			}
			r := send(t, "GET", base+tt.path, h, "")
			if r.status != tt.status {
				t.Fatalf("status = %d (%s); want %d", r.status, r.body, tt.status)
			}
			if r.header.Get(HeaderRegion) != testRegion {
				t.Errorf("missing %s", HeaderRegion)
			}
			if tt.status == 403 && !strings.Contains(string(r.body), `"error": "origin lock`) {
				t.Errorf("403 body = %s", r.body)
			}
		})
	}

	// The front door ID is not passed on to the workload.
	h := http.Header{HeaderFDID: {"fd-123"}}
	r := send(t, "GET", base+"/echo", h, "")
	if strings.Contains(string(r.body), `"has_fdid":true`) {
		t.Errorf("replica saw the FDID header: %s", r.body)
	}
}

func TestProxyHeaders(t *testing.T) {
	s, _ := start(t, Config{})
	waitHealthy(t, s)

	// X-Forwarded-For appends the client to what the front door sent.
	h := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "Connection": {"X-Hop"}, "X-Hop": {"1"}}
	r := send(t, "POST", "http://"+s.IngressAddr()+"/echo", h, `{"a":1}`)
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	if got["xff"] != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For at replica = %q; want %q", got["xff"], "203.0.113.9, 127.0.0.1")
	}
	if got["xfh"] != s.IngressAddr() {
		t.Errorf("X-Forwarded-Host = %q", got["xfh"])
	}
	if got["body"] != `{"a":1}` || got["method"] != "POST" {
		t.Errorf("replica got %v", got)
	}
	// /echo sets no region; the ingress fills it in.
	if v := r.header.Values(HeaderRegion); len(v) != 1 || v[0] != testRegion {
		t.Errorf("%s = %v; want [%s]", HeaderRegion, v, testRegion)
	}
	// /orders sets it; it passes through once.
	r = get(t, s, "/orders")
	if v := r.header.Values(HeaderRegion); len(v) != 1 || v[0] != testRegion {
		t.Errorf("%s = %v; want one value", HeaderRegion, v)
	}
}

func TestConnectErrorRetried(t *testing.T) {
	// A long interval: the replica set changes only through the ingress.
	s, _ := start(t, Config{CheckInterval: time.Hour})
	waitHealthy(t, s)

	// Add a replica whose address refuses connections and mark it ready,
	// as if it died right after a passing probe.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	dead := &replica{index: 2, addr: deadAddr}
	s.mu.Lock()
	s.replicas = append(s.replicas, dead)
	s.mu.Unlock()
	s.setReady(dead, true, "test")
	if n := len(*s.routable.Load()); n != 3 {
		t.Fatalf("routable = %d; want 3", n)
	}

	// Every POST succeeds with its body intact, including the one sent to
	// the dead replica first; that replica leaves the rotation.
	for i := range 6 {
		body := `{"n":` + string(rune('0'+i)) + `}`
		r := send(t, "POST", "http://"+s.IngressAddr()+"/echo", nil, body)
		if r.status != 200 || !strings.Contains(string(r.body), `"body":"{\"n\":`+string(rune('0'+i))+`}"`) {
			t.Fatalf("POST %d = %d %s", i, r.status, r.body)
		}
	}
	if dead.ready.Load() {
		t.Error("the dead replica is still in rotation")
	}

	// With the dead replica as the only one, there is nothing to retry on.
	for _, rep := range s.replicas[:2] {
		s.setReady(rep, false, "test")
	}
	s.setReady(dead, true, "test")
	r := get(t, s, "/orders")
	if r.status != http.StatusBadGateway || !strings.Contains(string(r.body), "replica unreachable") ||
		r.header.Get(HeaderRegion) != testRegion {
		t.Errorf("only a dead replica: %d %s", r.status, r.body)
	}
}

func TestRunStopsAndClosesPorts(t *testing.T) {
	s, err := New(Config{Region: testRegion, Handler: &testWorkload{}, CheckInterval: testInterval})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	addrs := append(s.ReplicaAddrs(), s.IngressAddr())
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			t.Fatalf("%s not listening while running: %v", a, err)
		}
		c.Close()
	}
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("second Run = %v; want an error", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", a)
		}
	}
}

func TestRunListenError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	s, err := New(Config{Region: testRegion, Handler: &testWorkload{}, IngressPort: port})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "ingress") {
			t.Errorf("Run = %v; want an ingress listen error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not fail on a taken port")
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed after a failed start")
	default:
	}
}

func TestRunCheckBounds(t *testing.T) {
	s, err := New(Config{Region: testRegion, Handler: &testWorkload{}, CheckTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stuck := &check{Check: Check{Name: "stuck", Run: func(context.Context) (string, error) {
		<-release // ignores its context
		return "", nil
	}}}
	res := s.runCheck(context.Background(), stuck)
	if res.Status != CheckFail || res.Detail != "timed out after 20ms" {
		t.Errorf("stuck check = %+v; want fail, timed out", res)
	}
	res = s.runCheck(context.Background(), stuck)
	if res.Status != CheckFail || !strings.Contains(res.Detail, "has not returned") {
		t.Errorf("stuck check again = %+v; want not restarted", res)
	}
	close(release)
	waitFor(t, "stuck check to return", func() bool { return !stuck.running.Load() })

	panicky := &check{Check: Check{Name: "panicky", Run: func(context.Context) (string, error) { panic("boom") }}}
	if res := s.runCheck(context.Background(), panicky); res.Status != CheckFail || !strings.Contains(res.Detail, "panicked: boom") {
		t.Errorf("panicking check = %+v", res)
	}
	withDetail := &check{Check: Check{Name: "d", Run: func(context.Context) (string, error) {
		return "lag 12 writes", errors.New("too far behind")
	}}}
	if res := s.runCheck(context.Background(), withDetail); res.Detail != "lag 12 writes: too far behind" {
		t.Errorf("detail = %q", res.Detail)
	}
}

func TestFaultBrownout(t *testing.T) {
	s := &Stamp{}
	if err := s.SetFault(Fault{Share: 2}); err == nil {
		t.Fatal("share 2 accepted")
	}
	if err := s.SetFault(Fault{Share: 1, Status: 200}); err == nil {
		t.Fatal("status 200 accepted as a fault")
	}
	if err := s.SetFault(Fault{Share: 1, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if got := s.Fault(); got.Status != 503 || got.Share != 1 {
		t.Fatalf("fault = %+v", got)
	}
	s.SetFault(Fault{})
	if s.fault.Load() != nil {
		t.Fatal("zero fault did not clear")
	}
}

func TestFaultServed(t *testing.T) {
	s, _ := start(t, Config{})
	waitHealthy(t, s)
	if err := s.SetFault(Fault{Share: 1, Status: 503}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r := get(t, s, "/orders"); r.status != 503 {
			t.Fatalf("GET under a full 503 brownout = %d %s", r.status, r.body)
		}
	}
	if r := send(t, "GET", "http://"+s.IngressAddr()+HealthPath, nil, ""); r.status != 200 {
		t.Fatalf("health under brownout = %d; probes must not see it", r.status)
	}
	s.SetFault(Fault{Share: 0.5, Status: 500})
	n := 0
	for range 200 {
		if get(t, s, "/orders").status == 500 {
			n++
		}
	}
	if n < 60 || n > 140 { // binomial(200, 0.5): outside this is < 1e-8 likely
		t.Fatalf("%d of 200 requests failed under a 50%% brownout", n)
	}
	s.SetFault(Fault{})
	if r := get(t, s, "/orders"); r.status != 200 {
		t.Fatalf("after clearing: %d", r.status)
	}
}
