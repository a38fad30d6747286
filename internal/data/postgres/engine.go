// Package postgres is a PostgreSQL engine of primary-secondary data
// services: one PostgreSQL 15+ instance per region, replicated between
// regions by streaming replication, driven by the failover controller
// through data.Replica.
//
// # Layout
//
// Each region process runs one postmaster (Debian's binaries) on
// Config.Dir/pgdata, with its Unix socket in Config.Dir/pgrun (or
// /tmp/gs-pg-<hash> when that path is too long for a socket). PostgreSQL
// refuses to run as root, so a root process runs it and its tools as the
// postgres system user (else nobody), with CAP_DAC_READ_SEARCH only when
// that user could not otherwise reach Config.Dir. Every child has its own
// process group and dies with the region process (Pdeathsig). All
// the region's services live in that one instance, like the databases of
// one SQL server: service S is the table gs_S(seq, key, value, time,
// epoch), and gs_meta holds one row per service (its epoch and last seq).
// The replication role belongs to the instance, so all its services share
// it: Fence, Promote and Follow on any service's replica act on the whole
// instance (Promote and Follow also record that service's epoch; the other
// services keep theirs until their own controller calls reach them). The
// controllers of an instance's services must therefore agree on its role.
//
// # Writes, positions, epochs
//
// A write is one statement, run on the primary of the current epoch (over
// Config.Peers, or locally):
//
//	WITH m AS (UPDATE gs_meta SET seq = seq + 1 WHERE service = $svc AND epoch = $epoch RETURNING seq, epoch)
//	INSERT INTO gs_S SELECT seq, $key, $value, clock_timestamp(), epoch FROM m
//
// The row lock on gs_meta serialises writers, so seqs are dense and commit
// order is seq order; a write addressed to another epoch updates no row and
// fails with data.ErrFenced, and so does any write to a read-only (fenced)
// instance or a standby. A standby replays the primary's history, so a
// position (the service's gs_meta.seq) is comparable across regions.
//
// Promote records a fork point, (service, epoch, seq) in gs_forks, which
// replicates with the data: every instance holds the fork points of its own
// history. A rejoining replica compares its fork points and position with
// the new primary's to find where the two histories part (see
// commonPrefix) and counts its discarded tail per service; each service's
// Follow returns its own count (they are not summed).
//
// Sync services: synchronous_standby_names = 'ANY 1 (*)' when any service
// is sync, so a commit waits until some standby flushed it; the writes of
// the instance's async services set synchronous_commit = local. A write
// whose wait is cut short (ctx ended, session terminated) has committed on
// the primary but is reported as unknown (data.ErrUnavailable), never as a
// success.
//
// # Roles
//
// A fresh instance is initdb'd and starts read-only with no role: writes
// fail with data.ErrUnavailable until Promote or Follow. A restarted one
// does not trust its previous role either: it starts read-only (a standby
// keeps streaming from its previous primary) until the controller speaks.
// Fence sets default_transaction_read_only with ALTER SYSTEM, reloads, and
// terminates every other client session. Promote runs pg_promote on a
// standby, then lifts the read-only default. Follow re-points the instance:
// pg_rewind from the new primary (pg_basebackup when the instance is fresh,
// from another system, or pg_rewind fails), then a restart as its standby
// with a physical replication slot on the primary.
//
// # Lab only
//
// pg_hba.conf trusts every loopback and local connection (no passwords;
// Host and the peers must be loopback addresses), and replication slots of
// regions that never come back keep WAL up to max_slot_wal_keep_size
// (1GB). Clusters use 1MB WAL segments, since pg_rewind and pg_basebackup
// copy whole segments across the WAN links.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/geostamp/geostamp/internal/data"
)

// instRole is what the failover controller made of the instance.
type instRole int

const (
	roleNone    instRole = iota // just started: read-only, no controller decision yet
	rolePrimary                 // Promote succeeded
	roleStandby                 // Follow succeeded: a standby of upstream
)

// Engine runs the PostgreSQL instance of one region and serves its
// primary-secondary data services.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	services map[string]*replica
	order    []string
	ready    chan struct{}
	started  atomic.Bool
	now      func() time.Time
	// life ends when Run returns or its ctx ends; control operations end
	// with it.
	life    context.Context
	endLife context.CancelFunc
	// noSync turns fsync off and passes --no-sync to the tools; tests only.
	noSync bool
	// failRewind makes pg_rewind fail, so that tests reach the
	// pg_basebackup fallback.
	failRewind bool

	// Set by Run before any control operation can see the engine up.
	binDir  string
	user    osUser
	pgdata  string
	sockDir string
	port    int

	// op serialises control operations (Fence, Promote, Follow) and the
	// lifecycle; a channel so that waiting for it obeys a ctx.
	op chan struct{}

	mu   sync.RWMutex
	proc *pgProc // the running postmaster; nil while down
	down string  // why the instance cannot be used; "" when it can
	// live: the engine may (re)start PostgreSQL. Set when Run has
	// prepared the cluster; cleared for good by Crash, an unexpected
	// exit of PostgreSQL, and the end of Run.
	live     bool
	addr     string        // host:port, set by Run
	local    *pgxpool.Pool // local reads, on the Unix socket
	role     instRole
	upstream string // the region the instance streams from (standby)
	route    string // the region whose primary takes writes; "" none yet
	writer   *writer
	fenced   bool // Fence called: writes refused until Promote or Follow
	dbFenced bool // the instance is read-only and other sessions were ended
	// pending holds, per service, the writes discarded by the last
	// rejoin, until that service's replica reports them (Follow).
	pending map[string]uint64
	plan    *rejoinPlan
}

// New validates cfg and returns an engine; it has no side effects.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: invalid config: %w", err)
	}
	life, endLife := context.WithCancel(context.Background())
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		services: make(map[string]*replica, len(cfg.Services)),
		ready:    make(chan struct{}),
		now:      time.Now,
		life:     life,
		endLife:  endLife,
		op:       make(chan struct{}, 1),
		down:     "engine not running",
	}
	for _, s := range cfg.Services {
		e.services[s.Name] = newReplica(e, s)
		e.order = append(e.order, s.Name)
	}
	return e, nil
}

var (
	_ data.Replica = (*replica)(nil)
	_ data.Crasher = (*replica)(nil)
)

// Ready is closed once PostgreSQL accepts connections.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Addr is the host:port PostgreSQL listens on (valid after Ready).
func (e *Engine) Addr() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.addr
}

// Replica returns the named service as this region's replica. It may be
// taken before Run; its calls fail with data.ErrUnavailable until Ready.
// Every replica of the engine shares the instance (see the package doc).
func (e *Engine) Replica(name string) (data.Replica, error) {
	r, ok := e.services[name]
	if !ok {
		return nil, fmt.Errorf("postgres: unknown service %q", name)
	}
	return r, nil
}

// Statuses reports the status of every service, in configuration order,
// each bounded by ctx.
func (e *Engine) Statuses(ctx context.Context) []data.Status {
	out := make([]data.Status, len(e.order))
	var wg sync.WaitGroup
	for i, name := range e.order {
		wg.Go(func() { out[i] = e.services[name].Status(ctx) })
	}
	wg.Wait()
	return out
}

// Run prepares the cluster (initdb on first use), starts PostgreSQL as a
// child process and serves until ctx ends; then it stops PostgreSQL with a
// fast shutdown. If PostgreSQL dies on its own (or Crash), Run keeps going
// and the replicas fail with data.ErrUnavailable until the region
// restarts. Run may be called once; to restart a region, make a new Engine
// on the same Dir (and Port, which peers know).
func (e *Engine) Run(ctx context.Context) error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("postgres: Run called twice")
	}
	stopLife := context.AfterFunc(ctx, e.endLife)
	defer stopLife()
	defer e.endLife()

	if err := e.lockOp(ctx); err != nil {
		return err
	}
	err := e.boot(ctx)
	e.unlockOp()
	// Cleanup also after a partial start.
	defer e.shutdown()
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", e.cfg.Region, err)
	}
	close(e.ready)
	e.log.Info("postgres engine ready", "addr", e.Addr(), "pgdata", e.pgdata, "user", e.user.name)
	<-ctx.Done()
	return nil
}

// boot prepares the data directory and starts the instance, read-only.
func (e *Engine) boot(ctx context.Context) error {
	binDir, err := FindBinDir(e.cfg.BinDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.cfg.Dir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	pgdata, sockDir, err := layout(e.cfg.Dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	u, err := lookupOSUser(e.cfg.Dir)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.binDir, e.user, e.pgdata, e.sockDir = binDir, u, pgdata, sockDir
	e.down = "engine starting"
	e.live = true
	e.mu.Unlock()

	if !exists(filepath.Join(pgdata, "PG_VERSION")) && exists(filepath.Join(pgdata+".old", "PG_VERSION")) {
		// Stopped between the two renames that swap in a base backup.
		_ = os.RemoveAll(pgdata)
		if err := os.Rename(pgdata+".old", pgdata); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	if err := u.mkdir(pgdata); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := u.mkdir(sockDir); err != nil {
		return fmt.Errorf("socket dir: %w", err)
	}
	fresh := !exists(filepath.Join(pgdata, "PG_VERSION"))
	if fresh {
		if err := e.initdb(ctx); err != nil {
			return err
		}
	}
	on := "on"
	if err := e.setAutoConf(map[string]*string{"default_transaction_read_only": &on}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	upstream := ""
	if exists(filepath.Join(pgdata, "standby.signal")) {
		if ci, ok := e.readAutoConf("primary_conninfo"); ok {
			upstream = e.peerOf(ci)
		}
	}
	p, err := e.startOnPort(ctx)
	if err != nil {
		return err
	}
	if fresh {
		if err := e.withAdmin(ctx, ensureSchema(e.cfg.Services)); err != nil {
			e.stopPostgres(p)
			return fmt.Errorf("schema: %w", err)
		}
	}
	if err := e.publish(p); err != nil {
		return err
	}
	e.mu.Lock()
	e.upstream = upstream
	e.dbFenced = true // read-only from the start, and nobody else connected yet
	e.mu.Unlock()
	e.log.Info("postgres: started without a role (read-only until Promote or Follow)", "fresh", fresh, "streams_from", upstream)
	return nil
}

// startOnPort writes the configuration and starts the instance on
// Config.Port, or on a free port (retried if someone else binds it
// between the choice and the start), and waits until it accepts
// connections.
func (e *Engine) startOnPort(ctx context.Context) (*pgProc, error) {
	for attempt := 1; ; attempt++ {
		port := e.cfg.Port
		if port == 0 {
			var err error
			if port, err = freePort(e.cfg.Host); err != nil {
				return nil, fmt.Errorf("pick a port: %w", err)
			}
		}
		e.mu.Lock()
		e.port = port
		e.addr = net.JoinHostPort(e.cfg.Host, strconv.Itoa(port))
		e.mu.Unlock()
		if err := e.writeConfig(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		p, err := e.startPostgres()
		if err != nil {
			return nil, err
		}
		err = e.waitAccepting(ctx, p)
		if err == nil {
			return p, nil
		}
		e.stopPostgres(p)
		if e.cfg.Port != 0 || attempt == 3 || !strings.Contains(p.logs.String(), "could not bind") {
			return nil, err
		}
		e.log.Warn("postgres: port taken meanwhile; trying another", "port", port)
	}
}

// peerOf returns the region whose peer address primary_conninfo names, or "".
func (e *Engine) peerOf(conninfo string) string {
	addr := net.JoinHostPort(conninfoValue(conninfo, "host"), conninfoValue(conninfo, "port"))
	for r, a := range e.cfg.Peers {
		if a == addr {
			return r
		}
	}
	return ""
}

// initdb creates a fresh cluster in pgdata.
func (e *Engine) initdb(ctx context.Context) error {
	if err := emptyDir(e.pgdata); err != nil { // a previous initdb may have stopped half-way
		return fmt.Errorf("initdb: %w", err)
	}
	// 1MB WAL segments instead of 16MB: pg_rewind and pg_basebackup copy
	// whole segments, across the WAN links.
	args := []string{"-D", e.pgdata, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions", "--wal-segsize=1"}
	if e.noSync {
		args = append(args, "--no-sync")
	}
	start := time.Now()
	if err := e.runTool(ctx, "initdb", args...); err != nil {
		return err
	}
	e.log.Info("postgres: initdb", "ms", time.Since(start).Milliseconds())
	return nil
}

// publish makes p the engine's running instance, with a fresh local pool.
// It refuses (and kills p) after Crash.
func (e *Engine) publish(p *pgProc) error {
	pool, err := e.newLocalPool()
	if err != nil {
		e.stopPostgres(p)
		return err
	}
	e.mu.Lock()
	if !e.live {
		why := e.down
		e.mu.Unlock()
		pool.Close()
		p.stopping.Store(true)
		e.killPostgres(p)
		return fmt.Errorf("%w: %s", data.ErrUnavailable, why)
	}
	old := e.local
	e.proc, e.local, e.down = p, pool, ""
	e.mu.Unlock()
	if old != nil {
		go old.Close()
	}
	return nil
}

// unpublish takes the running instance out of service (for a stop by
// the engine) and returns it.
func (e *Engine) unpublish(why string) *pgProc {
	e.mu.Lock()
	p, pool := e.proc, e.local
	e.proc, e.local, e.down = nil, nil, why
	e.mu.Unlock()
	if pool != nil {
		go pool.Close()
	}
	return p
}

// postgresDied is called when the postmaster p exited without being asked.
func (e *Engine) postgresDied(p *pgProc) {
	e.mu.Lock()
	mine := e.proc == p
	if mine {
		e.proc = nil
		e.down = fmt.Sprintf("postgres exited unexpectedly (%v); down until the region restarts", p.err)
		e.live = false
	}
	pool := e.local
	if mine {
		e.local = nil
	}
	e.mu.Unlock()
	if pool != nil {
		go pool.Close()
	}
	e.log.Error("postgres: exited unexpectedly", "err", p.err, "log", lastLines(p.logs.String(), 5))
}

// Crash kills PostgreSQL at once (SIGKILL to its process group): the
// data-primary-loss fault. Every replica of the engine then fails with
// data.ErrUnavailable until the region restarts (a new Engine on the same
// Dir); a restarted instance does not trust its previous role.
func (e *Engine) Crash() error {
	e.mu.Lock()
	p, pool := e.proc, e.local
	e.proc, e.local = nil, nil
	e.live = false
	e.down = "crashed; down until the region restarts"
	w := e.writer
	e.writer = nil
	e.mu.Unlock()
	if pool != nil {
		go pool.Close()
	}
	if w != nil {
		w.close()
	}
	if p == nil {
		return nil
	}
	p.stopping.Store(true)
	e.killPostgres(p)
	e.log.Warn("postgres: crashed on request (SIGKILL)")
	return nil
}

// shutdown stops the instance when Run ends.
func (e *Engine) shutdown() {
	e.endLife() // ends control operations in progress
	e.mu.Lock()
	e.live = false
	e.mu.Unlock()
	e.op <- struct{}{} // wait for a control operation to end (they end with e.life)
	defer e.unlockOp()
	p := e.unpublish("engine stopped")
	e.mu.Lock()
	w := e.writer
	e.writer = nil
	e.mu.Unlock()
	if w != nil {
		w.close()
	}
	if p != nil {
		start := time.Now()
		e.stopPostgres(p)
		e.log.Info("postgres: stopped", "ms", time.Since(start).Milliseconds())
	}
}

// lockOp takes the control-operation lock, or fails when ctx ends first.
func (e *Engine) lockOp(ctx context.Context) error {
	select {
	case e.op <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("postgres: %w: waiting for another operation: %w", data.ErrUnavailable, ctx.Err())
	}
}

func (e *Engine) unlockOp() { <-e.op }

// opContext bounds a control operation by ctx and by the engine's life.
func (e *Engine) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// usable returns nil when the instance runs, else an error wrapping
// data.ErrUnavailable.
func (e *Engine) usable() error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.usableLocked()
}

func (e *Engine) usableLocked() error {
	if e.proc == nil {
		return fmt.Errorf("%w: %s", data.ErrUnavailable, e.down)
	}
	return nil
}

// localPool returns the pool of local connections, or an error wrapping
// data.ErrUnavailable.
func (e *Engine) localPool() (*pgxpool.Pool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.usableLocked(); err != nil {
		return nil, err
	}
	return e.local, nil
}

// resetLocalPool replaces the local pool (after its sessions were
// terminated).
func (e *Engine) resetLocalPool() error {
	pool, err := e.newLocalPool()
	if err != nil {
		return err
	}
	e.mu.Lock()
	old := e.local
	if e.proc == nil {
		old, pool = pool, old
	} else {
		e.local = pool
	}
	e.mu.Unlock()
	if old != nil {
		go old.Close()
	}
	return nil
}

func (e *Engine) newLocalPool() (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig = e.localConnConfig(false)
	cfg.MaxConns = 4
	cfg.HealthCheckPeriod = 5 * time.Second
	return pgxpool.NewWithConfig(context.Background(), cfg)
}
