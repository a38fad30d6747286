// Package telemetry picks the log handler and holds the metrics registry
// setup; it is the only package that chooses them. Components receive an
// injected *slog.Logger tagged with their name.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
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
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("telemetry: unknown log format %q (json, text)", cfg.Format)
}

// Discard is a logger that drops everything, for tests and quiet commands.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Component tags a logger with the component's name.
func Component(l *slog.Logger, name string) *slog.Logger {
	if l == nil {
		return Discard()
	}
	return l.With("component", name)
}
