package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/witness"
)

// WitnessSpec is one site's etcd member. Every site (each region and the
// witness site) runs one, so that a region cut off from both others is in
// the minority. Raft traffic from site S to member M goes through the WAN
// link S->M: M's advertised peer URL is a PeerRouter in M's process that
// sends each sender's requests through its link.
type WitnessSpec struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// ClientURL and PeerURL are where the member listens.
	ClientURL string `json:"client_url"`
	PeerURL   string `json:"peer_url"`
	// RouterURL is the member's advertised peer URL (its PeerRouter).
	RouterURL string `json:"router_url"`
	// Peers: every member's name and advertised peer URL.
	Peers map[string]string `json:"peers"`
	// Routes: another member's advertised peer URL -> the WAN proxy from
	// its site to this member's PeerURL.
	Routes map[string]string `json:"routes"`
}

// planWitness picks the ports of every site's member and creates the WAN
// proxies for their raft traffic. Ports stay fixed for the lab's life, so a
// restarted region's member rejoins at the same addresses.
func (l *Lab) planWitness() (map[string]*WitnessSpec, error) {
	sites := l.topo.RegionNames()
	if l.topo.Witness != "" {
		sites = append(sites, l.topo.Witness)
	}
	specs := map[string]*WitnessSpec{}
	peers := map[string]string{}
	for _, s := range sites {
		host := l.siteHost(s)
		ports, err := freePorts(host, 3)
		if err != nil {
			return nil, fmt.Errorf("lab: witness member %s: %w", s, err)
		}
		url := func(p int) string { return "http://" + net.JoinHostPort(host, strconv.Itoa(p)) }
		specs[s] = &WitnessSpec{
			Name:      s,
			Dir:       filepath.Join(l.dir, "witness", s),
			ClientURL: url(ports[0]),
			PeerURL:   url(ports[1]),
			RouterURL: url(ports[2]),
			Peers:     peers,
			Routes:    map[string]string{},
		}
		peers[s] = specs[s].RouterURL
	}
	for _, to := range sites {
		upstream := strings.TrimPrefix(specs[to].PeerURL, "http://")
		for _, from := range sites {
			if from == to {
				continue
			}
			addr, err := l.net.Proxy("etcd "+from+"->"+to, from, to, net.JoinHostPort(l.topo.Lab.Host, "0"), upstream)
			if err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			specs[to].Routes[specs[from].RouterURL] = addr
		}
	}
	return specs, nil
}

// siteHost is the loopback address of a site: a region's own, or the lab
// host for the witness site.
func (l *Lab) siteHost(site string) string {
	if r, ok := l.topo.Region(site); ok {
		return r.Address
	}
	return l.topo.Lab.Host
}

// runWitnessMember runs a site's etcd member and its peer router until ctx
// ends, and returns a client of that member alone: a site acts only on
// what its own member can reach a quorum for.
func runWitnessMember(ctx context.Context, spec *WitnessSpec, logger *slog.Logger, errc chan<- error) (*clientv3.Client, error) {
	m, err := witness.New(witness.Config{
		Name:             spec.Name,
		Dir:              spec.Dir,
		ClientURL:        spec.ClientURL,
		PeerURL:          spec.PeerURL,
		AdvertisePeerURL: spec.RouterURL,
		Peers:            spec.Peers,
		ClusterToken:     "geostamp-lab",
		Logger:           logger,
		// The lab's faults kill processes, never the machine: what etcd
		// wrote is in the page cache and survives a SIGKILL, so fsync only
		// adds latency (which, on a busy disk, can outlast a short lease).
		UnsafeNoFsync: true,
	})
	if err != nil {
		return nil, err
	}
	router, err := witness.NewPeerRouter(witness.PeerRouterConfig{
		Routes:  spec.Routes,
		Default: strings.TrimPrefix(spec.PeerURL, "http://"),
		Logger:  logger,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", strings.TrimPrefix(spec.RouterURL, "http://"))
	if err != nil {
		return nil, fmt.Errorf("witness %s: peer router: %w", spec.Name, err)
	}
	go func() {
		if err := router.Serve(ctx, ln); err != nil {
			errc <- err
		}
	}()
	go func() {
		if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("witness member %s: %w", spec.Name, err)
		}
	}()
	return witness.NewClient([]string{spec.ClientURL}, logger)
}

// freePorts returns n ports that were free on host just now, from below
// Linux's ephemeral range (32768-60999): ports chosen before the processes
// that bind them start (and bound again by a restarted region) must not be
// taken meanwhile by a listener on port 0 or an outgoing connection.
func freePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries == 200 {
			return nil, fmt.Errorf("no free port on %s between %d and %d", host, fixedPortMin, fixedPortMax)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(fixedPortMin+rand.IntN(fixedPortMax-fixedPortMin))))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, portOf(ln.Addr().String()))
	}
	return out, nil
}

// Fixed ports of the lab come from [fixedPortMin, fixedPortMax).
const fixedPortMin, fixedPortMax = 20000, 32768
