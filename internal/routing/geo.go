package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// GeoTable maps client networks to geo codes with longest-prefix match. It
// is built once and then read concurrently without locks.
type GeoTable struct {
	v4, v6 []geoLevel // by prefix length, longest first
	n      int
}

type geoLevel struct {
	bits  int
	codes map[netip.Prefix]string
}

// NewGeoTable builds a table from entries mapping a prefix ("10.1.0.0/16")
// or a single address ("10.1.2.3") to a geo code ("GB"), such as the
// topology's geoip map. Host bits are ignored ("10.1.2.3/16" is
// 10.1.0.0/16), as topology validation allows them. Every invalid entry is
// reported at once: a key that is not a prefix, an IPv4-mapped IPv6 prefix
// (write IPv4 prefixes in dotted form), an empty code, or two keys for the
// same network with different codes.
func NewGeoTable(entries map[string]string) (*GeoTable, error) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report problems in a stable order
	g := &GeoTable{}
	var errs []error
	byBits := map[bool]map[int]map[netip.Prefix]string{true: {}, false: {}}
	for _, k := range keys {
		code := entries[k]
		p, err := parsePrefix(strings.TrimSpace(k))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%q: %w", k, err))
			continue
		case code == "":
			errs = append(errs, fmt.Errorf("%q: empty geo code", k))
			continue
		}
		lv := byBits[p.Addr().Is4()]
		if lv[p.Bits()] == nil {
			lv[p.Bits()] = map[netip.Prefix]string{}
		}
		if prev, dup := lv[p.Bits()][p]; dup {
			if prev != code {
				errs = append(errs, fmt.Errorf("%q: %s is listed twice, as %s and as %s", k, p, prev, code))
			}
			continue
		}
		lv[p.Bits()][p] = code
		g.n++
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("routing: geo table: %w", err)
	}
	for is4, lv := range byBits {
		levels := make([]geoLevel, 0, len(lv))
		for bits, codes := range lv {
			levels = append(levels, geoLevel{bits, codes})
		}
		slices.SortFunc(levels, func(a, b geoLevel) int { return b.bits - a.bits })
		if is4 {
			g.v4 = levels
		} else {
			g.v6 = levels
		}
	}
	return g, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a prefix such as 10.1.0.0/16 or an address")
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("zoned addresses are not allowed")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a prefix such as 10.1.0.0/16 or an address")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped IPv6 prefix: write it in dotted form, e.g. 10.0.0.0/8")
	}
	return p.Masked(), nil
}

// Len returns the number of entries.
func (g *GeoTable) Len() int {
	if g == nil {
		return 0
	}
	return g.n
}

// Lookup returns the geo code of the longest prefix containing a (IPv4 in
// IPv6 addresses are looked up as IPv4), and false when none does or a is
// invalid. A nil table finds nothing. It does not allocate.
func (g *GeoTable) Lookup(a netip.Addr) (string, bool) {
	if g == nil || !a.IsValid() {
		return "", false
	}
	a = a.Unmap().WithZone("")
	levels := g.v6
	if a.Is4() {
		levels = g.v4
	}
	for _, l := range levels {
		p, err := a.Prefix(l.bits)
		if err != nil {
			continue
		}
		if code, ok := l.codes[p]; ok {
			return code, true
		}
	}
	return "", false
}

// ClientAddr returns the real client of a request: the connection's peer,
// unless the peer is a trusted proxy; then the right-most address of
// X-Forwarded-For that is not a trusted proxy (the entries left of it could
// have been written by the client itself). If every entry is trusted, the
// left-most one is the client. Parsing stops at an entry that is not an
// address (with or without a port); the last trusted hop before it is
// returned. xff holds every X-Forwarded-For value, comma-separated, e.g.
// strings.Join(r.Header.Values("X-Forwarded-For"), ","). Addresses are
// returned without zone, IPv4-mapped IPv6 as IPv4. It does not allocate.
func ClientAddr(peer netip.Addr, xff string, trusted []netip.Prefix) netip.Addr {
	client := peer.Unmap().WithZone("")
	if !isTrusted(client, trusted) {
		return client
	}
	for rest := xff; ; {
		i := strings.LastIndexByte(rest, ',')
		entry := strings.TrimSpace(rest[i+1:])
		rest = rest[:max(i, 0)]
		if entry != "" {
			a, ok := parseHop(entry)
			if !ok {
				return client
			}
			client = a
			if !isTrusted(a, trusted) {
				return a
			}
		}
		if i < 0 {
			return client
		}
	}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses "1.2.3.4", "1.2.3.4:80", "2001:db8::1" or "[2001:db8::1]:80".
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}
