package wan

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector: bytes are counted per direction as they pass, and the cut
// state, cut and heal counts and latency follow the link.
func TestCollector(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	srv := startServer(t)
	addr, err := n.Proxy("p", "a", "b", "127.0.0.1:0", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	l := n.Link("a", "b")
	if err := l.SetLatency("a", "b", 3*time.Millisecond, 0); err != nil {
		t.Fatal(err)
	}
	client := dial(t, addr)
	server := srv.accept(t)
	write(t, client, "hello")
	read(t, server, "hello")
	write(t, server, "hi")
	read(t, client, "hi")
	if err := l.Cut("b", "a"); err != nil {
		t.Fatal(err)
	}
	c := n.Collector()
	want := `
# HELP geostamp_wan_bytes_total Bytes carried by the link in a direction, over all its proxies.
# TYPE geostamp_wan_bytes_total counter
geostamp_wan_bytes_total{direction="a->b",link="a<->b"} 5
geostamp_wan_bytes_total{direction="b->a",link="a<->b"} 2
# HELP geostamp_wan_cuts_total Times the direction was cut.
# TYPE geostamp_wan_cuts_total counter
geostamp_wan_cuts_total{direction="a->b",link="a<->b"} 0
geostamp_wan_cuts_total{direction="b->a",link="a<->b"} 1
# HELP geostamp_wan_heals_total Times a cut of the direction was healed.
# TYPE geostamp_wan_heals_total counter
geostamp_wan_heals_total{direction="a->b",link="a<->b"} 0
geostamp_wan_heals_total{direction="b->a",link="a<->b"} 0
# HELP geostamp_wan_latency_seconds Configured one-way latency of the direction.
# TYPE geostamp_wan_latency_seconds gauge
geostamp_wan_latency_seconds{direction="a->b",link="a<->b"} 0.003
geostamp_wan_latency_seconds{direction="b->a",link="a<->b"} 0
# HELP geostamp_wan_link_cut 1 while the direction is cut.
# TYPE geostamp_wan_link_cut gauge
geostamp_wan_link_cut{direction="a->b",link="a<->b"} 0
geostamp_wan_link_cut{direction="b->a",link="a<->b"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := l.Heal("b", "a"); err != nil {
		t.Fatal(err)
	}
	healed := `
# HELP geostamp_wan_heals_total Times a cut of the direction was healed.
# TYPE geostamp_wan_heals_total counter
geostamp_wan_heals_total{direction="a->b",link="a<->b"} 0
geostamp_wan_heals_total{direction="b->a",link="a<->b"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(healed), "geostamp_wan_heals_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
