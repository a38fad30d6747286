package frontdoor

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkProxyKeepAlive measures one GET through the lean HTTP/1.1 path
// over a kept-alive connection (client, front door and backend in this
// process; bench/frontdoor.sh measures CPU per request against HAProxy).
func BenchmarkProxyKeepAlive(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the backend\n")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	tp := topo(nil, "westeurope")
	f, err := New(Config{Topology: tp, Origins: []Origin{{Name: "westeurope", URL: "http://" + ln.Addr().String()}}, Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-f.Ready()
	time.Sleep(50 * time.Millisecond)
	conn, err := net.Dial("tcp", f.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	req := []byte("GET /bench HTTP/1.1\r\nHost: app.contoso.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkSpanWork measures the front door's span work alone for one
// request with one try (server span, try span, the try's traceparent,
// trace id for the answer),
// without tracing, unsampled and sampled (spans recorded, not exported):
// the part of tracing's cost that does not depend on the network.
func BenchmarkSpanWork(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler // nil: no tracer
	}{
		{"off", nil},
		{"unsampled", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))},
		{"sampled", sdktrace.AlwaysSample()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := Config{Topology: topo(nil, "westeurope"), Origins: []Origin{{Name: "westeurope", URL: "http://127.0.0.1:1"}}, Listen: "127.0.0.1:0"}
			if tc.sampler != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler))
				defer tp.Shutdown(context.Background())
				cfg.Tracer = tp.Tracer("frontdoor")
			}
			f, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			in := &inbound{method: "GET", target: "/orders/7", host: "app.contoso.test", keepAlive: true}
			bw := bufio.NewWriter(io.Discard)
			scratch := make([]byte, 0, 64)
			b.ReportAllocs()
			for range b.N {
				rt := f.startTrace(in)
				span := rt.attempt(f, f.origins[0], 1, "")
				writeTraceContext(bw, in, rt.parent(span), scratch)
				endAttempt(span, 200, "")
				rt.traceID()
				rec := record{region: 0, status: 200}
				rt.end(f, &rec)
			}
		})
	}
}
