package wan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// quiet is how long a test waits to conclude that data does not arrive.
const quiet = 300 * time.Millisecond

// ioTimeout bounds every read and write a test expects to succeed.
const ioTimeout = 5 * time.Second

func newNet(t *testing.T) *Net {
	t.Helper()
	n := New(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// server is a TCP listener on 127.0.0.1:0 that hands its accepted
// connections to the test.
type server struct {
	addr  string
	conns chan net.Conn
}

func startServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), conns: make(chan net.Conn, 16)}
	var (
		mu       sync.Mutex
		accepted []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range accepted {
			c.Close()
		}
	})
	return s
}

// accept returns the next connection the server accepted.
func (s *server) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(ioTimeout):
		t.Fatal("server accepted no connection")
		return nil
	}
}

// startEcho starts a server that echoes every connection.
func startEcho(t *testing.T) string {
	t.Helper()
	s := startServer(t)
	go func() {
		for c := range s.conns {
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	return s.addr
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: ioTimeout}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// read reads exactly len(want) bytes and checks them.
func read(t *testing.T, c net.Conn, want string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if n, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: got %q, %v", want, got[:n], err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// readNothing checks that nothing arrives on c for the quiet period and
// that c is still open (the read times out rather than failing).
func readNothing(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(quiet)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		t.Fatalf("got %q during a cut", buf[:n])
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a read timeout on an open connection, got %v", err)
	}
}

// roundTrip sends msg through an echo connection and returns the time
// until it came back.
func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	write(t, c, msg)
	read(t, c, msg)
	return time.Since(start)
}

func TestLinkIdentity(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	ab := n.Link("a", "b")
	if ba := n.Link("b", "a"); ba != ab {
		t.Fatal("Link(b, a) is not Link(a, b)")
	}
	if got := ab.Name(); got != "a<->b" {
		t.Errorf("Name() = %q, want %q", got, "a<->b")
	}
	n.Link("c", "a")
	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
		if l, ok := n.Find(pair[0], pair[1]); !ok || l != ab {
			t.Errorf("Find(%q, %q) = %v, %v; want the a<->b link", pair[0], pair[1], l, ok)
		}
	}
	if _, ok := n.Find("b", "c"); ok {
		t.Error("Find(b, c) found a link that was never made")
	}
	var names []string
	for _, st := range n.Links() {
		names = append(names, st.Name)
	}
	if got, want := strings.Join(names, " "), "a<->b c<->a"; got != want {
		t.Errorf("Links() names = %q, want %q", got, want)
	}
}

func TestLinkPanicsOnBadPair(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, a, b string }{
		{"same site", "a", "a"},
		{"empty site", "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(r.(string), "wan: ") {
					t.Errorf("Link(%q, %q) recovered %v, want a wan: panic", tc.a, tc.b, r)
				}
			}()
			newNet(t).Link(tc.a, tc.b)
		})
	}
}

func TestLinkErrors(t *testing.T) {
	t.Parallel()
	l := newNet(t).Link("a", "b")
	for _, tc := range []struct {
		name    string
		call    func() error
		is      error
		wantErr string
	}{
		{"latency unknown from", func() error { return l.SetLatency("x", "b", time.Millisecond, 0) },
			ErrUnknownSite, `wan: unknown site "x" on link "a<->b" (its sites are "a" and "b")`},
		{"latency unknown to", func() error { return l.SetLatency("a", "y", time.Millisecond, 0) },
			ErrUnknownSite, `wan: unknown site "y" on link "a<->b"`},
		{"latency same site", func() error { return l.SetLatency("a", "a", time.Millisecond, 0) },
			nil, `wan: link "a<->b": direction "a" -> "a" goes nowhere`},
		{"latency negative", func() error { return l.SetLatency("a", "b", -time.Millisecond, 0) },
			nil, `wan: link "a<->b": latency and jitter must not be negative, got -1ms and 0s`},
		{"jitter negative", func() error { return l.SetLatency("a", "b", 0, -time.Second) },
			nil, `must not be negative, got 0s and -1s`},
		{"cut unknown", func() error { return l.Cut("a", "c") },
			ErrUnknownSite, `wan: unknown site "c" on link "a<->b"`},
		{"heal unknown", func() error { return l.Heal("", "b") },
			ErrUnknownSite, `wan: unknown site "" on link "a<->b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	st := l.State()
	if st.AToB != (DirState{}) || st.BToA != (DirState{}) {
		t.Errorf("failed calls changed the link: %+v", st)
	}
}

func TestProxyErrors(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	up := startEcho(t)
	if _, err := n.Proxy("taken", "a", "b", "127.0.0.1:0", up); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                           string
		pname, from, to, listen, upstr string
		is                             error
		wantErr                        string
	}{
		{"no name", "", "a", "b", "127.0.0.1:0", up, nil, `wan: proxy "": name: required`},
		{"same site", "p", "a", "a", "127.0.0.1:0", up, nil,
			`wan: proxy "p": from/to: a link joins two different sites, got "a" twice`},
		{"no site", "p", "", "b", "127.0.0.1:0", up, nil, `from/to: site names must not be empty`},
		{"bad listen", "p", "a", "b", "127.0.0.1", up, nil, `listen: address 127.0.0.1: missing port in address`},
		{"bad upstream", "p", "a", "b", "127.0.0.1:0", "nowhere", nil, `upstream: address nowhere: missing port`},
		{"all at once", "", "a", "a", "x", "y", nil, "name: required\nfrom/to: a link joins two different sites"},
		{"duplicate", "taken", "b", "a", "127.0.0.1:0", up, ErrProxyExists, `wan: proxy already exists: "taken"`},
		{"listen fails", "p", "a", "b", "127.0.0.1:99999", up, nil, `wan: proxy "p": listen on 127.0.0.1:99999: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.Proxy(tc.pname, tc.from, tc.to, tc.listen, tc.upstr)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
	l, _ := n.Find("a", "b")
	if got := len(l.State().Proxies); got != 1 {
		t.Errorf("link has %d proxies after failed calls, want 1", got)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	const oneWay = 30 * time.Millisecond
	// The proxy is dialed from site "from"; the latency is always set on
	// a -> b, so it delays requests when a dials and replies when b dials.
	for _, tc := range []struct{ name, from, to string }{
		{"on requests", "a", "b"},
		{"on replies", "b", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNet(t)
			if err := n.Link("a", "b").SetLatency("a", "b", oneWay, 0); err != nil {
				t.Fatal(err)
			}
			addr, err := n.Proxy("p", tc.from, tc.to, "127.0.0.1:0", startEcho(t))
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, addr)
			for i := range 3 {
				if rtt := roundTrip(t, c, "ping"); rtt < oneWay {
					t.Errorf("round trip %d took %v, want at least %v", i, rtt, oneWay)
				}
			}
			st := n.Link("a", "b").State()
			if st.AToB.Latency.D() != oneWay || st.BToA.Latency != 0 {
				t.Errorf("state = %+v / %+v, want %v a->b and 0 back", st.AToB, st.BToA, oneWay)
			}

			if err := n.Link("b", "a").SetLatency("a", "b", 0, 0); err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c, "after")                   // still works (no speed assertion)
			roundTrip(t, dial(t, addr), "new conn ok") // and so do new connections
		})
	}
}

func TestLatencyChangeReachesOpenConnections(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	l := n.Link("a", "b")
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	roundTrip(t, c, "before")

	const back = 40 * time.Millisecond
	if err := l.SetLatency("b", "a", back, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// With jitter the delay is at least back - jitter.
	if rtt := roundTrip(t, c, "slow"); rtt < back-5*time.Millisecond {
		t.Errorf("round trip on the open connection took %v, want at least %v", rtt, back-5*time.Millisecond)
	}
	if err := l.SetLatency("b", "a", 2*back, 0); err != nil {
		t.Fatal(err)
	}
	if rtt := roundTrip(t, c, "slower"); rtt < 2*back {
		t.Errorf("round trip after raising the latency took %v, want at least %v", rtt, 2*back)
	}
	if err := l.SetLatency("b", "a", 0, 0); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "back to zero")
}

// TestCut checks both directions on proxies of both orientations. Data
// sent into a cut is held and delivered in order on Heal.
func TestCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		dialer, server  string // the proxy's from and to
		cutFrom, cutTo  string
		requestsBlocked bool
	}{
		{"a dials, cut a->b", "a", "b", "a", "b", true},
		{"a dials, cut b->a", "a", "b", "b", "a", false},
		{"b dials, cut a->b", "b", "a", "a", "b", false},
		{"b dials, cut b->a", "b", "a", "b", "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNet(t)
			srv := startServer(t)
			addr, err := n.Proxy("p", tc.dialer, tc.server, "127.0.0.1:0", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			l := n.Link("a", "b")
			client := dial(t, addr)
			server := srv.accept(t)
			write(t, client, "hello")
			read(t, server, "hello")

			if err := l.Cut(tc.cutFrom, tc.cutTo); err != nil {
				t.Fatal(err)
			}
			if tc.requestsBlocked {
				write(t, client, "req1")
				readNothing(t, server)
				readNothing(t, client) // the client side is still open too
				write(t, client, "req2")
				if err := l.Heal(tc.cutFrom, tc.cutTo); err != nil {
					t.Fatal(err)
				}
				read(t, server, "req1req2") // held, not dropped
			} else {
				write(t, client, "req")
				read(t, server, "req") // requests still arrive
				write(t, server, "rep1")
				readNothing(t, client)
				write(t, server, "rep2")
				if err := l.Heal(tc.cutFrom, tc.cutTo); err != nil {
					t.Fatal(err)
				}
				read(t, client, "rep1rep2")
			}
			// After healing both directions work on the same connection.
			write(t, client, "more")
			read(t, server, "more")
			write(t, server, "done")
			read(t, client, "done")
		})
	}
}

func TestCutHoldsNewConnections(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	srv := startServer(t)
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	l := n.Link("a", "b")
	l.CutBoth()
	st := l.State()
	if !st.AToB.Cut || !st.BToA.Cut {
		t.Fatalf("after CutBoth state = %+v / %+v, want both cut", st.AToB, st.BToA)
	}

	client := dial(t, addr) // accepted during the cut
	server := srv.accept(t) // and the upstream is dialed
	write(t, client, "req")
	write(t, server, "rep")
	readNothing(t, server)
	readNothing(t, client)

	l.HealBoth()
	read(t, server, "req")
	read(t, client, "rep")
	if st := l.State(); st.AToB.Cut || st.BToA.Cut {
		t.Errorf("after HealBoth state = %+v / %+v, want neither cut", st.AToB, st.BToA)
	}
}

func TestCutHoldsClose(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	srv := startServer(t)
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	l := n.Link("a", "b")
	client := dial(t, addr)
	server := srv.accept(t)
	if err := l.Cut("a", "b"); err != nil {
		t.Fatal(err)
	}
	write(t, client, "bye")
	if err := client.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	readNothing(t, server) // neither the data nor the close passes
	if err := l.Heal("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(server); string(b) != "bye" || err != nil {
		t.Fatalf("after Heal the server read %q, %v; want \"bye\" then EOF", b, err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	n := New(nil)
	srv := startServer(t)
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, addr)
	server := srv.accept(t)
	n.Link("a", "b").CutBoth() // Close must also tear down held streams
	write(t, client, "held")

	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Close did not return")
	}

	d := net.Dialer{Timeout: time.Second}
	if c, err := d.DialContext(t.Context(), "tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dialing %s after Close succeeded", addr)
	}
	// Both ends see the connection close; the held data is discarded.
	for name, c := range map[string]net.Conn{"client": client, "server": server} {
		if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s connection still open after Close", name)
		}
		if len(b) > 0 {
			t.Errorf("%s read %q after Close", name, b)
		}
	}

	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := n.Proxy("q", "a", "b", "127.0.0.1:0", srv.addr); !errors.Is(err, ErrClosed) {
		t.Errorf("Proxy after Close: error %v, want %v", err, ErrClosed)
	}
	if got := n.Links()[0].Proxies; len(got) != 0 {
		t.Errorf("proxies after Close: %+v, want none", got)
	}
}

// TestCloseEndsHeldStreams checks that Close lets the goroutines of
// connections held by a cut exit. It is not parallel so that the goroutine
// count reflects only this test.
func TestCloseEndsHeldStreams(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		n := New(nil)
		addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		n.Link("a", "b").CutBoth()
		var clients []net.Conn
		for range 3 {
			c := dial(t, addr)
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			write(t, c, "held")
			write(t, s, "held")
			clients = append(clients, c)
		}
		clients[0].Close() // a close sent into a cut is held too
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range clients {
			c.Close()
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentChanges changes latency and cuts while data flows, then
// checks that every message came back whole and in order, and that the
// link ends in the state of the last changes.
func TestConcurrentChanges(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	l := n.Link("a", "b")
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var last time.Duration // the latency set last; read after wg.Wait
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			last = time.Duration(i%3) * time.Millisecond
			if err := l.SetLatency("a", "b", last, time.Millisecond); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			l.CutBoth()
			time.Sleep(time.Millisecond)
			l.HealBoth()
			_ = l.State()
		}
	})

	trips := 0
	for ; ctx.Err() == nil; trips++ {
		roundTrip(t, c, strings.Repeat(string(rune('a'+trips%26)), 1+trips%2000))
	}
	wg.Wait()
	l.HealBoth()
	roundTrip(t, c, "end")
	if trips == 0 {
		t.Error("no round trip while the link changed")
	}
	st := l.State()
	if st.AToB.Cut || st.BToA.Cut || time.Duration(st.AToB.Latency) != last || time.Duration(st.AToB.Jitter) != time.Millisecond {
		t.Errorf("final state %+v, want healed with a→b latency %s and jitter 1ms", st, last)
	}
}

func TestStateJSON(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	l := n.Link("east", "west")
	if err := l.SetLatency("east", "west", 12*time.Millisecond+400*time.Microsecond, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.Cut("west", "east"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nats", "http"} {
		if _, err := n.Proxy(name, "west", "east", "127.0.0.1:0", "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}
	n.Link("east", "north")

	states := n.Links()
	for i := range states {
		for j := range states[i].Proxies {
			states[i].Proxies[j].Listen = "LISTEN" // the port is random
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "a<->b" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(states); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := filepath.Join("testdata", "links.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("Links() JSON differs from %s (run with -update to refresh):\n%s", golden, got)
	}

	var back []LinkState
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[1].AToB.Latency.D() != 12*time.Millisecond {
		t.Errorf("read back %+v, want east<->west with 12ms east->west", back)
	}
}

// recorder is a slog handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r } // attrs are not checked
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

func (r *recorder) find(msg string) (slog.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Message == msg {
			return rec, true
		}
	}
	return slog.Record{}, false
}

func TestToxiproxyLogsGoToSlog(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	n := New(slog.New(rec))
	t.Cleanup(func() { _ = n.Close() })
	srv := startServer(t)
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, addr)
	srv.accept(t) // toxiproxy logs the accept before it dials the upstream

	got, ok := rec.find("Accepted client")
	if !ok {
		t.Fatal(`toxiproxy's "Accepted client" event did not reach the slog logger`)
	}
	if got.Level != slog.LevelDebug {
		t.Errorf("level = %v, want %v", got.Level, slog.LevelDebug)
	}
	attrs := map[string]string{}
	got.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	if attrs["name"] != "p" || attrs["upstream"] != srv.addr {
		t.Errorf("attrs = %v, want name=p and upstream=%s", attrs, srv.addr)
	}
}

func TestToxiproxyErrorsAreWarnings(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	n := New(slog.New(rec))
	t.Cleanup(func() { _ = n.Close() })

	// An upstream that refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", dead)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read from a proxy with a dead upstream succeeded")
	}
	// The proxy closes the client after logging the failed dial.
	got, ok := rec.find("Unable to open connection to upstream")
	if !ok {
		t.Fatal("the failed upstream dial was not logged")
	}
	if got.Level != slog.LevelWarn {
		t.Errorf("level = %v, want %v", got.Level, slog.LevelWarn)
	}
}
