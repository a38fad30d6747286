package frontdoor

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
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
