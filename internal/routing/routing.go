// Package routing holds the pure routing policies shared by the front door
// (L7) and the GSLB (DNS), so that both answer the same question the same
// way: given the candidates (regions) with their health, and a request,
// which candidate serves it and which ones are the fallbacks.
//
// The semantics follow Azure Front Door and Traffic Manager:
//
//   - A candidate is eligible when it is Enabled, Healthy and not Drained.
//   - Fail-open: when no candidate is eligible, health is ignored: every
//     enabled, undrained candidate is treated as eligible, or, when there is
//     none, every enabled one (drained included), and Decision.FailOpen is
//     set. Disabled candidates are never answered: a region the operator
//     disabled gets no traffic even when everything else is down (the
//     decision is then empty).
//   - Affinity (session affinity of the front door): when Request.Affinity
//     names a candidate of the decision's pool (eligible, or the fail-open
//     pool), it goes first, whatever the method would choose; otherwise it
//     is dropped and the reason says so.
//
// Methods (Policy.Method):
//
//   - priority: the lowest priority number; ties are broken by weight
//     (weighted random choice with Request.Rand).
//   - weighted: priority is ignored; weighted random choice over all.
//   - latency (Front Door's routing): the lowest priority, then the
//     candidates within LatencyBand of the fastest RTT among them, then
//     weighted random choice. An RTT of 0 means unknown: unknown candidates
//     join the band only when no candidate of the tier has a known RTT.
//   - performance (Traffic Manager): the candidate whose Networks contain
//     the client with the longest prefix; if it is not eligible, the next
//     longest match, and for clients no network contains, the lowest RTT
//     (the decider's own view of the regions), then the lowest priority.
//   - geographic (Traffic Manager): the enabled candidates whose Geo lists
//     Request.Geo; if none, those listing "WORLD"; if none, no answer (empty
//     Order, as Traffic Manager answers NODATA). Among them, priority then
//     weight. Fail-open stays within the geo: when every candidate of the geo
//     is unhealthy they are answered anyway (FailOpen set), as Traffic
//     Manager keeps answering a geo's endpoint whatever its health, because
//     a geo mapping is usually a data-residency rule; traffic never spills
//     into another geo or to WORLD.
//   - multivalue: up to MaxRecords eligible candidates, by priority then
//     weight (the first is a weighted choice within the best priority).
//
// Decision.Order lists every candidate of the pool, in preference order:
// Order[0] is the target and the rest are the fallbacks, for retries (front
// door) or further records (multivalue). The pool is the eligible
// candidates, or the fail-open pool; for geographic, only those of the geo;
// for multivalue, at most MaxRecords. The fallbacks follow the method's own
// ranking: priority: by priority, then weight (heaviest first); weighted:
// by weight; latency: the rest of the band, the rest of the tier and then
// the other tiers, each by RTT (unknown last); performance: by match length,
// RTT, priority, weight. Remaining ties keep the order of cands.
//
// Decide does not allocate beyond Order and Reason and takes a few hundred
// nanoseconds for a handful of candidates: it is meant to run per request.
package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Candidate is one region as routing sees it.
type Candidate struct {
	// Name of the region.
	Name string
	// Priority: lower is preferred (1–5 in the topology).
	Priority int
	// Weight for weighted choices; 0 or less counts as 1 (Front Door's
	// minimum).
	Weight int
	// Enabled is false for a region the operator disabled: never answered.
	Enabled bool
	// Healthy is the health verdict (health.Checker.Healthy).
	Healthy bool
	// Drained takes a region out of rotation while it keeps running; only
	// fail-open answers it, as a last resort.
	Drained bool
	// RTT is the decider's smoothed round trip to the region
	// (health.Checker.RTT); 0 means unknown.
	RTT time.Duration
	// Geo lists the client geographies the region serves (geographic
	// routing); "WORLD" serves every geo no region lists.
	Geo []string
	// Networks lists client networks nearest to the region (performance
	// routing).
	Networks []netip.Prefix
}

// Eligible reports whether c may be answered without failing open:
// enabled, healthy and not drained.
func (c *Candidate) Eligible() bool { return c.Enabled && c.Healthy && !c.Drained }

// Method is a routing method.
type Method string

// Methods.
const (
	Priority    Method = "priority"
	Weighted    Method = "weighted"
	Latency     Method = "latency"
	Performance Method = "performance"
	Geographic  Method = "geographic"
	MultiValue  Method = "multivalue"
)

// Methods lists every method.
var Methods = []Method{Priority, Weighted, Latency, Performance, Geographic, MultiValue}

// ParseMethod returns the method called s.
func ParseMethod(s string) (Method, error) {
	if m := Method(s); slices.Contains(Methods, m) {
		return m, nil
	}
	return "", fmt.Errorf("routing: unknown method %q (want one of %v)", s, Methods)
}

// World is the geo code of the catch-all region of geographic routing.
const World = "WORLD"

// Policy is how Decide chooses.
type Policy struct {
	// Method; the zero value means priority. Decide treats an unknown
	// method as priority and says so in the reason; Validate rejects it.
	Method Method
	// LatencyBand is the latency sensitivity of latency routing: candidates
	// within this much of the fastest RTT are equivalent. 0: only the
	// fastest (and exact ties). The topology's default is 50ms.
	LatencyBand time.Duration
	// MaxRecords bounds multivalue answers; 0: no bound. The topology's
	// default is 8.
	MaxRecords int
}

// Validate reports every problem of p at once, with its field path.
func (p Policy) Validate() error {
	var errs []error
	if p.Method != "" && !slices.Contains(Methods, p.Method) {
		errs = append(errs, fmt.Errorf("method: unknown method %q (want one of %v)", p.Method, Methods))
	}
	if p.LatencyBand < 0 {
		errs = append(errs, fmt.Errorf("latencyBand: must not be negative, got %s", p.LatencyBand))
	}
	if p.MaxRecords < 0 {
		errs = append(errs, fmt.Errorf("maxRecords: must not be negative, got %d", p.MaxRecords))
	}
	return errors.Join(errs...)
}

// Request is what Decide knows about one request.
type Request struct {
	// Client is the client's address (see ClientAddr), or the EDNS client
	// subnet address for DNS; may be invalid (unknown).
	Client netip.Addr
	// Geo is the client's geo code, resolved by the caller (see GeoTable);
	// "" when unknown.
	Geo string
	// Affinity names the region a session is bound to (a cookie); "" for
	// none.
	Affinity string
	// Rand drives weighted choices: the caller passes a random number (or a
	// counter, for a deterministic weighted round robin), so decisions are
	// reproducible in tests. A choice among candidates of total weight W
	// takes Rand mod W.
	Rand uint64
}

// Decision is the outcome of Decide.
type Decision struct {
	// Order indexes cands: Order[0] is the target, the rest are fallbacks
	// in preference order (see the package documentation). Empty when
	// nothing may be answered.
	Order []int
	// Method is the method applied.
	Method Method
	// FailOpen is set when no candidate was eligible and health was
	// ignored.
	FailOpen bool
	// Reason explains the choice for humans, e.g. "priority 1 of
	// [westeurope northeurope]; latency band 50ms of fastest 3ms:
	// [westeurope northeurope]; weighted 50/50 -> westeurope".
	Reason string
	// RandSpan is the total weight W of the weighted choice the decision
	// made (Request.Rand mod W chose), or 0 when Rand played no part.
	// Requests that differ only in Rand, with Rand values equal mod
	// RandSpan, get identical decisions, so a caller may memoize decisions
	// per Rand mod RandSpan (the GSLB does).
	RandSpan uint64
}

// Target returns the index of the chosen candidate, or -1 when none.
func (d Decision) Target() int {
	if len(d.Order) == 0 {
		return -1
	}
	return d.Order[0]
}

// stackN is the number of candidates Decide handles without allocating
// scratch space.
const stackN = 16

// Decide applies p to cands for req. It is a pure function of its
// arguments.
func Decide(p Policy, cands []Candidate, req Request) Decision {
	var arr [256]byte
	b := arr[:0]
	m := p.Method
	switch {
	case m == "":
		m = Priority
	case !slices.Contains(Methods, m):
		b = append(b, "unknown method "...)
		b = strconv.AppendQuote(b, string(m))
		b = append(b, ", using priority; "...)
		m = Priority
	}
	d := Decision{Method: m}

	// The scope: candidates the method may answer at all.
	var scopeArr [stackN]int
	scope := scopeArr[:0]
	if m == Geographic {
		for i := range cands {
			if c := &cands[i]; c.Enabled && req.Geo != "" && slices.Contains(c.Geo, req.Geo) {
				scope = append(scope, i)
			}
		}
		b = append(b, "geo "...)
		if req.Geo == "" {
			b = append(b, "unknown"...)
		} else {
			b = append(b, req.Geo...)
		}
		if len(scope) == 0 {
			for i := range cands {
				if c := &cands[i]; c.Enabled && slices.Contains(c.Geo, World) {
					scope = append(scope, i)
				}
			}
			if len(scope) == 0 {
				d.Reason = "no region serves geo " + orUnknown(req.Geo)
				return d
			}
			b = append(b, " not listed; "+World...)
		}
		b = append(b, ": "...)
		b = appendNames(b, cands, scope)
		b = append(b, "; "...)
	} else {
		for i := range cands {
			if cands[i].Enabled {
				scope = append(scope, i)
			}
		}
	}

	// The pool: eligible candidates of the scope, else fail open.
	var poolArr [stackN]int
	pool := poolArr[:0]
	for _, i := range scope {
		if cands[i].Eligible() {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		for _, i := range scope {
			if !cands[i].Drained {
				pool = append(pool, i)
			}
		}
		what := "every enabled, undrained candidate"
		if len(pool) == 0 {
			pool = append(pool, scope...)
			what = "every enabled candidate, drained included"
		}
		if len(pool) == 0 {
			d.Reason = string(append(b, "no enabled candidate"...))
			return d
		}
		d.FailOpen = true
		pre := "fail-open: no eligible candidate, answering " + what + "; "
		if m == Geographic {
			pre = "fail-open: no eligible candidate in the geo, answering it anyway; "
		}
		b = append(b, pre...)
	}

	affinity := -1 // candidate index
	if req.Affinity != "" {
		if k := slices.IndexFunc(pool, func(i int) bool { return cands[i].Name == req.Affinity }); k >= 0 {
			affinity = pool[k]
			b = append(b, "affinity "...)
			b = append(b, req.Affinity...)
			b = append(b, "; otherwise "...)
		}
	}

	order := make([]int, len(pool))
	copy(order, pool)
	switch m {
	case Weighted:
		insertionSort(order, func(x, y int) bool { return weight(&cands[x]) > weight(&cands[y]) })
		k := pickWeighted(order, cands, req.Rand)
		d.RandSpan = spanOf(order, cands)
		b = append(b, "weighted "...)
		b = appendWeights(b, cands, order)
		b = append(b, " of "...)
		b = appendNames(b, cands, order)
		b = append(b, " -> "...)
		b = append(b, cands[order[k]].Name...)
		moveToFront(order, k)
	case Latency:
		insertionSort(order, func(x, y int) bool {
			cx, cy := &cands[x], &cands[y]
			if cx.Priority != cy.Priority {
				return cx.Priority < cy.Priority
			}
			return rttKey(cx) < rttKey(cy)
		})
		tier := tierLen(order, cands)
		b = appendTier(b, cands, order, tier)
		band := tier
		if fastest := cands[order[0]].RTT; fastest > 0 {
			band = 1
			for band < tier && cands[order[band]].RTT > 0 && cands[order[band]].RTT-fastest <= p.LatencyBand {
				band++
			}
			b = append(b, "; latency band "...)
			b = appendDuration(b, p.LatencyBand)
			b = append(b, " of fastest "...)
			b = appendDuration(b, fastest)
			b = append(b, ": "...)
		} else {
			b = append(b, "; no rtt known: "...)
		}
		b = appendNames(b, cands, order[:band])
		b = appendPick(b, cands, order, band, req.Rand)
		d.RandSpan = spanOf(order[:band], cands)
	case Performance:
		var bitsArr [stackN]int16
		bits := bitsArr[:0]
		if len(cands) > stackN {
			bits = make([]int16, 0, len(cands))
		}
		client := req.Client.Unmap()
		best, bestBits := -1, -1
		for i := range cands {
			n := matchBits(cands[i].Networks, client)
			bits = append(bits, n)
			if int(n) > bestBits {
				best, bestBits = i, int(n)
			}
		}
		insertionSort(order, func(x, y int) bool {
			if bits[x] != bits[y] {
				return bits[x] > bits[y]
			}
			cx, cy := &cands[x], &cands[y]
			if rx, ry := rttKey(cx), rttKey(cy); rx != ry {
				return rx < ry
			}
			if cx.Priority != cy.Priority {
				return cx.Priority < cy.Priority
			}
			return weight(cx) > weight(cy)
		})
		first := &cands[order[0]]
		b = append(b, "client "...)
		if client.IsValid() {
			b = client.AppendTo(b)
		} else {
			b = append(b, "unknown"...)
		}
		if best >= 0 && best != order[0] {
			b = append(b, " nearest "...)
			b = append(b, cands[best].Name...)
			b = append(b, " not eligible;"...)
		}
		if n := bits[order[0]]; n >= 0 {
			b = append(b, " in "...)
			b = appendMatch(b, first.Networks, client)
			b = append(b, " of "...)
		} else if first.RTT > 0 {
			b = append(b, " in no listed network; lowest rtt "...)
			b = appendDuration(b, first.RTT)
			b = append(b, ": "...)
		} else {
			b = append(b, " in no listed network; no rtt known; priority "...)
			b = strconv.AppendInt(b, int64(first.Priority), 10)
			b = append(b, ": "...)
		}
		b = append(b, first.Name...)
	default: // Priority, Geographic, MultiValue
		insertionSort(order, func(x, y int) bool {
			cx, cy := &cands[x], &cands[y]
			if cx.Priority != cy.Priority {
				return cx.Priority < cy.Priority
			}
			return weight(cx) > weight(cy)
		})
		tier := tierLen(order, cands)
		b = appendTier(b, cands, order, tier)
		b = appendPick(b, cands, order, tier, req.Rand)
		d.RandSpan = spanOf(order[:tier], cands)
	}

	if affinity >= 0 {
		moveToFront(order, slices.Index(order, affinity))
	} else if req.Affinity != "" {
		b = append(b, "; affinity "...)
		b = append(b, req.Affinity...)
		b = append(b, " not eligible"...)
	}
	if m == MultiValue {
		all := len(order)
		if p.MaxRecords > 0 && len(order) > p.MaxRecords {
			order = order[:p.MaxRecords]
		}
		b = append(b, "; "...)
		b = strconv.AppendInt(b, int64(len(order)), 10)
		b = append(b, " of "...)
		b = strconv.AppendInt(b, int64(all), 10)
		b = append(b, " records"...)
		if p.MaxRecords > 0 {
			b = append(b, " (max "...)
			b = strconv.AppendInt(b, int64(p.MaxRecords), 10)
			b = append(b, ')')
		}
		b = append(b, ": "...)
		b = appendNames(b, cands, order)
	}
	d.Order = order
	d.Reason = string(b)
	return d
}

// Explain renders d for the X-Geostamp-Route header and DNS TXT explain
// records: one line of printable ASCII, such as
//
//	target=westeurope method=latency fallbacks=northeurope reason="priority 1 of [westeurope northeurope]; ..."
//
// with fail_open=true after the method when the decision failed open, and
// target=none when nothing may be answered. Characters of names outside
// printable ASCII (and commas, quotes) are written as '?'. cands must be the
// slice d was decided on.
func (d Decision) Explain(cands []Candidate) string {
	b := make([]byte, 0, 64+len(d.Reason))
	b = append(b, "target="...)
	if len(d.Order) == 0 {
		b = append(b, "none"...)
	} else {
		b = appendName(b, cands, d.Order[0])
	}
	b = append(b, " method="...)
	b = append(b, d.Method...)
	if d.FailOpen {
		b = append(b, " fail_open=true"...)
	}
	if len(d.Order) > 1 {
		b = append(b, " fallbacks="...)
		for k, i := range d.Order[1:] {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendName(b, cands, i)
		}
	}
	b = append(b, " reason="...)
	if plainASCII(d.Reason) {
		b = append(append(append(b, '"'), d.Reason...), '"')
	} else {
		b = strconv.AppendQuoteToASCII(b, d.Reason)
	}
	return string(b)
}

// plainASCII reports whether s needs no escaping inside double quotes.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func appendName(b []byte, cands []Candidate, i int) []byte {
	if i < 0 || i >= len(cands) {
		return strconv.AppendInt(append(b, '#'), int64(i), 10)
	}
	for _, ch := range []byte(cands[i].Name) {
		if ch <= ' ' || ch > '~' || ch == ',' || ch == '"' {
			ch = '?' // keep the line printable ASCII and parseable
		}
		b = append(b, ch)
	}
	return b
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func weight(c *Candidate) uint64 {
	if c.Weight <= 0 {
		return 1
	}
	return uint64(c.Weight)
}

// rttKey orders known RTTs first, fastest first.
func rttKey(c *Candidate) time.Duration {
	if c.RTT <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return c.RTT
}

// tierLen returns the length of the prefix of order (sorted by priority)
// that has the best priority.
func tierLen(order []int, cands []Candidate) int {
	n := 1
	for n < len(order) && cands[order[n]].Priority == cands[order[0]].Priority {
		n++
	}
	return n
}

// spanOf returns the total weight of set when a weighted choice among it
// is made (more than one member), else 0; see Decision.RandSpan.
func spanOf(set []int, cands []Candidate) uint64 {
	if len(set) <= 1 {
		return 0
	}
	var total uint64
	for _, i := range set {
		total += weight(&cands[i])
	}
	return total
}

// pickWeighted returns the position in set of a weighted random choice.
func pickWeighted(set []int, cands []Candidate, r uint64) int {
	if len(set) <= 1 {
		return 0
	}
	var total uint64
	for _, i := range set {
		total += weight(&cands[i])
	}
	x := r % total
	for k, i := range set {
		w := weight(&cands[i])
		if x < w {
			return k
		}
		x -= w
	}
	return len(set) - 1
}

// moveToFront moves s[k] to s[0], shifting s[:k] right.
func moveToFront(s []int, k int) {
	if k <= 0 {
		return
	}
	v := s[k]
	copy(s[1:k+1], s[:k])
	s[0] = v
}

// insertionSort sorts s stably; candidate lists are short.
func insertionSort(s []int, less func(x, y int) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// matchBits returns the length of the longest prefix of nets containing a,
// or -1.
func matchBits(nets []netip.Prefix, a netip.Addr) int16 {
	best := int16(-1)
	if !a.IsValid() {
		return best
	}
	for _, p := range nets {
		if n := int16(p.Bits()); n > best && p.Contains(a) {
			best = n
		}
	}
	return best
}

func appendMatch(b []byte, nets []netip.Prefix, a netip.Addr) []byte {
	var best netip.Prefix
	for _, p := range nets {
		if p.Contains(a) && (!best.IsValid() || p.Bits() > best.Bits()) {
			best = p
		}
	}
	return best.AppendTo(b)
}

// appendTier writes "priority P of [names]".
func appendTier(b []byte, cands []Candidate, order []int, tier int) []byte {
	b = append(b, "priority "...)
	b = strconv.AppendInt(b, int64(cands[order[0]].Priority), 10)
	b = append(b, " of "...)
	return appendNames(b, cands, order[:tier])
}

// appendPick makes a weighted choice within order[:n], moves it to the
// front and writes "; weighted 50/50 -> name" when there was a choice.
func appendPick(b []byte, cands []Candidate, order []int, n int, r uint64) []byte {
	if n <= 1 {
		return b
	}
	k := pickWeighted(order[:n], cands, r)
	b = append(b, "; weighted "...)
	b = appendWeights(b, cands, order[:n])
	b = append(b, " -> "...)
	b = append(b, cands[order[k]].Name...)
	moveToFront(order, k)
	return b
}

func appendNames(b []byte, cands []Candidate, set []int) []byte {
	b = append(b, '[')
	for k, i := range set {
		if k > 0 {
			b = append(b, ' ')
		}
		b = append(b, cands[i].Name...)
	}
	return append(b, ']')
}

func appendWeights(b []byte, cands []Candidate, set []int) []byte {
	for k, i := range set {
		if k > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendUint(b, weight(&cands[i]), 10)
	}
	return b
}

// appendDuration writes d in milliseconds to the microsecond ("50ms",
// "3.2ms", "0.125ms") without allocating.
func appendDuration(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	us := int64(d / time.Microsecond)
	b = strconv.AppendInt(b, us/1000, 10)
	if frac := us % 1000; frac != 0 {
		b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return append(b, "ms"...)
}
