package postgres

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writer is the pool of connections to the primary that takes this
// region's writes. It is replaced, never re-pointed: when the primary
// changes, the old pool is closed at once and writes in flight on it are
// canceled, so no pooled connection stays on a deposed primary.
type writer struct {
	region string
	pool   *pgxpool.Pool
	ctx    context.Context // canceled when the writer is replaced
	cancel context.CancelFunc
	// syncCanceled marks connections on which the server reported that it
	// stopped waiting for synchronous replication of a commit (the
	// transaction committed locally only).
	syncCanceled sync.Map // *pgconn.PgConn -> struct{}
}

// newWriter opens (lazily) a pool to region's PostgreSQL: the local socket
// for this region, else Config.Peers[region].
func (e *Engine) newWriter(region string) (*writer, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	if region == e.cfg.Region {
		cfg.ConnConfig = e.localConnConfig(false)
	} else {
		cc, err := e.remoteConnConfig(e.cfg.Peers[region])
		if err != nil {
			return nil, err
		}
		cfg.ConnConfig = cc
	}
	cfg.MaxConns = 8
	cfg.HealthCheckPeriod = 5 * time.Second
	cfg.ShouldPing = shouldPing
	w := &writer{region: region}
	cfg.ConnConfig.OnNotice = func(c *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "synchronous replication") {
			w.syncCanceled.Store(c, struct{}{})
		}
	}
	cfg.BeforeClose = func(c *pgx.Conn) { w.syncCanceled.Delete(c.PgConn()) }
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	w.pool = pool
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// shouldPing makes the pool ping a connection before handing it out when
// it was idle for a second, or when the server has already said something
// on it (CheckConn, a read of at most 1 ms): a session terminated by a
// Fence is then replaced before a write is sent on it, so the write gets
// the fenced primary's answer instead of an unknown outcome.
func shouldPing(_ context.Context, p pgxpool.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || p.Conn.PgConn().CheckConn() != nil
}

// close cancels the writes in flight and closes the pool without waiting.
func (w *writer) close() {
	w.cancel()
	go w.pool.Close()
}

// routeLocked points writes at region's primary with a new writer, unless
// fresh is false and the writer already points there. Callers hold e.mu.
func (e *Engine) routeLocked(region string, fresh bool) error {
	e.route = region
	if !fresh && e.writer != nil && e.writer.region == region {
		return nil
	}
	w, err := e.newWriter(region)
	if err != nil {
		return err
	}
	if e.writer != nil {
		e.writer.close()
	}
	e.writer = w
	return nil
}
