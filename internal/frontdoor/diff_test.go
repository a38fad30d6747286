package frontdoor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/health"
)

// parserCase is one raw request stream sent both to a net/http server and
// to the front door's HTTP/1.1 listener.
type parserCase struct {
	name, req string
	// stricter, when set, says why the front door rejects a first request
	// that net/http's server accepts. The test checks that net/http does
	// accept it (so the row goes stale if net/http tightens) and that the
	// front door rejects it.
	stricter string
}

const (
	whyCLTE      = "RFC 9112 §6.3: Content-Length with Transfer-Encoding ought to be handled as an error (a smuggling attempt); net/http lets chunked win and drops Content-Length"
	whyTE10      = "net/http ignores (and drops) Transfer-Encoding in HTTP/1.0; a peer that honours it would frame a different body (RFC 9112 §6.1 lets us treat the message as faulty)"
	whyObsFold   = "RFC 9112 §5.2 lets a server reject obs-fold with 400 instead of unfolding it; net/http unfolds, so a folded Transfer-Encoding becomes chunked"
	whyAsterisk  = "RFC 9112 §3.2.4: the asterisk-form is only for OPTIONS"
	whyUserinfo  = "RFC 9110 §4.2.4: a recipient SHOULD treat userinfo in an http(s) URI as an error"
	whyScheme    = "the front door forwards http and https requests only"
	whyNoAuth    = "RFC 9110 §4.2.1: an http URI with an empty host is invalid; net/http falls back to the Host header"
	whyConnect   = "the front door does not tunnel (501), net/http hands CONNECT to the handler"
	whyBigChunk  = "chunk sizes of 16 significant hex digits (2^60 bytes and more) cannot be a body any limit admits; net/http accepts up to 2^64-1"
	whyExpectTok = "Expect is only understood as exactly 100-continue (RFC 9110 §10.1.1 defines no other expectation); net/http looks for the token in a list"
)

// parserCases are the smuggling-relevant cases of the differential test.
var parserCases = []parserCase{
	// Content-Length and Transfer-Encoding together.
	{name: "CL and TE", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", stricter: whyCLTE},
	{name: "TE then CL", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", stricter: whyCLTE},
	{name: "CL 0 and TE, smuggled request", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n", stricter: whyCLTE},
	{name: "TE in HTTP/1.0", req: "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", stricter: whyTE10},
	{name: "TE and CL in HTTP/1.0", req: "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", stricter: whyTE10},

	// Content-Length.
	{name: "duplicate identical CL", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "conflicting CL", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{name: "CL same number, other text", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc"},
	{name: "CL list in one field", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc"},
	{name: "CL with plus sign", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc"},
	{name: "CL negative", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"},
	{name: "CL empty", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n"},
	{name: "CL hex", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc"},
	{name: "CL with inner space", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n0123456789"},
	{name: "CL overflow", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nabc"},
	{name: "CL leading zeros", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000000003\r\n\r\nabc"},
	{name: "CL with OWS", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \t3 \r\n\r\nabc"},
	{name: "CL shorter than body: rest is the next request", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},

	// Transfer-Encoding values.
	{name: "TE twice", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE chunked, chunked", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE gzip, chunked", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	{name: "TE identity", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"},
	{name: "TE xchunked", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
	{name: "TE quoted", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n"},
	{name: "TE empty", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n"},
	{name: "TE mixed case with OWS", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tChunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "TE with vertical tab", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n"},

	// Header lines.
	{name: "space before colon", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
	{name: "tab before colon", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 3\r\n\r\nabc"},
	{name: "space inside header name", req: "GET / HTTP/1.1\r\nHost: x\r\nX Forwarded: a\r\n\r\n"},
	{name: "obs-fold", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", stricter: whyObsFold},
	{name: "obs-fold of TE", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", stricter: whyObsFold},
	{name: "first header line folded", req: "GET / HTTP/1.1\r\n Host: x\r\n\r\n"},
	{name: "header without colon", req: "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n"},
	{name: "empty header name", req: "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"},
	{name: "non-token byte in name", req: "GET / HTTP/1.1\r\nHost: x\r\nX-\xe9: v\r\n\r\n"},
	{name: "NUL in value", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"},
	{name: "bare CR in value", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"},
	{name: "obs-text in value", req: "GET / HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n"},

	// Line ends.
	{name: "bare LF head", req: "GET / HTTP/1.1\nHost: x\n\n"},
	{name: "mixed line ends", req: "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\n"},
	{name: "bare LF after chunk size", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"},
	{name: "bare LF after chunk data", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n"},
	{name: "bare LF after last chunk", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\n"},
	{name: "bare CR in chunk size line", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r;x\r\nabc\r\n0\r\n\r\n"},

	// Chunk sizes, extensions, data and trailers.
	{name: "chunk size overflow", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size 2^64-1", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size 2^60, then a body", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size with leading zeros", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000003\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size 0x prefix", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size negative", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size empty", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size leading space", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk size trailing space", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"},
	{name: "uppercase hex chunk size", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"},
	{name: "chunk extension", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0;last\r\n\r\n"},
	{name: "chunk extension, quoted semicolon", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b;c\"\r\nabc\r\n0\r\n\r\n"},
	{name: "whitespace before chunk extension", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 ;a=b\r\nabc\r\n0\r\n\r\n"},
	{name: "chunk data longer than its size", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"},
	{name: "chunk data shorter than its size", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc\r\n0\r\n\r\n"},
	{name: "trailer field", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n"},
	{name: "malformed trailer line", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n"},
	{name: "chunked then pipelined request", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"},

	// Request line.
	{name: "two spaces in request line", req: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "tabs in request line", req: "GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "space after version", req: "GET / HTTP/1.1 \r\nHost: x\r\n\r\n"},
	{name: "lowercase version", req: "GET / http/1.1\r\nHost: x\r\n\r\n"},
	{name: "HTTP/1.2", req: "GET / HTTP/1.2\r\nHost: x\r\n\r\n"},
	{name: "HTTP/1.10", req: "GET / HTTP/1.10\r\nHost: x\r\n\r\n"},
	{name: "HTTP/2.0", req: "GET / HTTP/2.0\r\nHost: x\r\n\r\n"},
	{name: "HTTP/0.9 request", req: "GET /\r\n\r\n"},
	{name: "lowercase method", req: "get / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "non-token method", req: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "empty method", req: " / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "NUL in target", req: "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "invalid percent escape", req: "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "percent escape in query", req: "GET /a?b=%zz HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "fragment in target", req: "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "relative target", req: "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "asterisk-form GET", req: "GET * HTTP/1.1\r\nHost: x\r\n\r\n", stricter: whyAsterisk},
	{name: "asterisk-form OPTIONS", req: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "blank line before the first request", req: "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "CRLF after a POST body", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "CRLF after a PUT body", req: "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"},
	{name: "CONNECT", req: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", stricter: whyConnect},

	// Absolute-form and Host.
	{name: "absolute-form overrides Host", req: "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form without path", req: "GET http://example.com HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form with query, no path", req: "GET http://example.com?q=1 HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form uppercase scheme", req: "GET HTTPS://Example.com:8443/x HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form with userinfo", req: "GET http://user:pw@example.com/ HTTP/1.1\r\nHost: other\r\n\r\n", stricter: whyUserinfo},
	{name: "absolute-form other scheme", req: "GET ftp://example.com/ HTTP/1.1\r\nHost: other\r\n\r\n", stricter: whyScheme},
	{name: "absolute-form empty authority", req: "GET http:///x HTTP/1.1\r\nHost: other\r\n\r\n", stricter: whyNoAuth},
	{name: "absolute-form, no Host field", req: "GET http://example.com/ HTTP/1.1\r\n\r\n"},
	{name: "absolute-form bad port", req: "GET http://example.com:8x/ HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form bad host byte", req: "GET http://exa{mple.com/ HTTP/1.1\r\nHost: other\r\n\r\n"},
	{name: "absolute-form, invalid Host field", req: "GET http://example.com/ HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{name: "Host with space", req: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{name: "Host with slash", req: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{name: "two Host fields", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "missing Host", req: "GET / HTTP/1.1\r\n\r\n"},
	{name: "empty Host", req: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{name: "HTTP/1.0 without Host", req: "GET / HTTP/1.0\r\n\r\n"},
	{name: "IPv6 Host", req: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},

	// Expect.
	{name: "Expect 100-continue", req: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "Expect unknown", req: "GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"},
	{name: "Expect 100-continue in a list", req: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\nContent-Length: 3\r\n\r\nabc", stricter: whyExpectTok},
}

// outcome is one response on a connection: its status, its body (for 2xx
// the echo of what the handler saw), and whether the handler answered (not
// the server's parser, nor the front door itself).
type outcome struct {
	status  int
	body    string
	handled bool
}

func (o outcome) accepted() bool { return o.status >= 200 && o.status < 300 }

// echoRequest answers with what it saw: method, request URI, host (for
// requests through the front door, the X-Forwarded-Host it set) and the
// body. A body that fails to read is a 400, as the front door answers.
func echoRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set(HeaderRegion, "westeurope")
	host := r.Host
	if r.Header.Get(HeaderFDID) != "" {
		host = r.Header.Get("X-Forwarded-Host")
	}
	fmt.Fprintf(w, "%s %s host=%q body=%q", r.Method, r.URL.RequestURI(), host, body)
}

// exchange writes payload on a new connection, half-closes it and reads
// every final response until the server closes.
func exchange(t *testing.T, addr, payload string) []outcome {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	var out []outcome
	for len(out) < 8 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 200 {
			continue // 100 Continue
		}
		out = append(out, outcome{status: resp.StatusCode, body: string(b), handled: resp.Header.Get(HeaderRegion) != ""})
	}
	return out
}

// TestParserDifferential sends each case to net/http's server (the
// reference: its full server-side checks apply) and to the front door,
// whose region is that same server. Both must accept or reject alike,
// and what the handler sees of an accepted request (method, URI, host,
// body, and the requests that follow on the connection) must be the same:
// a framing difference shows up as a different body or a different next
// request. A documented stricter row is checked to be stricter.
func TestParserDifferential(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &http.Server{Handler: http.HandlerFunc(echoRequest), ReadHeaderTimeout: 5 * time.Second}
	go ref.Serve(ln)
	t.Cleanup(func() { ref.Close() })
	refAddr := ln.Addr().String()
	// The fake clock keeps probes quiet: routing fails open onto the only
	// region.
	fd := start(t, Config{Topology: topo(nil, "westeurope"), Origins: []Origin{{Name: "westeurope", URL: "http://" + refAddr}},
		Clock: health.NewFakeClock(time.Unix(0, 0))})
	if len(parserCases) < 30 {
		t.Fatalf("%d cases, want at least 30", len(parserCases))
	}
	same, stricter := 0, 0
	for _, tc := range parserCases {
		t.Run(tc.name, func(t *testing.T) {
			want := exchange(t, refAddr, tc.req)
			answered := metric(t, fd.reg, "geostamp_frontdoor_tries_total", "outcome", "answer")
			got := exchange(t, fd.Addr(), tc.req)
			// A request the front door forwards but the region's parser
			// rejects is a laxness the outcomes alone would hide: every
			// forwarded request must be accepted or reach the handler.
			passed := 0
			for _, o := range got {
				if o.accepted() || o.handled {
					passed++
				}
			}
			if n := metric(t, fd.reg, "geostamp_frontdoor_tries_total", "outcome", "answer") - answered; int(n) != passed {
				t.Errorf("the front door forwarded %v requests, %d passed the region's parser (%v): it accepted one net/http rejects", n, passed, got)
			}
			if tc.stricter != "" {
				stricter++
				if len(want) == 0 || !want[0].accepted() {
					t.Errorf("net/http no longer accepts this (%v): drop the stricter note %q", want, tc.stricter)
				}
				if len(got) == 0 || got[0].accepted() {
					t.Errorf("front door: %v, want a rejection (%s)", got, tc.stricter)
				}
				return
			}
			same++
			if len(got) != len(want) {
				t.Fatalf("front door answered %v, net/http %v", got, want)
			}
			for i := range want {
				if got[i].accepted() != want[i].accepted() || got[i].accepted() && got[i].body != want[i].body {
					t.Errorf("response %d: front door %v, net/http %v", i, got[i], want[i])
				}
			}
		})
	}
	t.Logf("%d cases: %d with net/http's decision, %d documented stricter", len(parserCases), same, stricter)
}
