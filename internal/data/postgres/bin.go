package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoPostgres means the PostgreSQL binaries were not found.
var ErrNoPostgres = errors.New("PostgreSQL 15+ binaries (initdb, postgres, pg_rewind, pg_basebackup) not found on PATH or in /usr/lib/postgresql/<N>/bin: install Debian's postgresql package")

// minMajor is the oldest PostgreSQL major version the engine runs.
const minMajor = 15

// tools are the binaries the engine runs; they must sit in one directory.
var tools = []string{"initdb", "postgres", "pg_rewind", "pg_basebackup"}

// FindBinDir returns the directory of PostgreSQL 15+ binaries: dir itself
// if not empty, else the directory `postgres` on PATH resolves to (when the
// other tools are beside it), else the highest /usr/lib/postgresql/<N>/bin.
// The error wraps ErrNoPostgres.
func FindBinDir(dir string) (string, error) {
	if dir != "" {
		if err := checkBinDir(dir); err != nil {
			return "", fmt.Errorf("postgres: bin dir %s: %w: %w", dir, ErrNoPostgres, err)
		}
		return dir, nil
	}
	var candidates []string
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return n
	}
	slices.SortFunc(debian, func(a, b string) int { return major(b) - major(a) })
	candidates = append(candidates, debian...)
	var why []error
	for _, d := range candidates {
		err := checkBinDir(d)
		if err == nil {
			return d, nil
		}
		why = append(why, fmt.Errorf("%s: %w", d, err))
	}
	return "", fmt.Errorf("postgres: %w (%w)", ErrNoPostgres, errors.Join(why...))
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// checkBinDir checks that dir holds every tool and that postgres is 15+.
func checkBinDir(dir string) error {
	for _, t := range tools {
		fi, err := os.Stat(filepath.Join(dir, t))
		if err != nil {
			return err
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", t)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return fmt.Errorf("postgres --version: %w", err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("postgres --version: unexpected output %q", bytes.TrimSpace(out))
	}
	if n, _ := strconv.Atoi(string(m[1])); n < minMajor {
		return fmt.Errorf("PostgreSQL %d is older than %d", n, minMajor)
	}
	return nil
}

// osUser is the account the PostgreSQL processes run as. PostgreSQL refuses
// to run as root, so when this process is root they run as the postgres
// system user (created by Debian's package), or nobody.
type osUser struct {
	name     string
	uid, gid uint32
	switched bool // a credential is set on the children
	// readSearch: the account cannot reach Dir through its ancestors, so
	// the children get CAP_DAC_READ_SEARCH (traverse and read any
	// directory; writing still needs ownership).
	readSearch bool
}

// lookupOSUser picks the account for the PostgreSQL processes of a cluster
// under dir.
func lookupOSUser(dir string) (osUser, error) {
	if os.Geteuid() != 0 {
		return osUser{name: "self", uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", name, err))
			continue
		}
		ou := osUser{name: name, uid: uint32(uid), gid: uint32(gid), switched: true}
		ou.readSearch = !canTraverse(dir, ou.uid, ou.gid)
		return ou, nil
	}
	return osUser{}, fmt.Errorf("running as root, and no account to run PostgreSQL as: %w", errors.Join(errs...))
}

// canTraverse reports whether uid:gid may search every existing ancestor
// of dir (and dir itself).
func canTraverse(dir string, uid, gid uint32) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := abs; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil {
			var bit uint32 = 0o001
			switch {
			case st.Uid == uid:
				bit = 0o100
			case st.Gid == gid:
				bit = 0o010
			}
			if st.Mode&bit == 0 {
				return false
			}
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// sysProcAttr returns the attributes of every PostgreSQL child: its own
// process group (so the whole group can be killed), SIGKILL when this
// process dies, and the account of u.
func (u osUser) sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u.switched {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid} // no supplementary groups
		if u.readSearch {
			a.AmbientCaps = []uintptr{unix.CAP_DAC_READ_SEARCH}
		}
	}
	return a
}

// chown gives path to u (a no-op when u is this process's account).
func (u osUser) chown(path string) error {
	if !u.switched {
		return nil
	}
	return os.Lchown(path, int(u.uid), int(u.gid))
}

// mkdir creates dir (mode 0700) owned by u, or fixes the owner and mode of
// an existing one.
func (u osUser) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return u.chown(dir)
}

// writeFile writes a file owned by u, mode 0600.
func (u osUser) writeFile(path string, b []byte) error {
	tmp := path + ".gs-tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := u.chown(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// childEnv is the environment of the PostgreSQL children: no inherited
// PG* variables, C locale, UTC.
func childEnv(extra ...string) []string {
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC", "PGCONNECT_TIMEOUT=5"}
	return append(env, extra...)
}

// killGroup sends sig to the process group led by pid.
func killGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// runTool runs one of the PostgreSQL tools to completion as u, bounded by
// ctx (the whole process group is killed when ctx ends). The error carries
// the tail of the tool's output.
func (e *Engine) runTool(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(e.binDir, name), args...)
	cmd.Dir = "/"
	cmd.Env = childEnv("PGAPPNAME=geostamp-" + e.cfg.Region)
	cmd.SysProcAttr = e.user.sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	e.log.Debug("postgres: tool ran", "tool", name, "args", args, "ms", time.Since(start).Milliseconds(), "err", err, "output", out.String())
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
