// Package e2e runs the real geostamp binary the way the README shows it:
// `geostamp up` with real region processes, then the CLI against it. The
// binary is built once for all tests of the package.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "geostamp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "geostamp")
	build := exec.Command("go", "build", "-o", binary, "../cmd/geostamp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build geostamp:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binary to completion and returns its output and exit code.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, code, err := run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return stdout, stderr, code
}

// run is cli without a test: err is set only when the binary could not
// run to completion (it did not start, or was killed after 60 s).
func run(args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		return o.String(), e.String(), code, fmt.Errorf("geostamp %v: %w", args, err)
	}
	return o.String(), e.String(), code, nil
}

// runningLab is a `geostamp up` subprocess.
type runningLab struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	out    *syncBuffer
	eps    *lab.Endpoints
	client *lab.Client
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLab runs `geostamp up` and waits for endpoints.json.
func startLab(t *testing.T, args ...string) *runningLab {
	t.Helper()
	dir := t.TempDir()
	l := &runningLab{t: t, dir: dir, out: &syncBuffer{}, done: make(chan struct{})}
	// Probe flows write orders, which take replication positions: a test
	// that counts positions (a failover's gap, the writes a rejoin
	// discards) would count theirs, so a lab probes only when its test
	// asks for it (--probe-interval D).
	if !slices.Contains(args, "--probe-interval") {
		args = append(args, "--probe-interval", "0")
	}
	l.cmd = exec.Command(binary, append([]string{"up", "--state-dir", dir}, args...)...)
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
	start := time.Now()
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.cmd.Wait(); close(l.done) }()
	t.Cleanup(func() {
		l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.done:
		case <-time.After(20 * time.Second):
			l.cmd.Process.Kill()
			t.Errorf("geostamp up did not stop within 20s after SIGTERM")
		}
		if t.Failed() {
			t.Logf("geostamp up output:\n%s", l.out.String())
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s (tail):\n%s", f, b)
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := lab.Dial(dir); err == nil {
			l.client, l.eps = c, c.Endpoints
			break
		}
		select {
		case <-l.done:
			t.Fatalf("geostamp up exited before it was ready:\n%s", l.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no endpoints.json after 60s:\n%s", l.out.String())
		}
	}
	t.Logf("lab ready in %s", time.Since(start).Round(time.Millisecond))
	return l
}

func (l *runningLab) cli(args ...string) (string, string, int) {
	return cli(l.t, append(args, "--state-dir", l.dir)...)
}

// run is cli without a test, safe to call from any goroutine.
func (l *runningLab) run(args ...string) (string, string, int, error) {
	return run(append(args, "--state-dir", l.dir)...)
}

// request sends a request to a stamp directly, with the lab's front door
// id; a transport error is status 0 with the error as body.
func (l *runningLab) request(method, url, body string) (int, http.Header, []byte) {
	l.t.Helper()
	code, h, b, err := l.send(method, url, body)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	return code, h, b
}

// send is request without a test, safe to call from any goroutine.
func (l *runningLab) send(method, url, body string) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Geostamp-FDID", l.eps.FDID)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// eventually polls f every 50ms until it returns nil or the bound passes.
func eventually(t *testing.T, bound time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	took, err := within(bound, what, f)
	if err != nil {
		t.Fatal(err)
	}
	return took
}

// within is eventually without a test: it returns the last error of f
// when the bound passes.
func within(bound time.Duration, what string, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > bound {
			return 0, fmt.Errorf("%s: not within %s: %w", what, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
