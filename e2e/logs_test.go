package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLogsAndProbes runs one lab with probes every 500 ms and a short
// drill in it (the data engine of orders' primary, westeurope, crashes:
// writes fail, orders fails over, the drill's repair restarts westeurope),
// then checks the centralized logs and the probes:
//
//   - every line of every file in DIR/logs is a JSON object with a region
//     and a component;
//   - `geostamp logs --region westeurope` shows every component of that
//     region, in time order, and loses no line of it;
//   - `geostamp logs -f` shows a request's access line as it is written;
//   - no log line, and nothing the drill wrote, holds the admin token or
//     the front door id;
//   - the probes passed through the POP and at each stamp, and counted the
//     failed flows of the crash.
//
// testdata/failover.yaml (3 s lease, 1 s grace) keeps the drill short.
func TestLogsAndProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("a lab and a 9 s drill")
	}
	l := startLab(t, "-f", "testdata/failover.yaml", "--probe-interval", "500ms")
	targets := []string{`path="frontdoor",target="pop-eu"`, `path="stamp",target="westeurope"`, `path="stamp",target="northeurope"`}
	eventually(t, 20*time.Second, "a passing probe flow of every target", func() error {
		m := labMetrics(t, l)
		for _, tg := range targets {
			if m[`geostamp_probe_flows_total{outcome="ok",`+tg+`}`] < 1 || m[`geostamp_probe_flow_duration_seconds_count{`+tg+`}`] < 1 {
				return fmt.Errorf("no passing flow of %s", tg)
			}
		}
		return nil
	})

	// While the primary's data engine is down, a write with a traceparent
	// fails in a workload, which logs the failure in that trace.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traced := make(chan int, 1)
	out := filepath.Join(t.TempDir(), "drill")
	_, progress, _ := l.runDrillWatching(t, out, func(line string) {
		if !strings.Contains(line, "fault: the data engine") {
			return
		}
		go func() {
			req, _ := http.NewRequest(http.MethodPost, l.eps.POPs[0].HTTP+"/orders", strings.NewReader(`{"item":"traced","qty":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Errorf("the traced write: %v", err)
				traced <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			traced <- resp.StatusCode
		}()
	}, "data-primary-loss", "--fault-at", "2s", "--duration", "8s")

	t.Run("probes", func(t *testing.T) {
		m := labMetrics(t, l)
		for _, tg := range targets {
			ok, failed := m[`geostamp_probe_flows_total{outcome="ok",`+tg+`}`], m[`geostamp_probe_flows_total{outcome="write_failed",`+tg+`}`]
			t.Logf("probe %s: %v ok, %v write_failed, %v read_failed", tg, ok, failed, m[`geostamp_probe_flows_total{outcome="read_failed",`+tg+`}`])
			// The writes of every path fail while orders has no primary
			// (from the crash until northeurope is promoted, over 1 s).
			if failed < 1 {
				t.Errorf("%s: no failed flow counted during the crash of orders' primary", tg)
			}
		}
	})

	logDir := filepath.Join(l.dir, "logs")
	files, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
	perRegion := map[string]int{}
	t.Run("every line has region and component", func(t *testing.T) {
		if len(files) < 4 {
			t.Fatalf("log files %v: want up.log, one per region and the POP's access log", files)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				var v struct {
					Time              time.Time
					Region, Component string
				}
				if err := json.Unmarshal([]byte(line), &v); err != nil || v.Time.IsZero() || v.Region == "" || v.Component == "" {
					if bad++; bad <= 3 {
						t.Errorf("%s:%d: no time, region or component (%v): %.300s", filepath.Base(f), i+1, err, line)
					}
					continue
				}
				perRegion[v.Region]++
			}
		}
		t.Logf("lines per region: %v", perRegion)
	})

	t.Run("logs --region westeurope", func(t *testing.T) {
		o, e, code := l.cli("logs", "--region", "westeurope", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, e)
		}
		lines := strings.Split(strings.TrimSuffix(o, "\n"), "\n")
		components := map[string]int{}
		var last time.Time
		for i, line := range lines {
			var v struct {
				Time              time.Time
				Region, Component string
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("line %d: %v: %s", i+1, err, line)
			}
			if v.Region != "westeurope" {
				t.Fatalf("line %d of region %q: %s", i+1, v.Region, line)
			}
			if v.Time.Before(last) {
				t.Fatalf("line %d at %s after a line at %s: not in time order", i+1, v.Time, last)
			}
			last = v.Time
			components[v.Component]++
		}
		t.Logf("westeurope: %d lines by component %v", len(lines), components)
		// The lab goes on logging: the command shows at least every line
		// of westeurope the files held before it ran.
		if len(lines) < perRegion["westeurope"] {
			t.Errorf("%d lines, the files held %d of westeurope before", len(lines), perRegion["westeurope"])
		}
		// The region process's components, and what the lab process says
		// about westeurope: its events, the requests it answered through
		// the POP, the probes of its stamp.
		for _, c := range []string{"stamp", "workload", "jetstream", "failover", "witness", "lab", "access", "probe"} {
			if components[c] == 0 {
				t.Errorf("no line of component %s", c)
			}
		}
		// The readable form: the same lines, region in the second column.
		o, _, _ = l.cli("logs", "--region", "westeurope")
		readable := strings.Split(strings.TrimSuffix(o, "\n"), "\n")
		if len(readable) < len(lines) {
			t.Errorf("%d readable lines, %d JSON lines before", len(readable), len(lines))
		}
		for _, line := range readable {
			if f := strings.Fields(line); len(f) < 5 || f[1] != "westeurope" {
				t.Fatalf("readable line %q: want TIME westeurope COMPONENT LEVEL MSG", line)
			}
		}
		// A component filter on top: the failover steps of westeurope,
		// the fence of the crashed primary among them.
		o, _, _ = l.cli("logs", "--region", "westeurope", "--component", "failover")
		failover := strings.Split(strings.TrimSuffix(o, "\n"), "\n")
		for _, line := range failover {
			if f := strings.Fields(line); len(f) < 5 || f[1] != "westeurope" || f[2] != "failover" {
				t.Fatalf("logs --region westeurope --component failover: %q", line)
			}
		}
		if !strings.Contains(o, " failover fence ") || len(failover) < components["failover"] {
			t.Errorf("logs --region westeurope --component failover: %d lines, want %d with the fence:\n%s", len(failover), components["failover"], o)
		}
	})

	t.Run("logs --trace", func(t *testing.T) {
		var code int
		select {
		case code = <-traced:
		case <-time.After(15 * time.Second):
			t.Fatal("the drill never reported the crash, or the traced write never ended")
		}
		if code < 500 {
			t.Fatalf("the traced write during the crash: status %d, want a failure", code)
		}
		o, e, exit := l.cli("logs", "--trace", traceID, "--json")
		if exit != 0 {
			t.Fatalf("exit %d: %s", exit, e)
		}
		workload := 0
		for _, line := range strings.Split(strings.TrimSuffix(o, "\n"), "\n") {
			var v struct {
				TraceID        string `json:"trace_id"`
				Component, Msg string
			}
			if err := json.Unmarshal([]byte(line), &v); err != nil || v.TraceID != traceID {
				t.Fatalf("line %q: trace %q (%v)", line, v.TraceID, err)
			}
			if v.Component == "workload" && v.Msg == "request failed" {
				workload++
			}
		}
		if workload == 0 {
			t.Errorf("no workload line in the trace of a write it failed (status %d):\n%s", code, o)
		}
		// A probe's failure is logged in its flow's trace.
		o, _, _ = l.cli("logs", "--component", "probe", "--json")
		failures := 0
		for _, line := range strings.Split(strings.TrimSuffix(o, "\n"), "\n") {
			var v struct {
				TraceID string `json:"trace_id"`
				Msg     string
			}
			if json.Unmarshal([]byte(line), &v) == nil && v.Msg == "probe flow failed" {
				failures++
				if len(v.TraceID) != 32 {
					t.Errorf("probe failure without a trace id: %s", line)
				}
			}
		}
		if failures == 0 {
			t.Errorf("no probe failure logged:\n%s", o)
		}
	})

	t.Run("no secret in any log line or drill file", func(t *testing.T) {
		tok, err := os.ReadFile(l.eps.TokenFile)
		if err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{"the admin token": strings.TrimSpace(string(tok)), "the front door id": l.eps.FDID}
		for what, s := range secrets {
			if len(s) < 16 {
				t.Fatalf("%s %q: too short to look for", what, s)
			}
		}
		var checked []string
		for _, root := range []string{logDir, out} {
			filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				checked = append(checked, fmt.Sprintf("%s (%d bytes)", strings.TrimPrefix(path, filepath.Dir(root)+"/"), len(b)))
				for what, s := range secrets {
					if i := bytes.Index(b, []byte(s)); i >= 0 {
						t.Errorf("%s holds %s: …%s…", path, what, b[max(0, i-200):i])
					}
				}
				return nil
			})
		}
		for what, s := range secrets {
			if strings.Contains(progress, s) {
				t.Errorf("the drill's output holds %s", what)
			}
		}
		t.Logf("checked %v", checked)
		if len(checked) < len(files)+3 {
			t.Errorf("checked only %v", checked)
		}
	})

	t.Run("logs -f", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "logs", "-f", "--component", "access", "--since", "1s", "--state-dir", l.dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cancel()
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Sent after the follower started, so only -f can show it.
		time.Sleep(500 * time.Millisecond)
		uri := "/orders/" + strconv.FormatInt(time.Now().UnixNano(), 16)
		resp, err := http.Get(l.eps.POPs[0].HTTP + uri)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatal("geostamp logs -f ended")
				}
				if strings.Contains(line, "uri="+uri) {
					if f := strings.Fields(line); f[2] != "access" {
						t.Errorf("followed line %q: component %s", line, f[2])
					}
					return
				}
			case <-deadline:
				t.Fatalf("the access line of GET %s did not come within 20 s", uri)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--region", "nowhere"}, 1, "regions: francecentral, global, northeurope, westeurope"},
			{[]string{"--trace", "xyz"}, 2, "32 hex digits"},
			{[]string{"--since", "yesterday"}, 2, "RFC 3339"},
			{[]string{"extra"}, 2, "no arguments"},
		} {
			_, e, code := l.cli(append([]string{"logs"}, c.args...)...)
			if code != c.code || !strings.Contains(e, c.want) {
				t.Errorf("logs %v: exit %d, %q; want exit %d with %q", c.args, code, e, c.code, c.want)
			}
		}
		_, e, code := cli(t, "logs", "--state-dir", t.TempDir())
		if code != 1 || !strings.Contains(e, "no lab has run there") {
			t.Errorf("logs in an empty directory: exit %d, %q", code, e)
		}
	})
}

var metricLine = regexp.MustCompile(`^(\S+\{[^}]*\}|\S+) (\S+)`)

// labMetrics returns the lab process's /metrics (the control API's) by
// series, its labels as the registry writes them (sorted). The probes
// register theirs once the lab is ready, a moment after endpoints.json.
func labMetrics(t *testing.T, l *runningLab) map[string]float64 {
	t.Helper()
	resp, err := http.Get(l.eps.Control + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if mm := metricLine.FindStringSubmatch(line); mm != nil && !strings.HasPrefix(line, "#") {
			v, err := strconv.ParseFloat(mm[2], 64)
			if err == nil {
				m[mm[1]] = v
			}
		}
	}
	return m
}
