package wan

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// gate is the cut state of one direction of a link. It is shared by the
// gate toxics of all the link's proxies, so one Cut or Heal reaches every
// connection at once without touching toxiproxy's toxic chains.
type gate struct {
	mu       sync.Mutex
	shut     bool
	released bool          // the Net is closed: never hold data again
	changed  chan struct{} // closed, then replaced, whenever the state changes
	cuts     uint64        // times shut, and opened again (metrics)
	heals    uint64
	bytes    atomic.Uint64 // passed through, all proxies (metrics)
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// set shuts (cut) or opens (heal) the gate.
func (g *gate) set(shut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == shut {
		return
	}
	g.shut = shut
	if shut {
		g.cuts++
	} else {
		g.heals++
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// release makes the gate pass data whatever its state, so that goroutines
// parked behind a cut can see their streams close when the Net closes.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released {
		return
	}
	g.released = true
	close(g.changed)
	g.changed = make(chan struct{})
}

// counts returns how many times the gate was shut and opened.
func (g *gate) counts() (cuts, heals uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cuts, g.heals
}

func (g *gate) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut
}

// holding reports whether data must be held now, and a channel that is
// closed at the next change.
func (g *gate) holding() (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut && !g.released, g.changed
}

// gateToxic is the toxic behind Cut: while its gate is shut it stops
// reading, so data waits (in order) in the chain and then in the kernel;
// when the gate opens the data flows on. It never closes a connection.
//
// It is written here rather than taken from toxiproxy because toxiproxy's
// timeout toxic, its only "blocks without closing" toxic (timeout 0), is
// unusable for a cut that heals: removing it closes every connection it
// was applied to (its Cleanup closes the stub), toggling its toxicity with
// UpdateToxicJson races with the running toxic, and it drops the bytes it
// swallows, which corrupts the TCP byte stream once the link heals.
type gateToxic struct {
	gate *gate
}

var _ toxics.Toxic = (*gateToxic)(nil)

// Pipe implements toxics.Toxic.
func (t *gateToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		hold, changed := t.gate.holding()
		if hold {
			select {
			case <-stub.Interrupt:
				return
			case <-changed:
			}
			continue
		}
		select {
		case <-stub.Interrupt:
			return
		case <-changed:
		case c := <-stub.Input:
			if c == nil { // source closed
				stub.Close()
				return
			}
			t.gate.bytes.Add(uint64(len(c.Data)))
			stub.Output <- c
		}
	}
}

// addGate installs g as the first toxic of stream s of p. It must be called
// before the proxy starts: toxiproxy builds toxics only from its registry,
// so the gate is added as a registered no-op toxic whose implementation is
// then replaced, which is safe only while no connection runs the chain.
// (Registering gateToxic in toxiproxy's registry would not help: the
// registry hands out zero values, and each gate toxic needs its gate.)
func (p *proxy) addGate(s stream.Direction, g *gate) error {
	spec := toxicSpec{Name: "wan_gate_" + s.String(), Type: "noop", Stream: s.String(), Toxicity: 1}
	w, err := p.tp.Toxics.AddToxicJson(spec.reader())
	if err != nil {
		return fmt.Errorf("add %s gate toxic: %w", s, err)
	}
	w.Toxic = &gateToxic{gate: g}
	w.Type = "wan_gate"
	return nil
}
