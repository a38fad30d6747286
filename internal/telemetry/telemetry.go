// Package telemetry is the one place that picks how a process reports
// itself; components only use what it sets up:
//
//   - logs: NewLogger builds the JSON (or text) logger at the configured
//     level; Component tags a component's logger, and loggers from
//     NewLogger carry at most one component key per line however often
//     they are tagged, and the same holds for the region; a line logged
//     with a context holding a span carries its trace_id and span_id
//     (WithTraceContext). Besides main (and testlog in tests) no package
//     chooses a handler.
//   - metrics: NewRegistry gives a process's registry (Go runtime and
//     process collectors, the process's region or pop as a constant label
//     on every series) and its /metrics handler (OpenMetrics, for
//     exemplars); the naming rules are on MetricPrefix.
//   - traces: StartTracing installs the OpenTelemetry tracer provider and
//     the W3C propagator from the standard OTEL_* variables; Tracer gives
//     a package its tracer.
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// LogConfig selects where and how logs are written.
type LogConfig struct {
	// Format is "json" (default) or "text".
	Format string
	// Level is debug, info (default), warn or error.
	Level string
}

// NewLogger returns a logger writing to w as cfg asks.
func NewLogger(w io.Writer, cfg LogConfig) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(cfg.Level) {
	case "", "info":
		lvl = slog.LevelInfo
	case "debug":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("telemetry: unknown log level %q (debug, info, warn, error)", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(cfg.Format) {
	case "", "json":
		return slog.New(WithTraceContext(oneComponent(slog.NewJSONHandler(w, opts)))), nil
	case "text":
		return slog.New(WithTraceContext(oneComponent(slog.NewTextHandler(w, opts)))), nil
	}
	return nil, fmt.Errorf("telemetry: unknown log format %q (json, text)", cfg.Format)
}

// Discard is a logger that drops everything, for tests and quiet commands.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ComponentKey is the attribute that names the component of a log line.
const ComponentKey = "component"

// RegionKey is the attribute that names the region a log line belongs to:
// the region process's own region, or the region a line of the global
// layer is about; the lab's global components use "global" (see
// docs/observability.md). Like the component, a line from NewLogger
// carries it at most once, the last value given winning.
const RegionKey = "region"

// singleKeys are the attributes a line from NewLogger carries at most
// once: the last non-empty value given wins (the logger's With, then the
// record's own attributes).
var singleKeys = [...]string{ComponentKey, RegionKey}

func singleIndex(key string) int {
	for i, k := range singleKeys {
		if k == key {
			return i
		}
	}
	return -1
}

// Component tags a logger with the component's name. Tagging a logger that
// already has a component (a component handing its logger to a part of it,
// such as the front door to its health checker) replaces the name: on
// loggers from NewLogger every line has at most one component key.
func Component(l *slog.Logger, name string) *slog.Logger {
	if l == nil {
		return Discard()
	}
	return l.With(ComponentKey, name)
}

// componentHandler keeps the component and region attributes out of the
// attributes it hands to its handler until a line is written, so that the
// last value given wins instead of the key being repeated (a JSON object
// with a duplicate key is read differently by different parsers). An
// empty value leaves the one given before.
type componentHandler struct {
	base  slog.Handler            // as NewLogger built it, without attributes
	attrs []slog.Attr             // given to With, the single keys left out
	named [len(singleKeys)]string // the single keys' values; "" for none
	h     slog.Handler            // base with named and attrs
}

var _ slog.Handler = (*componentHandler)(nil)

func oneComponent(h slog.Handler) slog.Handler { return &componentHandler{base: h, h: h} }

func (c *componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return c.h.Enabled(ctx, l)
}

func (c *componentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &componentHandler{base: c.base, attrs: slices.Clone(c.attrs), named: c.named}
	for _, a := range as {
		if i := singleIndex(a.Key); i >= 0 {
			if v := a.Value.String(); v != "" {
				n.named[i] = v
			}
		} else {
			n.attrs = append(n.attrs, a)
		}
	}
	n.h = n.build(n.named)
	return n
}

func (c *componentHandler) build(named [len(singleKeys)]string) slog.Handler {
	var as []slog.Attr
	for i, k := range singleKeys {
		if named[i] != "" {
			as = append(as, slog.String(k, named[i]))
		}
	}
	if len(as) == 0 && len(c.attrs) == 0 {
		return c.base
	}
	return c.base.WithAttrs(append(as, c.attrs...))
}

// WithGroup commits the component and region: keys given inside the group
// are qualified by it, so they cannot repeat the top-level ones.
func (c *componentHandler) WithGroup(g string) slog.Handler { return c.h.WithGroup(g) }

// Handle writes r; a component or region named on the record itself
// (log.Info(msg, "region", x)) takes the place of the logger's.
func (c *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	named, own := c.named, false
	r.Attrs(func(a slog.Attr) bool {
		if i := singleIndex(a.Key); i >= 0 {
			if v := a.Value.String(); v != "" {
				named[i] = v
			}
			own = true
		}
		return true
	})
	if !own {
		return c.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if singleIndex(a.Key) < 0 {
			out.AddAttrs(a)
		}
		return true
	})
	return c.build(named).Handle(ctx, out)
}
