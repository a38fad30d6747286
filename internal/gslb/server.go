package gslb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/geostamp/geostamp/internal/health"
)

const (
	// tcpIdle closes a TCP connection that sends no query for this long
	// (RFC 7766 §6.2.3 suggests seconds).
	tcpIdle = 10 * time.Second
	// maxTCPConns bounds concurrent TCP connections; more are closed at
	// once.
	maxTCPConns = 1024
	// bindAttempts bounds the retries of a port-0 bind whose TCP port turns
	// out to be taken.
	bindAttempts = 16
)

// Run listens on UDP and TCP (and the admin API), probes the regions and
// answers queries until ctx ends; then it stops everything it started and
// returns nil. It returns an error when it cannot start, after undoing
// what it started. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var closers []io.Closer
	cleanup := func() {
		cancel()
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
	}
	defer cleanup()

	udp, tcp, err := s.bind()
	if err != nil {
		return fmt.Errorf("gslb: %w", err)
	}
	closers = append(closers, udp, tcp)
	if s.cfg.AdminListen != AdminOff {
		ln, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("gslb: admin API: %w", err)
		}
		srv := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		closers = append(closers, srv)
		s.adminAddr = ln.Addr().String()
		wg.Go(func() { _ = srv.Serve(ln) })
	}
	if err := s.registry.Register(s.stats); err != nil {
		return fmt.Errorf("gslb: metrics: %w", err)
	}
	defer s.registry.Unregister(s.stats)

	events, unsubscribe := s.checker.Subscribe(64)
	closers = append(closers, closerFunc(unsubscribe))
	wg.Go(func() { _ = s.checker.Run(ctx) })
	wg.Go(func() { s.refresh(ctx, events) })
	for range max(1, runtime.GOMAXPROCS(0)) {
		w := newWorker(s.stats.newShard("udp"))
		wg.Go(func() { s.serveUDP(udp, w) })
	}
	tcpShard := s.stats.newShard("tcp")
	wg.Go(func() { s.serveTCP(tcp, tcpShard) })

	s.addr = udp.LocalAddr().String()
	close(s.ready)
	s.log.Info("serving", "zone", s.zone.origin, "host", s.zone.host, "addr", s.addr,
		"admin", s.adminAddr, "routing", s.policy.Method, "regions", len(s.topo.Regions))
	<-ctx.Done()
	s.log.Info("stopping", "cause", context.Cause(ctx))
	return nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// bind opens the UDP socket and the TCP listener on the same port. With
// port 0 it retries when the port the UDP socket got is taken for TCP.
func (s *Server) bind() (*net.UDPConn, *net.TCPListener, error) {
	for attempt := 1; ; attempt++ {
		udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(s.listen))
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", s.listen, err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		tcp, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.listen.Addr(), port)))
		if err != nil {
			udp.Close()
			if s.listen.Port() == 0 && attempt < bindAttempts {
				continue
			}
			return nil, nil, fmt.Errorf("listen tcp %s: %w", s.listen, err)
		}
		_ = udp.SetReadBuffer(4 << 20) // absorb bursts; best effort
		_ = udp.SetWriteBuffer(4 << 20)
		return udp, tcp, nil
	}
}

// refresh rebuilds the state on every health event, and every probe
// interval to follow RTT changes (performance routing) and any event a
// full subscription buffer dropped.
func (s *Server) refresh(ctx context.Context, events <-chan health.Event) {
	tick := make(chan struct{}, 1)
	period := s.topo.GSLB.Probe.Interval.D()
	arm := func() health.Timer {
		return s.clock.AfterFunc(period, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
	}
	t := arm()
	defer func() { t.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			s.rebuild()
		case <-tick:
			s.rebuild()
			t = arm()
		}
	}
}

// serveUDPSimple answers queries read from c, one packet per system call,
// until c is closed (serveUDP, on systems without recvmmsg). Several
// goroutines read the same socket, each with its own worker.
func (s *Server) serveUDPSimple(c *net.UDPConn, w *worker) {
	in := make([]byte, maxMsg)
	for {
		n, from, err := c.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. a truncated read or an ICMP error: next packet
		}
		if out := s.handle(w, in[:n], from.Addr(), false); out != nil {
			_, _ = c.WriteToUDPAddrPort(out, from)
		}
	}
}

// serveTCP accepts connections until ln is closed, then closes them and
// waits for their goroutines.
func (s *Server) serveTCP(ln *net.TCPListener, sh *shard) {
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	pool := sync.Pool{New: func() any { return newWorker(sh) }}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// e.g. too many open files: wait a little, as net/http does
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		mu.Lock()
		if len(conns) >= maxTCPConns {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			w := pool.Get().(*worker)
			s.serveConn(c, w)
			pool.Put(w)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		})
	}
}

// serveConn answers the length-prefixed queries of one TCP connection, in
// order, until the client closes it, idles for tcpIdle or sends garbage.
func (s *Server) serveConn(c net.Conn, w *worker) {
	var src netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = a.AddrPort().Addr()
	}
	br := bufio.NewReaderSize(c, 4096)
	in := make([]byte, maxMsg)
	var lb [2]byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			return
		}
		n := int(be16(lb[:]))
		if _, err := io.ReadFull(br, in[:n]); err != nil {
			return
		}
		out := s.handle(w, in[:n], src, true)
		if out == nil {
			return // not a query: do not keep talking
		}
		// out is w.b[2:]: the first two bytes are free for the length.
		frame := w.b[:2+len(out)]
		frame[0], frame[1] = byte(len(out)>>8), byte(len(out))
		_ = c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}
