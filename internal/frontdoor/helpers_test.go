package frontdoor

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/topology"
)

const testToken = "test-token"

// Behaviours of a test backend.
const (
	modeOK   int32 = iota
	mode503        // every request and probe answers 503
	modeHang       // accepts, reads the request, never answers
)

// backend is a stand-in for a regional stamp on 127.0.0.1:0.
type backend struct {
	name    string
	srv     *httptest.Server
	mode    atomic.Int32
	health  atomic.Int32 // status of /health/stamp while mode is OK; 0: 200
	hdelay  atomic.Int64 // delay of /health/stamp
	hits    atomic.Int64 // requests other than probes
	probes  atomic.Int64
	release chan struct{}
	handler atomic.Pointer[http.HandlerFunc] // replaces the default answer

	mu   sync.Mutex
	last *recorded
}

type recorded struct {
	method, uri, host string
	header            http.Header
	body              []byte
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name, release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		close(b.release)
		b.srv.CloseClientConnections()
		b.srv.Close()
	})
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health/stamp" {
		b.probes.Add(1)
		if d := time.Duration(b.hdelay.Load()); d > 0 {
			time.Sleep(d)
		}
		switch b.mode.Load() {
		case mode503:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case modeHang:
			select {
			case <-b.release:
			case <-r.Context().Done():
			}
			return
		}
		if s := b.health.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	b.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	b.mu.Lock()
	b.last = &recorded{method: r.Method, uri: r.RequestURI, host: r.Host, header: r.Header.Clone(), body: body}
	b.mu.Unlock()
	w.Header().Set(HeaderRegion, b.name)
	switch b.mode.Load() {
	case mode503:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "unavailable\n")
		return
	case modeHang:
		select {
		case <-b.release:
		case <-r.Context().Done():
		}
		return
	}
	if h := b.handler.Load(); h != nil {
		(*h)(w, r)
		return
	}
	io.WriteString(w, "hello from "+b.name+"\n")
}

func (b *backend) setHandler(h http.HandlerFunc) { b.handler.Store(&h) }

// kill stops the backend as SIGKILL would: the port refuses connections
// and open connections are cut.
func (b *backend) kill() {
	b.srv.Listener.Close()
	b.srv.CloseClientConnections()
}

func (b *backend) lastRequest() *recorded {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *backend) origin() Origin { return Origin{Name: b.name, URL: b.srv.URL} }

// topo returns a topology of regions named after the backends, with fast
// probes; edit modifies its front door settings before defaults.
func topo(edit func(*topology.Topology), names ...string) *topology.Topology {
	t := &topology.Topology{Name: "test"}
	for i, n := range names {
		t.Regions = append(t.Regions, topology.Region{Name: n, Priority: i + 1, Weight: 50})
	}
	fd := &t.FrontDoor
	fd.Probe = topology.Probe{Interval: topology.Duration(100 * time.Millisecond), Timeout: topology.Duration(100 * time.Millisecond)}
	fd.Retry.PerTryTimeout = topology.Duration(time.Second)
	fd.WAF.Mode = "off"
	fd.FDID = "fdid-test"
	if edit != nil {
		edit(t)
	}
	t.SetDefaults()
	return t
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type started struct {
	*FrontDoor
	logs *syncBuffer
	reg  *prometheus.Registry
}

// start runs a front door with plain and admin listeners on 127.0.0.1:0
// until the test ends.
func start(t *testing.T, cfg Config) *started {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.AdminListen = "127.0.0.1:0"
	cfg.AdminToken = testToken
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	select {
	case <-f.Ready():
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return &started{FrontDoor: f, logs: logs, reg: cfg.Registry}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *started) waitHealthy(t *testing.T, names ...string) {
	t.Helper()
	waitFor(t, "healthy "+strings.Join(names, ","), 5*time.Second, func() bool {
		for _, n := range names {
			if !s.Checker().Healthy(n) {
				return false
			}
		}
		return true
	})
	s.rebuild()
}

func (s *started) url(path string) string { return "http://" + s.Addr() + path }

// client returns an HTTP client without environment proxies.
func client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
}

// get sends a GET and returns status, region header and body.
func get(t *testing.T, c *http.Client, url string, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(HeaderRegion), string(b)
}

// metric returns the value of the series of name whose labels include
// the given pairs, summed.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
