package gslb

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// DNS constants used on the query path.
const (
	typeA     = 1
	typeNS    = 2
	typeSOA   = 6
	typeTXT   = 16
	typeAAAA  = 28
	typeOPT   = 41
	typeIXFR  = 251
	typeAXFR  = 252
	typeANY   = 255
	classINET = 1

	rcodeSuccess  = 0
	rcodeFormErr  = 1
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16 // extended: 0 in the header, 1 in OPT

	optECS = 8

	// ednsSize is the UDP payload size the server advertises, and the most
	// it sends over UDP (DNS flag day 2020).
	ednsSize = 1232
	// minUDPSize is what every client accepts (RFC 1035).
	minUDPSize = 512
	// maxMsg is the largest DNS message (TCP).
	maxMsg = 65535
)

type parseResult uint8

const (
	parseOK      parseResult = iota
	parseDrop                // not even a query header: no response
	parseFormErr             // malformed: FORMERR
	parseNotImp              // well formed, opcode not QUERY, no single question
	parseSlow                // valid but not the common shape: use the general parser
)

// query is what the server reads from a query. Slices point into the
// worker's buffers or the packet and are valid while it is handled.
type query struct {
	id, flags uint16
	opcode    uint8
	hasQ      bool   // the question was read (and is echoed)
	qname     []byte // as sent (0x20 case preserved), uncompressed wire format
	lname     []byte // lower case
	qtype     uint16
	qclass    uint16

	edns    bool // a valid OPT record was read
	udpSize uint16
	version uint8
	do      bool

	ecs       bool // an ECS option was read (it is echoed)
	ecsFamily uint16
	ecsSource uint8
	ecsAddr   []byte     // ADDRESS as sent
	ecsClient netip.Addr // the address, unmapped; valid when ecsSource > 0
	ecsMapped bool       // family 2 with an IPv4-mapped address
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

// parse reads a query in the common shape: one question with an
// uncompressed name, no answer or authority records and at most one
// additional record, an OPT with options that need no validation beyond
// what parse does. Other shapes return parseSlow. lenient accepts EDNS
// options that the general parser has already validated.
func (q *query) parse(in []byte, name, lower *[256]byte, lenient bool) parseResult {
	*q = query{}
	if len(in) < 12 {
		return parseDrop
	}
	q.id, q.flags = be16(in), be16(in[2:])
	if q.flags&0x8000 != 0 {
		return parseDrop // a response: never answer it
	}
	q.opcode = uint8(q.flags>>11) & 0xF
	if be16(in[4:]) != 1 || be16(in[6:]) != 0 || be16(in[8:]) != 0 || be16(in[10:]) > 1 {
		return parseSlow
	}
	ar := be16(in[10:])
	off, n := 12, 0
	for {
		if off >= len(in) {
			return parseFormErr
		}
		l := int(in[off])
		if l == 0 {
			name[n], lower[n] = 0, 0
			n++
			off++
			break
		}
		switch l & 0xC0 {
		case 0xC0:
			return parseSlow // a compression pointer in a question: legal, rare
		case 0x40, 0x80:
			return parseFormErr
		}
		if off+1+l > len(in) || n+l+2 > 255 {
			return parseFormErr
		}
		name[n], lower[n] = byte(l), byte(l)
		for i := 1; i <= l; i++ {
			c := in[off+i]
			name[n+i] = c
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[n+i] = c
		}
		n += l + 1
		off += l + 1
	}
	if off+4 > len(in) {
		return parseFormErr
	}
	q.qname, q.lname = name[:n], lower[:n]
	q.qtype, q.qclass = be16(in[off:]), be16(in[off+2:])
	q.hasQ = true
	off += 4
	if ar == 0 {
		if off != len(in) {
			return parseFormErr // trailing bytes
		}
		return parseOK
	}
	if off >= len(in) {
		return parseFormErr
	}
	if in[off] != 0 {
		return parseSlow // not an OPT (owner is not the root)
	}
	if off+11 > len(in) {
		return parseFormErr
	}
	if be16(in[off+1:]) != typeOPT {
		return parseSlow
	}
	q.udpSize = be16(in[off+3:])
	q.version = in[off+6]
	q.do = in[off+7]&0x80 != 0
	rdlen := int(be16(in[off+9:]))
	off += 11
	if off+rdlen != len(in) {
		return parseFormErr // truncated, or trailing bytes
	}
	for off < len(in) {
		if off+4 > len(in) {
			return parseFormErr
		}
		code, l := be16(in[off:]), int(be16(in[off+2:]))
		off += 4
		if off+l > len(in) {
			return parseFormErr
		}
		data := in[off : off+l]
		off += l
		switch code {
		case optECS:
			if q.ecs || !q.parseECS(data) {
				return parseFormErr
			}
		case dns.EDNS0LLQ, dns.EDNS0UL, dns.EDNS0EXPIRE, dns.EDNS0TCPKEEPALIVE,
			dns.EDNS0EDE, dns.EDNS0REPORTING, dns.EDNS0ZONEVERSION:
			// options with a structure we ignore but must not accept
			// malformed: the general parser validates them.
			if !lenient {
				return parseSlow
			}
		}
	}
	q.edns = true
	return parseOK
}

// parseECS reads an EDNS Client Subnet option (RFC 7871 §6). It rejects
// an unknown family, prefix lengths beyond the family, an ADDRESS of the
// wrong length and bits set beyond SOURCE PREFIX-LENGTH.
func (q *query) parseECS(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	fam, src, scope, addr := be16(b), b[2], b[3], b[4:]
	var bitsMax uint8
	switch fam {
	case 0:
		bitsMax = 0 // dig +subnet=0: no address, source 0
	case 1:
		bitsMax = 32
	case 2:
		bitsMax = 128
	default:
		return false
	}
	if src > bitsMax || scope > bitsMax || len(addr) != (int(src)+7)/8 {
		return false
	}
	if r := src % 8; r != 0 && addr[len(addr)-1]&(0xFF>>r) != 0 {
		return false
	}
	q.ecs, q.ecsFamily, q.ecsSource, q.ecsAddr = true, fam, src, addr
	if src == 0 {
		return true
	}
	if fam == 1 {
		var a [4]byte
		copy(a[:], addr)
		q.ecsClient = netip.AddrFrom4(a)
	} else {
		var a [16]byte
		copy(a[:], addr)
		ip := netip.AddrFrom16(a)
		q.ecsMapped = ip.Is4In6()
		q.ecsClient = ip.Unmap()
	}
	return true
}

// slowParse reads any other query with miekg/dns: a packet it cannot
// unpack is malformed; otherwise the question and OPT record are packed
// again in the common shape and read by parse. It allocates, and serves
// only unusual queries.
func (q *query) slowParse(in []byte, w *worker) parseResult {
	*q = query{}
	if len(in) < 12 {
		return parseDrop
	}
	q.id, q.flags = be16(in), be16(in[2:])
	if q.flags&0x8000 != 0 {
		return parseDrop
	}
	q.opcode = uint8(q.flags>>11) & 0xF
	var m dns.Msg
	if err := m.Unpack(in); err != nil {
		return parseFormErr
	}
	if len(m.Question) != 1 {
		if q.opcode != 0 {
			return parseNotImp
		}
		return parseFormErr
	}
	var opt *dns.OPT
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				return parseFormErr // two OPT records (RFC 6891 §6.1.1)
			}
			opt = o
		}
	}
	c := dns.Msg{MsgHdr: m.MsgHdr, Question: m.Question}
	c.Rcode = 0
	if opt != nil {
		o := *opt
		o.Hdr.Name = "."
		c.Extra = []dns.RR{&o}
	}
	b, err := c.Pack()
	if err != nil {
		return parseFormErr
	}
	if r := q.parse(b, &w.name, &w.lower, true); r != parseSlow {
		return r
	}
	return parseFormErr
}

// Response building. The worker's buffer holds the message from offset 2,
// so that TCP can send the length prefix and the message in one write.

func (w *worker) begin(q *query, rcode int, aa bool) {
	b := w.buf[:14]
	b[2], b[3] = byte(q.id>>8), byte(q.id)
	flags := 0x8000 | q.flags&(0x7800|0x0100|0x0010) // QR, opcode, RD, CD
	if aa {
		flags |= 0x0400
	}
	flags |= uint16(rcode & 0xF)
	b[4], b[5] = byte(flags>>8), byte(flags)
	clear(b[6:14])
	if q.hasQ {
		b[7] = 1
		b = append(b, q.qname...)
		b = append(b, byte(q.qtype>>8), byte(q.qtype), byte(q.qclass>>8), byte(q.qclass))
	}
	w.b, w.qend, w.rcode = b, len(b), rcode
	w.an, w.ns, w.ar = 0, 0, 0
	w.truncated = false
}

// rr appends a record: a compression pointer to offset ptr of the message
// as owner, then tail.
func (w *worker) rr(ptr int, tail []byte) {
	w.b = append(append(w.b, 0xC0|byte(ptr>>8), byte(ptr)), tail...)
}

// soaAuthority appends the SOA to the authority section of a negative
// answer, its owner pointing at the zone's labels at the end of the
// question.
func (w *worker) soaAuthority(q *query, z *zone) {
	w.rr(12+len(q.qname)-len(z.wire), z.soaNeg)
	w.ns++
}

// finish appends the OPT record, sets the counts and, when the message is
// larger than limit (0: no limit), truncates it to the question with TC.
func (w *worker) finish(q *query, scope uint8, limit int) []byte {
	w.scope = scope
	w.opt(q, scope)
	w.counts()
	if limit > 0 && len(w.b)-2 > limit {
		w.b = w.b[:w.qend]
		w.b[4] |= 0x02 // TC
		w.an, w.ns, w.ar = 0, 0, 0
		w.opt(q, scope)
		w.counts()
		w.truncated = true
	}
	return w.b[2:]
}

func (w *worker) counts() {
	b := w.b
	b[8], b[9] = byte(w.an>>8), byte(w.an)
	b[10], b[11] = byte(w.ns>>8), byte(w.ns)
	b[12], b[13] = byte(w.ar>>8), byte(w.ar)
}

// opt appends the OPT record when the query had one: payload size
// ednsSize, the extended RCODE, version 0, DO copied, and the ECS option
// echoed with scope.
func (w *worker) opt(q *query, scope uint8) {
	if !q.edns {
		return
	}
	var do byte
	if q.do {
		do = 0x80
	}
	rdlen := 0
	if q.ecs {
		rdlen = 8 + len(q.ecsAddr)
	}
	w.b = append(w.b, 0, 0, typeOPT, ednsSize>>8, ednsSize&0xFF,
		byte(w.rcode>>4), 0, do, 0, byte(rdlen>>8), byte(rdlen))
	if q.ecs {
		l := 4 + len(q.ecsAddr)
		w.b = append(w.b, 0, optECS, byte(l>>8), byte(l),
			byte(q.ecsFamily>>8), byte(q.ecsFamily), q.ecsSource, scope)
		w.b = append(w.b, q.ecsAddr...)
	}
	w.ar++
}

// udpLimit is the largest UDP answer to q.
func udpLimit(q *query) int {
	if !q.edns {
		return minUDPSize
	}
	return min(max(int(q.udpSize), minUDPSize), ednsSize)
}

// appendName writes a wire-format name in presentation format, escaping as
// miekg/dns does.
func appendName(b, wire []byte) []byte {
	if len(wire) <= 1 {
		return append(b, '.')
	}
	for off := 0; off < len(wire) && wire[off] != 0; {
		l := int(wire[off])
		for _, c := range wire[off+1 : off+1+l] {
			switch {
			case c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == ' ' || c == '@':
				b = append(b, '\\', c)
			case c < ' ' || c > '~':
				b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '.')
		off += l + 1
	}
	return b
}
