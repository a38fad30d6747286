package postgres

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clearStaleLock removes pgdata/postmaster.pid left by an earlier
// postmaster (of a killed region process), once nothing of that instance
// runs any more. It is called only when this engine runs no postmaster.
//
// Why: the region process dies by SIGKILL (a drill's outage), its postmaster
// gets SIGKILL from Pdeathsig, but until the orphan is reaped its PID still
// answers kill(pid, 0), which is all PostgreSQL checks: the new postmaster
// would refuse to start ("lock file already exists"). Backends of the old
// instance may also linger a moment; they must be gone before the data
// directory is used again, so the whole old process group is killed and
// awaited first.
func (e *Engine) clearStaleLock() error {
	lock := filepath.Join(e.pgdata, "postmaster.pid")
	b, err := os.ReadFile(lock)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || pid <= 1 {
		return nil // not a PID: PostgreSQL will say what is wrong
	}
	// The old postmaster was started with Setpgid: its group is its PID.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of an earlier PostgreSQL (group %d) still run on %s", pid, e.pgdata)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The socket's lock file names the same PID; PostgreSQL checks it the
	// same way. The directory is this instance's alone.
	socks, _ := filepath.Glob(filepath.Join(e.sockDir, ".s.PGSQL.*"))
	for _, f := range socks {
		os.Remove(f)
	}
	e.log.Info("postgres: removed the lock files of an earlier instance", "pid", pid)
	return os.Remove(lock)
}

// groupAlive reports whether a process of group pgid runs (zombies, which
// hold no files or memory, do not count).
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, d := range entries {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}
