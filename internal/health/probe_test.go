package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// server starts an HTTP server on 127.0.0.1:0 and returns its base URL.
func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func defaultProber(cfg Config) *HTTPProber {
	cfg.setDefaults()
	return &HTTPProber{Method: cfg.Method, Expect: cfg.Expect, Header: cfg.Header, Client: cfg.Client}
}

func TestHTTPProber(t *testing.T) {
	type seen struct {
		method, fdid, ua string
	}
	var mu sync.Mutex
	var last seen
	status := func(code int, delay time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			last = seen{r.Method, r.Header.Get("X-Geostamp-FDID"), r.Header.Get("User-Agent")}
			mu.Unlock()
			time.Sleep(delay)
			w.WriteHeader(code)
		}
	}
	refused := func() string { // a port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return "http://" + ln.Addr().String()
	}()
	tests := []struct {
		name       string
		cfg        Config
		url        string
		wantStatus int
		wantErr    string // "" passes
		minLatency time.Duration
		wantMethod string
	}{
		{"200 passes with HEAD", Config{}, server(t, status(200, 0)), 200, "", 0, "HEAD"},
		{"503 fails", Config{}, server(t, status(503, 0)), 503, "status 503, want 200", 0, "HEAD"},
		{"204 only when expected", Config{}, server(t, status(204, 0)), 204, "status 204, want 200", 0, "HEAD"},
		{"expected list", Config{Method: "GET", Expect: []int{200, 204}}, server(t, status(204, 0)), 204, "", 0, "GET"},
		{"expected list fails", Config{Expect: []int{200, 204}}, server(t, status(500, 0)), 500, "status 500, want 200 or 204", 0, "HEAD"},
		{"redirect not followed", Config{}, server(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}), 302, "status 302, want 200", 0, ""},
		{"latency to headers", Config{}, server(t, status(200, 30*time.Millisecond)), 200, "", 30 * time.Millisecond, "HEAD"},
		{"connection refused", Config{}, refused, 0, "connect: connection refused", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Header = http.Header{"X-Geostamp-Fdid": {"fd-1"}}
			p := defaultProber(cfg)
			r := p.Probe(context.Background(), Target{Name: "a", URL: tt.url + "/health/stamp"})
			if r.Status != tt.wantStatus {
				t.Errorf("status %d, want %d", r.Status, tt.wantStatus)
			}
			switch {
			case tt.wantErr == "" && r.Err != nil:
				t.Errorf("error %v, want pass", r.Err)
			case tt.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", r.Err, tt.wantErr)
			}
			if tt.wantErr != "" && strings.Contains(r.Err.Error(), `"http://`) {
				t.Errorf("error %q repeats the URL", r.Err)
			}
			if r.Status != 0 && (r.Latency <= 0 || r.Latency < tt.minLatency) {
				t.Errorf("latency %s, want above 0 and at least %s", r.Latency, tt.minLatency)
			}
			if tt.wantMethod != "" {
				mu.Lock()
				got := last
				mu.Unlock()
				if got != (seen{tt.wantMethod, "fd-1", UserAgent}) {
					t.Errorf("server saw %+v, want method %s, FDID fd-1, User-Agent %s", got, tt.wantMethod, UserAgent)
				}
			}
		})
	}
}

func TestHTTPProberZeroValue(t *testing.T) {
	methods := make(chan string, 1)
	url := server(t, func(w http.ResponseWriter, r *http.Request) { methods <- r.Method })
	var p HTTPProber
	if r := p.Probe(context.Background(), Target{URL: url}); r.Err != nil || r.Status != 200 || <-methods != "HEAD" {
		t.Errorf("zero HTTPProber: %+v; want a passing HEAD", r)
	}
	if r := p.Probe(context.Background(), Target{URL: "://bad"}); r.Err == nil {
		t.Error("bad URL passed")
	}
}

func TestHTTPProberFreshConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	})
	p := defaultProber(Config{})
	for range 3 {
		if r := p.Probe(context.Background(), Target{URL: url}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if len(conns) != 3 {
		t.Errorf("3 probes used %d connections, want 3 (no keep-alive)", len(conns))
	}
}

func TestHTTPProberHonoursContext(t *testing.T) {
	release := make(chan struct{})
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := defaultProber(Config{}).Probe(ctx, Target{URL: url})
	if !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("error %v, want deadline exceeded", r.Err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("probe returned after %s", el)
	}
}

// TestCheckerOverHTTP runs a Checker on the real clock against a real
// server: the probe transport end to end, including a timeout.
func TestCheckerOverHTTP(t *testing.T) {
	var mu sync.Mutex
	mode := "ok"
	release := make(chan struct{})
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		if m == "hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
	})
	defer close(release)
	c, err := New(Config{Interval: 20 * time.Millisecond, Timeout: 20 * time.Millisecond, SampleSize: 1, SuccessfulSamples: 1},
		[]Target{{Name: "westeurope", URL: url + "/health/stamp"}})
	if err != nil {
		t.Fatal(err)
	}
	events, cancelSub := c.Subscribe(10)
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- c.Run(ctx) }()
	next := func() Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
		return Event{}
	}
	if ev := next(); ev.To != StatusHealthy || !c.Healthy("westeurope") || c.RTT("westeurope") <= 0 {
		t.Fatalf("event %+v healthy %v rtt %s, want healthy with an RTT", ev, c.Healthy("westeurope"), c.RTT("westeurope"))
	}
	mu.Lock()
	mode = "hang"
	mu.Unlock()
	if ev := next(); ev.To != StatusUnhealthy || ev.Reason != "1 of last 1 probes failed: timeout: no response after 20ms" {
		t.Fatalf("event %+v, want unhealthy by timeout", ev)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
