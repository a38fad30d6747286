package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/geostamp/geostamp/internal/data"
)

// settleTimeout bounds the wait for a configuration reload to reach new
// sessions.
const settleTimeout = 5 * time.Second

// Fence makes the instance refuse writes at once, by local means only:
// this region's writes are refused in-process (data.ErrFenced), then
// default_transaction_read_only is set with ALTER SYSTEM and reloaded, and
// every other client session is terminated, so no open session (pooled by
// another region) can keep writing. It returns the service's final local
// position. It fences the whole instance (every service), and is
// idempotent; it fails with data.ErrUnavailable when the instance is down
// (which takes no writes either).
func (r *replica) Fence(ctx context.Context) (uint64, error) {
	return r.fence(ctx, nil)
}

// fence is Fence; with only set, it does nothing unless only is still the
// service's lease once it holds the op lock (watchLease).
func (r *replica) fence(ctx context.Context, only data.Lease) (uint64, error) {
	e := r.e
	start := time.Now()
	if only == nil {
		e.setFenced()
	}
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.lockOp(ctx); err != nil {
		return 0, err
	}
	defer e.unlockOp()
	if only != nil && r.currentLease() != only {
		return 0, nil // replaced meanwhile
	}
	r.setLease(nil)
	e.setFenced() // again: an operation that held the lock may have cleared it
	if err := e.fenceDB(ctx); err != nil {
		return 0, r.errorf("fence", "%w", err)
	}
	pos, err := r.Position(ctx)
	if err != nil {
		return 0, err
	}
	e.log.Info("postgres: fenced", "service", r.svc.Name, "position", pos, "ms", time.Since(start).Milliseconds())
	return pos, nil
}

func (e *Engine) setFenced() {
	e.mu.Lock()
	e.fenced = true
	e.mu.Unlock()
}

// fenceDB makes the running instance read-only for every new transaction
// and terminates the other client sessions. Callers hold the op lock.
func (e *Engine) fenceDB(ctx context.Context) error {
	e.mu.RLock()
	done, err := e.dbFenced, e.usableLocked()
	e.mu.RUnlock()
	if err != nil || done {
		return err
	}
	err = e.withAdmin(ctx, func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, `ALTER SYSTEM SET default_transaction_read_only = on`); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
			return err
		}
		if err := e.settle(ctx, "on"); err != nil {
			return err
		}
		// Sessions opened before the reload may be inside a transaction
		// that is already writable: end them all.
		_, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`)
		return err
	})
	if err != nil {
		return classify(err, e.cfg.Region)
	}
	// The local pool's sessions were among them.
	if err := e.resetLocalPool(); err != nil {
		return err
	}
	e.mu.Lock()
	e.dbFenced = true
	e.mu.Unlock()
	return nil
}

// settle waits until a new session sees default_transaction_read_only =
// want: the postmaster has processed the reload, and has signalled the
// sessions it had, which apply it before their next command.
func (e *Engine) settle(ctx context.Context, want string) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	for {
		c, err := pgx.ConnectConfig(ctx, e.localConnConfig(false))
		var got string
		if err == nil {
			err = c.QueryRow(ctx, `SHOW default_transaction_read_only`).Scan(&got)
			_ = c.Close(context.Background())
		}
		if err == nil && got == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("default_transaction_read_only did not become %s: %w (last: %q, %v)", want, ctx.Err(), got, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Promote makes the instance the writable primary, and the service's
// epoch epoch: a standby is promoted (pg_promote, waiting for it), the
// service's gs_meta row takes the epoch and its fork point is recorded in
// gs_forks, then the read-only default is lifted and this region's
// writes go to the local instance. On an instance that is already primary
// (a re-grant at a new epoch) only the epoch and the fencing change. It is
// idempotent, and refuses an epoch older than the service's.
func (r *replica) Promote(ctx context.Context, epoch uint64, lease data.Lease) error {
	e := r.e
	if epoch == 0 {
		return r.errorf("promote", "epoch must be at least 1")
	}
	start := time.Now()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.lockOp(ctx); err != nil {
		return err
	}
	defer e.unlockOp()

	e.mu.RLock()
	live, running, plan := e.live, e.proc != nil, e.plan
	same := e.role == rolePrimary && !e.fenced && !e.dbFenced && e.route == e.cfg.Region
	e.mu.RUnlock()
	if same && r.currentEpoch() == epoch {
		r.setLease(lease)
		if lease != nil {
			go r.watchLease(lease)
		}
		return nil
	}
	if live && !running && (plan == nil || !plan.needBase) {
		// Down after a failed rejoin, with a usable data directory.
		if err := e.startAsIs(ctx); err != nil {
			return r.errorf("promote", "%w: start: %w", data.ErrUnavailable, err)
		}
	}
	if err := e.usable(); err != nil {
		return r.errorf("promote", "%w", err)
	}

	var promoted bool
	var forkSeq uint64
	err := e.withAdmin(ctx, func(ctx context.Context, c *pgx.Conn) error {
		cur, err := serviceEpoch(ctx, c, r.svc.Name)
		if err != nil {
			return err
		}
		if cur > epoch {
			return fmt.Errorf("epoch %d is older than the service's epoch %d", epoch, cur)
		}
		var inRecovery bool
		if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
			return err
		}
		if inRecovery {
			// From here on the instance may leave recovery whatever
			// happens to this call: never take it for a standby again
			// without a rejoin.
			e.mu.Lock()
			e.role, e.upstream = roleNone, ""
			e.mu.Unlock()
			var ok bool
			if err := c.QueryRow(ctx, `SELECT pg_promote(true, 60)`).Scan(&ok); err != nil {
				return fmt.Errorf("pg_promote: %w", err)
			}
			if !ok {
				return errors.New("pg_promote: not promoted within 60s")
			}
			promoted = true
			for _, q := range []string{
				`ALTER SYSTEM RESET primary_conninfo`,
				`ALTER SYSTEM RESET primary_slot_name`,
				// Slots left from an earlier time as primary would keep WAL;
				// followers create theirs when they follow.
				`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active`,
			} {
				if _, err := c.Exec(ctx, q); err != nil {
					return err
				}
			}
		}
		if err := ensureSchema(e.cfg.Services)(ctx, c); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if forkSeq, err = setEpoch(ctx, c, r.svc.Name, epoch, e.cfg.Region); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `ALTER SYSTEM RESET default_transaction_read_only`); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
			return err
		}
		return e.settle(ctx, "off")
	})
	if err != nil {
		return r.errorf("promote", "%w", classify(err, e.cfg.Region))
	}
	e.mu.Lock()
	// A new pool unless this region's writes already went to the
	// unfenced local primary (another service's Promote): the old one's
	// sessions were terminated by Fence, or point at another primary.
	fresh := !same
	e.role, e.upstream = rolePrimary, ""
	e.fenced, e.dbFenced = false, false
	e.pending, e.plan = nil, nil
	err = e.routeLocked(e.cfg.Region, fresh)
	e.mu.Unlock()
	if err != nil {
		return r.errorf("promote", "%w", err)
	}
	r.mu.Lock()
	r.epoch, r.followed, r.discarded, r.lease = epoch, followKey{}, 0, lease
	r.mu.Unlock()
	if lease != nil {
		go r.watchLease(lease)
	}
	e.log.Info("postgres: promoted", "service", r.svc.Name, "epoch", epoch, "fork_seq", forkSeq,
		"was_standby", promoted, "ms", time.Since(start).Milliseconds())
	return nil
}

// watchLease fences the instance as soon as lease ends, unless a Fence,
// Follow or Promote replaced it first: sessions of other regions' writers
// are terminated then, so their commits are not acknowledged either,
// without waiting for the controller's next step.
func (r *replica) watchLease(lease data.Lease) {
	select {
	case <-lease.Done():
	case <-r.e.life.Done():
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if r.currentLease() != lease {
		return
	}
	if _, err := r.fence(ctx, lease); err != nil {
		r.e.log.Warn("postgres: lease ended; fence failed", "service", r.svc.Name, "err", err)
		return
	}
	r.e.log.Info("postgres: lease ended: fenced", "service", r.svc.Name, "ms", time.Since(start).Milliseconds())
}

// serviceEpoch reads the epoch of service (0 when it has none yet).
func serviceEpoch(ctx context.Context, c *pgx.Conn, service string) (uint64, error) {
	var epoch int64
	err := c.QueryRow(ctx, `SELECT epoch FROM gs_meta WHERE service = $1`, service).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) || pgCode(err) == codeUndefinedTable {
		return 0, nil
	}
	return uint64(epoch), err
}

// setEpoch gives service the epoch and records its fork point, in one
// transaction; it returns the fork point.
func setEpoch(ctx context.Context, c *pgx.Conn, service string, epoch uint64, region string) (uint64, error) {
	var seq uint64
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		var cur, s int64
		if err := tx.QueryRow(ctx, `SELECT epoch, seq FROM gs_meta WHERE service = $1 FOR UPDATE`, service).Scan(&cur, &s); err != nil {
			return fmt.Errorf("meta row: %w", err)
		}
		if uint64(cur) > epoch {
			return fmt.Errorf("epoch %d is older than the service's epoch %d", epoch, cur)
		}
		seq = uint64(s)
		if _, err := tx.Exec(ctx, `UPDATE gs_meta SET epoch = $2 WHERE service = $1`, service, int64(epoch)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO gs_forks (service, epoch, seq, region) VALUES ($1, $2, $3, $4)
			ON CONFLICT (service, epoch) DO NOTHING`, service, int64(epoch), s, region)
		return err
	})
	return seq, err
}

// Follow makes the instance a standby of primary and routes this region's
// writes there, addressed to epoch. If the instance already streams from
// primary, only the route and epoch change. Otherwise it rejoins: it is
// fenced locally, counts per service the writes that primary's history
// lacks (see commonPrefix), stops, is rewound from primary (pg_rewind;
// pg_basebackup when the instance is fresh, of another system, or
// pg_rewind fails), and restarts as a standby with a replication slot on
// primary. It returns this service's discarded count; the other services'
// counts are returned by their own Follow calls, and a repeated call for
// the same primary and epoch returns the same count.
//
// When primary cannot be reached (or is not yet promoted) it fails with
// data.ErrUnavailable; the instance then stays fenced, writes already go
// to primary, and the controller is expected to retry.
func (r *replica) Follow(ctx context.Context, primary string, epoch uint64) (uint64, error) {
	e := r.e
	addr, ok := e.cfg.Peers[primary]
	switch {
	case primary == e.cfg.Region:
		return 0, r.errorf("follow", "a region cannot follow itself (use Promote)")
	case !ok:
		return 0, r.errorf("follow", "no peer address for region %q", primary)
	case epoch == 0:
		return 0, r.errorf("follow", "epoch must be at least 1")
	}
	start := time.Now()
	ctx, cancel := e.opContext(ctx)
	defer cancel()
	if err := e.lockOp(ctx); err != nil {
		return 0, err
	}
	defer e.unlockOp()

	r.mu.Lock()
	r.epoch, r.lease = epoch, nil
	r.mu.Unlock()
	e.mu.Lock()
	if !e.live {
		e.mu.Unlock()
		return 0, r.errorf("follow", "%w: %s", data.ErrUnavailable, e.down)
	}
	err := e.routeLocked(primary, false)
	e.fenced = false // writes go to primary from now on
	following := e.proc != nil && e.upstream == primary && e.role != rolePrimary
	if following {
		e.role = roleStandby
	} else if e.role == rolePrimary {
		e.role = roleNone // deposed: read-only until it is a standby of primary
	}
	e.mu.Unlock()
	if err != nil {
		return 0, r.errorf("follow", "%w", err)
	}
	if following {
		return r.noteFollow(primary, epoch), nil
	}

	if err := e.fenceDB(ctx); err != nil && !errors.Is(err, data.ErrUnavailable) {
		return 0, r.errorf("follow", "fence before rejoin: %w", err)
	}
	if err := e.rejoin(ctx, primary, addr); err != nil {
		return 0, r.errorf("follow", "rejoin %s: %w", primary, err)
	}
	d := r.noteFollow(primary, epoch)
	e.log.Info("postgres: rejoined", "service", r.svc.Name, "primary", primary, "epoch", epoch,
		"discarded", d, "ms", time.Since(start).Milliseconds())
	return d, nil
}

// noteFollow records that the service follows primary at epoch and
// returns its discarded count: the one of the rejoin that made the
// instance follow primary, reported once per (primary, epoch) and repeated
// for repeated calls.
func (r *replica) noteFollow(primary string, epoch uint64) uint64 {
	k := followKey{primary, epoch}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.followed == k {
		return r.discarded
	}
	e := r.e
	e.mu.Lock()
	d := e.pending[r.svc.Name]
	delete(e.pending, r.svc.Name)
	e.mu.Unlock()
	r.followed, r.discarded = k, d
	return d
}

// rejoinPlan survives a failed rejoin, so that a retry (to the same or
// another primary) still counts the writes discarded from the history the
// instance had before the rejoin began replacing it.
type rejoinPlan struct {
	local    history // the instance's history, read before it was stopped
	known    bool    // local was read
	needBase bool    // pg_rewind failed or the data directory is unusable
}

// rejoin turns the instance into a standby of primary at addr and leaves
// the writes discarded per service in e.pending. Callers hold the op lock.
func (e *Engine) rejoin(ctx context.Context, primary, addr string) error {
	e.mu.RLock()
	running, plan := e.proc != nil, e.plan
	e.mu.RUnlock()
	if plan == nil {
		plan = &rejoinPlan{}
	}
	if !running && !plan.needBase {
		// Down after a failed attempt that left the data directory as
		// it was: start it to read its history.
		if err := e.startAsIs(ctx); err != nil {
			e.log.Warn("postgres: cannot start the instance as it is; will copy it from the primary", "err", err)
			plan.needBase = true
		} else {
			running = true
		}
	}
	if running {
		// Read it now: a standby may have replayed more since a failed
		// attempt.
		pool, err := e.localPool()
		if err != nil {
			return err
		}
		c, err := pool.Acquire(ctx)
		if err != nil {
			return classify(err, e.cfg.Region)
		}
		h, err := readHistory(ctx, c.Conn())
		c.Release()
		if err != nil {
			return fmt.Errorf("local history: %w", err)
		}
		plan.local, plan.known = h, true
	}
	e.mu.Lock()
	e.plan = plan
	e.mu.Unlock()

	// The primary's history, and a slot there that keeps WAL for us.
	remote, err := e.primaryHistory(ctx, primary, addr)
	if err != nil {
		return err
	}
	discardedBy := map[string]uint64{}
	if plan.known {
		for _, s := range e.cfg.Services {
			discardedBy[s.Name] = discarded(s.Name, plan.local, remote)
		}
		if plan.local.sysid != remote.sysid {
			plan.needBase = true // fresh, or another system: pg_rewind cannot help
		}
	} else {
		e.log.Warn("postgres: the local history is unknown; discarded writes are not counted")
	}

	// Stop, rewind or copy, restart as a standby.
	start := time.Now()
	if p := e.unpublish("rejoining " + primary); p != nil {
		e.stopPostgres(p)
	}
	if !plan.needBase {
		err := e.rewind(ctx, addr)
		if err == nil {
			e.log.Info("postgres: pg_rewind", "source", primary, "ms", time.Since(start).Milliseconds())
		} else {
			// A pg_rewind that stopped half-way leaves the data
			// directory unusable: copy the primary from now on.
			plan.needBase = true
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %w", data.ErrUnavailable, err)
			}
			e.log.Warn("postgres: pg_rewind failed; copying the primary with pg_basebackup", "err", err)
		}
	}
	if plan.needBase {
		bstart := time.Now()
		if err := e.basebackup(ctx, addr); err != nil {
			return fmt.Errorf("%w: pg_basebackup from %s: %w", data.ErrUnavailable, primary, err)
		}
		e.log.Info("postgres: pg_basebackup", "source", primary, "ms", time.Since(bstart).Milliseconds())
	}
	published, err := e.startStandby(ctx, addr)
	e.mu.Lock()
	if published {
		e.role, e.upstream, e.pending, e.plan = roleStandby, primary, discardedBy, nil
	}
	e.mu.Unlock()
	if err != nil && !published {
		plan.needBase = true
	}
	return err
}

// primaryHistory connects to the primary at addr, checks that it is a
// primary, creates this region's replication slot there and reads its
// history. Failures wrap data.ErrUnavailable.
func (e *Engine) primaryHistory(ctx context.Context, primary, addr string) (history, error) {
	cfg, err := e.remoteConnConfig(addr)
	if err != nil {
		return history{}, err
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return history{}, fmt.Errorf("%w: primary %s (%s): %w", data.ErrUnavailable, primary, addr, err)
	}
	defer c.Close(context.Background())
	var inRecovery bool
	if err := c.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
		return history{}, fmt.Errorf("%w: primary %s: %w", data.ErrUnavailable, primary, err)
	}
	if inRecovery {
		return history{}, fmt.Errorf("%w: %s is not a primary yet (in recovery)", data.ErrUnavailable, primary)
	}
	// A promoted primary writes its new timeline into its control file
	// only at the checkpoint that ends recovery, which runs after
	// promotion in the background; pg_rewind reads the timeline from there.
	if _, err := c.Exec(ctx, `CHECKPOINT`); err != nil {
		return history{}, fmt.Errorf("%w: checkpoint on %s: %w", data.ErrUnavailable, primary, err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, e.slotName()); err != nil {
		return history{}, fmt.Errorf("%w: replication slot on %s: %w", data.ErrUnavailable, primary, err)
	}
	h, err := readHistory(ctx, c)
	if err != nil {
		return history{}, fmt.Errorf("%w: history of %s: %w", data.ErrUnavailable, primary, err)
	}
	return h, nil
}

// sourceServer is the conninfo of pg_rewind's source.
func sourceServer(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=5", host, port), nil
}

// rewind runs pg_rewind on the stopped instance from the primary at addr.
// pg_rewind runs crash recovery first if the instance was not shut down
// cleanly, and says "no rewind required" when the histories did not part.
func (e *Engine) rewind(ctx context.Context, addr string) error {
	src, err := sourceServer(addr)
	if err != nil {
		return err
	}
	if e.failRewind {
		return errors.New("pg_rewind disabled by the test")
	}
	args := []string{"--target-pgdata=" + e.pgdata, "--source-server=" + src}
	if e.noSync {
		args = append(args, "--no-sync")
	}
	return e.runTool(ctx, "pg_rewind", args...)
}

// basebackup replaces the data directory by a copy of the primary at
// addr. The copy is made beside it and swapped in only when complete.
func (e *Engine) basebackup(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	next, old := e.pgdata+".new", e.pgdata+".old"
	for _, d := range []string{next, old} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := e.user.mkdir(next); err != nil {
		return err
	}
	args := []string{"-D", next, "-h", host, "-p", port, "-U", "postgres", "-w", "-X", "stream", "-c", "fast"}
	if e.noSync {
		args = append(args, "--no-sync")
	}
	if err := e.runTool(ctx, "pg_basebackup", args...); err != nil {
		_ = os.RemoveAll(next)
		return err
	}
	if err := os.Rename(e.pgdata, old); err != nil {
		return err
	}
	if err := os.Rename(next, e.pgdata); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// startStandby configures the stopped instance as a standby of addr and
// starts it; published tells whether it runs as the engine's instance. If
// it runs but does not accept connections in time (it may need WAL from an
// unreachable primary to become consistent), it stays published and the
// error wraps data.ErrUnavailable.
func (e *Engine) startStandby(ctx context.Context, addr string) (published bool, err error) {
	settings, err := e.standbySettings(addr)
	if err != nil {
		return false, err
	}
	if err := e.writeConfig(); err != nil {
		return false, err
	}
	if err := e.setAutoConf(settings); err != nil {
		return false, err
	}
	if err := e.user.writeFile(filepath.Join(e.pgdata, "standby.signal"), nil); err != nil {
		return false, err
	}
	p, err := e.startPostgres()
	if err != nil {
		return false, err
	}
	werr := e.waitAccepting(ctx, p)
	if werr != nil && p.exited() {
		return false, werr
	}
	if err := e.publish(p); err != nil {
		return false, err
	}
	e.mu.Lock()
	e.dbFenced = true
	e.mu.Unlock()
	if werr != nil {
		return true, fmt.Errorf("%w: standby started but not accepting connections: %w", data.ErrUnavailable, werr)
	}
	// Slots copied or kept from this instance's past would hold WAL.
	_ = e.withAdmin(ctx, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active`)
		if err != nil {
			e.log.Debug("postgres: drop old slots", "err", err)
		}
		return nil
	})
	return true, nil
}

// startAsIs starts the stopped instance with its data directory as it is,
// read-only.
func (e *Engine) startAsIs(ctx context.Context) error {
	if !exists(filepath.Join(e.pgdata, "PG_VERSION")) {
		return errors.New("no cluster in " + e.pgdata)
	}
	on := "on"
	if err := e.writeConfig(); err != nil {
		return err
	}
	if err := e.setAutoConf(map[string]*string{"default_transaction_read_only": &on}); err != nil {
		return err
	}
	p, err := e.startPostgres()
	if err != nil {
		return err
	}
	if err := e.waitAccepting(ctx, p); err != nil {
		e.stopPostgres(p)
		return err
	}
	if err := e.publish(p); err != nil {
		return err
	}
	e.mu.Lock()
	e.dbFenced = true
	e.mu.Unlock()
	return nil
}
