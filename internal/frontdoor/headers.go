package frontdoor

import (
	"bytes"
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

// parseLength parses a Content-Length value: digits only.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
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

// tchar marks the characters of an HTTP token (RFC 9110 §5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

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
