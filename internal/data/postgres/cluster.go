package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limits of the process lifecycle.
const (
	startTimeout = 60 * time.Second // until a started postmaster accepts connections
	stopTimeout  = 30 * time.Second // fast shutdown, then SIGKILL of the group
	killTimeout  = 10 * time.Second // after SIGKILL
	// maxSocketPath is below the 107 bytes of sun_path, with room for the
	// socket's name (.s.PGSQL.<port>.lock).
	maxSocketPath = 107 - len("/.s.PGSQL.65535.lock")
)

// layout fixes the paths of the cluster of dir: the data directory and the
// Unix socket directory (under dir if its path is short enough, else
// /tmp/gs-pg-<hash of dir>).
func layout(dir string) (pgdata, sockDir string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	pgdata = filepath.Join(abs, "pgdata")
	sockDir = filepath.Join(abs, "pgrun")
	if len(sockDir) > maxSocketPath {
		h := sha256.Sum256([]byte(abs))
		sockDir = "/tmp/gs-pg-" + hex.EncodeToString(h[:6])
	}
	return pgdata, sockDir, nil
}

// freePort asks the OS for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sqlQuote quotes s as a PostgreSQL string literal (standard strings).
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// postgresqlConf renders the whole postgresql.conf of the instance. It is
// rewritten before every start, since pg_basebackup and pg_rewind copy the
// source's.
func (e *Engine) postgresqlConf() []byte {
	syncNames := ""
	if e.cfg.anySync() {
		syncNames = "ANY 1 (*)"
	}
	fsync := "on"
	if e.noSync {
		fsync = "off" // tests only: durability across an OS crash is not tested
	}
	settings := []struct{ k, v string }{
		{"listen_addresses", sqlQuote(e.cfg.Host)},
		{"port", strconv.Itoa(e.port)},
		{"unix_socket_directories", sqlQuote(e.sockDir)},
		{"max_connections", "50"},
		{"shared_buffers", "'16MB'"},
		{"dynamic_shared_memory_type", "posix"},
		{"huge_pages", "off"},
		{"ssl", "off"},
		// Replication. wal_log_hints (with full_page_writes) lets
		// pg_rewind rewind an old primary.
		{"wal_level", "replica"},
		{"wal_log_hints", "on"},
		{"full_page_writes", "on"},
		{"fsync", fsync},
		{"synchronous_commit", "on"},
		{"synchronous_standby_names", sqlQuote(syncNames)},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"wal_keep_size", "'128MB'"},
		{"max_slot_wal_keep_size", "'1GB'"},
		{"max_wal_size", "'256MB'"},
		{"min_wal_size", "'8MB'"},
		{"hot_standby", "on"},
		{"hot_standby_feedback", "off"},
		{"wal_receiver_status_interval", "'1s'"}, // the minimum; replies also follow every write and flush
		{"wal_sender_timeout", "'5s'"},
		{"wal_receiver_timeout", "'5s'"},
		{"wal_retrieve_retry_interval", "'500ms'"},
		{"tcp_keepalives_idle", "5"},
		{"tcp_keepalives_interval", "2"},
		{"tcp_keepalives_count", "3"},
		// Logs go to stderr, which the engine reads.
		{"logging_collector", "off"},
		{"log_destination", "'stderr'"},
		{"log_line_prefix", "'%m [%p] '"},
		{"log_min_messages", "warning"},
		{"timezone", "'UTC'"},
		{"log_timezone", "'UTC'"},
		{"lc_messages", "'C'"},
		{"datestyle", "'iso, mdy'"},
		{"default_text_search_config", "'pg_catalog.english'"},
	}
	var b bytes.Buffer
	b.WriteString("# Written by geostamp (internal/data/postgres) before every start; edits are lost.\n")
	b.WriteString("# Role settings (read-only fencing, primary_conninfo) live in postgresql.auto.conf.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = %s\n", s.k, s.v)
	}
	return b.Bytes()
}

// pgHBA trusts loopback and local connections, for clients and
// replication alike. Lab only: there are no passwords.
const pgHBA = `# Written by geostamp (internal/data/postgres). Lab only: trust on loopback.
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.0/8   trust
host    replication  all   127.0.0.0/8   trust
host    all          all   ::1/128       trust
host    replication  all   ::1/128       trust
`

// writeConfig writes postgresql.conf and pg_hba.conf and drops files that
// a copy from another instance may have brought along.
func (e *Engine) writeConfig() error {
	if err := e.user.writeFile(filepath.Join(e.pgdata, "postgresql.conf"), e.postgresqlConf()); err != nil {
		return err
	}
	if err := e.user.writeFile(filepath.Join(e.pgdata, "pg_hba.conf"), []byte(pgHBA)); err != nil {
		return err
	}
	for _, f := range []string{"postmaster.opts", "recovery.signal"} {
		if err := os.Remove(filepath.Join(e.pgdata, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// autoConfName is postgresql.auto.conf, where ALTER SYSTEM writes. The engine
// edits it itself only while the server is stopped.
const autoConfName = "postgresql.auto.conf"

// setAutoConf sets (non-nil) or removes (nil) settings in the
// postgresql.auto.conf of pgdata, keeping the others.
func (e *Engine) setAutoConf(settings map[string]*string) error {
	path := filepath.Join(e.pgdata, autoConfName)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return e.user.writeFile(path, editAutoConf(old, settings))
}

// editAutoConf returns conf with settings set (non-nil) or removed (nil),
// in ALTER SYSTEM's format.
func editAutoConf(conf []byte, settings map[string]*string) []byte {
	var b bytes.Buffer
	if len(conf) == 0 {
		b.WriteString("# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n")
	}
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := sc.Text()
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			if _, mine := settings[strings.TrimSpace(k)]; mine {
				continue
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := settings[k]; v != nil {
			fmt.Fprintf(&b, "%s = %s\n", k, sqlQuote(*v))
		}
	}
	return b.Bytes()
}

// readAutoConf returns the value of key in pgdata's postgresql.auto.conf.
func (e *Engine) readAutoConf(key string) (string, bool) {
	conf, err := os.ReadFile(filepath.Join(e.pgdata, autoConfName))
	if err != nil {
		return "", false
	}
	return parseAutoConf(conf, key)
}

func parseAutoConf(conf []byte, key string) (string, bool) {
	val, found := "", false
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		}
		val, found = v, true // the last one wins, as in PostgreSQL
	}
	return val, found
}

// conninfoValue extracts one keyword's value from a libpq conninfo string
// of the form the engine writes (key=value, no quoted spaces).
func conninfoValue(conninfo, key string) string {
	for _, f := range strings.Fields(conninfo) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return strings.Trim(v, "'")
		}
	}
	return ""
}

// standbySettings are the auto.conf settings of a standby of addr.
func (e *Engine) standbySettings(addr string) (map[string]*string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conninfo := fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres application_name=%s sslmode=disable connect_timeout=3 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3",
		host, port, e.slotName())
	slot := e.slotName()
	on := "on"
	return map[string]*string{
		"primary_conninfo":              &conninfo,
		"primary_slot_name":             &slot,
		"default_transaction_read_only": &on,
	}, nil
}

// slotName is the replication slot that a primary keeps for this region
// (and the standby's application_name): gs_<region>, lowercased, other
// characters as '_'.
func (e *Engine) slotName() string {
	var b strings.Builder
	b.WriteString("gs_")
	for _, r := range strings.ToLower(e.cfg.Region) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// pgProc is one run of the postmaster.
type pgProc struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the postmaster exited; err is set
	err      error
	stopping atomic.Bool // the engine asked it to stop (not a crash)
	logs     *tailBuffer
}

func (p *pgProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startPostgres starts the postmaster on pgdata. It returns at once; see
// waitAccepting.
func (e *Engine) startPostgres() (*pgProc, error) {
	if err := e.clearStaleLock(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	cmd := exec.Command(filepath.Join(e.binDir, "postgres"), "-D", e.pgdata)
	cmd.Dir = "/"
	cmd.Env = childEnv()
	cmd.SysProcAttr = e.user.sysProcAttr()
	p := &pgProc{cmd: cmd, done: make(chan struct{}), logs: &tailBuffer{max: 4096}}
	w := &lineLogger{e: e, tail: p.logs}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 2 * time.Second // backends may hold the pipe a moment after the postmaster
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		if !p.stopping.Load() {
			e.postgresDied(p)
		}
	}()
	return p, nil
}

// stopPostgres stops p with a fast shutdown (SIGINT), then kills its
// process group if it has not exited within stopTimeout.
func (e *Engine) stopPostgres(p *pgProc) {
	if p == nil {
		return
	}
	p.stopping.Store(true)
	if p.exited() {
		return
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
		e.log.Debug("postgres: stopped", "ms", time.Since(start).Milliseconds())
		return
	case <-time.After(stopTimeout):
		e.log.Warn("postgres: fast shutdown timed out; killing", "after", stopTimeout)
	}
	e.killPostgres(p)
}

// killPostgres SIGKILLs p's process group and waits (bounded) for it.
func (e *Engine) killPostgres(p *pgProc) {
	_ = killGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killTimeout):
		e.log.Error("postgres: did not exit after SIGKILL", "pid", p.cmd.Process.Pid)
	}
}

// waitAccepting waits until the postmaster p accepts client connections.
func (e *Engine) waitAccepting(ctx context.Context, p *pgProc) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("postgres exited (%v): %s", p.err, lastLines(p.logs.String(), 5))
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.ConnectConfig(cctx, e.localConnConfig(false))
		if err == nil {
			err = conn.Ping(cctx)
			_ = conn.Close(context.Background())
		}
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres not accepting connections: %w (last: %v; log: %s)", ctx.Err(), last, lastLines(p.logs.String(), 3))
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// localConnConfig is a connection to the local instance on its Unix
// socket. admin sessions may write while the instance is fenced
// (default_transaction_read_only is only a default).
func (e *Engine) localConnConfig(admin bool) *pgx.ConnConfig {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", e.sockDir, e.port))
	if err != nil {
		panic(fmt.Sprintf("postgres: local conninfo: %v", err)) // built from validated parts
	}
	cfg.RuntimeParams["application_name"] = "geostamp-" + e.cfg.Region
	if admin {
		cfg.RuntimeParams["application_name"] = "geostamp-admin-" + e.cfg.Region
		cfg.RuntimeParams["default_transaction_read_only"] = "off"
		// The engine's own writes (schema, epoch, fork point) never wait
		// for a standby: there may be none yet.
		cfg.RuntimeParams["synchronous_commit"] = "local"
	}
	return cfg
}

// remoteConnConfig is a connection to the PostgreSQL of region at addr.
func (e *Engine) remoteConnConfig(addr string) (*pgx.ConnConfig, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable connect_timeout=5", host, port))
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "geostamp-" + e.cfg.Region
	return cfg, nil
}

// lineLogger sends PostgreSQL's output to the logger at debug level, line
// by line, and keeps its tail for error messages.
type lineLogger struct {
	e    *Engine
	tail *tailBuffer
	mu   sync.Mutex
	buf  []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	_, _ = l.tail.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.e.log.Debug(string(l.buf[:i]), "source", "postgres")
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// emptyDir removes everything inside dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range entries {
		if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}
