package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process states of a region.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateFrozen   = "frozen"
	StateKilled   = "killed" // killed on command
	StateExited   = "exited" // died on its own
	StateStopped  = "stopped"
)

// regionProc supervises the OS process of one region. It never restarts a
// region on its own: a region that dies is reported.
type regionProc struct {
	exe      string
	specPath string
	logPath  string
	onExit   func(name, state, detail string)

	mu      sync.Mutex
	spec    RegionSpec
	cmd     *exec.Cmd
	state   string
	detail  string
	started time.Time
	done    chan struct{}
}

// RegionProcess is the supervisor's view of a region process.
type RegionProcess struct {
	Name    string    `json:"name"`
	PID     int       `json:"pid,omitempty"`
	State   string    `json:"state"`
	Detail  string    `json:"detail,omitempty"`
	Started time.Time `json:"started,omitzero"`
}

func (p *regionProc) snapshot() RegionProcess {
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := RegionProcess{Name: p.spec.Name, State: p.state, Detail: p.detail, Started: p.started}
	if p.cmd != nil && p.cmd.Process != nil && p.alive() {
		rp.PID = p.cmd.Process.Pid
	}
	return rp
}

// alive reports whether the current process has not exited; p.mu held.
func (p *regionProc) alive() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// start launches the process and waits for its ready line; the ports it
// reports are kept for later restarts.
func (p *regionProc) start(ctx context.Context, timeout time.Duration) error {
	p.mu.Lock()
	if p.alive() {
		p.mu.Unlock()
		return fmt.Errorf("region %s is already running", p.spec.Name)
	}
	if err := writeJSONFile(p.specPath, p.spec, 0o600); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("lab: region %s: %w", p.spec.Name, err)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("lab: region %s: %w", p.spec.Name, err)
	}
	cmd := exec.Command(p.exe, "region", "run", "--spec", p.specPath)
	cmd.Stderr = logf
	// Its own process group, and SIGKILL if the lab dies, so no region
	// outlives the lab.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		p.mu.Unlock()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.mu.Unlock()
		return fmt.Errorf("lab: start region %s: %w", p.spec.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.state, p.detail, p.started = cmd, done, StateStarting, "", time.Now()
	p.mu.Unlock()

	lines := make(chan ReadyLine, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var rl ReadyLine
			if json.Unmarshal(sc.Bytes(), &rl) == nil && rl.Ready {
				lines <- rl
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		state, detail := p.state, exitDetail(err)
		switch state {
		case StateKilled, StateStopped:
		default:
			state = StateExited
		}
		if p.cmd == cmd {
			p.state, p.detail = state, detail
		}
		p.mu.Unlock()
		close(done)
		if p.onExit != nil {
			p.onExit(p.spec.Name, state, detail)
		}
	}()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rl := <-lines:
		p.mu.Lock()
		p.spec.Ports = rl.Ports
		if p.cmd == cmd && p.state == StateStarting {
			p.state = StateRunning
		}
		p.mu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("lab: region %s exited while starting (%s); see %s", p.spec.Name, p.snapshot().Detail, p.logPath)
	case <-t.C:
		p.kill(StateKilled)
		return fmt.Errorf("lab: region %s did not report ready within %s; see %s", p.spec.Name, timeout, p.logPath)
	case <-ctx.Done():
		p.kill(StateStopped)
		return ctx.Err()
	}
}

func exitDetail(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "signal: " + ws.Signal().String()
		}
		return ee.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

func (p *regionProc) signal(sig syscall.Signal, state string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alive() {
		return fmt.Errorf("region %s is not running (%s)", p.spec.Name, p.state)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("region %s: %w", p.spec.Name, err)
	}
	if state != "" {
		p.state = state
	}
	return nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *regionProc) kill(state string) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if err := p.signal(syscall.SIGKILL, state); err != nil {
		return err
	}
	<-done
	return nil
}

// stop asks the process to end (SIGTERM, with SIGCONT in case it is frozen)
// and kills it after grace.
func (p *regionProc) stop(grace time.Duration) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if p.signal(syscall.SIGTERM, StateStopped) != nil {
		return
	}
	p.signal(syscall.SIGCONT, "")
	select {
	case <-done:
	case <-time.After(grace):
		p.kill(StateStopped)
	}
}

func (p *regionProc) ports() RegionPorts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec.Ports
}

func regionFiles(dir, name string) (spec, log string) {
	return filepath.Join(dir, "regions", name, "spec.json"), filepath.Join(dir, "logs", name+".log")
}
