package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/geostamp/geostamp/internal/data"
)

// ErrInvalidKey is returned for keys that cannot be stored: empty, longer
// than 1024 bytes, not UTF-8, or holding a NUL byte (keys are text).
var ErrInvalidKey = errors.New("invalid key")

const (
	maxKeyLen = 1024
	// listDefault is the limit used by List when limit <= 0.
	listDefault = 100
	// statusProbeTimeout bounds what Status asks of the primary.
	statusProbeTimeout = time.Second
)

// replica is one service of the engine as this region sees it.
type replica struct {
	e     *Engine
	svc   Service
	table string
	// put is the write statement; see the package doc.
	put string

	mu    sync.Mutex
	epoch uint64 // the epoch writes are addressed to
	// followed and discarded remember the last Follow, so a repeated call
	// returns the same count.
	followed  followKey
	discarded uint64
	// lease is the witness lease of the epoch the local instance is
	// primary at (nil otherwise, or when promoted without one): Put checks
	// it before acknowledging a local write, watchLease fences when it ends.
	lease data.Lease
}

func (r *replica) currentLease() data.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lease
}

func (r *replica) setLease(l data.Lease) {
	r.mu.Lock()
	r.lease = l
	r.mu.Unlock()
}

type followKey struct {
	primary string
	epoch   uint64
}

func newReplica(e *Engine, s Service) *replica {
	t := tableOf(s.Name)
	return &replica{
		e:     e,
		svc:   s,
		table: t,
		put: `WITH m AS (UPDATE gs_meta SET seq = seq + 1 WHERE service = $1 AND epoch = $2 RETURNING seq, epoch)
INSERT INTO ` + t + ` (seq, key, value, time, epoch) SELECT seq, $3, $4, clock_timestamp(), epoch FROM m RETURNING seq, time`,
	}
}

func (r *replica) currentEpoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epoch
}

func (r *replica) errorf(op string, format string, args ...any) error {
	return fmt.Errorf("postgres: %s %s: %w", op, r.svc.Name, fmt.Errorf(format, args...))
}

func checkKey(key string) error {
	switch {
	case key == "" || len(key) > maxKeyLen:
		return fmt.Errorf("%w: length %d not in 1-%d", ErrInvalidKey, len(key), maxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidKey)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: NUL byte", ErrInvalidKey)
	}
	return nil
}

// doPut writes value under key at the primary of the current epoch (over
// Config.Peers, or locally after Promote) and returns it once committed
// there, and, for a sync service, flushed by a standby. Seq is the
// service's position of the write; Time the primary's clock at the write.
//
// Errors: data.ErrUnavailable before the controller gave the region a
// role, when the primary cannot be reached, and whenever the outcome is
// unknown (ctx ended or the connection broke while the write was in
// flight: it may have committed; a sync write whose wait for the standby
// was cut short did commit on the primary). data.ErrFenced after Fence,
// or when the primary refuses the epoch or is read-only (fenced, or not a
// primary).
func (r *replica) doPut(ctx context.Context, key string, value []byte) (data.Record, error) {
	if err := checkKey(key); err != nil {
		return data.Record{}, r.errorf("put", "%w", err)
	}
	e := r.e
	e.mu.RLock()
	route, fenced, w, down := e.route, e.fenced, e.writer, e.down
	e.mu.RUnlock()
	epoch := r.currentEpoch()
	var lease data.Lease
	if w != nil && w.region == e.cfg.Region {
		lease = r.currentLease()
	}
	switch {
	case fenced:
		return data.Record{}, r.errorf("put", "%w: fenced in %s", data.ErrFenced, e.cfg.Region)
	case route == "":
		return data.Record{}, r.errorf("put", "%w: no primary yet (waiting for the failover controller)", data.ErrUnavailable)
	case w == nil:
		return data.Record{}, r.errorf("put", "%w: %s", data.ErrUnavailable, down)
	case lease != nil && !lease.Valid():
		return data.Record{}, r.errorf("put", "%w: %w", data.ErrFenced, data.ErrLeaseEnded)
	}
	if value == nil {
		value = []byte{}
	}
	// Writes in flight end when the writer is replaced (new primary).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(w.ctx, func() { cancel(errors.New("primary changed")) })()

	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return data.Record{}, r.errorf("put", "%w: connect to primary %s: %w", data.ErrUnavailable, w.region, err)
	}
	defer conn.Release()
	pgc := conn.Conn().PgConn()
	w.syncCanceled.Delete(pgc)

	var (
		seq int64
		t   time.Time
	)
	if e.cfg.anySync() && r.svc.Replication == ReplicationAsync {
		// The instance waits for a standby on commit; this service does not.
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		b.Queue(`SET LOCAL synchronous_commit TO local`)
		b.Queue(r.put, r.svc.Name, int64(epoch), key, value).QueryRow(func(row pgx.Row) error { return row.Scan(&seq, &t) })
		b.Queue(`COMMIT`)
		err = conn.SendBatch(ctx, b).Close()
	} else {
		err = conn.QueryRow(ctx, r.put, r.svc.Name, int64(epoch), key, value).Scan(&seq, &t)
	}
	_, syncCut := w.syncCanceled.LoadAndDelete(pgc)
	switch {
	case ctx.Err() != nil:
		return data.Record{}, r.errorf("put", "%w: outcome unknown at primary %s: %w", data.ErrUnavailable, w.region, context.Cause(ctx))
	case syncCut:
		return data.Record{}, r.errorf("put", "%w: outcome unknown: primary %s committed locally, but the wait for the standby was cut short", data.ErrUnavailable, w.region)
	case errors.Is(err, pgx.ErrNoRows):
		return data.Record{}, r.errorf("put", "%w: primary %s refused epoch %d (not its epoch)", data.ErrFenced, w.region, epoch)
	case err != nil:
		return data.Record{}, r.errorf("put", "%w", classify(err, w.region))
	case lease != nil && !lease.Valid():
		// Right before the acknowledgement: the commit (and its wait for
		// the standby) may outlast the lease.
		return data.Record{}, r.errorf("put", "%w: %w: committed at seq %d, but the lease ended before the acknowledgement", data.ErrUnavailable, data.ErrLeaseEnded, seq)
	}
	return data.Record{Key: key, Seq: uint64(seq), Value: value, Time: t.UTC(), Region: w.region}, nil
}

// classify wraps err from the instance of region in the data sentinel
// that tells the caller what it means.
func classify(err error, region string) error {
	switch pgCode(err) {
	case codeReadOnly:
		return fmt.Errorf("%w: %s is read-only (fenced or a standby): %w", data.ErrFenced, region, err)
	case "":
		// Not an answer of the server: the connection failed or broke.
		return fmt.Errorf("%w: %s: %w", data.ErrUnavailable, region, err)
	case codeAdminShutdown, codeCrashShutdown, codeCannotConnect:
		return fmt.Errorf("%w: %s: %w", data.ErrUnavailable, region, err)
	}
	return fmt.Errorf("%s: %w", region, err)
}

// doGet returns the latest value of key from the local instance.
func (r *replica) doGet(ctx context.Context, key string) (data.Record, error) {
	if err := checkKey(key); err != nil {
		return data.Record{}, r.errorf("get", "%w", err)
	}
	pool, err := r.e.localPool()
	if err != nil {
		return data.Record{}, r.errorf("get", "%w", err)
	}
	rec := data.Record{Key: key}
	var seq int64
	err = pool.QueryRow(ctx, `SELECT seq, value, time FROM `+r.table+` WHERE key = $1 ORDER BY seq DESC LIMIT 1`, key).
		Scan(&seq, &rec.Value, &rec.Time)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || pgCode(err) == codeUndefinedTable:
		return data.Record{}, r.errorf("get", "%q: %w", key, data.ErrNotFound)
	case err != nil:
		return data.Record{}, r.errorf("get", "%w", classify(err, r.e.cfg.Region))
	}
	rec.Seq, rec.Time = uint64(seq), rec.Time.UTC()
	return rec, nil
}

// List returns up to limit records with Seq > after, in order, from the
// local instance. limit <= 0 means 100.
func (r *replica) List(ctx context.Context, after uint64, limit int) ([]data.Record, error) {
	if limit <= 0 {
		limit = listDefault
	}
	pool, err := r.e.localPool()
	if err != nil {
		return nil, r.errorf("list", "%w", err)
	}
	rows, err := pool.Query(ctx, `SELECT seq, key, value, time FROM `+r.table+` WHERE seq > $1 ORDER BY seq LIMIT $2`,
		int64(min(after, math.MaxInt64)), limit)
	out := []data.Record{}
	if err == nil {
		var rec data.Record
		var seq int64
		_, err = pgx.ForEachRow(rows, []any{&seq, &rec.Key, &rec.Value, &rec.Time}, func() error {
			rec.Seq, rec.Time = uint64(seq), rec.Time.UTC()
			out = append(out, rec)
			rec.Value = nil // ForEachRow scans into the same variables
			return nil
		})
	}
	switch {
	case pgCode(err) == codeUndefinedTable:
		return []data.Record{}, nil
	case err != nil:
		return nil, r.errorf("list", "%w", classify(err, r.e.cfg.Region))
	}
	return out, nil
}

// Position returns the service's last seq in the local instance.
func (r *replica) Position(ctx context.Context) (uint64, error) {
	pool, err := r.e.localPool()
	if err != nil {
		return 0, r.errorf("position", "%w", err)
	}
	pos, err := position(ctx, pool, r.svc.Name)
	if err != nil {
		return 0, r.errorf("position", "%w", classify(err, r.e.cfg.Region))
	}
	return pos, nil
}

// querier is a connection or a pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var _ querier = (*pgxpool.Pool)(nil)

// position reads the last seq of service; 0 when it has none yet.
func position(ctx context.Context, q querier, service string) (uint64, error) {
	var seq int64
	err := q.QueryRow(ctx, `SELECT seq FROM gs_meta WHERE service = $1`, service).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) || pgCode(err) == codeUndefinedTable {
		return 0, nil
	}
	return uint64(seq), err
}

// Crash kills the region's PostgreSQL instance (all its services); see
// Engine.Crash.
func (r *replica) Crash() error { return r.e.Crash() }
