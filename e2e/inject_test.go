package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/wan"
)

// labState is what the control API and the OS say about a lab: the
// evidence that a fault command took effect.
type labState struct {
	Regions []lab.RegionInfo
	Links   []wan.LinkState
	Data    map[string]lab.RegionStatus // only read for drain and undrain
	// Proc is the /proc state letter of each region process, current and
	// (after a command) previous (T: stopped, Z: dead, not yet reaped);
	// absent when the process does not exist.
	Proc map[int]byte
}

func (s labState) region(name string) (lab.RegionInfo, bool) {
	i := slices.IndexFunc(s.Regions, func(r lab.RegionInfo) bool { return r.Name == name })
	if i < 0 {
		return lab.RegionInfo{}, false
	}
	return s.Regions[i], true
}

// direction returns the state of traffic from site a to site b.
func (s labState) direction(a, b string) (wan.DirState, bool) {
	for _, l := range s.Links {
		switch {
		case l.A == a && l.B == b:
			return l.AToB, true
		case l.A == b && l.B == a:
			return l.BToA, true
		}
	}
	return wan.DirState{}, false
}

// procState reads the state letter of pid from /proc/PID/stat.
func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) S ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

func (l *runningLab) state(ctx context.Context, withData bool) (labState, error) {
	var s labState
	if err := l.client.Do(ctx, http.MethodGet, "/v1/regions", nil, &s.Regions); err != nil {
		return s, err
	}
	if err := l.client.Do(ctx, http.MethodGet, "/v1/links", nil, &s.Links); err != nil {
		return s, err
	}
	if withData {
		if err := l.client.Do(ctx, http.MethodGet, "/v1/data", nil, &s.Data); err != nil {
			return s, err
		}
	}
	s.Proc = map[int]byte{}
	for _, r := range s.Regions {
		if r.PID != 0 {
			if c, ok := procState(r.PID); ok {
				s.Proc[r.PID] = c
			}
		}
	}
	return s, nil
}

// effect is the change a fault command must have made, checked against the
// lab's state before and after it. Every command a test injects needs one:
// an unchecked injection is how a test passes without its fault.
type effect func(before, after labState) error

// effectOf parses a fault command as the CLI takes it and returns what it
// must change.
func effectOf(args []string) (effect, error) {
	var pos []string
	oneWay := false
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--one-way":
			oneWay = true
		case strings.HasPrefix(a, "--"):
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag %s without a value", a)
			}
			flags[a] = args[i+1]
			i++
		default:
			pos = append(pos, a)
		}
	}
	cmd := strings.Join(pos[:min(2, len(pos))], " ")
	switch {
	case cmd == "region kill" && len(pos) == 3:
		return regionEffect(pos[2], func(before, after lab.RegionInfo, s labState) error {
			if after.State != lab.StateKilled || after.PID != 0 {
				return fmt.Errorf("state %s pid %d, want killed without a process", after.State, after.PID)
			}
			if c, alive := s.Proc[before.PID]; alive && c != 'Z' {
				return fmt.Errorf("process %d still exists (/proc state %q)", before.PID, c)
			}
			return nil
		}), nil
	case cmd == "region restart" && len(pos) == 3:
		return regionEffect(pos[2], func(before, after lab.RegionInfo, s labState) error {
			if after.State != lab.StateRunning || after.PID == 0 || after.PID == before.PID {
				return fmt.Errorf("state %s pid %d (before: pid %d), want running in a new process", after.State, after.PID, before.PID)
			}
			return nil
		}), nil
	case (cmd == "region freeze" || cmd == "region resume") && len(pos) == 3:
		freeze := pos[1] == "freeze"
		return regionEffect(pos[2], func(_, after lab.RegionInfo, s labState) error {
			want := lab.StateRunning
			if freeze {
				want = lab.StateFrozen
			}
			c, ok := s.Proc[after.PID]
			if after.State != want || after.PID == 0 || !ok || (c == 'T') != freeze {
				return fmt.Errorf("state %s pid %d (/proc state %q), want %s", after.State, after.PID, c, want)
			}
			return nil
		}), nil
	case (cmd == "region drain" || cmd == "region undrain") && len(pos) == 3:
		name, drained := pos[2], pos[1] == "drain"
		return func(_, after labState) error {
			if st, ok := after.Data[name]; !ok || st.Drained != drained || st.Error != "" {
				return fmt.Errorf("region %s: drained %v (error %q), want %v", name, st.Drained, st.Error, drained)
			}
			return nil
		}, nil
	case (cmd == "link cut" || cmd == "link heal") && len(pos) == 4:
		cut := pos[1] == "cut"
		return linkEffect(pos[2], pos[3], oneWay, func(d wan.DirState) error {
			if d.Cut != cut {
				return fmt.Errorf("cut %v, want %v", d.Cut, cut)
			}
			return nil
		}), nil
	case cmd == "link latency" && len(pos) == 5:
		want, err := time.ParseDuration(pos[4])
		if err != nil {
			return nil, err
		}
		return linkEffect(pos[2], pos[3], oneWay, func(d wan.DirState) error {
			if d.Latency.D() != want {
				return fmt.Errorf("latency %s, want %s", d.Latency, want)
			}
			return nil
		}), nil
	case cmd == "region brownout" && len(pos) == 3:
		// A brownout is not in the lab's state; .../probe checks it on the
		// stamp when the share makes the outcome certain.
		return func(_, after labState) error {
			if r, ok := after.region(pos[2]); !ok || r.State != lab.StateRunning {
				return fmt.Errorf("region %s is %s, want running", pos[2], r.State)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("no known effect of %q: add one to effectOf", strings.Join(args, " "))
}

func regionEffect(name string, check func(before, after lab.RegionInfo, s labState) error) effect {
	return func(before, after labState) error {
		b, _ := before.region(name)
		a, ok := after.region(name)
		if !ok {
			return fmt.Errorf("no region %s in /v1/regions", name)
		}
		if err := check(b, a, after); err != nil {
			return fmt.Errorf("region %s: %w", name, err)
		}
		return nil
	}
}

func linkEffect(a, b string, oneWay bool, check func(wan.DirState) error) effect {
	return func(_, after labState) error {
		dirs := [][2]string{{a, b}}
		if !oneWay {
			dirs = append(dirs, [2]string{b, a})
		}
		for _, d := range dirs {
			st, ok := after.direction(d[0], d[1])
			if !ok {
				return fmt.Errorf("no link %s<->%s in /v1/links", a, b)
			}
			if err := check(st); err != nil {
				return fmt.Errorf("link %s->%s: %w", d[0], d[1], err)
			}
		}
		return nil
	}
}

// inject runs a fault command (region kill|restart|freeze|resume|drain|
// undrain|brownout, link cut|heal|latency) against the lab and checks that
// it took effect: exit status 0, and the lab's state afterwards (process
// state from /v1/regions and /proc, link state from /v1/links, drain from
// /v1/data; a full brownout is checked on the stamp itself). Safe to call
// from any goroutine.
func (l *runningLab) inject(args ...string) error {
	_, err := l.injectTimed(args...)
	return err
}

// ran is when a command ran: the change it makes happened between start
// and end. A lower bound on what follows is checked from start, an upper
// bound from end, so that the command's own run time cannot fail either.
type ran struct{ start, end time.Time }

// injectTimed is inject that also says when the command ran (the state
// queries around it excluded).
func (l *runningLab) injectTimed(args ...string) (ran, error) {
	var w ran
	err := l.doInject(&w, args)
	return w, err
}

func (l *runningLab) doInject(w *ran, args []string) error {
	what := strings.Join(args, " ")
	eff, err := effectOf(args)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	drain := len(args) > 1 && (args[1] == "drain" || args[1] == "undrain")
	before, err := l.state(ctx, drain)
	if err != nil {
		return fmt.Errorf("%s: lab state before: %w", what, err)
	}
	w.start = time.Now()
	out, errOut, code, err := l.run(args...)
	w.end = time.Now()
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s: exit %d: %s%s", what, code, out, errOut)
	}
	after, err := l.state(ctx, drain)
	if err != nil {
		return fmt.Errorf("%s: lab state after: %w", what, err)
	}
	for _, r := range before.Regions { // did the old processes go?
		if c, ok := procState(r.PID); ok && r.PID != 0 {
			after.Proc[r.PID] = c
		}
	}
	if err := eff(before, after); err != nil {
		return fmt.Errorf("%s: exit 0 but %w", what, err)
	}
	if args[0] == "region" && args[1] == "brownout" {
		return l.checkBrownout(args)
	}
	return nil
}

// checkBrownout checks a brownout of share 0 or 1 on the stamp: every
// request fails with the status, or none does.
func (l *runningLab) checkBrownout(args []string) error {
	share, status := "", "503"
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--share":
			share = args[i+1]
		case "--status":
			status = args[i+1]
		}
	}
	if share != "0" && share != "1" {
		return nil // a partial brownout is a matter of statistics
	}
	region := args[2]
	code, _, body, err := l.send(http.MethodGet, l.eps.Regions[region].Ingress+"/orders?after=0&limit=1", "")
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	if got := strconv.Itoa(code); (share == "1") != (got == status) {
		return fmt.Errorf("%s: exit 0 but a GET on the stamp answered %d %s", strings.Join(args, " "), code, body)
	}
	return nil
}

// mustInject is injectTimed that fails t.
func (l *runningLab) mustInject(t testing.TB, args ...string) ran {
	t.Helper()
	w, err := l.injectTimed(args...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
