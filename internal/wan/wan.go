// Package wan emulates the WAN links between the sites of a lab. Sites are
// named by the caller; every pair of sites is joined by at most one Link,
// and each Link carries any number of TCP proxies whose traffic obeys the
// link's one-way latency and cuts.
//
// The proxies are Shopify toxiproxy proxies used as a library: latency is
// toxiproxy's latency toxic, and a cut is a toxic of this package (see
// gateToxic) placed in the same toxic chain.
//
// Direction mapping: a proxy is dialed from site "from" and forwards to
// site "to", so toxiproxy's upstream stream (client to server) carries
// from -> to traffic and its downstream stream carries to -> from traffic.
//
// What a caller must know about a cut: data is held, not dropped. Bytes
// sent into a cut direction wait inside the proxy (and, once its buffers
// are full, in the kernel, so the sender eventually blocks as it would
// when a real peer's receive window stops advancing). On Heal they are
// delivered in order, so the TCP byte stream stays intact. Connections are
// never closed by a cut, and a close (FIN) sent into a cut direction is held
// like data.
package wan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/rs/zerolog"

	"github.com/geostamp/geostamp/internal/topology"
)

// Sentinel errors; the errors returned by this package wrap them.
var (
	// ErrUnknownSite means a site name is not one of a link's two ends.
	ErrUnknownSite = errors.New("wan: unknown site")
	// ErrClosed means the Net has been closed.
	ErrClosed = errors.New("wan: net closed")
	// ErrProxyExists means a proxy of that name already exists in the Net.
	ErrProxyExists = errors.New("wan: proxy already exists")
)

// Net is the set of WAN links of a lab. Safe for concurrent use.
type Net struct {
	log    *slog.Logger
	zlog   zerolog.Logger
	server *toxiproxy.ApiServer // holds the proxy collection; its HTTP API is never started

	mu     sync.Mutex // guards links and closed; taken before any Link.mu
	links  map[pairKey]*Link
	closed bool
}

// pairKey identifies the unordered pair of sites of a link.
type pairKey struct{ lo, hi string }

func keyOf(a, b string) pairKey {
	if a > b {
		a, b = b, a
	}
	return pairKey{a, b}
}

// New returns an empty Net. It has no side effects: nothing listens until
// Proxy is called. A nil logger discards. toxiproxy's own log events are
// routed to logger (see newZerolog); nothing is written to stdout/stderr.
func New(logger *slog.Logger) *Net {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "wan")
	zl := newZerolog(logger.With("lib", "toxiproxy"))
	return &Net{
		log:    logger,
		zlog:   zl,
		server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zl),
		links:  make(map[pairKey]*Link),
	}
}

// Link returns the link between sites a and b, creating it; Link(a,b) and
// Link(b,a) are the same link. Its name is "a<->b" with a and b as first
// given. Link panics if a or b is empty or a == b: that is a programming
// error (Proxy, which takes site names from configuration, returns an error
// for it instead).
func (n *Net) Link(a, b string) *Link {
	if err := checkPair(a, b); err != nil {
		panic(err.Error())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linkLocked(a, b)
}

func (n *Net) linkLocked(a, b string) *Link {
	k := keyOf(a, b)
	if l, ok := n.links[k]; ok {
		return l
	}
	l := &Link{
		net:   n,
		name:  a + "<->" + b,
		a:     a,
		b:     b,
		gates: [2]*gate{newGate(), newGate()},
	}
	n.links[k] = l
	n.log.Debug("link created", "link", l.name)
	return l
}

// Find returns the link between a and b (in either order) if it exists.
func (n *Net) Find(a, b string) (*Link, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.links[keyOf(a, b)]
	return l, ok
}

// Links returns the state of every link, sorted by name.
func (n *Net) Links() []LinkState {
	n.mu.Lock()
	links := make([]*Link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.Unlock()

	out := make([]LinkState, 0, len(links))
	for _, l := range links {
		out = append(out, l.State())
	}
	slices.SortFunc(out, func(x, y LinkState) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// Proxy opens a listener on listen (e.g. "127.0.0.1:0") whose connections
// are forwarded to upstream; traffic goes from site from (the dialing side)
// to site to. The proxy belongs to Link(from, to) and obeys its latency and
// cuts, including a cut already in place. Proxy names are unique within the
// Net. It returns the actual listen address.
//
// The upstream is dialed once per accepted connection (also during a cut);
// if that dial fails the accepted connection is closed.
func (n *Net) Proxy(name, from, to, listen, upstream string) (addr string, err error) {
	if err := checkProxyArgs(name, from, to, listen, upstream); err != nil {
		return "", err
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", fmt.Errorf("proxy %q: %w", name, ErrClosed)
	}
	if _, err := n.server.Collection.Get(name); err == nil {
		return "", fmt.Errorf("%w: %q", ErrProxyExists, name)
	}
	l := n.linkLocked(from, to)

	l.mu.Lock()
	defer l.mu.Unlock()
	p := &proxy{
		tp:    toxiproxy.NewProxy(n.server, name, listen, upstream),
		state: ProxyState{Name: name, From: from, To: to, Upstream: upstream},
	}
	// Toxics are installed before the proxy starts, so every connection it
	// ever carries has the full chain: noop, gate, latency.
	for d := range l.gates {
		if err := p.addGate(l.streamOf(p, d), l.gates[d]); err != nil {
			return "", fmt.Errorf("wan: proxy %q: %w", name, err)
		}
	}
	for d := range l.dirs {
		if err := l.applyLatency(p, d); err != nil {
			return "", err
		}
	}
	if err := n.server.Collection.Add(p.tp, true); err != nil {
		return "", fmt.Errorf("wan: proxy %q: listen on %s: %w", name, listen, err)
	}
	p.state.Listen = p.tp.Listen // set by Start to the bound address
	l.proxies = append(l.proxies, p)
	n.log.Debug("proxy started", "link", l.name, "proxy", name,
		"from", from, "to", to, "listen", p.state.Listen, "upstream", upstream)
	return p.state.Listen, nil
}

// Close stops every listener and closes every proxied connection; data
// held by a cut is discarded. It is idempotent and always returns nil.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	links := make([]*Link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.Unlock()

	// Stop listeners and close connections first, then release the gates so
	// that goroutines parked behind a cut see the closed streams and exit.
	_ = n.server.Collection.Clear() // never fails
	for _, l := range links {
		l.mu.Lock()
		l.proxies = nil
		l.mu.Unlock()
		for _, g := range l.gates {
			g.release()
		}
	}
	n.log.Debug("net closed", "links", len(links))
	return nil
}

// Link is the WAN link between two sites, a and b. Its two directions are
// configured separately.
type Link struct {
	net  *Net
	name string
	a, b string
	// gates[dirAB] and gates[dirBA] hold the cut state of each direction and
	// are shared by the gate toxics of all the link's proxies.
	gates [2]*gate

	mu      sync.Mutex // guards dirs, proxies and gen
	dirs    [2]latency
	proxies []*proxy
	gen     int // makes toxic names unique while an old and a new one coexist
}

// Direction indexes of Link.gates and Link.dirs.
const (
	dirAB = 0
	dirBA = 1
)

// latency is the configured delay of one direction, in whole milliseconds.
type latency struct{ latency, jitter time.Duration }

// proxy is one toxiproxy proxy of a link.
type proxy struct {
	tp      *toxiproxy.Proxy
	state   ProxyState
	latency [stream.NumDirections]string // name of the current latency toxic per stream, "" if none
}

// Name returns "a<->b".
func (l *Link) Name() string { return l.name }

// dir returns the direction index of from -> to.
func (l *Link) dir(from, to string) (int, error) {
	for _, s := range []string{from, to} {
		if s != l.a && s != l.b {
			return 0, fmt.Errorf("%w %q on link %q (its sites are %q and %q)", ErrUnknownSite, s, l.name, l.a, l.b)
		}
	}
	if from == to {
		return 0, fmt.Errorf("wan: link %q: direction %q -> %q goes nowhere (want %q -> %q or %q -> %q)",
			l.name, from, to, l.a, l.b, l.b, l.a)
	}
	if from == l.a {
		return dirAB, nil
	}
	return dirBA, nil
}

// streamOf returns the toxiproxy stream of p that carries direction d.
func (l *Link) streamOf(p *proxy, d int) stream.Direction {
	src := l.a
	if d == dirBA {
		src = l.b
	}
	if p.state.From == src {
		return stream.Upstream
	}
	return stream.Downstream
}

// SetLatency sets the one-way latency and jitter of traffic from -> to
// (both must be the link's sites). Each chunk of data is delayed by
// latency ± a uniformly random jitter (never below zero), measured from
// when the proxy read it; data is never reordered. Both values are rounded
// to whole milliseconds, toxiproxy's resolution. The change applies to new
// and already open connections; data in flight at the moment of a change
// is delayed by the larger of the old and the new setting.
//
// SetLatency waits for every open connection's toxic chain to accept the
// change, so it can block while a receiver has stopped reading and the
// proxy's buffers towards it are full.
func (l *Link) SetLatency(from, to string, latency, jitter time.Duration) error {
	d, err := l.dir(from, to)
	if err != nil {
		return err
	}
	if latency < 0 || jitter < 0 {
		return fmt.Errorf("wan: link %q: latency and jitter must not be negative, got %s and %s", l.name, latency, jitter)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirs[d].latency = latency.Round(time.Millisecond)
	l.dirs[d].jitter = jitter.Round(time.Millisecond)
	var errs []error
	for _, p := range l.proxies {
		errs = append(errs, l.applyLatency(p, d))
	}
	return errors.Join(errs...)
}

// applyLatency makes p's latency toxic for direction d match l.dirs[d]. A
// new toxic is added behind the old one before the old one is removed, so
// no data overtakes the change undelayed. Fresh toxics are used instead of
// toxiproxy's UpdateToxicJson, which rewrites a toxic's fields while open
// connections are reading them (a data race). Callers hold l.mu.
func (l *Link) applyLatency(p *proxy, d int) error {
	s := l.streamOf(p, d)
	want := l.dirs[d]
	old := p.latency[s]
	name := ""
	if want.latency > 0 || want.jitter > 0 {
		l.gen++
		name = fmt.Sprintf("latency_%s_%d", s, l.gen)
		spec := toxicSpec{
			Name:     name,
			Type:     "latency",
			Stream:   s.String(),
			Toxicity: 1,
			Attributes: latencyAttrs{
				Latency: want.latency.Milliseconds(),
				Jitter:  want.jitter.Milliseconds(),
			},
		}
		if _, err := p.tp.Toxics.AddToxicJson(spec.reader()); err != nil {
			return fmt.Errorf("wan: proxy %q: add %s latency toxic: %w", p.state.Name, s, err)
		}
	}
	if old != "" {
		ctx := l.net.zlog.WithContext(context.Background()) // toxiproxy logs through zerolog.Ctx
		if err := p.tp.Toxics.RemoveToxic(ctx, old); err != nil {
			return fmt.Errorf("wan: proxy %q: remove %s latency toxic: %w", p.state.Name, s, err)
		}
	}
	p.latency[s] = name
	return nil
}

// Cut holds all traffic from -> to: open connections stay open and new
// ones are accepted, but no data passes in that direction until Heal. The
// data is held, not dropped (see the package comment). Cutting a cut
// direction does nothing.
func (l *Link) Cut(from, to string) error {
	d, err := l.dir(from, to)
	if err != nil {
		return err
	}
	l.gates[d].set(true)
	return nil
}

// CutBoth cuts both directions.
func (l *Link) CutBoth() {
	for _, g := range l.gates {
		g.set(true)
	}
}

// Heal ends a cut from -> to; held data is then delivered in order.
// Healing a direction that is not cut does nothing.
func (l *Link) Heal(from, to string) error {
	d, err := l.dir(from, to)
	if err != nil {
		return err
	}
	l.gates[d].set(false)
	return nil
}

// HealBoth heals both directions.
func (l *Link) HealBoth() {
	for _, g := range l.gates {
		g.set(false)
	}
}

// State returns a snapshot of the link's configuration and proxies, sorted
// by name.
func (l *Link) State() LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := LinkState{Name: l.name, A: l.a, B: l.b, Proxies: make([]ProxyState, 0, len(l.proxies))}
	dir := func(d int) DirState {
		return DirState{
			Latency: topology.Duration(l.dirs[d].latency),
			Jitter:  topology.Duration(l.dirs[d].jitter),
			Cut:     l.gates[d].isShut(),
		}
	}
	st.AToB, st.BToA = dir(dirAB), dir(dirBA)
	for _, p := range l.proxies {
		st.Proxies = append(st.Proxies, p.state)
	}
	slices.SortFunc(st.Proxies, func(x, y ProxyState) int { return strings.Compare(x.Name, y.Name) })
	return st
}

// toxicSpec is the JSON body toxiproxy's ToxicCollection.AddToxicJson reads.
type toxicSpec struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Stream     string  `json:"stream"`
	Toxicity   float32 `json:"toxicity"`
	Attributes any     `json:"attributes,omitempty"`
}

// latencyAttrs are the attributes of toxiproxy's latency toxic.
type latencyAttrs struct {
	Latency int64 `json:"latency"` // milliseconds
	Jitter  int64 `json:"jitter"`  // milliseconds
}

func (s toxicSpec) reader() *bytes.Reader {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("wan: marshal toxic spec: %v", err)) // plain struct: cannot fail
	}
	return bytes.NewReader(b)
}

func checkPair(a, b string) error {
	switch {
	case a == "" || b == "":
		return fmt.Errorf("wan: site names must not be empty (got %q and %q)", a, b)
	case a == b:
		return fmt.Errorf("wan: a link joins two different sites, got %q twice", a)
	}
	return nil
}

// checkProxyArgs reports every problem of Proxy's arguments at once.
func checkProxyArgs(name, from, to, listen, upstream string) error {
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if err := checkPair(from, to); err != nil {
		errs = append(errs, fmt.Errorf("from/to: %s", strings.TrimPrefix(err.Error(), "wan: ")))
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		errs = append(errs, fmt.Errorf("upstream: %w", err))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("wan: proxy %q: %w", name, errors.Join(errs...))
}
