package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/logs"
)

const logsSynopsis = `logs [-f] [--region R] [--component C] [--since D] [--trace ID] [--json] [--state-dir DIR]

Every process of the lab writes JSON lines to DIR/logs/: up.log (the lab
process: front door POPs, GSLB, WAN links, control API, probes, the witness
site's etcd member), REGION.log (one per region process: stamp, workload,
jetstream or postgres, failover, witness) and access-POP.log (one line per
request through a front door POP). geostamp logs merges them in time order
and prints one line per record:

  TIME (UTC)               REGION        COMPONENT  LEVEL MESSAGE key=value...
  2026-01-02T15:04:05.123Z westeurope    failover   INFO  failover promote service=orders epoch=2

Every line has a region and a component. The region is the region process's
own, or the region a line of the lab process is about (a lab event, a front
door request that region answered, a probe of its stamp); "global" for the
global layer otherwise, and the witness site's name for its etcd member.
Components: stamp, workload, jetstream, postgres, failover, witness, lab,
frontdoor, health, gslb, wan, access, probe; stderr for a line that is not
JSON (it takes the time and region of the line before it in its file).

The lab is found through DIR/endpoints.json; when no lab runs there any more,
the logs it left in DIR/logs are read. Exit status 1 when no line matches
(without -f).

Examples:
  geostamp logs --region westeurope --since 5m      the last five minutes of westeurope
  geostamp logs -f --component failover,witness     follow every failover step and lease
  geostamp logs --trace 4bf92f3577b34da6a3ce929d0e0e4736   the lines of one request's trace
  geostamp logs --json --region global | jq 'select(.level=="WARN")'`

func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("logs", logsSynopsis, stderr)
	dir := fs.String("state-dir", defaultStateDir, "`directory` of the lab")
	follow := fs.Bool("f", false, "follow: after the lines so far, print new ones as they are written, until interrupted")
	region := fs.String("region", "", "only lines of these `regions` (comma-separated; \"global\" for the global layer)")
	component := fs.String("component", "", "only lines of these `components` (comma-separated)")
	since := fs.String("since", "", "only lines from this long ago (a `duration` such as 90s or 5m) or from this time (RFC 3339)")
	traceID := fs.String("trace", "", "only lines logged in this trace (`ID`: 32 hex digits, the second field of a traceparent)")
	asJSON := fs.Bool("json", false, "print the JSON lines as written instead of readable lines")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("%w: logs takes no arguments, got %q (filter with --region, --component, --since, --trace)", errUsage, strings.Join(pos, " "))
	}
	f := logs.Filter{Regions: splitList(*region), Components: splitList(*component)}
	if *since != "" {
		if f.Since, err = parseSince(*since, time.Now()); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if *traceID != "" {
		id := strings.ToLower(strings.TrimSpace(*traceID))
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			return fmt.Errorf("%w: --trace %q: want a trace id of 32 hex digits", errUsage, *traceID)
		}
		f.TraceID = id
	}
	logDir, err := findLogs(*dir, stderr)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	emit := func(recs []logs.Record) error {
		for _, r := range recs {
			var err error
			if *asJSON {
				err = logs.WriteJSON(w, r)
			} else {
				err = logs.Format(w, r)
			}
			if err != nil {
				return err
			}
		}
		return w.Flush()
	}
	tail := logs.NewTail(logDir)
	recs, err := tail.Poll(f)
	if err != nil {
		return err
	}
	if err := emit(recs); err != nil {
		return err
	}
	if *follow {
		return tail.Follow(ctx, f, 250*time.Millisecond, emit)
	}
	if len(recs) == 0 {
		explainNoMatch(stderr, logDir, f)
		return exitError{1}
	}
	return nil
}

// findLogs returns the logs directory of the lab in dir: the running lab's
// (its endpoints.json names its directory), else what a stopped lab left.
func findLogs(dir string, stderr io.Writer) (string, error) {
	eps, err := lab.ReadEndpoints(dir)
	if err == nil && eps.StateDir != "" {
		return filepath.Join(eps.StateDir, "logs"), nil
	}
	logDir := filepath.Join(dir, "logs")
	if st, serr := os.Stat(logDir); serr == nil && st.IsDir() {
		if err != nil {
			fmt.Fprintf(stderr, "geostamp: no lab is running in %s; reading the logs it left in %s\n", dir, logDir)
		}
		return logDir, nil
	}
	return "", fmt.Errorf("no logs in %s: no lab has run there (start one with `geostamp up --state-dir %s`, or point --state-dir at the directory of one)", logDir, dir)
}

// explainNoMatch says why nothing was printed: which regions and
// components the logs do have.
func explainNoMatch(stderr io.Writer, logDir string, f logs.Filter) {
	all, err := logs.Read(logDir, logs.Filter{})
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "geostamp: %v\n", err)
	case len(all) == 0:
		fmt.Fprintf(stderr, "geostamp: %s holds no log lines yet\n", logDir)
	default:
		fmt.Fprintf(stderr, "geostamp: no log line matches (%d lines from %s to %s; regions: %s; components: %s)\n",
			len(all), all[0].Time.UTC().Format(logs.TimeFormat), all[len(all)-1].Time.UTC().Format(logs.TimeFormat),
			strings.Join(logs.Regions(all), ", "), strings.Join(logs.Components(all), ", "))
	}
}

// parseSince reads --since: a duration back from now, or a time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (90s, 5m, 1h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
