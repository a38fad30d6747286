package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes the engine tells apart.
const (
	codeReadOnly       = "25006" // read_only_sql_transaction: fenced primary or standby
	codeUndefinedTable = "42P01"
	codeAdminShutdown  = "57P01"
	codeCrashShutdown  = "57P02"
	codeCannotConnect  = "57P03" // starting, stopping, or not yet consistent
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// tableOf is the quoted table of a service.
func tableOf(service string) string { return pgx.Identifier{"gs_" + service}.Sanitize() }

// ensureSchema creates the engine's tables and each service's table and
// meta row, leaving existing ones as they are.
func ensureSchema(services []Service) func(context.Context, *pgx.Conn) error {
	return func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			stmts := []string{
				`CREATE TABLE IF NOT EXISTS gs_meta (
					service text PRIMARY KEY,
					epoch bigint NOT NULL DEFAULT 0,
					seq bigint NOT NULL DEFAULT 0)`,
				`CREATE TABLE IF NOT EXISTS gs_forks (
					service text NOT NULL,
					epoch bigint NOT NULL,
					seq bigint NOT NULL,
					region text NOT NULL,
					time timestamptz NOT NULL DEFAULT clock_timestamp(),
					PRIMARY KEY (service, epoch))`,
			}
			for _, s := range services {
				stmts = append(stmts,
					fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
						seq bigint PRIMARY KEY,
						key text NOT NULL,
						value bytea NOT NULL,
						time timestamptz NOT NULL,
						epoch bigint NOT NULL)`, tableOf(s.Name)),
					fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (key, seq)`,
						pgx.Identifier{"gs_" + s.Name + "_key"}.Sanitize(), tableOf(s.Name)),
				)
			}
			for _, q := range stmts {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			for _, s := range services {
				if _, err := tx.Exec(ctx, `INSERT INTO gs_meta (service) VALUES ($1) ON CONFLICT DO NOTHING`, s.Name); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// withAdmin runs fn on a fresh local admin session (which may write while
// the instance is read-only).
func (e *Engine) withAdmin(ctx context.Context, fn func(context.Context, *pgx.Conn) error) error {
	c, err := pgx.ConnectConfig(ctx, e.localConnConfig(true))
	if err != nil {
		return fmt.Errorf("local admin connection: %w", err)
	}
	defer c.Close(context.Background())
	return fn(ctx, c)
}

// history is what an instance holds of every service's history: its
// system, positions and fork points.
type history struct {
	sysid uint64
	pos   map[string]uint64
	forks map[string][]fork
}

// readHistory reads the history of the instance c is connected to.
func readHistory(ctx context.Context, c *pgx.Conn) (history, error) {
	h := history{pos: map[string]uint64{}, forks: map[string][]fork{}}
	var sysid int64
	if err := c.QueryRow(ctx, `SELECT system_identifier FROM pg_control_system()`).Scan(&sysid); err != nil {
		return h, fmt.Errorf("system identifier: %w", err)
	}
	h.sysid = uint64(sysid)
	rows, err := c.Query(ctx, `SELECT service, seq FROM gs_meta`)
	if err == nil {
		var svc string
		var seq int64
		_, err = pgx.ForEachRow(rows, []any{&svc, &seq}, func() error {
			h.pos[svc] = uint64(seq)
			return nil
		})
	}
	if err != nil && pgCode(err) != codeUndefinedTable {
		return h, fmt.Errorf("positions: %w", err)
	}
	rows, err = c.Query(ctx, `SELECT service, epoch, seq FROM gs_forks ORDER BY service, epoch`)
	if err == nil {
		var svc string
		var epoch, seq int64
		_, err = pgx.ForEachRow(rows, []any{&svc, &epoch, &seq}, func() error {
			h.forks[svc] = append(h.forks[svc], fork{Epoch: uint64(epoch), Seq: uint64(seq)})
			return nil
		})
	}
	if err != nil && pgCode(err) != codeUndefinedTable {
		return h, fmt.Errorf("fork points: %w", err)
	}
	return h, nil
}
