package gslb

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/miekg/dns"
)

// worker holds the buffers of one query at a time: one per UDP socket
// reader, one per TCP connection.
type worker struct {
	buf   []byte // response; the message starts at offset 2
	name  [256]byte
	lower [256]byte
	q     query
	st    *shard

	// the response being built
	b          []byte
	qend       int
	rcode      int
	an, ns, ar uint16
	truncated  bool
	scope      uint8
}

func newWorker(st *shard) *worker {
	return &worker{buf: make([]byte, 2+maxMsg+512), st: st}
}

// handle answers one query packet from src, or returns nil when the
// packet gets no answer. The result is w.b[2:] (w.b[:2] is free for the
// TCP length prefix). tcp lifts the UDP size limit.
func (s *Server) handle(w *worker, in []byte, src netip.Addr, tcp bool) []byte {
	q := &w.q
	var res parseResult
	if s.forceSlow {
		res = q.slowParse(in, w)
	} else if res = q.parse(in, &w.name, &w.lower, false); res == parseSlow {
		res = q.slowParse(in, w)
	}
	var out []byte
	var ans *answer
	switch res {
	case parseDrop:
		w.st.dropped.Add(1)
		return nil
	case parseFormErr:
		w.begin(q, rcodeFormErr, false)
		out = w.finish(q, 0, 0)
	case parseNotImp:
		w.begin(q, rcodeNotImp, false)
		out = w.finish(q, 0, 0)
	default:
		out, ans = s.answer(w, q, src.Unmap(), tcp)
	}
	w.st.count(q, w.rcode)
	if w.truncated {
		w.st.truncated.Add(1)
	}
	if s.queryLog {
		s.logQuery(w, q, src, tcp, ans)
	}
	return out
}

// answer builds the response to a well-formed query, and returns the
// routing answer it used, if any.
func (s *Server) answer(w *worker, q *query, src netip.Addr, tcp bool) ([]byte, *answer) {
	limit := 0
	if !tcp {
		limit = udpLimit(q)
	}
	z := s.zone
	switch {
	case q.opcode != 0:
		w.begin(q, rcodeNotImp, false)
		return w.finish(q, 0, limit), nil
	case q.edns && q.version != 0:
		w.begin(q, rcodeBadVers, false)
		return w.finish(q, 0, limit), nil
	case q.qclass != classINET:
		w.begin(q, rcodeRefused, false)
		return w.finish(q, 0, limit), nil
	case q.qtype == typeOPT:
		w.begin(q, rcodeFormErr, false)
		return w.finish(q, 0, limit), nil
	}
	nd, ok := z.names[string(q.lname)]
	if !ok {
		if !z.contains(q.lname) {
			w.begin(q, rcodeRefused, false)
			return w.finish(q, 0, limit), nil
		}
		w.begin(q, rcodeNXDomain, true)
		w.soaAuthority(q, z)
		return w.finish(q, 0, limit), nil
	}
	if q.qtype == typeAXFR || q.qtype == typeIXFR {
		w.begin(q, rcodeRefused, false)
		return w.finish(q, 0, limit), nil
	}
	st := s.state.Load()
	client, useECS := src, q.ecsSource > 0
	if useECS {
		client = q.ecsClient
	}
	w.begin(q, rcodeSuccess, true)
	var scope uint8
	var ans *answer
	qt := q.qtype
	switch nd.kind {
	case kindApex:
		if qt == typeSOA || qt == typeANY {
			w.rr(12, z.soa)
			w.an++
		}
		if qt == typeNS || qt == typeANY {
			for _, t := range z.ns {
				w.rr(12, t)
				w.an++
			}
			w.b = append(w.b, z.glue...)
			w.ar += z.glueN
		}
	case kindHost:
		if qt != typeA && qt != typeAAAA && qt != typeANY {
			break
		}
		if useECS {
			scope = s.cls.scope(client)
			if scope > 0 && q.ecsMapped {
				scope += 96
			}
		}
		ans = s.route(st, client)
		if qt != typeAAAA {
			w.b = append(w.b, ans.a...)
			w.an += ans.na
			w.st.answered(ans.regA)
		}
		if qt != typeA {
			w.b = append(w.b, ans.aaaa...)
			w.an += ans.naaaa
			w.st.answered(ans.regAAAA)
		}
		if ans.failOpen {
			w.st.failOpen.Add(1)
		}
		s.last.record(subnetOf(client, q), client, ans, qt, s.clock.Now())
	case kindRegion:
		if qt == typeA || qt == typeANY {
			if t := st.regionA[nd.index]; t != nil {
				w.rr(12, t)
				w.an++
			}
		}
		if qt == typeAAAA || qt == typeANY {
			if t := st.regionAAAA[nd.index]; t != nil {
				w.rr(12, t)
				w.an++
			}
		}
	case kindNS:
		if t := z.nsA[nd.index]; t != nil && (qt == typeA || qt == typeANY) {
			w.rr(12, t)
			w.an++
		}
		if t := z.nsAAAA[nd.index]; t != nil && (qt == typeAAAA || qt == typeANY) {
			w.rr(12, t)
			w.an++
		}
	case kindWhy:
		if useECS {
			scope = q.ecsSource
		}
		if qt == typeTXT || qt == typeANY {
			w.rr(12, txtTail(s.explain(st, client, subnetOf(client, q)).Text()))
			w.an++
		}
	}
	if w.an == 0 {
		w.soaAuthority(q, z) // NODATA
	}
	return w.finish(q, scope, limit), ans
}

// subnetOf is the key under which answers to client are recorded for
// explain: the ECS prefix, or the client's address, cut to at most /24
// (IPv4) or /56 (IPv6).
func subnetOf(client netip.Addr, q *query) netip.Prefix {
	bits := 24
	if client.Is6() {
		bits = 56
	}
	if q != nil && q.ecsSource > 0 {
		src := int(q.ecsSource)
		if q.ecsMapped {
			src -= 96
		}
		bits = max(min(bits, src), 0)
	}
	p, _ := client.Prefix(bits)
	return p
}

// txtTail is the tail of a TXT record with TTL 0 holding s, split into
// strings of at most 255 bytes.
func txtTail(s string) []byte {
	n := len(s)/255 + 1
	rdlen := len(s) + n
	b := make([]byte, 0, 10+rdlen)
	b = append(b, 0, typeTXT, 0, classINET, 0, 0, 0, 0, byte(rdlen>>8), byte(rdlen))
	for len(s) > 255 {
		b = append(append(b, 255), s[:255]...)
		s = s[255:]
	}
	return append(append(b, byte(len(s))), s...)
}

// logQuery writes the query log line.
func (s *Server) logQuery(w *worker, q *query, src netip.Addr, tcp bool, ans *answer) {
	proto := "udp"
	if tcp {
		proto = "tcp"
	}
	attrs := []slog.Attr{
		slog.String("proto", proto),
		slog.String("client", src.String()),
		slog.String("qname", string(appendName(nil, q.qname))),
		slog.String("qtype", dns.TypeToString[q.qtype]),
		slog.String("rcode", dns.RcodeToString[w.rcode]),
		slog.Int("answers", int(w.an)),
		slog.Int("size", len(w.b)-2),
	}
	if q.ecs {
		attrs = append(attrs, slog.String("ecs", subnetString(q)), slog.Int("scope", int(w.scope)))
	}
	if w.truncated {
		attrs = append(attrs, slog.Bool("tc", true))
	}
	if ans != nil {
		var regions []string
		for _, i := range ans.regA {
			regions = append(regions, s.topo.Regions[i].Name)
		}
		attrs = append(attrs, slog.Any("regions", regions), slog.String("method", string(ans.dec.Method)))
		if ans.failOpen {
			attrs = append(attrs, slog.Bool("fail_open", true))
		}
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "query", attrs...)
}

func subnetString(q *query) string {
	if q.ecsSource == 0 {
		return "0/0"
	}
	a := q.ecsClient
	if q.ecsMapped {
		a = netip.AddrFrom16(a.As16())
	}
	return netip.PrefixFrom(a, int(q.ecsSource)).String()
}
