package postgres

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A lock file left by a postmaster whose region process was killed names a
// process that may still run (or not yet be reaped): it is killed, awaited
// and the file removed, so the new postmaster can start.
func TestClearStaleLock(t *testing.T) {
	dir := t.TempDir()
	old := exec.Command("sleep", "30")
	old.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { old.Wait(); close(exited) }()
	t.Cleanup(func() { old.Process.Kill() })
	lock := filepath.Join(dir, "postmaster.pid")
	if err := os.WriteFile(lock, []byte(strconv.Itoa(old.Process.Pid)+"\n"+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run")
	os.Mkdir(sock, 0o700)
	sockLock := filepath.Join(sock, ".s.PGSQL.5432.lock")
	if err := os.WriteFile(sockLock, []byte(strconv.Itoa(old.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &Engine{pgdata: dir, sockDir: sock, log: slog.New(slog.DiscardHandler)}
	if err := e.clearStaleLock(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the earlier instance's process still runs")
	}
	for _, f := range []string{lock, sockLock} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("lock file %s still there: %v", f, err)
		}
	}
	// Nothing to do without a lock file.
	if err := e.clearStaleLock(); err != nil {
		t.Fatal(err)
	}
}
