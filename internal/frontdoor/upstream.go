package frontdoor

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/geostamp/geostamp/internal/health"
)

// Response body framings.
type bodyMode uint8

const (
	bodyNone    bodyMode = iota // HEAD, 1xx, 204, 304
	bodyLength                  // Content-Length
	bodyChunked                 // Transfer-Encoding: chunked
	bodyClose                   // until the region closes the connection
)

// maxResponseHead bounds a region's response head.
const maxResponseHead = 64 << 10

var (
	errBadResponse = errors.New("malformed response from region")
	errHeadTooBig  = errors.New("response head too large")
)

// writeError marks a failure to write to the client.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing to the client: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// origin is one region's ingress with its pool of idle connections.
type origin struct {
	name     string
	spanName string // of a try's span: "attempt NAME"
	idx      int
	addr     string // host:port dialled
	host     string // Host header
	prefix   string // path prefix of the origin URL, without trailing slash
	https    bool
	tls      *tls.Config

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	closed bool
}

func newOrigin(idx int, o Origin, base *tls.Config) (*origin, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, err
	}
	org := &origin{name: o.Name, spanName: "attempt " + o.Name, idx: idx, host: u.Host, https: u.Scheme == "https", prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
	org.addr = u.Host
	if u.Port() == "" {
		port := "80"
		if org.https {
			port = "443"
		}
		org.addr = net.JoinHostPort(u.Hostname(), port)
	}
	if org.https {
		if base != nil {
			org.tls = base.Clone()
		} else {
			org.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if org.tls.ServerName == "" {
			org.tls.ServerName = u.Hostname()
		}
		org.tls.NextProtos = []string{"http/1.1"}
	}
	return org, nil
}

// upConn is a connection to a region, used by one request at a time.
type upConn struct {
	o         *origin
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	reused    bool
	idleSince time.Time
	head      []byte  // the response head
	fields    []field // end-to-end fields of the response, into head
	scratch   [64]byte

	status   int
	reason   string
	mode     bodyMode
	declared int64 // Content-Length, -1 when none
	keep     bool  // reusable once the body is read
}

// get returns an idle connection, or dials one (fresh forces a dial).
func (o *origin) get(fresh bool, deadline time.Time) (*upConn, error) {
	if !fresh {
		o.mu.Lock()
		if n := len(o.idle); n > 0 {
			uc := o.idle[n-1]
			o.idle[n-1] = nil
			o.idle = o.idle[:n-1]
			o.mu.Unlock()
			uc.reused = true
			return uc, nil
		}
		o.mu.Unlock()
	}
	d := net.Dialer{Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.Dial("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if o.https {
		tc := tls.Client(nc, o.tls)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return &upConn{o: o, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}, nil
}

// release returns the connection to the pool, or closes it.
func (uc *upConn) release(now time.Time) {
	if !uc.keep {
		uc.nc.Close()
		return
	}
	o := uc.o
	uc.idleSince = now
	uc.fields = uc.fields[:0]
	o.mu.Lock()
	if o.closed || len(o.idle) >= maxIdlePerOrigin {
		o.mu.Unlock()
		uc.nc.Close()
		return
	}
	o.idle = append(o.idle, uc)
	o.mu.Unlock()
}

func (uc *upConn) close() { uc.nc.Close() }

// prune closes idle connections unused for upstreamIdle.
func (o *origin) prune(now time.Time) {
	o.mu.Lock()
	k := 0
	for k < len(o.idle) && now.Sub(o.idle[k].idleSince) > upstreamIdle {
		o.idle[k].nc.Close()
		k++
	}
	if k > 0 {
		o.idle = append(o.idle[:0], o.idle[k:]...)
	}
	o.mu.Unlock()
}

func (o *origin) closeIdle() {
	o.mu.Lock()
	o.closed = true
	for _, uc := range o.idle {
		uc.nc.Close()
	}
	o.idle = nil
	o.mu.Unlock()
}

// attempt sends the request to o and reads the response head. On error it
// returns the outcome to report (connect error or timeout), or a
// *clientBodyError when the client's body failed; sent is false when no
// byte of the request can have reached the region (the dial failed), which
// makes any request safe to send elsewhere. A pooled connection that turns
// out closed (the region closed it while idle) is replaced by a fresh one
// once, for requests that may be repeated.
func (f *FrontDoor) attempt(o *origin, in *inbound, rb *reqBody, deadline time.Time, parent trace.SpanContext) (uc *upConn, oc health.Outcome, sent bool, err error) {
	for fresh := false; ; fresh = true {
		uc, err := o.get(fresh, deadline)
		if err != nil {
			if isTimeout(err) {
				return nil, health.Timeout, fresh, err
			}
			return nil, health.ConnectError, fresh, err
		}
		uc.nc.SetDeadline(deadline)
		got := false
		err = uc.writeRequest(f, in, rb, parent)
		if err == nil {
			got, err = uc.readHead(in.method)
		}
		if err == nil {
			return uc, health.Success, true, nil
		}
		uc.close()
		var cbe *clientBodyError
		switch {
		case errors.As(err, &cbe):
			return nil, health.Success, true, err
		case isTimeout(err):
			return nil, health.Timeout, true, err
		case uc.reused && !got && rb.replayable && in.retryable() && !fresh:
			continue // a stale pooled connection: try a new one
		}
		return nil, health.ConnectError, true, err
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// writeRequest writes the request head and body.
func (uc *upConn) writeRequest(f *FrontDoor, in *inbound, rb *reqBody, parent trace.SpanContext) error {
	bw := uc.bw
	o := uc.o
	bw.WriteString(in.method)
	bw.WriteByte(' ')
	bw.WriteString(o.prefix)
	bw.WriteString(in.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(o.host)
	bw.WriteString("\r\n")
	for i := range in.fields {
		fl := &in.fields[i]
		bw.WriteString(fl.name)
		bw.WriteString(": ")
		bw.WriteString(fl.value)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-For: ")
	if in.xff != "" {
		bw.WriteString(in.xff)
		bw.WriteString(", ")
	}
	if in.peer.IsValid() {
		bw.Write(in.peer.AppendTo(uc.scratch[:0]))
	} else {
		bw.WriteString("unknown")
	}
	if in.tls {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if in.host != "" {
		bw.WriteString("X-Forwarded-Host: ")
		bw.WriteString(in.host)
		bw.WriteString("\r\n")
	}
	writeTraceContext(bw, in, parent, uc.scratch[:0])
	if f.s.FDID != "" {
		bw.WriteString("X-Geostamp-FDID: ")
		bw.WriteString(f.s.FDID)
		bw.WriteString("\r\n")
	}
	chunked := false
	switch {
	case rb.length >= 0 && (rb.length > 0 || in.bodyLen != 0 || methodHasBody(in.method)):
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(uc.scratch[:0], rb.length, 10))
		bw.WriteString("\r\n")
	case rb.length < 0:
		chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	if chunked {
		if len(rb.buf) > 0 {
			writeChunk(bw, rb.buf, uc.scratch[:0])
		}
	} else if len(rb.buf) > 0 {
		bw.Write(rb.buf)
	}
	if rb.rest == nil {
		if chunked {
			bw.WriteString("0\r\n\r\n")
		}
		return bw.Flush()
	}
	// A streamed body goes at the client's pace: each write is bounded by
	// the body timeout, and the per-try timeout starts once it is sent.
	uc.nc.SetDeadline(time.Now().Add(f.s.BodyTimeout))
	if err := uc.streamBody(rb, chunked); err != nil {
		return err
	}
	if chunked {
		bw.WriteString("0\r\n\r\n")
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	uc.nc.SetDeadline(time.Now().Add(f.perTry))
	return nil
}

func methodHasBody(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" }

func writeChunk(bw *bufio.Writer, p []byte, scratch []byte) {
	bw.Write(strconv.AppendUint(scratch, uint64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	bw.WriteString("\r\n")
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streamBody copies the body beyond rb.buf from the client to the region.
func (uc *upConn) streamBody(rb *reqBody, chunked bool) error {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	left := int64(-1)
	if rb.length >= 0 {
		left = rb.length - int64(len(rb.buf))
	}
	for left != 0 {
		p := buf
		if left > 0 && int64(len(p)) > left {
			p = p[:left]
		}
		n, err := rb.rest.Read(p)
		if n > 0 {
			if chunked {
				writeChunk(uc.bw, p[:n], uc.scratch[:0])
			} else if _, werr := uc.bw.Write(p[:n]); werr != nil {
				return werr
			}
			if left > 0 {
				left -= int64(n)
			}
		}
		if err == io.EOF {
			if left > 0 {
				return &clientBodyError{err: io.ErrUnexpectedEOF}
			}
			return nil
		}
		if err != nil {
			var cbe *clientBodyError
			if errors.As(err, &cbe) {
				return err
			}
			return &clientBodyError{err: err}
		}
	}
	return nil
}

// readLine appends one line (without its line end) to uc.head and returns
// its start offset; limit bounds the whole head.
func readLine(br *bufio.Reader, head *[]byte, limit int) (int, error) {
	start := len(*head)
	for {
		b, err := br.ReadSlice('\n')
		if len(*head)+len(b) > limit {
			return start, errHeadTooBig
		}
		*head = append(*head, b...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return start, err
		}
		h := *head
		h = h[:len(h)-1]
		if len(h) > start && h[len(h)-1] == '\r' {
			h = h[:len(h)-1]
		}
		*head = h
		return start, nil
	}
}

// readHead reads the response head, skipping 1xx responses. got reports
// whether any byte arrived (a reused connection that got nothing was
// probably closed by the region while idle).
func (uc *upConn) readHead(method string) (got bool, err error) {
	for {
		uc.head = uc.head[:0]
		uc.fields = uc.fields[:0]
		start, err := readLine(uc.br, &uc.head, maxResponseHead)
		if err != nil {
			return len(uc.head) > 0, err
		}
		got = true
		line := uc.head[start:]
		// HTTP/1.x SP 3DIGIT [SP reason]
		if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
			!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
			return true, errBadResponse
		}
		http10 := line[7] == '0'
		uc.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
		if uc.status < 100 {
			return true, errBadResponse
		}
		uc.reason = ""
		if len(line) > 13 {
			uc.reason = bstr(line[13:])
		}
		uc.keep = !http10
		uc.declared = -1
		chunked, te := false, false
		for {
			start, err := readLine(uc.br, &uc.head, maxResponseHead)
			if err != nil {
				return true, err
			}
			line := uc.head[start:]
			if len(line) == 0 {
				break
			}
			colon := indexByte(line, ':')
			if colon <= 0 {
				return true, errBadResponse
			}
			name := bstr(line[:colon])
			value := bstr(trimOWS(line[colon+1:]))
			switch classify(name) {
			case hdrOther, hdrCookie, hdrIdemKey, hdrXFF, hdrXFProto, hdrXFHost, hdrDebug, hdrFDID, hdrHost, hdrExpect, hdrTraceparent, hdrTracestate:
				uc.fields = append(uc.fields, field{name, value})
			case hdrContentLength:
				n, ok := parseLength(value)
				if !ok || (uc.declared >= 0 && uc.declared != n) {
					return true, errBadResponse
				}
				uc.declared = n
			case hdrTransferEncoding:
				te = true
				chunked = lastTokenIs(value, "chunked")
			case hdrConnection:
				if hasToken(value, "close") {
					uc.keep = false
				} else if http10 && hasToken(value, "keep-alive") {
					uc.keep = true
				}
			}
		}
		if uc.status >= 100 && uc.status < 200 {
			if uc.status == 101 {
				return true, errBadResponse // no upgrade was asked for
			}
			continue
		}
		switch {
		case method == "HEAD" || uc.status == 204 || uc.status == 304:
			uc.mode = bodyNone
			if uc.status == 204 {
				uc.declared = -1
			}
		case te && chunked:
			uc.mode = bodyChunked
			uc.declared = -1
		case te:
			uc.mode = bodyClose
			uc.declared = -1
			uc.keep = false
		case uc.declared >= 0:
			uc.mode = bodyLength
		default:
			uc.mode = bodyClose
			uc.keep = false
		}
		return true, nil
	}
}

// copyBody streams the response body to s. Errors writing to s are
// *writeError; others come from the region.
func (uc *upConn) copyBody(s sink, timeout time.Duration) (int64, error) {
	switch uc.mode {
	case bodyNone:
		return 0, nil
	case bodyLength:
		return uc.copyN(s, uc.declared, timeout)
	case bodyClose:
		n, err := uc.copyN(s, -1, timeout)
		if err == io.EOF {
			err = nil
		}
		uc.keep = false
		return n, err
	}
	var total int64
	for {
		uc.head = uc.head[:0]
		if uc.br.Buffered() == 0 {
			if err := uc.wait(s, timeout); err != nil {
				return total, err
			}
		}
		line, err := uc.br.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		size, ok := parseChunkLine(line)
		if !ok {
			return total, errBadResponse
		}
		if size == 0 {
			for { // trailers, dropped
				uc.head = uc.head[:0]
				start, err := readLine(uc.br, &uc.head, maxResponseHead)
				if err != nil {
					return total, err
				}
				if len(uc.head) == start {
					return total, nil
				}
			}
		}
		n, err := uc.copyN(s, size, timeout)
		total += n
		if err != nil {
			return total, err
		}
		crlf, err := uc.br.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		if len(crlf) != 2 || crlf[0] != '\r' {
			return total, errBadResponse // chunk data ends with CRLF, as net/http's client requires
		}
	}
}

// wait flushes s (the client should see what the region sent so far) and
// blocks until the region sends more, within timeout.
func (uc *upConn) wait(s sink, timeout time.Duration) error {
	if err := s.flush(); err != nil {
		return &writeError{err}
	}
	uc.nc.SetReadDeadline(time.Now().Add(timeout))
	_, err := uc.br.Peek(1)
	return err
}

// copyN copies n bytes (n < 0: until EOF) of body to s.
func (uc *upConn) copyN(s sink, n int64, timeout time.Duration) (int64, error) {
	var total int64
	for n != 0 {
		if uc.br.Buffered() == 0 {
			if err := uc.wait(s, timeout); err != nil {
				if err == io.EOF && n > 0 {
					err = io.ErrUnexpectedEOF
				}
				return total, err
			}
		}
		k := uc.br.Buffered()
		if n > 0 && int64(k) > n {
			k = int(n)
		}
		p, _ := uc.br.Peek(k)
		if err := s.write(p); err != nil {
			return total, &writeError{err}
		}
		uc.br.Discard(k)
		total += int64(k)
		if n > 0 {
			n -= int64(k)
		}
	}
	return total, nil
}

// discard drops a response that will not be delivered (a retried 503):
// small bodies already received are skipped so the connection can be
// reused, others close it.
func (uc *upConn) discard() {
	if uc.mode == bodyNone || uc.mode == bodyLength && uc.declared <= int64(uc.br.Buffered()) {
		uc.br.Discard(int(max(uc.declared, 0)))
		uc.release(time.Now())
		return
	}
	uc.close()
}

// String formats an origin for logs.
func (o *origin) String() string { return fmt.Sprintf("%s(%s)", o.name, o.addr) }
