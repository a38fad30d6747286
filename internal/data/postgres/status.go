package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/geostamp/geostamp/internal/data"
)

// Status reports the replication state of the service in this region.
//
// Role: fenced after Fence (and for an instance that is read-only without
// a role yet), secondary while the instance is a standby, primary after
// Promote. LastSeq is the local position. On the primary PrimarySeq is
// LastSeq; elsewhere PrimarySeq is asked of the primary that takes this
// region's writes, bounded by ctx and by 1 s (0 when it does not answer,
// and then Writable is false and the lag unknown). LagWrites is
// PrimarySeq-LastSeq. LagSeconds is the age of the oldest write the
// replica lacks: now minus the primary's timestamp of its first row after
// LastSeq (read from the primary; the lab's regions share a clock, across
// machines it includes their skew). Readable means the local instance
// answered (a hot standby does). Writable means a write addressed to this
// region's epoch would be taken now. Detail tells the replication state and
// the WAL positions.
func (r *replica) Status(ctx context.Context) data.Status {
	e := r.e
	e.mu.RLock()
	route, fenced, role, upstream, w, down, pool := e.route, e.fenced, e.role, e.upstream, e.writer, e.down, e.local
	if e.proc == nil {
		pool = nil
	}
	e.mu.RUnlock()
	st := data.Status{
		Service: r.svc.Name,
		Kind:    data.KindPrimarySecondary,
		Region:  e.cfg.Region,
		Primary: route,
		Epoch:   r.currentEpoch(),
	}
	if pool == nil {
		st.Detail = down
		return st
	}
	var (
		inRecovery             bool
		readOnly, wal, replay  string
		recvStatus, recvSender *string
		details                []string
	)
	err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),
		coalesce(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END::text, ''),
		coalesce(pg_last_wal_replay_lsn()::text, ''),
		(SELECT status FROM pg_stat_wal_receiver),
		(SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver)`).
		Scan(&inRecovery, &readOnly, &wal, &replay, &recvStatus, &recvSender)
	if err == nil {
		st.LastSeq, err = position(ctx, pool, r.svc.Name)
	}
	if err != nil {
		st.Detail = "local instance: " + err.Error()
		return st
	}
	st.Readable = true
	switch {
	case fenced:
		st.Role = data.RoleFenced
	case role == rolePrimary && !inRecovery:
		st.Role = data.RolePrimary
	case inRecovery:
		st.Role = data.RoleSecondary
	default:
		st.Role = data.RoleFenced
	}
	if role == roleNone {
		if route == "" {
			details = append(details, "no role yet (read-only until Promote or Follow)")
		} else {
			details = append(details, "rejoining "+route+" (read-only until it follows)")
		}
	}
	if inRecovery {
		from := upstream
		if from == "" {
			from = "unknown"
		}
		rs := "not connected"
		if recvStatus != nil {
			rs = *recvStatus
		}
		sender := ""
		if recvSender != nil {
			sender = " (" + *recvSender + ")"
		}
		details = append(details, fmt.Sprintf("replication: %s from %s%s; received %s, replayed %s", rs, from, sender, wal, replay))
	} else {
		details = append(details, "wal "+wal+standbys(ctx, pool))
		if readOnly == "on" {
			details = append(details, "read-only")
		}
	}

	if route == e.cfg.Region && role == rolePrimary && !inRecovery {
		st.PrimarySeq = st.LastSeq
		st.Writable = !fenced && readOnly == "off"
		st.Detail = strings.Join(details, "; ")
		return st
	}
	if route == "" || w == nil {
		st.Detail = strings.Join(details, "; ")
		return st
	}
	p, err := r.probePrimary(ctx, w, st.LastSeq)
	if err != nil {
		details = append(details, fmt.Sprintf("primary %s unreachable (lag unknown): %v", route, err))
		st.Detail = strings.Join(details, "; ")
		return st
	}
	st.PrimarySeq = p.seq
	st.Writable = !fenced && p.writable && p.epoch == st.Epoch
	if !p.writable {
		details = append(details, fmt.Sprintf("primary %s is read-only (fenced or a standby)", route))
	} else if p.epoch != st.Epoch {
		details = append(details, fmt.Sprintf("primary %s is at epoch %d, writes here are addressed to %d", route, p.epoch, st.Epoch))
	}
	switch {
	case p.seq > st.LastSeq:
		st.LagWrites = p.seq - st.LastSeq
		if !p.oldestMissing.IsZero() {
			st.LagSeconds = max(0, e.now().Sub(p.oldestMissing).Seconds())
		}
	case st.LastSeq > p.seq:
		details = append(details, fmt.Sprintf("%d writes ahead of the primary (divergent tail until rejoin)", st.LastSeq-p.seq))
	}
	st.Detail = strings.Join(details, "; ")
	return st
}

// primaryState is what Status learns from the primary.
type primaryState struct {
	seq, epoch    uint64
	writable      bool
	oldestMissing time.Time // time of the first write after the local position
}

// probePrimary asks the primary of w for the service's state, bounded by
// ctx and statusProbeTimeout.
func (r *replica) probePrimary(ctx context.Context, w *writer, after uint64) (primaryState, error) {
	ctx, cancel := context.WithTimeout(ctx, statusProbeTimeout)
	defer cancel()
	var (
		p          primaryState
		inRecovery bool
		readOnly   string
		seq, epoch int64
		oldest     *time.Time
	)
	err := w.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), m.seq, m.epoch,
		(SELECT time FROM `+r.table+` WHERE seq > $2 ORDER BY seq LIMIT 1)
		FROM gs_meta m WHERE m.service = $1`, r.svc.Name, int64(after)).
		Scan(&inRecovery, &readOnly, &seq, &epoch, &oldest)
	if err != nil {
		return p, err
	}
	p.seq, p.epoch = uint64(seq), uint64(epoch)
	p.writable = !inRecovery && readOnly == "off"
	if oldest != nil {
		p.oldestMissing = *oldest
	}
	return p, nil
}

// standbys describes the standbys connected to a primary.
func standbys(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) string {
	rows, err := pool.Query(ctx, `SELECT application_name, state, sync_state, coalesce(replay_lsn::text, '') FROM pg_stat_replication ORDER BY 1`)
	if err != nil {
		return ""
	}
	var out []string
	var name, state, sync, lsn string
	_, err = pgx.ForEachRow(rows, []any{&name, &state, &sync, &lsn}, func() error {
		out = append(out, fmt.Sprintf("%s %s %s replayed %s", name, state, sync, lsn))
		return nil
	})
	if err != nil || len(out) == 0 {
		return "; no standby connected"
	}
	return "; standbys: " + strings.Join(out, ", ")
}
