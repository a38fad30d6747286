package gslb

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/geostamp/geostamp/internal/routing"
	"github.com/geostamp/geostamp/internal/topology"
)

// maxSlots bounds the memo of weighted choices of one client class: a
// decision whose weighted choice spans more total weight than this is
// decided per query instead (weights are 1–1000, so only platforms with
// more than 80 regions of default weight get there).
const maxSlots = 4096

// classifier maps a client address to its class: the set of clients that
// routing.Decide cannot tell apart. For performance routing that is the
// longest matching network of any region (or none); for geographic routing
// the geo code; for the other methods there is one class.
type classifier struct {
	method routing.Method
	v4, v6 []lpmLevel // performance: networks by length, longest first
	nets   int
	geo    *routing.GeoTable
	geoIdx map[string]int // geographic: code -> class; "" (unknown) is 0
	// prefixes of the table the class depends on, for the ECS scope.
	prefixes []netip.Prefix
	n        int // number of classes
}

type lpmLevel struct {
	bits  int
	class map[netip.Prefix]int
}

func newClassifier(t *topology.Topology, m routing.Method, base []routing.Candidate) (*classifier, error) {
	c := &classifier{method: m, n: 1}
	switch m {
	case routing.Performance:
		idx := map[netip.Prefix]int{}
		for _, cd := range base {
			for _, p := range cd.Networks {
				if _, ok := idx[p]; !ok {
					idx[p] = len(c.prefixes)
					c.prefixes = append(c.prefixes, p)
				}
			}
		}
		levels := map[bool]map[int]map[netip.Prefix]int{true: {}, false: {}}
		for p, i := range idx {
			lv := levels[p.Addr().Is4()]
			if lv[p.Bits()] == nil {
				lv[p.Bits()] = map[netip.Prefix]int{}
			}
			lv[p.Bits()][p] = i
		}
		for is4, lv := range levels {
			var out []lpmLevel
			for b, m := range lv {
				out = append(out, lpmLevel{b, m})
			}
			slices.SortFunc(out, func(x, y lpmLevel) int { return y.bits - x.bits })
			if is4 {
				c.v4 = out
			} else {
				c.v6 = out
			}
		}
		c.nets = len(c.prefixes)
		c.n = c.nets + 1
	case routing.Geographic:
		g, err := routing.NewGeoTable(t.GeoIP)
		if err != nil {
			return nil, fmt.Errorf("topology.geoip: %w", err)
		}
		c.geo = g
		c.geoIdx = map[string]int{"": 0}
		keys := make([]string, 0, len(t.GeoIP))
		for k := range t.GeoIP {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if _, ok := c.geoIdx[t.GeoIP[k]]; !ok {
				c.geoIdx[t.GeoIP[k]] = len(c.geoIdx)
			}
			p, err := netip.ParsePrefix(k)
			if err != nil {
				a, err := netip.ParseAddr(k)
				if err != nil {
					continue // NewGeoTable accepted it, so this cannot happen
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			c.prefixes = append(c.prefixes, p.Masked())
		}
		c.n = len(c.geoIdx)
	}
	return c, nil
}

// classify returns the class of client a and, for geographic routing, its
// geo code. It does not allocate.
func (c *classifier) classify(a netip.Addr) (int, string) {
	switch c.method {
	case routing.Performance:
		if !a.IsValid() {
			return c.nets, ""
		}
		levels := c.v6
		if a.Is4() {
			levels = c.v4
		}
		for _, l := range levels {
			p, err := a.Prefix(l.bits)
			if err != nil {
				continue
			}
			if i, ok := l.class[p]; ok {
				return i, ""
			}
		}
		return c.nets, ""
	case routing.Geographic:
		code, _ := c.geo.Lookup(a)
		i, ok := c.geoIdx[code]
		if !ok {
			return 0, ""
		}
		return i, code
	}
	return 0, ""
}

// scope returns the ECS SCOPE PREFIX-LENGTH of an answer for client a: the
// shortest prefix of a inside which every address is contained in the same
// networks of the table, hence falls in the same class. It is the longest
// network containing a, or one bit more than a shares with a network that
// does not contain it, whichever is longer. 0 for methods whose answer does
// not depend on the client.
func (c *classifier) scope(a netip.Addr) uint8 {
	if c.method != routing.Performance && c.method != routing.Geographic {
		return 0
	}
	s := 0
	for _, p := range c.prefixes {
		if p.Addr().Is4() != a.Is4() {
			continue
		}
		if p.Contains(a) {
			s = max(s, p.Bits())
		} else {
			s = max(s, commonBits(p.Addr(), a)+1)
		}
	}
	return uint8(s)
}

// commonBits returns the length of the common prefix of two addresses of
// the same family.
func commonBits(x, y netip.Addr) int {
	a, b := x.As16(), y.As16()
	n := 0
	for i := range a {
		if d := a[i] ^ b[i]; d != 0 {
			n += bits.LeadingZeros8(d)
			break
		}
		n += 8
	}
	if x.Is4() {
		n -= 96
	}
	return n
}

// state is one immutable snapshot of everything health changes: the
// candidates with their verdicts, the TTL, the address records with that
// TTL and the memoized decisions. The query path loads it with one atomic
// read; a health change builds a new one (RCU).
type state struct {
	cands    []routing.Candidate
	ttl      uint32
	degraded bool
	healthy  int
	// per region: A and AAAA tails with ttl (nil when the region has none)
	regionA, regionAAAA [][]byte
	classes             []class
}

type class struct{ memo atomic.Pointer[memo] }

// memo holds the answers of one class, one per weighted choice (Rand mod
// span, see routing.Decision.RandSpan), filled as queries need them.
type memo struct {
	span  uint64
	slots []atomic.Pointer[answer] // nil when span > maxSlots
}

// answer is a memoized routing decision and the records it answers.
type answer struct {
	st   *state
	dec  routing.Decision
	rand uint64 // the Rand it was decided with
	// A and AAAA records, each with a compression pointer to the question
	// as owner.
	a, aaaa       []byte
	na, naaaa     uint16
	regA, regAAAA []int // regions in a, aaaa
	failOpen      bool
}

// rebuild snapshots the checker's verdicts into a new state, unless they
// route exactly as the current one does. It runs in one goroutine at a time.
func (s *Server) rebuild() {
	cands := slices.Clone(s.base)
	routing.Refresh(cands, s.checker)
	st := &state{cands: cands}
	for i := range cands {
		switch c := &cands[i]; {
		case !c.Enabled:
		case c.Healthy:
			st.healthy++
		default:
			st.degraded = true
		}
	}
	st.ttl = uint32(s.topo.GSLB.TTL.D() / time.Second)
	if st.degraded {
		st.ttl = uint32(s.topo.GSLB.DegradedTTL.D() / time.Second)
	}
	old := s.state.Load()
	if old != nil && old.ttl == st.ttl && s.sameRouting(old.cands, cands) {
		return
	}
	st.regionA = make([][]byte, len(cands))
	st.regionAAAA = make([][]byte, len(cands))
	for i, r := range s.topo.Regions {
		st.regionA[i], st.regionAAAA[i] = addrTails(r, st.ttl)
	}
	st.classes = make([]class, s.cls.n)
	s.state.Store(st)
	if old != nil {
		var up, down []string
		for _, c := range cands {
			if !c.Enabled {
				continue
			}
			if c.Healthy {
				up = append(up, c.Name)
			} else {
				down = append(down, c.Name)
			}
		}
		s.log.Info("answers changed", "healthy", up, "unhealthy", down, "ttl", st.ttl, "fail_open", st.healthy == 0)
	}
}

// sameRouting reports whether Decide answers the same for a and b: same
// verdicts and, for performance routing (the only GSLB method that reads
// RTT), the same RTT order.
func (s *Server) sameRouting(a, b []routing.Candidate) bool {
	for i := range a {
		if a[i].Healthy != b[i].Healthy {
			return false
		}
	}
	if s.policy.Method != routing.Performance {
		return true
	}
	key := func(d time.Duration) time.Duration {
		if d <= 0 {
			return 1<<63 - 1
		}
		return d
	}
	for i := range a {
		for j := range a {
			if (key(a[i].RTT) < key(a[j].RTT)) != (key(b[i].RTT) < key(b[j].RTT)) {
				return false
			}
		}
	}
	return true
}

// route returns the answer for a client in state st: memoized, so that
// the query path does not allocate once every class and weighted choice
// has been seen.
func (s *Server) route(st *state, client netip.Addr) *answer {
	ci, geo := s.cls.classify(client)
	c := &st.classes[ci]
	r := rand.Uint64()
	m := c.memo.Load()
	if m == nil {
		d := routing.Decide(s.policy, st.cands, routing.Request{Client: client, Geo: geo, Rand: r})
		m = &memo{span: d.RandSpan}
		if m.span > 0 {
			r %= m.span
		} else {
			r = 0
		}
		a := s.newAnswer(st, d, r)
		if m.span <= maxSlots {
			m.slots = make([]atomic.Pointer[answer], max(m.span, 1))
			m.slots[r].Store(a)
		}
		c.memo.CompareAndSwap(nil, m)
		return a
	}
	if m.span > 0 {
		r %= m.span
	} else {
		r = 0
	}
	if m.slots == nil {
		return s.decide(st, client, geo, r)
	}
	if a := m.slots[r].Load(); a != nil {
		return a
	}
	a := s.decide(st, client, geo, r)
	if !m.slots[r].CompareAndSwap(nil, a) {
		a = m.slots[r].Load()
	}
	return a
}

func (s *Server) decide(st *state, client netip.Addr, geo string, r uint64) *answer {
	return s.newAnswer(st, routing.Decide(s.policy, st.cands, routing.Request{Client: client, Geo: geo, Rand: r}), r)
}

// newAnswer builds the records of decision d: the target's address of each
// family (the first region in d.Order that has one), or, for multivalue
// and when the decision fails open, every region of d.Order that has one
// (fail-open answers all the regions of the pool, in preference order, so
// that clients can try each).
func (s *Server) newAnswer(st *state, d routing.Decision, r uint64) *answer {
	a := &answer{st: st, dec: d, rand: r, failOpen: d.FailOpen}
	multi := d.Method == routing.MultiValue || d.FailOpen
	for _, i := range d.Order {
		if t := st.regionA[i]; t != nil && (multi || a.na == 0) {
			a.a = append(append(a.a, 0xC0, 12), t...)
			a.na++
			a.regA = append(a.regA, i)
		}
		if t := st.regionAAAA[i]; t != nil && (multi || a.naaaa == 0) {
			a.aaaa = append(append(a.aaaa, 0xC0, 12), t...)
			a.naaaa++
			a.regAAAA = append(a.regAAAA, i)
		}
	}
	return a
}
