package frontdoor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/health"
)

// leanBackend answers every request on a kept-alive connection with a fixed
// response and allocates nothing per request, so that an allocation count
// over a proxied request is the front door's own.
type leanBackend struct {
	ln   net.Listener
	done chan struct{}
}

const leanResponse = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Geostamp-Region: westeurope\r\n\r\nhello\n"

func newLeanBackend(t testing.TB) *leanBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &leanBackend{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveLean(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-b.done })
	return b
}

func serveLean(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	resp := []byte(leanResponse)
	for {
		n, err := readHeadLen(br)
		if err != nil {
			return
		}
		if n > 0 {
			if _, err := br.Discard(n); err != nil {
				return
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// readHeadLen reads a message head and returns its Content-Length (0 when
// absent), without allocating. It only understands what the test sends.
func readHeadLen(br *bufio.Reader) (int, error) {
	n, first := 0, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if first {
				continue
			}
			return n, nil
		}
		first = false
		if len(line) > 16 && hasPrefixFold(line, "content-length: ") {
			v, ok := parseLength(bstr(line[16:]))
			if !ok {
				return 0, errors.New("bad Content-Length")
			}
			n = int(v)
		}
	}
}

// TestProxiedGETAllocs asserts the claim of the package doc: a GET proxied
// over a kept-alive client connection and a pooled region connection
// allocates nothing once warm. The test's client and backend allocate
// nothing either, and a fake clock keeps probes and the snapshot refresh
// from running, so every allocation counted is on the request path.
func TestProxiedGETAllocs(t *testing.T) {
	allocs := proxiedGETAllocs(t, nil)
	t.Logf("%.2f allocations per proxied keep-alive GET", allocs)
	if raceEnabled {
		return // the requests above were still checked
	}
	if allocs != 0 {
		t.Errorf("%.2f allocations per proxied keep-alive GET, want 0", allocs)
	}
}

// TestTracedGETAllocs measures what tracing costs in allocations, sampled
// and not (the figures are logged: spans allocate; bench/frontdoor.sh
// measures the CPU), and checks that the sampled requests were recorded
// and the unsampled ones were not.
func TestTracedGETAllocs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
		sampled bool
	}{
		{"sampled", sdktrace.AlwaysSample(), true},
		{"not sampled", sdktrace.TraceIDRatioBased(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithSpanProcessor(rec))
			allocs := proxiedGETAllocs(t, tp.Tracer("frontdoor"))
			t.Logf("%s: %.2f allocations per proxied keep-alive GET", tc.name, allocs)
			n := len(rec.Ended())
			if tc.sampled && n < 2*700 || !tc.sampled && n != 0 {
				t.Errorf("%d spans recorded over 700 requests, sampled %v", n, tc.sampled)
			}
		})
	}
}

// proxiedGETAllocs returns the allocations of one warm proxied GET.
func proxiedGETAllocs(t *testing.T, tracer trace.Tracer) float64 {
	t.Helper()
	be := newLeanBackend(t)
	tp := topo(nil, "westeurope")
	f, err := New(Config{Topology: tp, Origins: []Origin{{Name: "westeurope", URL: "http://" + be.ln.Addr().String()}},
		Listen: "127.0.0.1:0", Clock: health.NewFakeClock(time.Unix(0, 0)), Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-f.Ready()
	conn, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	req := []byte("GET /orders/7?x=1 HTTP/1.1\r\nHost: app.contoso.test\r\nUser-Agent: alloc-test\r\nAccept: */*\r\nCookie: a=b\r\n\r\n")
	var failed error
	one := func() {
		if failed != nil {
			return
		}
		if _, err := conn.Write(req); err != nil {
			failed = err
			return
		}
		status, err := br.ReadSlice('\n')
		if err != nil {
			failed = err
			return
		}
		if len(status) < 12 || string(status[9:12]) != "200" {
			failed = errors.New("status line " + strconv.Quote(string(status)))
			return
		}
		n, err := readHeadLen(br)
		if err != nil {
			failed = err
			return
		}
		if _, err := br.Discard(n); err != nil {
			failed = err
		}
	}
	for range 200 { // warm: pools, metric children, the decision memo
		one()
	}
	allocs := testing.AllocsPerRun(500, one)
	if failed != nil {
		t.Fatal(failed)
	}
	return allocs
}
