package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/tracestore"
)

// tracingOff reports whether the user turned OpenTelemetry off
// (OTEL_SDK_DISABLED=true): then no tracer provider is installed and the
// front door does no span work at all.
func tracingOff() bool {
	return strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true")
}

// startTracing installs the process's tracer provider and returns the
// function that flushes it on exit, and whether spans are wanted: they
// are exported (OTEL_EXPORTER_OTLP_ENDPOINT) or the user chose a sampler
// (OTEL_TRACES_SAMPLER). Otherwise the front door does no span work.
func startTracing(ctx context.Context, cfg telemetry.TraceConfig, logger *slog.Logger) (stop func(), on bool, err error) {
	if tracingOff() {
		return func() {}, false, nil
	}
	tr, err := telemetry.StartTracing(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			logger.Warn("flushing spans", "component", "telemetry", "err", err)
		}
	}, tr.Exporting || os.Getenv("OTEL_TRACES_SAMPLER") != "", nil
}

// startLabTracing runs the lab's trace store and receiver and this
// process's tracer provider; stop flushes the spans, then closes the
// receiver. The store is nil when tracing is off.
func startLabTracing(ctx context.Context, host string, logger *slog.Logger) (*tracestore.Store, func(), error) {
	if tracingOff() {
		return nil, func() {}, nil
	}
	store := tracestore.New(0, 0)
	rcv, err := lab.ServeTraces(host, store)
	if err != nil {
		return nil, nil, err
	}
	stopTracing, _, err := startTracing(ctx, telemetry.TraceConfig{Process: "lab"}, logger)
	if err != nil {
		rcv.Close()
		return nil, nil, err
	}
	return store, func() { stopTracing(); rcv.Close() }, nil
}

const traceHelp = `Show traces the running lab collected (every process exports its spans
to the up process, which keeps the most recent ones in memory).

  geostamp trace ID [--json]    one trace as a tree: each span under its
                                parent, with its offset, duration, component
                                and region
  geostamp trace [--service S] [--component C] [--region R]
                 [--min-duration D] [--limit N] [--json]
                                the most recent traces, newest first

A request through a front door returns its trace id in the
X-Geostamp-Trace-Id header; a failover prints its trace id.
`

func cmdTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("trace", "trace ID [--json] | trace [--service S] [--component C] [--region R] [--min-duration D] [--limit N] [--json]", stderr)
	usage := fs.Usage
	fs.Usage = func() { fmt.Fprint(stderr, traceHelp+"\n"); usage() }
	dial := labFlag(fs)
	service := fs.String("service", "", "traces with a span of this `service` (geostamp-region, geostamp-lab..., or a data service such as orders)")
	component := fs.String("component", "", "traces with a span of this `component` (frontdoor, stamp, workload, jetstream, postgres, failover, lab)")
	region := fs.String("region", "", "traces with a span in this `region`")
	minDur := fs.Duration("min-duration", 0, "traces at least this long")
	limit := fs.Int("limit", 20, "at most this many traces")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fs.Usage()
		return fmt.Errorf("%w: at most one trace ID", errUsage)
	}
	c, err := dial()
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		var tr lab.TraceAnswer
		if err := c.Do(ctx, http.MethodGet, "/v1/traces/"+url.PathEscape(pos[0]), nil, &tr); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, tr)
		}
		return tracestore.WriteTree(stdout, tr.Spans)
	}
	q := url.Values{}
	for k, v := range map[string]string{"service": *service, "component": *component, "region": *region} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *minDur > 0 {
		q.Set("min_duration", minDur.String())
	}
	q.Set("limit", strconv.Itoa(*limit))
	var sums []tracestore.Summary
	if err := c.Do(ctx, http.MethodGet, "/v1/traces?"+q.Encode(), nil, &sums); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, sums)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRACE\tSTART\tDURATION\tSPANS\tROOT\tREGIONS")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%.1fms\t%d\t%s\t%s\n", s.TraceID, s.Start.Local().Format("15:04:05.000"), s.Duration, s.Spans, s.Root, strings.Join(s.Regions, ","))
	}
	return tw.Flush()
}
