package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestConfigValidate(t *testing.T) {
	good := Config{
		Name:      "westeurope",
		Dir:       "/tmp/x",
		ClientURL: "http://127.0.1.1:2379",
		PeerURL:   "http://127.0.1.1:2380",
	}
	cases := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; none: valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"three members behind routers", func(c *Config) {
			c.AdvertisePeerURL = "http://127.0.9.1:7001"
			c.Peers = map[string]string{"westeurope": "http://127.0.9.1:7001", "northeurope": "http://127.0.9.2:7001", "francecentral": "http://127.0.9.3:7001"}
		}, nil},
		{"everything wrong at once", func(c *Config) {
			c.Name, c.Dir, c.ClientURL, c.PeerURL = "a b", "", "127.0.0.1:2379", "http://127.0.0.1"
			c.Heartbeat, c.Election, c.LogLevel = 150*time.Microsecond, 1500*time.Microsecond, "loud"
		}, []string{
			`name: "a b" must be`,
			"dir: required",
			`clientURL: "127.0.0.1:2379" must be an http:// or https:// URL`,
			`peerURL: "http://127.0.0.1" needs a host and an explicit port`,
			"heartbeat: 150µs must be a positive whole number of milliseconds",
			"election: 1.5ms must be whole milliseconds, at least 5 heartbeats",
			`logLevel: "loud" is not a log level`,
		}},
		{"election under 5 heartbeats", func(c *Config) {
			c.Election = 400 * time.Millisecond
		}, []string{"election: 400ms must be whole milliseconds, at least 5 heartbeats (500ms) and at most 50s"}},
		{"peers without this member", func(c *Config) {
			c.Peers = map[string]string{"other": "http://127.0.2.1:2380"}
		}, []string{`peers: must include this member "westeurope"`}},
		{"own peer URL differs", func(c *Config) {
			c.Peers = map[string]string{"westeurope": "http://127.0.9.9:2380"}
		}, []string{`peers[westeurope]: "http://127.0.9.9:2380" differs from advertisePeerURL "http://127.0.1.1:2380"`}},
		{"two members on one URL", func(c *Config) {
			c.Peers = map[string]string{"westeurope": "http://127.0.1.1:2380", "x": "http://127.0.1.1:2380"}
		}, []string{`is also member "westeurope"'s`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			_, err := New(c)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Name: "w", ClientURL: "http://127.0.0.1:1", PeerURL: "http://127.0.0.1:2"}.withDefaults()
	if c.AdvertisePeerURL != c.PeerURL || c.AdvertiseClientURL != c.ClientURL {
		t.Errorf("advertised URLs %q %q", c.AdvertisePeerURL, c.AdvertiseClientURL)
	}
	if len(c.Peers) != 1 || c.Peers["w"] != c.PeerURL {
		t.Errorf("peers %v", c.Peers)
	}
	if c.Heartbeat != 100*time.Millisecond || c.Election != time.Second || c.LogLevel != "warn" || c.ClusterToken != DefaultClusterToken {
		t.Errorf("timings/log %v %v %q %q", c.Heartbeat, c.Election, c.LogLevel, c.ClusterToken)
	}
}

func TestTiming(t *testing.T) {
	cases := []struct {
		name   string
		margin time.Duration
		ttl    time.Duration
		want   Timing
		err    string
	}{
		{"default margin, 2s", 0, 2 * time.Second, Timing{TTL: 2 * time.Second, Margin: 400 * time.Millisecond, Renew: 1600 * time.Millisecond / 3, Retry: 400 * time.Millisecond / 3}, ""},
		{"default margin, 5s", 0, 5 * time.Second, Timing{TTL: 5 * time.Second, Margin: time.Second, Renew: 4 * time.Second / 3, Retry: time.Second / 3}, ""},
		{"fixed margin", 250 * time.Millisecond, 10 * time.Second, Timing{TTL: 10 * time.Second, Margin: 250 * time.Millisecond, Renew: 3250 * time.Millisecond, Retry: 812500 * time.Microsecond}, ""},
		{"ttl too short", 0, 999 * time.Millisecond, Timing{}, "ttl 999ms is shorter than 1s"},
		{"margin not below ttl", 2 * time.Second, 2 * time.Second, Timing{}, "margin 2s must be positive and shorter than ttl 2s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewAuthority(nil, "", nil, WithMargin(tc.margin)).Timing(tc.ttl)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
	if got := ceilSeconds(2001 * time.Millisecond); got != 3 {
		t.Errorf("ceilSeconds(2.001s) = %d", got)
	}
}

// TestHeldDeadline checks the deadline bookkeeping without etcd: the
// deadline counts from the send time of a renewal, only moves forward, and
// once ended the Held never becomes valid again.
func TestHeldDeadline(t *testing.T) {
	tm := Timing{TTL: 2 * time.Second, Margin: 400 * time.Millisecond}
	h := &Held{timing: tm, base: time.Now(), done: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	if h.Valid() {
		t.Fatal("valid before any renewal")
	}
	sent := h.base.Add(-1500 * time.Millisecond) // a renewal sent 1.5 s ago
	if !h.extend(sent, tm.TTL) || !h.Valid() {
		t.Fatal("not valid 1.5s after a renewal with ttl-margin 1.6s")
	}
	if want := sent.Add(1600 * time.Millisecond); !h.Deadline().Equal(want) || !h.Renewed().Equal(sent) {
		t.Fatalf("deadline %v renewed %v, want %v and %v", h.Deadline(), h.Renewed(), want, sent)
	}
	// A shorter TTL granted by the authority, or an older send time, never
	// moves the deadline back.
	h.extend(sent.Add(-time.Second), tm.TTL)
	h.extend(sent, time.Second)
	if want := sent.Add(1600 * time.Millisecond); !h.Deadline().Equal(want) {
		t.Fatalf("deadline moved back to %v", h.Deadline())
	}
	h.extend(h.base.Add(-1700*time.Millisecond), tm.TTL) // 1.7 s ago: expired now
	stale := &Held{timing: tm, base: time.Now(), done: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	stale.extend(stale.base.Add(-1700*time.Millisecond), tm.TTL)
	if stale.Valid() {
		t.Fatal("valid 1.7s after its last renewal with ttl-margin 1.6s")
	}
	h.end(fmt.Errorf("test: %w", ErrExpired))
	if h.Valid() || h.extend(time.Now(), tm.TTL) || h.Valid() || !h.Deadline().IsZero() {
		t.Fatal("an ended Held came back")
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed")
	}
	h.end(ErrReleased) // the first reason stays
	if !errors.Is(h.Err(), ErrExpired) {
		t.Fatalf("err %v", h.Err())
	}
}

func TestNoQuorum(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrLeaseNotFound, false},
		{context.Canceled, false},
		{errors.New("boom"), false},
	}
	for _, tc := range cases {
		if got := noQuorum(tc.err); got != tc.want {
			t.Errorf("noQuorum(%v) = %v", tc.err, got)
		}
	}
	a := NewAuthority(nil, "", nil)
	err := a.fail(context.Background(), "acquire orders for a", rpctypes.ErrNoLeader)
	if !errors.Is(err, ErrNoQuorum) || !errors.Is(err, rpctypes.ErrNoLeader) ||
		err.Error() != "witness: acquire orders for a: no quorum: etcdserver: no leader" {
		t.Fatalf("fail: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.fail(ctx, "x", context.Canceled); errors.Is(err, ErrNoQuorum) {
		t.Fatalf("a canceled call is not a lost quorum: %v", err)
	}
}

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	sl := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	var quiet atomic.Bool
	zl := newZapLogger(sl, zapcore.InfoLevel, &quiet).Named("raft").With(zap.String("member", "a"))
	zl.Debug("dropped below min")
	zl.Info("became leader", zap.Uint64("term", 7), zap.Duration("took", time.Second))
	zl.Warn("slow fdatasync", zap.Error(errors.New("disk")))
	zl.Error("lost peer", zap.Strings("peers", []string{"b", "w"}))
	quiet.Store(true)
	zl.Error("server closed")
	want := `level=INFO msg="became leader" logger=raft member=a term=7 took=1s
level=WARN msg="slow fdatasync" logger=raft member=a error=disk
level=ERROR msg="lost peer" logger=raft member=a peers="[b w]"
level=DEBUG msg="server closed" logger=raft member=a
`
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestPeerRouter(t *testing.T) {
	upstream := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s %s", name, r.Method, r.URL.Path, body)
		}))
		t.Cleanup(s.Close)
		return s
	}
	viaA, viaW, direct := upstream("link-a"), upstream("link-w"), upstream("direct")
	r, err := NewPeerRouter(PeerRouterConfig{
		Routes: map[string]string{
			"http://127.0.9.1:7001/": viaA.Listener.Addr().String(),
			"http://127.0.9.3:7001":  viaW.Listener.Addr().String(),
		},
		Default: direct.Listener.Addr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	cases := []struct{ name, peerURLs, want string }{
		{"raft message from a", "http://127.0.9.1:7001", "link-a POST /raft msg"},
		{"from w, two URLs", "http://10.0.0.3:7001,http://127.0.9.3:7001", "link-w POST /raft msg"},
		{"unknown sender", "http://127.0.9.7:7001", "direct POST /raft msg"},
		{"no sender (lease renewal)", "", "direct POST /raft msg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/raft", strings.NewReader("msg"))
			if tc.peerURLs != "" {
				req.Header.Set("X-PeerURLs", tc.peerURLs)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := NewPeerRouter(PeerRouterConfig{Routes: map[string]string{"127.0.0.1:1": "x"}}); err == nil ||
		!strings.Contains(err.Error(), `default: "" is not host:port`) ||
		!strings.Contains(err.Error(), `routes[127.0.0.1:1]: "127.0.0.1:1" must be an http:// or https:// URL`) ||
		!strings.Contains(err.Error(), `routes[127.0.0.1:1]: "x" is not host:port`) {
		t.Fatalf("bad config: %v", err)
	}
}

// BenchmarkValid measures the hot-path check a primary makes before
// acknowledging each write.
func BenchmarkValid(b *testing.B) {
	h := &Held{timing: Timing{TTL: DefaultTTL, Margin: time.Second}, base: time.Now()}
	h.extend(time.Now(), DefaultTTL)
	b.ReportAllocs()
	for b.Loop() {
		if !h.Valid() {
			b.Fatal("not valid")
		}
	}
}
