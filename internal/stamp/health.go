package stamp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stamp statuses reported by Health.
const (
	StatusHealthy   = "healthy"
	StatusUnhealthy = "unhealthy"
	StatusDrained   = "drained"
)

// Check statuses in a Report.
const (
	CheckPass = "pass"
	CheckFail = "fail"
)

// Reasons of a Report that are not about a failing check.
const (
	ReasonStarting = "starting" // no health round has completed yet
	ReasonDrained  = "drained"  // the operator drain flag is set
)

// Report is the stamp health model as served at HealthPath.
type Report struct {
	// Status is StatusHealthy, StatusUnhealthy or StatusDrained.
	Status string `json:"status"`
	Region string `json:"region"`
	// Reason says why the stamp is not healthy: ReasonStarting,
	// ReasonDrained, or the names of the failing checks.
	Reason string        `json:"reason,omitempty"`
	Checks []CheckResult `json:"checks"`
	// Time is when the last health round completed (zero before the first).
	Time time.Time `json:"time"`
}

// CheckResult is the outcome of one check in the last health round.
type CheckResult struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"` // CheckPass or CheckFail
	DurationMS float64 `json:"duration_ms"`
	// Detail is the check's own detail on success and the error on failure.
	Detail string `json:"detail"`
}

// Health returns the health model computed by the last background round,
// with the drain flag applied now. It never runs a check.
func (s *Stamp) Health() Report {
	rep := Report{Status: StatusUnhealthy, Region: s.cfg.Region, Reason: ReasonStarting, Checks: []CheckResult{}}
	if last := s.report.Load(); last != nil {
		rep = *last
		rep.Checks = append([]CheckResult{}, last.Checks...)
	}
	if s.drained.Load() {
		rep.Status, rep.Reason = StatusDrained, ReasonDrained
	}
	return rep
}

// check is a Check with the state the runner needs.
type check struct {
	Check
	// running is set while Run has not returned, even after its round gave
	// up on it, so a check that ignores its context is not started again
	// and cannot pile up goroutines.
	running atomic.Bool
}

// checkLoop runs a health round at once and then every CheckInterval until
// ctx ends.
func (s *Stamp) checkLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		s.runRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runRound runs every check concurrently and publishes the report.
func (s *Stamp) runRound(ctx context.Context) {
	results := make([]CheckResult, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() { results[i] = s.runCheck(ctx, c) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down; the results are cancellations, not health
	}
	for _, r := range results {
		s.m.checked(r)
	}
	rep := &Report{Status: StatusHealthy, Region: s.cfg.Region, Checks: results, Time: time.Now().UTC()}
	var failed []string
	for _, r := range results {
		if r.Status != CheckPass {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		rep.Status = StatusUnhealthy
		rep.Reason = "failed checks: " + strings.Join(failed, ", ")
	}
	prev := s.report.Swap(rep)
	if prev == nil || prev.Status != rep.Status || prev.Reason != rep.Reason {
		args := []any{"status", rep.Status, "reason", rep.Reason}
		for _, r := range results {
			if r.Status != CheckPass {
				args = append(args, "check."+r.Name, r.Detail)
			}
		}
		s.log.Info("stamp health changed", args...)
	}
}

// runCheck runs c bounded by CheckTimeout, whether or not c honours its
// context.
func (s *Stamp) runCheck(ctx context.Context, c *check) CheckResult {
	res := CheckResult{Name: c.Name, Status: CheckFail}
	if !c.running.CompareAndSwap(false, true) {
		res.Detail = "previous run has not returned yet"
		return res
	}
	type outcome struct {
		detail string
		err    error
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		defer c.running.Store(false)
		var o outcome
		defer func() {
			if p := recover(); p != nil {
				o = outcome{err: fmt.Errorf("check panicked: %v", p)}
			}
			done <- o
		}()
		o.detail, o.err = c.Run(ctx)
	}()
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		select {
		case o = <-done: // finished at the deadline
		default:
			o.err = fmt.Errorf("timed out after %s", s.cfg.CheckTimeout)
		}
	}
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	switch {
	case o.err == nil:
		res.Status, res.Detail = CheckPass, o.detail
	case o.detail != "":
		res.Detail = o.detail + ": " + o.err.Error()
	default:
		res.Detail = o.err.Error()
	}
	return res
}

// checkReplicas is the built-in "replicas" check: it probes GET /healthz on
// every replica, updates which replicas the ingress routes to, and fails
// when none is ready.
func (s *Stamp) checkReplicas(ctx context.Context) (string, error) {
	s.mu.Lock()
	replicas := s.replicas
	s.mu.Unlock()
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = s.probeReplica(ctx, r) })
	}
	wg.Wait()
	if errors.Is(ctx.Err(), context.Canceled) {
		// Probes cut short by shutdown say nothing about the replicas.
		return "", ctx.Err()
	}
	ready := 0
	var failures []string
	for i, r := range replicas {
		if errs[i] == nil {
			ready++
			s.setReady(r, true, "probe passed")
			continue
		}
		s.setReady(r, false, errs[i].Error())
		failures = append(failures, fmt.Sprintf("replica %d: %v", i, errs[i]))
	}
	detail := fmt.Sprintf("%d/%d ready", ready, len(replicas))
	if len(failures) > 0 {
		detail += " (" + strings.Join(failures, "; ") + ")"
	}
	if ready == 0 {
		return "", errors.New(detail)
	}
	return detail, nil
}

func (s *Stamp) probeReplica(ctx context.Context, r *replica) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/healthz", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "geostamp-stamp-probe")
	resp, err := s.probe.Do(req)
	if err != nil {
		return err
	}
	// Drain a little so the connection can be reused.
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: status %d", resp.StatusCode)
	}
	return nil
}
