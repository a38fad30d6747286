package jetstream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"

	"github.com/geostamp/geostamp/internal/data"
)

// Service is one data service hosted by the engine.
type Service struct {
	// Name of the service, e.g. "orders". Letters, digits, '-' and '_'.
	Name string
	// Kind of the service; only data.KindPrimarySecondary is served by this
	// engine. Default: data.KindPrimarySecondary.
	Kind string
	// Primary is only a hint for a fresh start: the region named here
	// creates its stream writable (but fenced until the failover controller
	// promotes it), the others create a mirror of it, so that replication
	// can start before the first decision. Which region is primary is
	// decided by the controller (Replica.Promote and Follow). Default: ""
	// (no stream until the controller's first call).
	Primary string
	// Replication is "async" (a Put returns once the primary stored it) or
	// "sync" (once a secondary's mirror holds it too). Default: "async".
	Replication string
	// Regions are the regions of the service, this one included, if known.
	// A promoted primary creates the mirror consumers of the others at
	// once, and sync replication waits on them. Default: none (the
	// secondaries are then discovered from the mirror consumers on the
	// primary's stream, which a newly promoted region lacks until its
	// secondaries follow it, and sync replication treats a primary with no
	// secondary found as single-region).
	Regions []string
}

// Replication modes of a service.
const (
	ReplicationAsync = "async"
	ReplicationSync  = "sync"
)

// Config configures the engine of one region.
type Config struct {
	// Region is this region's name; it is also the JetStream domain and the
	// NATS server name. Letters, digits, '-' and '_'. Required.
	Region string
	// Dir is the region's data directory, created if missing. JetStream
	// keeps its files under Dir/nats, so data survives a restart. Required.
	Dir string
	// Host is the listen host of the client and leafnode listeners.
	// Default: "127.0.0.1".
	Host string
	// ClientPort is the NATS client port. Default: 0 (chosen by the OS).
	ClientPort int
	// LeafPort is the leafnode listen port. Default: 0 (chosen by the OS).
	LeafPort int
	// Remotes are the leafnode addresses (host:port, reached through the WAN
	// links) of lower regions, in preference order: regions 0..i-1 for
	// region i. Region 0 has none. The engine keeps one leafnode remote
	// that tries them in this order, so the regions always form a tree.
	Remotes []string
	// Services are the data services of the platform (all regions).
	Services []Service
	// Logger receives the engine's and the NATS server's logs (the latter at
	// debug level). Default: discard.
	Logger *slog.Logger
}

// names that are safe as a subject token, a JetStream domain, a stream
// name and a file name.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// withDefaults returns a copy of c with every default filled in.
func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.Remotes = append([]string(nil), c.Remotes...)
	c.Services = append([]Service(nil), c.Services...)
	for i := range c.Services {
		if c.Services[i].Kind == "" {
			c.Services[i].Kind = data.KindPrimarySecondary
		}
		if c.Services[i].Replication == "" {
			c.Services[i].Replication = ReplicationAsync
		}
		c.Services[i].Regions = append([]string(nil), c.Services[i].Regions...)
	}
	return c
}

// Validate reports every problem of c at once, each with its field path.
// It expects defaults to be filled in (see New).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !tokenRE.MatchString(c.Region) {
		bad("region", "%q must be 1-64 letters, digits, '-' or '_'", c.Region)
	}
	if c.Dir == "" {
		bad("dir", "required")
	}
	if c.Host == "" {
		bad("host", "required")
	}
	if c.ClientPort < 0 || c.ClientPort > 65535 {
		bad("clientPort", "%d out of range 0-65535", c.ClientPort)
	}
	if c.LeafPort < 0 || c.LeafPort > 65535 {
		bad("leafPort", "%d out of range 0-65535", c.LeafPort)
	}
	for i, r := range c.Remotes {
		host, port, err := net.SplitHostPort(r)
		if err != nil {
			bad(fmt.Sprintf("remotes[%d]", i), "%q: %v", r, err)
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
			bad(fmt.Sprintf("remotes[%d]", i), "%q is not host:port", r)
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Services {
		field := fmt.Sprintf("services[%d]", i)
		if !tokenRE.MatchString(s.Name) {
			bad(field+".name", "%q must be 1-64 letters, digits, '-' or '_'", s.Name)
		} else if seen[s.Name] {
			bad(field+".name", "duplicate service %q", s.Name)
		}
		seen[s.Name] = true
		if s.Kind != data.KindPrimarySecondary {
			bad(field+".kind", "%q is not served by the jetstream engine (want %q)", s.Kind, data.KindPrimarySecondary)
		}
		if s.Primary != "" && !tokenRE.MatchString(s.Primary) {
			bad(field+".primary", "%q must be a region name", s.Primary)
		}
		if s.Replication != ReplicationAsync && s.Replication != ReplicationSync {
			bad(field+".replication", "%q is not %q or %q", s.Replication, ReplicationAsync, ReplicationSync)
		}
		for j, r := range s.Regions {
			if !tokenRE.MatchString(r) {
				bad(fmt.Sprintf("%s.regions[%d]", field, j), "%q must be a region name", r)
			}
		}
	}
	return errors.Join(errs...)
}
