package gslb

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geostamp/geostamp/internal/routing"
)

// lastSlots is the size of the table of last answers per client subnet.
// It is a cache: two subnets that hash to the same slot evict each other.
const lastSlots = 4096

type lastEntry struct {
	mu     sync.Mutex
	subnet netip.Prefix
	client netip.Addr
	ans    *answer
	qtype  uint16
	at     time.Time
}

// lastTable remembers the last routed answer per client subnet, for
// explain. Recording takes a slot lock and does not allocate.
type lastTable struct {
	slots [lastSlots]lastEntry
}

// slot hashes the subnet (multiplicative hashing; a collision only evicts
// an entry).
func (t *lastTable) slot(p netip.Prefix) *lastEntry {
	a := p.Addr().As16()
	h := binary.BigEndian.Uint64(a[:8])*0x9E3779B97F4A7C15 ^ binary.BigEndian.Uint64(a[8:])*0xC2B2AE3D27D4EB4F ^ uint64(p.Bits())
	h ^= h >> 29
	h *= 0x94D049BB133111EB
	return &t.slots[(h>>32)&(lastSlots-1)]
}

func (t *lastTable) record(subnet netip.Prefix, client netip.Addr, ans *answer, qtype uint16, now time.Time) {
	e := t.slot(subnet)
	e.mu.Lock()
	e.subnet, e.client, e.ans, e.qtype, e.at = subnet, client, ans, qtype, now
	e.mu.Unlock()
}

func (t *lastTable) get(subnet netip.Prefix) (client netip.Addr, ans *answer, qtype uint16, at time.Time, ok bool) {
	e := t.slot(subnet)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ans == nil || e.subnet != subnet {
		return netip.Addr{}, nil, 0, time.Time{}, false
	}
	return e.client, e.ans, e.qtype, e.at, true
}

// Explanation says why a client subnet got (or would get) its answer.
type Explanation struct {
	// Client is the address asked about; Subnet the key answers are
	// recorded under (the ECS prefix or the client, at most /24 or /56).
	Client string `json:"client"`
	Subnet string `json:"subnet"`
	// Recorded is true when Subnet was answered before and the rest
	// describes that last answer (at Time, to a query of type QType);
	// false when nothing is recorded and the rest is what a query would
	// get now.
	Recorded bool      `json:"recorded"`
	Time     time.Time `json:"time,omitzero"`
	QType    string    `json:"qtype,omitempty"`
	// A and AAAA are the addresses answered, TTL their TTL in seconds.
	A    []string `json:"a"`
	AAAA []string `json:"aaaa"`
	TTL  uint32   `json:"ttl"`
	// Target, Method, FailOpen, Fallbacks and Reason are the routing
	// decision; Explain is its one-line form (routing.Decision.Explain).
	Target    string   `json:"target"`
	Method    string   `json:"method"`
	FailOpen  bool     `json:"fail_open"`
	Fallbacks []string `json:"fallbacks"`
	Reason    string   `json:"reason"`
	Explain   string   `json:"explain"`
}

// Text renders e as the content of the _why TXT record.
func (e Explanation) Text() string {
	var b strings.Builder
	if e.Recorded {
		b.WriteString("last answer for ")
		b.WriteString(e.Subnet)
		b.WriteString(" at ")
		b.WriteString(e.Time.UTC().Format(time.RFC3339))
		b.WriteString(" (")
		b.WriteString(e.QType)
		b.WriteString("):")
	} else {
		b.WriteString("no answer recorded for ")
		b.WriteString(e.Subnet)
		b.WriteString("; a query now gets:")
	}
	for _, a := range append(append([]string(nil), e.A...), e.AAAA...) {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	if len(e.A)+len(e.AAAA) == 0 {
		b.WriteString(" no address")
	}
	b.WriteString(" ttl=")
	b.WriteString(strconv.FormatUint(uint64(e.TTL), 10))
	b.WriteString(" client=")
	b.WriteString(e.Client)
	b.WriteByte(' ')
	b.WriteString(e.Explain)
	return b.String()
}

// Explain says why the subnet of client (/24 for IPv4, /56 for IPv6) got
// its last answer, or what a query from client would get now.
func (s *Server) Explain(client netip.Addr) Explanation {
	client = client.Unmap()
	return s.explain(s.state.Load(), client, subnetOf(client, nil))
}

// explain builds the explanation for subnet; client is the address a new
// decision is made for when nothing is recorded. The decision is made
// again with the recorded inputs (state, client, Rand), so that its reason
// names the real client: Decide is pure, so it is the decision that was
// answered.
func (s *Server) explain(st *state, client netip.Addr, subnet netip.Prefix) Explanation {
	e := Explanation{Client: client.String(), Subnet: subnet.String()}
	rc, ans, qtype, at, ok := s.last.get(subnet)
	if ok {
		e.Recorded, e.Time, e.QType, client = true, at, typeName(qtype), rc
		st = ans.st
	} else {
		ans = s.route(st, client)
	}
	if !client.IsValid() {
		e.Client = "unknown"
	}
	_, geo := s.cls.classify(client)
	d := routing.Decide(s.policy, st.cands, routing.Request{Client: client, Geo: geo, Rand: ans.rand})
	for _, i := range ans.regA {
		e.A = append(e.A, tailAddr(st.regionA[i]))
	}
	for _, i := range ans.regAAAA {
		e.AAAA = append(e.AAAA, tailAddr(st.regionAAAA[i]))
	}
	e.TTL = st.ttl
	e.Method, e.FailOpen, e.Reason = string(d.Method), d.FailOpen, d.Reason
	e.Target = "none"
	if len(d.Order) > 0 {
		e.Target = st.cands[d.Order[0]].Name
		for _, i := range d.Order[1:] {
			e.Fallbacks = append(e.Fallbacks, st.cands[i].Name)
		}
	}
	e.Explain = d.Explain(st.cands)
	return e
}

// tailAddr returns the address in an A or AAAA record tail.
func tailAddr(t []byte) string {
	rd := t[10:]
	a, _ := netip.AddrFromSlice(rd)
	return a.String()
}

func typeName(t uint16) string {
	switch t {
	case typeA:
		return "A"
	case typeAAAA:
		return "AAAA"
	case typeANY:
		return "ANY"
	}
	return "TYPE" + strconv.Itoa(int(t))
}
