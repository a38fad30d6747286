package frontdoor

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// handler adapts the proxy core to net/http: the TLS listener (HTTP/1.1
// and HTTP/2) and Handler.
type handler struct{ f *FrontDoor }

var _ http.Handler = handler{}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := h.f
	if r.Method == http.MethodConnect {
		http.Error(w, "CONNECT is not supported", http.StatusNotImplemented)
		return
	}
	in := inbound{
		method:    r.Method,
		host:      r.Host,
		http10:    r.ProtoMajor == 1 && r.ProtoMinor == 0,
		tls:       r.TLS != nil,
		keepAlive: true,
		target:    r.RequestURI,
	}
	if in.target == "" || in.target[0] != '/' && in.target != "*" {
		in.target = r.URL.RequestURI() // absolute-form, or a request built in-process
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		in.peer = ap.Addr().Unmap()
	}
	in.fields = make([]field, 0, len(r.Header))
	// net/http has framed the message and removed Host and
	// Transfer-Encoding; admit drops what remains of framing.
	for name, vals := range r.Header {
		for _, v := range vals {
			in.admit(name, v, f.affinity)
		}
	}
	in.dropFieldsNamed()
	switch {
	case r.ContentLength > 0:
		in.bodyLen = r.ContentLength
		in.body = r.Body
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		in.bodyLen = -1
		in.body = r.Body
	}
	s := &httpSink{w: w, rc: http.NewResponseController(w)}
	if err := f.serve(&in, s); err != nil && s.wrote && !s.ended {
		// Truncated: make sure the client sees an incomplete response
		// rather than a short one that looks complete.
		panic(http.ErrAbortHandler)
	}
}

// httpSink writes a response through net/http.
type httpSink struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	wrote, ended bool
}

func (s *httpSink) head(status int, _ string, fields, extra []field, length int64, bodyless bool) error {
	h := s.w.Header()
	for _, fl := range fields {
		// fields point into a connection buffer: copy them.
		h.Add(strings.Clone(fl.name), strings.Clone(fl.value))
	}
	for _, fl := range extra {
		h.Add(fl.name, fl.value)
	}
	if length >= 0 && status != http.StatusNoContent && status >= 200 {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	s.wrote = true
	s.w.WriteHeader(status)
	return nil
}

func (s *httpSink) write(p []byte) error {
	_, err := s.w.Write(p)
	return err
}

func (s *httpSink) flush() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (s *httpSink) end() error {
	s.ended = true
	return nil
}
