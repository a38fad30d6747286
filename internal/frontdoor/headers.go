package frontdoor

import (
	"bytes"
	"net/netip"
	"strings"
	"unsafe"
)

// hdr classifies the header fields the front door treats specially.
type hdr uint8

const (
	hdrOther hdr = iota
	hdrHost
	hdrContentLength
	hdrTransferEncoding
	hdrConnection
	hdrHopByHop // Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authorization
	hdrExpect
	hdrCookie
	hdrXFF
	hdrXFProto
	hdrXFHost
	hdrDebug
	hdrIdemKey
	hdrFDID
	hdrTraceparent // W3C trace context: continued, or forwarded as received
	hdrTracestate
)

// classify names a field case-insensitively without allocating.
func classify(name string) hdr {
	switch len(name) {
	case 2:
		if strings.EqualFold(name, "te") {
			return hdrHopByHop
		}
	case 4:
		if strings.EqualFold(name, "host") {
			return hdrHost
		}
	case 6:
		if strings.EqualFold(name, "cookie") {
			return hdrCookie
		}
		if strings.EqualFold(name, "expect") {
			return hdrExpect
		}
	case 7:
		if strings.EqualFold(name, "trailer") || strings.EqualFold(name, "upgrade") {
			return hdrHopByHop
		}
	case 10:
		if strings.EqualFold(name, "connection") {
			return hdrConnection
		}
		if strings.EqualFold(name, "keep-alive") {
			return hdrHopByHop
		}
		if strings.EqualFold(name, "tracestate") {
			return hdrTracestate
		}
	case 11:
		if strings.EqualFold(name, "traceparent") {
			return hdrTraceparent
		}
	case 14:
		if strings.EqualFold(name, "content-length") {
			return hdrContentLength
		}
	case 15:
		if strings.EqualFold(name, "x-forwarded-for") {
			return hdrXFF
		}
		if strings.EqualFold(name, "idempotency-key") {
			return hdrIdemKey
		}
		if strings.EqualFold(name, HeaderFDID) {
			return hdrFDID
		}
	case 16:
		if strings.EqualFold(name, HeaderDebug) {
			return hdrDebug
		}
		if strings.EqualFold(name, "x-forwarded-host") {
			return hdrXFHost
		}
		if strings.EqualFold(name, "proxy-connection") {
			return hdrHopByHop
		}
	case 17:
		if strings.EqualFold(name, "transfer-encoding") {
			return hdrTransferEncoding
		}
		if strings.EqualFold(name, "x-forwarded-proto") {
			return hdrXFProto
		}
	case 19:
		if strings.EqualFold(name, "proxy-authorization") {
			return hdrHopByHop
		}
	}
	return hdrOther
}

// admit applies one request field to in, the same way on both listeners
// (the lean HTTP/1.1 parser and net/http's TLS server): end-to-end fields
// are kept to be forwarded; X-Forwarded-For, X-Geostamp-Debug and the
// affinity cookie are read; hop-by-hop fields and those the front door
// sets itself (X-Forwarded-Proto, X-Forwarded-Host, X-Geostamp-FDID) are
// dropped; the Connection field's options are collected (dropFieldsNamed
// removes the fields they name). It returns the field's class, so that
// the HTTP/1.1 parser frames the message from Host, Content-Length,
// Transfer-Encoding and Expect, which admit never forwards.
func (in *inbound) admit(name, value string, affinity bool) hdr {
	h := classify(name)
	switch h {
	case hdrOther:
		in.fields = append(in.fields, field{name, value})
	case hdrCookie:
		if affinity && in.affinity == "" {
			in.affinity = cookieValue(value, AffinityCookie)
		}
		in.fields = append(in.fields, field{name, value})
	case hdrIdemKey:
		in.idemKey = true
		in.fields = append(in.fields, field{name, value})
	case hdrXFF:
		if in.xff == "" {
			in.xff = value
		} else {
			in.xff = in.xff + ", " + value
		}
	case hdrDebug:
		in.debug = in.debug || value == "1"
	case hdrTraceparent:
		if in.traceparent == "" {
			in.traceparent = value
		}
	case hdrTracestate:
		if in.tracestate == "" {
			in.tracestate = value
		} else {
			in.tracestate = in.tracestate + "," + value
		}
	case hdrConnection:
		for v := value; v != ""; {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t = strings.TrimSpace(t)
			switch {
			case strings.EqualFold(t, "close"):
				in.connClose = true
			case strings.EqualFold(t, "keep-alive"):
				in.connKeep = true
			case t != "":
				in.connTokens = append(in.connTokens, t)
			}
		}
	}
	return h
}

// dropFieldsNamed removes the fields named by the Connection field's
// options: they are hop-by-hop (RFC 9110 §7.6.1).
func (in *inbound) dropFieldsNamed() {
	if len(in.connTokens) == 0 {
		return
	}
	kept := in.fields[:0]
	for _, fl := range in.fields {
		drop := false
		for _, t := range in.connTokens {
			if strings.EqualFold(fl.name, t) {
				drop = true
				break
			}
		}
		if !drop {
			kept = append(kept, fl)
		}
	}
	in.fields = kept
}

// bstr returns a string sharing b's memory: valid while b is not reused.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// trimOWS trims spaces and tabs.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseLength parses a Content-Length value: digits only (RFC 9110 §8.6).
// Leading zeros are allowed; values of 10^18 and more, which no body limit
// admits, are not.
func parseLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > 0 || c != '0' {
			digits++
		}
		if digits > 18 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkLine parses a chunk-size line with its line end (RFC 9112
// §7.1), as strictly as net/http: CRLF only, no other CR, hex digits from
// the first byte, then an optional extension (ignored) or trailing
// whitespace. At most 16 digits, as net/http, and sizes of 2^60 and more
// are refused.
func parseChunkLine(line []byte) (int64, bool) {
	n := len(line)
	if n < 3 || line[n-1] != '\n' || line[n-2] != '\r' {
		return 0, false
	}
	line = line[:n-2]
	if indexByte(line, '\r') >= 0 {
		return 0, false
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := indexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	if len(line) == 0 || len(line) > 16 { // net/http: 16 digits at most
		return 0, false
	}
	var size int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if size > 0 || d != 0 {
			digits++
		}
		if digits > 15 {
			return 0, false
		}
		size = size<<4 | int64(d)
	}
	return size, true
}

// hasToken reports whether the comma-separated list v holds token
// (case-insensitive).
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// lastTokenIs reports whether the last element of the list v is token.
func lastTokenIs(v, token string) bool {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(v), token)
}

// cookieValue returns the value of the cookie called name in a Cookie
// header value, "" when absent.
func cookieValue(header, name string) string {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ";")
		part = strings.TrimSpace(part)
		if k, v, ok := strings.Cut(part, "="); ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// byteSet marks the letters, the digits and the bytes of extra.
func byteSet(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// tchar marks the characters of an HTTP token (RFC 9110 §5.6.2).
var tchar = byteSet("!#$%&'*+-.^_`|~")

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// validValue reports whether a field value has no control characters
// other than tab.
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validFieldLine reports whether line (without its line end) is a valid
// field line: a token, a colon, a value without control characters. A
// line starting with whitespace (obs-fold) is not.
func validFieldLine(line []byte) bool {
	colon := indexByte(line, ':')
	return colon > 0 && isToken(line[:colon]) && validValue(line[colon+1:])
}

// hostByte marks the bytes net/http admits in a Host field
// (httpguts.ValidHostHeader): those of a host, an IP literal and a port.
var hostByte = byteSet("!$%&'()*+,-.:;=[]_~")

// regNameByte marks the bytes of a registered name in a URI (RFC 3986
// §3.2.2: unreserved and sub-delims; percent-encoding is not admitted).
var regNameByte = byteSet("-._~!$&'()*+,;=")

func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hostByte[s[i]] {
			return false
		}
	}
	return true
}

// validAuthority reports whether a is host[:port] of an http(s) URI (RFC
// 3986 §3.2): a registered name of unreserved and sub-delim bytes or a
// bracketed IPv6 address, then an optional port of digits. No userinfo
// (RFC 9110 §4.2.4 says to treat it as an error), no empty host (§4.2.1)
// and no percent-encoding in the host.
func validAuthority(a []byte) bool {
	host, port := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := indexByte(a, ']')
		if end < 0 {
			return false
		}
		ip, err := netip.ParseAddr(bstr(a[1:end]))
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
		host, port = nil, a[end+1:]
		if len(port) > 0 && port[0] != ':' {
			return false
		}
	} else {
		if i := bytes.LastIndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i:]
		}
		if len(host) == 0 {
			return false
		}
	}
	for _, c := range host {
		if !regNameByte[c] {
			return false
		}
	}
	if len(port) > 0 {
		for _, c := range port[1:] {
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}

// validPath reports whether every percent sign in the path part of a
// request target starts a %XX escape, as net/url requires.
func validPath(target []byte) bool {
	if i := indexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	for i := 0; i < len(target); i++ {
		if target[i] == '%' && (i+2 >= len(target) || !isHex(target[i+1]) || !isHex(target[i+2])) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
