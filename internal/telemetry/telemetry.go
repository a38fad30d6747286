// Package telemetry is the one place that picks how a process reports
// itself; components only use what it sets up:
//
//   - logs: NewLogger builds the JSON (or text) logger at the configured
//     level; Component tags a component's logger, and loggers from
//     NewLogger carry at most one component key per line however often
//     they are tagged. Besides main (and testlog in tests) no package
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
		return slog.New(oneComponent(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(oneComponent(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("telemetry: unknown log format %q (json, text)", cfg.Format)
}

// Discard is a logger that drops everything, for tests and quiet commands.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ComponentKey is the attribute that names the component of a log line.
const ComponentKey = "component"

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

// componentHandler keeps the component attribute out of the attributes it
// hands to its handler until a line is written, so that the last name
// given wins instead of the key being repeated (a JSON object with a
// duplicate key is read differently by different parsers).
type componentHandler struct {
	base  slog.Handler // as NewLogger built it, without attributes
	attrs []slog.Attr  // given to With, ComponentKey left out
	name  string       // the component; "" for none
	h     slog.Handler // base with name and attrs
}

var _ slog.Handler = (*componentHandler)(nil)

func oneComponent(h slog.Handler) slog.Handler { return &componentHandler{base: h, h: h} }

func (c *componentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return c.h.Enabled(ctx, l)
}

func (c *componentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &componentHandler{base: c.base, attrs: slices.Clone(c.attrs), name: c.name}
	for _, a := range as {
		if a.Key == ComponentKey {
			n.name = a.Value.String()
		} else {
			n.attrs = append(n.attrs, a)
		}
	}
	n.h = n.build(n.name)
	return n
}

func (c *componentHandler) build(name string) slog.Handler {
	if name == "" {
		return c.base.WithAttrs(c.attrs)
	}
	return c.base.WithAttrs(append([]slog.Attr{slog.String(ComponentKey, name)}, c.attrs...))
}

// WithGroup commits the component: keys given inside the group are
// qualified by it, so they cannot repeat the top-level one.
func (c *componentHandler) WithGroup(g string) slog.Handler { return c.h.WithGroup(g) }

// Handle writes r; a component named on the record itself (log.Info(msg,
// "component", x)) takes the place of the logger's.
func (c *componentHandler) Handle(ctx context.Context, r slog.Record) error {
	name, own := "", false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == ComponentKey {
			name, own = a.Value.String(), true
		}
		return true
	})
	if !own {
		return c.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != ComponentKey {
			out.AddAttrs(a)
		}
		return true
	})
	return c.build(name).Handle(ctx, out)
}
