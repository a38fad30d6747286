package jetstream

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// linkProxy is a TCP forwarder standing for a WAN link between two regions.
// Cut closes every connection and refuses new ones (accepted, then closed
// at once, like a link that drops everything); Heal lets connections
// through again. SetDelay delays the bytes flowing back from the target
// (one-way latency). The listen address stays the same.
type linkProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	delay time.Duration // applied to target -> client bytes
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &linkProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's listen address (host:port).
func (p *linkProxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones until Heal.
func (p *linkProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Heal lets new connections through again.
func (p *linkProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// SetDelay sets the one-way latency of the bytes the target sends back.
func (p *linkProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *linkProxy) currentDelay() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay
}

func (p *linkProxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *linkProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		p.mu.Unlock()
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		if p.cut { // cut while dialing
			p.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(out, in, false) })
		p.wg.Go(func() { p.pipe(in, out, true) })
	}
}

// pipe copies src to dst, delayed by the proxy's delay if delayed; when
// either side ends, both are closed.
func (p *linkProxy) pipe(dst, src net.Conn, delayed bool) {
	if !delayed {
		_, _ = io.Copy(dst, src) // ends with an error when the link is cut
	} else {
		type chunk struct {
			due time.Time
			b   []byte
		}
		q := make(chan chunk, 1024)
		var w sync.WaitGroup
		w.Go(func() {
			for c := range q {
				time.Sleep(time.Until(c.due))
				if _, err := dst.Write(c.b); err != nil {
					break
				}
			}
			for range q { // drain after a write error
			}
		})
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{due: time.Now().Add(p.currentDelay()), b: append([]byte(nil), buf[:n]...)}
			}
			if err != nil {
				break
			}
		}
		close(q)
		w.Wait()
	}
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
