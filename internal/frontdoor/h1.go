package frontdoor

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// h1server is the lean HTTP/1.1 server of the plain listener: one
// goroutine per connection that parses requests itself and writes
// responses through a bufio.Writer, with no allocation per request on the
// common path.
type h1server struct {
	f      *FrontDoor
	mu     sync.Mutex
	lns    []net.Listener
	conns  map[*h1conn]struct{}
	wg     sync.WaitGroup
	closed bool          // shutdown began: accept nothing more
	work   chan *h1conn  // hands new connections to idle workers
	stop   chan struct{} // closed by shutdown: idle workers exit
}

// Connection states, for shutdown.
const (
	stateIdle int32 = iota
	stateActive
)

// listen registers a listener; call it before serve, so that a shutdown
// that comes before serve starts still closes it.
func (s *h1server) listen(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return
	}
	s.lns = append(s.lns, ln)
	if s.conns == nil {
		s.conns = map[*h1conn]struct{}{}
	}
}

func (s *h1server) serve(ln net.Listener, isTLS bool) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.f.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, as net/http.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.f.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newH1conn(s.f, nc, isTLS)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			c.release()
			return
		}
		s.conns[c] = struct{}{}
		select {
		case s.work <- c: // an idle worker takes it
		default:
			s.wg.Add(1) // under mu: never after shutdown's Wait began
			go func() {
				defer s.wg.Done()
				s.worker(c)
			}()
		}
		s.mu.Unlock()
	}
}

// workerIdle is how long a connection goroutine waits for a new
// connection after its own closed. Reusing goroutines saves a new stack and
// its growth per connection, which matters to clients that do not keep
// connections alive.
const workerIdle = 10 * time.Second

// worker serves c, then further connections handed over on s.work.
func (s *h1server) worker(c *h1conn) {
	var idle *time.Timer
	for {
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if s.f.closing.Load() {
			return
		}
		if idle == nil {
			idle = time.NewTimer(workerIdle)
		} else {
			idle.Reset(workerIdle)
		}
		select {
		case c = <-s.work:
		case <-idle.C:
			return
		case <-s.stop:
			return
		}
	}
}

// shutdown stops accepting, closes idle connections (repeatedly, as busy
// ones become idle) and waits for the others until ctx ends, then closes
// every connection.
func (s *h1server) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	close(s.stop)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			if c.state.Load() == stateIdle {
				c.nc.Close()
			}
		}
		s.mu.Unlock()
		select {
		case <-done:
			return
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			<-done
			return
		case <-tick.C:
		}
	}
}

// h1conn is one client connection.
type h1conn struct {
	f        *FrontDoor
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	peer     netip.Addr
	isTLS    bool
	state    atomic.Int32
	deadline time.Time

	hbuf       []byte // the request head of the current request
	in         inbound
	body       h1body
	chunked    bool // the response body is chunked
	closeAfter bool // close once the response is written
	afterPOST  bool // the last request was a POST (see readHead)
	scratch    [32]byte
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}
)

func newH1conn(f *FrontDoor, nc net.Conn, isTLS bool) *h1conn {
	c := &h1conn{f: f, nc: nc, isTLS: isTLS}
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.peer = ta.AddrPort().Addr().Unmap()
	} else if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.peer = ap.Addr().Unmap()
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(nc)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	c.body.c = c
	return c
}

// release returns the buffers to their pools once the connection is
// closed.
func (c *h1conn) release() {
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.br, c.bw = nil, nil
}

// setDeadline moves the connection's deadline to now+d. Deadlines only
// bound misbehaving clients, so a later deadline is set only when it moves
// by more than a second, which saves a system call on most requests.
func (c *h1conn) setDeadline(now time.Time, d time.Duration) {
	want := now.Add(d)
	if want.Before(c.deadline) || want.Sub(c.deadline) > time.Second {
		c.nc.SetDeadline(want)
		c.deadline = want
	}
}

func (c *h1conn) serve() {
	defer func() {
		c.nc.Close()
		c.release()
	}()
	f := c.f
	busy := max(f.idle, f.s.BodyTimeout)
	for {
		c.state.Store(stateIdle)
		if f.closing.Load() {
			return
		}
		c.setDeadline(time.Now(), f.idle)
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.state.Store(stateActive)
		now := time.Now()
		if !headBuffered(c.br) {
			c.setDeadline(now, f.readHeader) // slow clients get ReadHeaderTimeout
		}
		status, err := c.readRequest()
		if err != nil {
			return // the client went away or timed out mid-head
		}
		if status != 0 {
			c.fail(status)
			return
		}
		c.setDeadline(now, busy)
		c.chunked, c.closeAfter = false, !c.in.keepAlive
		err = f.serve(&c.in, c)
		if err != nil || c.closeAfter || !c.body.done {
			if c.bw.Flush() == nil && !c.body.done {
				c.lingerClose()
			}
			return
		}
		// Pipelined requests are answered together.
		if c.br.Buffered() == 0 {
			if c.bw.Flush() != nil {
				return
			}
		}
	}
}

// headBuffered reports whether a whole request head is in br's buffer.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	for i := 0; ; {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' || i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return true
		}
	}
}

// readRequest reads and parses the next request head into c.in (see
// readHead and parse).
func (c *h1conn) readRequest() (status int, err error) {
	status, err = c.readHead()
	if err != nil || status != 0 {
		return status, err
	}
	status = c.parse()
	c.afterPOST = c.in.method == http.MethodPost
	return status, nil
}

// readHead reads the request head into c.hbuf: the request line and the
// header lines with their line ends, without the blank line. status is 431
// when it exceeds MaxHeaderBytes, 400 for a blank line before the request
// line; err is a read error.
func (c *h1conn) readHead() (status int, err error) {
	c.hbuf = c.hbuf[:0]
	if c.afterPOST {
		// Up to two stray CRLFs after a POST body are ignored, exactly as
		// net/http does (the robustness rule of RFC 9112 §2.2 exists for
		// them); any other blank line before a request line is an error.
		b, _ := c.br.Peek(min(4, c.br.Buffered()))
		n := 0
		for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
			n++
		}
		c.br.Discard(n)
	}
	for {
		start := len(c.hbuf)
		for {
			b, err := c.br.ReadSlice('\n')
			if len(c.hbuf)+len(b) > c.f.maxHeader {
				return http.StatusRequestHeaderFieldsTooLarge, nil
			}
			c.hbuf = append(c.hbuf, b...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return 0, err
			}
			break
		}
		line := c.hbuf[start:]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if start == 0 {
				return http.StatusBadRequest, nil
			}
			c.hbuf = c.hbuf[:start]
			return 0, nil
		}
	}
}

// cutLine splits the first line off b, without its line end.
func cutLine(b []byte) (line, rest []byte) {
	i := indexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// methodName returns a constant string for the common methods, so that
// the request's method outlives the head buffer.
func methodName(b []byte) string {
	switch string(b) {
	case "GET":
		return http.MethodGet
	case "HEAD":
		return http.MethodHead
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	}
	return bstr(b)
}

// parse parses c.hbuf into c.in; it returns 0, or the status to answer a
// request that must not be forwarded. It is at least as strict as
// net/http's server (TestParserDifferential), and stricter where that
// closes a smuggling path (Content-Length with Transfer-Encoding,
// Transfer-Encoding in HTTP/1.0, obs-fold).
func (c *h1conn) parse() int {
	in := &c.in
	*in = inbound{fields: in.fields[:0], connTokens: in.connTokens[:0], peer: c.peer, tls: c.isTLS}
	line, rest := cutLine(c.hbuf)

	// Request line: method SP request-target SP HTTP-version.
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return http.StatusBadRequest
	}
	in.method = methodName(line[:sp1])
	r := line[sp1+1:]
	sp2 := indexByte(r, ' ')
	if sp2 <= 0 {
		return http.StatusBadRequest
	}
	target, version := r[:sp2], r[sp2+1:]
	for _, ch := range target {
		if ch <= ' ' || ch == 0x7f {
			return http.StatusBadRequest
		}
	}
	switch {
	case string(version) == "HTTP/1.1":
	case string(version) == "HTTP/1.0":
		in.http10 = true
	case len(version) == 8 && string(version[:5]) == "HTTP/" && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		if version[5] != '1' {
			return http.StatusHTTPVersionNotSupported
		}
		// A higher minor version is processed as HTTP/1.1 (RFC 9110 §2.5).
	default:
		return http.StatusBadRequest
	}
	if in.method == http.MethodConnect {
		return http.StatusNotImplemented
	}
	var absHost string
	switch {
	case target[0] == '/':
		if !validPath(target) {
			return http.StatusBadRequest
		}
		in.target = bstr(target)
	case len(target) == 1 && target[0] == '*' && in.method == http.MethodOptions:
		in.target = "*"
	case hasPrefixFold(target, "http://") || hasPrefixFold(target, "https://"):
		// absolute-form: the authority replaces Host (RFC 9112 §3.2.2).
		rest := target[indexByte(target, ':')+3:]
		end := len(rest)
		for i, ch := range rest {
			if ch == '/' || ch == '?' {
				end = i
				break
			}
		}
		if !validAuthority(rest[:end]) {
			return http.StatusBadRequest
		}
		absHost = bstr(rest[:end])
		switch path := rest[end:]; {
		case len(path) == 0:
			in.target = "/"
		case path[0] == '?':
			in.target = "/" + bstr(path) // rare: allocating is fine
		default:
			in.target = bstr(path)
		}
		if !validPath(rest[end:]) {
			return http.StatusBadRequest
		}
	default:
		return http.StatusBadRequest
	}

	hosts := 0
	cl, clText := int64(-1), ""
	te, expect := false, false
	for len(rest) > 0 {
		line, rest = cutLine(rest)
		colon := indexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return http.StatusBadRequest // no name, whitespace before the colon, obs-fold
		}
		v := trimOWS(line[colon+1:])
		if !validValue(v) {
			return http.StatusBadRequest
		}
		name, value := bstr(line[:colon]), bstr(v)
		switch in.admit(name, value, c.f.affinity) {
		case hdrHost:
			if !validHost(value) {
				return http.StatusBadRequest
			}
			hosts++
			in.host = value
		case hdrContentLength:
			// Repeats must be the same text, as net/http requires.
			if cl >= 0 && value != clText {
				return http.StatusBadRequest
			}
			n, ok := parseLength(value)
			if !ok {
				return http.StatusBadRequest
			}
			cl, clText = n, value
		case hdrTransferEncoding:
			if te {
				return http.StatusBadRequest
			}
			te = true
			if !strings.EqualFold(value, "chunked") {
				if lastTokenIs(value, "chunked") {
					return http.StatusNotImplemented // codings other than chunked
				}
				return http.StatusBadRequest
			}
		case hdrExpect:
			if !strings.EqualFold(value, "100-continue") {
				return http.StatusExpectationFailed
			}
			expect = true
		}
	}
	if hosts > 1 || hosts == 0 && !in.http10 {
		return http.StatusBadRequest // RFC 9112 §3.2, even in absolute-form
	}
	if absHost != "" {
		in.host = absHost
	}
	if te && (cl >= 0 || in.http10) {
		return http.StatusBadRequest // request smuggling guard (RFC 9112 §6.1)
	}
	if in.http10 {
		in.keepAlive = in.connKeep && !in.connClose
	} else {
		in.keepAlive = !in.connClose
	}
	in.dropFieldsNamed()
	b := &c.body
	*b = h1body{c: c, expect: expect}
	switch {
	case te:
		in.bodyLen = -1
		b.chunked = true
	case cl > 0:
		in.bodyLen = cl
		b.left = cl
	default:
		b.done = true
		b.expect = false
	}
	if in.bodyLen != 0 {
		in.body = b
	}
	return 0
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(bstr(b[:len(prefix)]), prefix)
}

// fail answers a request that cannot be forwarded and closes the
// connection, after letting the client read the answer.
func (c *h1conn) fail(status int) {
	reason := "malformed"
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		reason = "header_too_large"
	case http.StatusNotImplemented:
		reason = "not_implemented"
	case http.StatusHTTPVersionNotSupported:
		reason = "bad_version"
	case http.StatusExpectationFailed:
		reason = "bad_expect"
	}
	f := c.f
	f.m.rejected.WithLabelValues(reason).Inc()
	f.m.count(len(f.origins), status)
	if f.access != nil {
		// The request was not (fully) parsed: log only what is known.
		in := inbound{peer: c.peer, tls: c.isTLS}
		rec := record{start: time.Now(), client: c.peer, status: status, region: -1, reason: reason}
		f.access.write(f, &in, &rec)
	}
	msg := http.StatusText(status)
	bw := c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteString(" ")
	bw.WriteString(msg)
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\nConnection: close\r\n\r\n")
	bw.WriteString(msg)
	bw.WriteString("\n")
	if bw.Flush() != nil {
		return
	}
	c.lingerClose()
}

// lingerClose half-closes the connection and discards what the client
// still sends for a moment, so that closing with unread data does not
// reset the connection before the client has read the answer.
func (c *h1conn) lingerClose() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c.nc, 256<<10)
}

// head implements sink.
func (c *h1conn) head(status int, reason string, fields, extra []field, length int64, bodyless bool) error {
	bw := c.bw
	if c.f.closing.Load() {
		c.closeAfter = true
	}
	withLength := length >= 0 && status != http.StatusNoContent && status >= 200
	if !bodyless && !withLength {
		if c.in.http10 {
			c.closeAfter = true // the end of the body is the end of the connection
		} else {
			c.chunked = true
		}
	}
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(c.scratch[:0], int64(status), 10))
	bw.WriteByte(' ')
	if reason == "" {
		reason = http.StatusText(status)
	}
	bw.WriteString(reason)
	bw.WriteString("\r\n")
	for i := range fields {
		bw.WriteString(fields[i].name)
		bw.WriteString(": ")
		bw.WriteString(fields[i].value)
		bw.WriteString("\r\n")
	}
	for i := range extra {
		bw.WriteString(extra[i].name)
		bw.WriteString(": ")
		bw.WriteString(extra[i].value)
		bw.WriteString("\r\n")
	}
	if withLength {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(c.scratch[:0], length, 10))
		bw.WriteString("\r\n")
	} else if c.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case c.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case c.in.http10:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// write implements sink.
func (c *h1conn) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if c.chunked {
		writeChunk(c.bw, p, c.scratch[:0])
		return nil
	}
	_, err := c.bw.Write(p)
	return err
}

// flush implements sink.
func (c *h1conn) flush() error { return c.bw.Flush() }

// end implements sink.
func (c *h1conn) end() error {
	if c.chunked {
		_, err := c.bw.WriteString("0\r\n\r\n")
		return err
	}
	return nil
}

var errMalformedChunk = errors.New("malformed chunked encoding")

// h1body reads a request body from the client connection: Content-Length
// or chunked, sending "100 Continue" first when the client asked for it.
type h1body struct {
	c        *h1conn
	chunked  bool
	left     int64 // bytes left (length) or left in the current chunk
	needCRLF bool  // a chunk's data was read; its CRLF was not
	done     bool  // the whole body was read
	expect   bool
}

func (b *h1body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	c := b.c
	if b.expect {
		b.expect = false
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	if !b.chunked {
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := c.br.Read(p)
		b.left -= int64(n)
		if b.left == 0 {
			b.done = true
			return n, nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	if b.needCRLF {
		// The chunk's data ends with exactly CRLF (net/http: not a bare LF).
		crlf, err := c.br.Peek(2)
		if err != nil {
			return 0, orMalformed(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return 0, errMalformedChunk
		}
		c.br.Discard(2)
		b.needCRLF = false
	}
	if b.left == 0 {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, orMalformed(err)
		}
		size, ok := parseChunkLine(line)
		if !ok {
			return 0, errMalformedChunk
		}
		if size == 0 {
			// Trailer fields: checked like header fields, within
			// MaxHeaderBytes, then dropped.
			total := 0
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return 0, orMalformed(err)
				}
				if total += len(line); total > c.f.maxHeader {
					return 0, errMalformedChunk
				}
				n := len(line)
				if n < 2 || line[n-2] != '\r' {
					return 0, errMalformedChunk // CRLF only, as chunk lines
				}
				if n == 2 {
					b.done = true
					return 0, io.EOF
				}
				if !validFieldLine(line[:n-2]) {
					return 0, errMalformedChunk
				}
			}
		}
		b.left = size
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := c.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.needCRLF = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func orMalformed(err error) error {
	if err == bufio.ErrBufferFull {
		return errMalformedChunk
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
