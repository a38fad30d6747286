package gslb

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

var (
	fuzzOnce   sync.Once
	fuzzServer *Server
	fuzzWorker *worker
)

// FuzzQuery feeds arbitrary packets to the query path (go test -fuzz
// FuzzQuery ./internal/gslb/). Properties:
//
//   - no panic;
//   - a packet gets no answer only when it is shorter than a header or is
//     a response (QR set);
//   - every answer unpacks (miekg/dns), echoes the ID, has QR set, and over
//     UDP fits the client's size;
//   - a packet that miekg/dns cannot unpack is answered FORMERR (or not at
//     all);
//   - the common-shape parser and the general parser agree byte for byte
//     whenever neither rejects the packet (the common-shape parser is
//     stricter about trailing bytes and ECS padding, by design).
func FuzzQuery(f *testing.F) {
	for _, pkt := range variants(f) {
		f.Add(pkt, false)
	}
	valid := mustPack(f, msg("app.example.test.", dns.TypeA, ecs("10.1.2.0/24")))
	f.Add(valid, true)
	seeds := [][]byte{
		{},                                       // empty
		{0x12},                                   // one byte
		valid[:11],                               // short header
		valid[:12],                               // header only
		valid[:20],                               // truncated name
		valid[:len(valid)-3],                     // truncated OPT
		append(valid[:len(valid):len(valid)], 0), // trailing byte
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1},        // pointer loop in the question
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0x00, 0, 1, 0, 1},        // reserved label type
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 0xFF}, // OPT cut short
		{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1},              // a response
		{0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},        // counts that lie
	}
	for _, s := range seeds {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, tcp bool) {
		fuzzOnce.Do(func() {
			fuzzServer = offlineServer(t, twoRegions("multivalue"))
			fuzzWorker = newWorker(fuzzServer.stats.newShard("fuzz"))
		})
		s, w := fuzzServer, fuzzWorker
		src := netip.MustParseAddr("10.1.2.3")

		out := s.handle(w, in, src, tcp)
		if out == nil {
			if len(in) >= 12 && in[2]&0x80 == 0 {
				t.Fatalf("no answer to a query packet %x", in)
			}
			return
		}
		fast := append([]byte(nil), out...)
		var r dns.Msg
		if err := r.Unpack(fast); err != nil {
			t.Fatalf("answer does not unpack: %v\nquery %x\nanswer %x", err, in, fast)
		}
		if r.Id != be16(in) || !r.Response {
			t.Fatalf("answer id %d QR %v to query id %d", r.Id, r.Response, be16(in))
		}
		if !tcp && len(fast) > ednsSize {
			t.Fatalf("UDP answer of %d bytes", len(fast))
		}
		var q dns.Msg
		if err := q.Unpack(in); err != nil && r.Rcode != dns.RcodeFormatError {
			t.Fatalf("query miekg/dns cannot unpack (%v) answered %s, want FORMERR\nquery %x", err, dns.RcodeToString[r.Rcode], in)
		}

		s.forceSlow = true
		slow := s.handle(w, in, src, tcp)
		s.forceSlow = false
		var sr dns.Msg
		if slow != nil && sr.Unpack(slow) == nil && sr.Rcode != dns.RcodeFormatError && r.Rcode != dns.RcodeFormatError && !bytes.Equal(fast, slow) {
			t.Fatalf("parsers disagree on %x:\nfast %x\nslow %x", in, fast, slow)
		}
	})
}
