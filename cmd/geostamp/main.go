// Command geostamp runs and tests a multi-region high-availability platform:
// a global front door, health-checked DNS, regional deployment stamps,
// geo-replicated data and failover drills. `geostamp up` runs a whole
// platform on this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `geostamp — multi-region high availability, on one machine or across clusters

Usage:
  geostamp up [-f FILE] [--state-dir DIR] [--prometheus]
                                                run the whole platform on this machine
  geostamp validate [-f FILE]                   check a topology file; exit 1 on problems
  geostamp status [--json]                      regions, processes and health of a running lab
  geostamp region kill|freeze|resume|restart|drain|undrain|brownout NAME
                                                inject a fault into (or repair) a region of the lab
  geostamp link list|cut|heal|latency A B [DURATION] [--one-way] [--jitter D]
                                                change the WAN link between two sites
  geostamp data [--json]                        replication state of every data service
  geostamp logs [-f] [--region R] [--component C] [--since D] [--trace ID] [--json]
                                                every process's log, merged in time order
  geostamp failover SERVICE --to REGION [--planned|--forced]
                                                fail a data service over to another region
  geostamp trace ID [--json]                    one trace the lab collected, as a tree with durations and regions
  geostamp topology [-f FILE]                   print a topology with every default filled in
  geostamp drill list|SCENARIO|run FILE|analyze DIR   fault under load: measured RTO/RPO, verdict, report

Production (one component, configured from the topology file):
  geostamp frontdoor -f FILE [--token-file F]   the global L7 front door of one POP
  geostamp gslb -f FILE [--token-file F]        the authoritative, health-checked DNS

Without -f, the embedded default topology is used (two regions, westeurope and
northeurope, a witness in francecentral, active-active). Commands that talk to a
running lab find it through DIR/endpoints.json (default DIR: .geostamp).

Run 'geostamp COMMAND -h' for the flags of a command.
`

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// exitError carries a specific exit status (1: a check failed).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "geostamp:", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	}
	fmt.Fprintln(stderr, "geostamp:", err)
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return cmdUp(ctx, rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "topology":
		return cmdTopology(rest, stdout, stderr)
	case "region":
		return cmdRegion(ctx, rest, stdout, stderr)
	case "link":
		return cmdLink(ctx, rest, stdout, stderr)
	case "frontdoor":
		return cmdFrontdoor(ctx, rest, stdout, stderr)
	case "gslb":
		return cmdGSLB(ctx, rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "data":
		return cmdData(ctx, rest, stdout, stderr)
	case "logs":
		return cmdLogs(ctx, rest, stdout, stderr)
	case "drill":
		return cmdDrill(ctx, rest, stdout, stderr)
	case "failover":
		return cmdFailover(ctx, rest, stdout, stderr)
	case "trace":
		return cmdTrace(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// newFlags returns a flag set that prints its usage with a summary line.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: geostamp %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before, between or after positional
// arguments, and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
