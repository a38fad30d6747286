package frontdoor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// parsed is what a parser made of one request of a stream.
type parsed struct {
	method, path, query, host string
	bodyLen                   int64 // -1: chunked
	body                      string
}

// maxStream bounds the requests read from one fuzz input.
const maxStream = 8

// lean parses a stream with the front door's HTTP/1.1 parser, as the
// plain listener's connection loop does, checking on the way the
// properties every accepted request must have. It returns the requests it
// would forward, and the status of the rejection that ends the stream (0:
// none, the stream ended or went bad mid-body).
func lean(t *testing.T, data []byte) (reqs []parsed, rejected int) {
	f := &FrontDoor{maxHeader: 4096, affinity: true}
	c := &h1conn{f: f, br: bufio.NewReaderSize(bytes.NewReader(data), 4096), bw: bufio.NewWriter(io.Discard)}
	c.body.c = c
	for len(reqs) < maxStream {
		if _, err := c.br.Peek(1); err != nil {
			return reqs, 0
		}
		status, err := c.readRequest()
		if err != nil {
			return reqs, 0 // incomplete head: nothing is forwarded
		}
		if status != 0 {
			switch status {
			case http.StatusBadRequest, http.StatusExpectationFailed, http.StatusRequestHeaderFieldsTooLarge,
				http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
			default:
				t.Fatalf("rejected with %d; want 400, 417, 431, 501 (unsupported coding or method) or 505", status)
			}
			return reqs, status
		}
		in := &c.in
		checkForwardable(t, c.hbuf, in)
		var body []byte
		if in.body != nil {
			if body, err = io.ReadAll(in.body); err != nil {
				return reqs, 0 // the front door answers 400 and closes
			}
			if in.bodyLen >= 0 && int64(len(body)) != in.bodyLen {
				t.Fatalf("read %d body bytes of Content-Length %d", len(body), in.bodyLen)
			}
		}
		// The request's strings share the connection's buffer: copy them.
		u, err := url.ParseRequestURI(strings.Clone(in.target))
		if err != nil {
			t.Fatalf("forwarded target %q does not parse: %v", in.target, err)
		}
		reqs = append(reqs, parsed{method: strings.Clone(in.method), path: u.Path, query: u.RawQuery, host: strings.Clone(in.host), bodyLen: in.bodyLen, body: string(body)})
		if !in.keepAlive {
			break
		}
	}
	return reqs, 0
}

// checkForwardable checks an accepted request against its raw head: the
// fields forwarded cannot alter the framing or inject lines, and the
// framing comes from exactly one of Transfer-Encoding and Content-Length.
func checkForwardable(t *testing.T, head []byte, in *inbound) {
	t.Helper()
	var clValue string
	hasCL, hasTE := false, false
	_, rest := cutLine(head)
	for len(rest) > 0 {
		var line []byte
		line, rest = cutLine(rest)
		name, value, _ := strings.Cut(string(line), ":")
		switch strings.ToLower(name) {
		case "content-length":
			hasCL, clValue = true, strings.Trim(value, " \t")
		case "transfer-encoding":
			hasTE = true
		}
	}
	switch {
	case hasCL && hasTE:
		t.Fatal("accepted a request with both Content-Length and Transfer-Encoding")
	case hasTE && in.bodyLen != -1:
		t.Fatalf("Transfer-Encoding, but body length %d", in.bodyLen)
	case hasCL:
		if n, ok := parseLength(clValue); !ok || n != in.bodyLen {
			t.Fatalf("Content-Length %q, but body length %d", clValue, in.bodyLen)
		}
	case !hasTE && in.bodyLen != 0:
		t.Fatalf("no framing field, but body length %d", in.bodyLen)
	}
	if (in.bodyLen != 0) != (in.body != nil) {
		t.Fatalf("body length %d with body %v", in.bodyLen, in.body)
	}
	for _, fl := range in.fields {
		if !isToken([]byte(fl.name)) || !validValue([]byte(fl.value)) {
			t.Fatalf("forwards field %q: %q", fl.name, fl.value)
		}
		if h := classify(fl.name); h != hdrOther && h != hdrCookie && h != hdrIdemKey {
			t.Fatalf("forwards %q, which the front door owns or is hop-by-hop", fl.name)
		}
		for _, tok := range in.connTokens {
			if strings.EqualFold(tok, fl.name) {
				t.Fatalf("forwards %q, named by Connection", fl.name)
			}
		}
	}
	if in.target != "*" && (in.target == "" || in.target[0] != '/') {
		t.Fatalf("forwards target %q", in.target)
	}
	for i := 0; i < len(in.target); i++ {
		if in.target[i] <= ' ' || in.target[i] == 0x7f {
			t.Fatalf("forwards target %q", in.target)
		}
	}
	if !validHost(in.host) {
		t.Fatalf("forwards host %q", in.host)
	}
}

// refServer is net/http's server over in-memory connections: every check
// it makes on a request applies, without a network round trip per input.
type refServer struct {
	srv      *http.Server
	conns    chan net.Conn
	stop     chan struct{} // closed by Close: Accept fails
	stopOnce sync.Once
	done     chan struct{} // closed when Serve returned
}

type connKey struct{}

func newRefServer(tb testing.TB) *refServer {
	rs := &refServer{conns: make(chan net.Conn), stop: make(chan struct{}), done: make(chan struct{})}
	rs.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mc := r.Context().Value(connKey{}).(*memConn)
			p := parsed{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, bodyLen: r.ContentLength}
			if p.path == "" {
				p.path = "/" // absolute-form without a path: "/" is what goes on (RFC 9112 §3.2.1)
			}
			body, err := io.ReadAll(r.Body)
			p.body = string(body)
			if err == nil { // a request whose body fails is not accepted
				mc.mu.Lock()
				mc.reqs = append(mc.reqs, p)
				mc.mu.Unlock()
			}
		}),
		DisableGeneralOptionsHandler: true, // OPTIONS * reaches the handler, as it does a region
		ErrorLog:                     log.New(io.Discard, "", 0),
		ConnContext:                  func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
	}
	go func() { defer close(rs.done); rs.srv.Serve(rs) }()
	tb.Cleanup(func() { rs.srv.Close(); <-rs.done })
	return rs
}

// Accept, Close and Addr make refServer the server's listener.
func (rs *refServer) Accept() (net.Conn, error) {
	select {
	case c := <-rs.conns:
		return c, nil
	case <-rs.stop:
		return nil, net.ErrClosed
	}
}
func (rs *refServer) Close() error   { rs.stopOnce.Do(func() { close(rs.stop) }); return nil }
func (rs *refServer) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// parse returns the requests of the stream that net/http's server hands
// to its handler and whose bodies read without error.
func (rs *refServer) parse(t *testing.T, data []byte) []parsed {
	mc := &memConn{r: bytes.NewReader(data), closed: make(chan struct{})}
	rs.conns <- mc
	select {
	case <-mc.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("net/http did not close the connection")
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.reqs
}

// memConn is a client connection that sends data, then EOF.
type memConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	reqs   []parsed
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Read(p)
}
func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

var errLaxer = errors.New("the front door accepted what net/http rejects")

// compareStreams checks that each request the front door would forward is
// one net/http's server hands to its handler, read the same way: same
// method, target, host, framing and body. The front door may stop earlier
// (stricter), never later.
func compareStreams(ours, ref []parsed) error {
	for i := range ours {
		if i >= len(ref) {
			return errLaxer
		}
		if ours[i] != ref[i] {
			return errors.New("request parsed differently")
		}
	}
	return nil
}

// FuzzH1Parser feeds raw streams to the front door's parser and to
// net/http's server. Properties: no panic; a rejection is a 4xx, or
// 501/505 for what is well-formed but unsupported; an accepted request is
// framed by exactly one of Content-Length and Transfer-Encoding, its body
// has the declared length, it forwards no framing, hop-by-hop or
// injectable field; and net/http's server accepts it too, with the same
// method, target, host, framing and body, so the two never disagree on
// where a request ends. The seeds (the differential cases and a few
// streams) run in every go test.
func FuzzH1Parser(f *testing.F) {
	for _, tc := range parserCases {
		f.Add([]byte(tc.req))
	}
	for _, s := range []string{
		"GET /a?b=c HTTP/1.1\r\nHost: h\r\nCookie: geostamp_affinity=x\r\nConnection: X-Drop, keep-alive\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;e=\"x\"\r\na\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nPUT /q HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nzz",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n",
		"GET http://[::1]:80/x HTTP/1.1\r\nHost: [::1]:80\r\nX-Forwarded-For: 192.0.2.1\r\nX-Geostamp-FDID: forged\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	ref := newRefServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, _ := lean(t, data)
		want := ref.parse(t, data)
		if err := compareStreams(ours, want); err != nil {
			t.Fatalf("%v\ninput %q\nfront door %+v\nnet/http   %+v", err, data, ours, want)
		}
	})
}
