package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/topology"
)

const failoverHelp = `Fail a primary-secondary data service over to another region of the lab.

  --planned (default)  fence the primary, wait until the target holds every
                       acknowledged write, promote it: nothing is lost; needs
                       the primary, the target and the witness
  --forced             promote the target now: the writes it has not
                       received yet are lost (reported as the gap, and as
                       the writes the old primary discards when it rejoins)

The old primary rejoins as a secondary on its own. Failback is a planned
failover to the old primary. Prints every step (detect, decide, fence,
promote, repoint, rejoin) with its time; exit 1 if the failover did not
complete.

Examples:
  geostamp failover orders --to northeurope
  geostamp failover orders --to westeurope --forced --json
`

func cmdFailover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("failover", "failover SERVICE --to REGION [--planned|--forced] [--timeout D] [--json]", stderr)
	usage := fs.Usage
	fs.Usage = func() { fmt.Fprint(stderr, failoverHelp+"\n"); usage() }
	dial := labFlag(fs)
	to := fs.String("to", "", "`region` to promote (required)")
	planned := fs.Bool("planned", false, "planned failover: zero loss (default)")
	forced := fs.Bool("forced", false, "forced failover: promote now, lose the unreplicated tail")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		fs.Usage()
		return fmt.Errorf("%w: want exactly one SERVICE", errUsage)
	case *to == "":
		fs.Usage()
		return fmt.Errorf("%w: --to REGION is required", errUsage)
	case *planned && *forced:
		return fmt.Errorf("%w: --planned and --forced exclude each other", errUsage)
	}
	mode := "planned"
	if *forced {
		mode = "forced"
	}
	c, err := dial()
	if err != nil {
		return err
	}
	var res lab.FailoverResult
	req := lab.FailoverRequest{To: *to, Mode: mode, Timeout: topology.Duration(*timeout)}
	if err := c.Do(ctx, http.MethodPost, "/v1/failover/"+pos[0], req, &res); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s failover of %s: %s -> %s, epoch %d, promoted after %.3fs\n", res.Mode, res.Service, res.From, res.To, res.Epoch, res.Seconds)
	if res.TraceID != "" {
		fmt.Fprintf(stdout, "trace %s (geostamp trace %s)\n", res.TraceID, res.TraceID)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tREGION\tSTEP\tEPOCH\tPOSITION\tDETAIL")
	for _, e := range res.Steps {
		detail := e.Detail
		if e.Gap != nil {
			detail += fmt.Sprintf(" [gap %d]", *e.Gap)
		}
		if e.Discarded != nil {
			detail += fmt.Sprintf(" [discarded %d]", *e.Discarded)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", e.Time.Format("15:04:05.000"), e.Region, e.Step, e.Epoch, e.Position, detail)
	}
	return tw.Flush()
}
