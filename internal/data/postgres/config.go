package postgres

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
)

// Replication modes of a service.
const (
	// ReplicationAsync acknowledges a write once the primary committed it.
	ReplicationAsync = "async"
	// ReplicationSync acknowledges a write once a standby also flushed it.
	ReplicationSync = "sync"
)

// Service is one primary-secondary data service hosted by the engine, as a
// table of the region's PostgreSQL instance.
type Service struct {
	// Name of the service, e.g. "orders"; its table is gs_<name>.
	// 1-48 letters, digits, '-' or '_'; "meta" and "forks" are reserved.
	Name string
	// Replication is ReplicationAsync or ReplicationSync. Default: async.
	// The instance waits for a standby on commit when any of its services
	// is sync; writes of its async services then still commit locally only
	// (synchronous_commit = local for their transactions).
	Replication string
}

// Config configures the PostgreSQL engine of one region.
type Config struct {
	// Region is this region's name. Letters, digits, '-' and '_'. Required.
	Region string
	// Dir is the region's data directory, created if missing. The cluster
	// lives under Dir/pgdata, so data survives a restart. Required.
	Dir string
	// Host is the address PostgreSQL listens on (listen_addresses).
	// Default: "127.0.0.1".
	Host string
	// Port is PostgreSQL's TCP port. Default: 0, a free port chosen at Run
	// (see Engine.Addr).
	Port int
	// Peers maps every other region to the host:port of its PostgreSQL as
	// reachable from this region (in the lab, the WAN link's proxy).
	// Writes, streaming replication, pg_rewind and pg_basebackup use them.
	Peers map[string]string
	// Services are the data services of the platform; all of them live in
	// this one instance and share its replication role.
	Services []Service
	// BinDir is the directory of the PostgreSQL 15+ binaries. Default:
	// where `postgres` on PATH resolves to if initdb, pg_rewind and
	// pg_basebackup are beside it, else the highest
	// /usr/lib/postgresql/<N>/bin.
	BinDir string
	// Logger receives the engine's logs and PostgreSQL's output (the latter
	// at debug level); the caller tags it. Default: discard.
	Logger *slog.Logger
}

var (
	regionRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	serviceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,48}$`)
)

// reservedServices would collide with the engine's own tables.
var reservedServices = []string{"meta", "forks"}

// withDefaults returns a copy of c with every default filled in.
func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.Peers = maps.Clone(c.Peers)
	c.Services = slices.Clone(c.Services)
	for i := range c.Services {
		if c.Services[i].Replication == "" {
			c.Services[i].Replication = ReplicationAsync
		}
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
	if !regionRE.MatchString(c.Region) {
		bad("region", "%q must be 1-64 letters, digits, '-' or '_'", c.Region)
	}
	if c.Dir == "" {
		bad("dir", "required")
	}
	if c.Host == "" {
		bad("host", "required")
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("port", "%d out of range 0-65535", c.Port)
	}
	for _, r := range slices.Sorted(maps.Keys(c.Peers)) {
		field := fmt.Sprintf("peers[%s]", r)
		switch {
		case !regionRE.MatchString(r):
			bad(field, "%q is not a region name", r)
		case r == c.Region:
			bad(field, "a region is not its own peer")
		}
		host, port, err := net.SplitHostPort(c.Peers[r])
		if err != nil {
			bad(field, "%q: %v", c.Peers[r], err)
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
			bad(field, "%q is not host:port", c.Peers[r])
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Services {
		field := fmt.Sprintf("services[%d]", i)
		switch {
		case !serviceRE.MatchString(s.Name):
			bad(field+".name", "%q must be 1-48 letters, digits, '-' or '_'", s.Name)
		case slices.Contains(reservedServices, s.Name):
			bad(field+".name", "%q is reserved", s.Name)
		case seen[s.Name]:
			bad(field+".name", "duplicate service %q", s.Name)
		}
		seen[s.Name] = true
		if s.Replication != ReplicationAsync && s.Replication != ReplicationSync {
			bad(field+".replication", "%q must be %q or %q", s.Replication, ReplicationAsync, ReplicationSync)
		}
	}
	return errors.Join(errs...)
}

// anySync reports whether any service asks for synchronous replication.
func (c Config) anySync() bool {
	return slices.ContainsFunc(c.Services, func(s Service) bool { return s.Replication == ReplicationSync })
}
