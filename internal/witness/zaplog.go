package witness

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcd (server and client) logs through zap. newZapLogger returns a zap
// logger whose records go to an slog.Logger, so nothing reaches stdout or
// stderr and the platform's handler (chosen by telemetry) formats them.

// newZapLogger returns a zap logger that forwards records at or above min
// to l. While quiet is set (it may be nil), every record is logged at
// debug level: etcd reports its normal shutdown with errors.
func newZapLogger(l *slog.Logger, min zapcore.Level, quiet *atomic.Bool) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return zap.New(&slogCore{h: l.Handler(), min: min, quiet: quiet})
}

// zapLevel parses a level name as Config.LogLevel spells it.
func zapLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
}

// slogLevel maps a zap level to slog; DPanic, Panic and Fatal become Error
// (zap itself still panics or exits after writing them).
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// slogCore is a zapcore.Core that writes to an slog.Handler.
type slogCore struct {
	h     slog.Handler
	min   zapcore.Level
	quiet *atomic.Bool
	attrs []slog.Attr // from With, in order
}

var _ zapcore.Core = (*slogCore)(nil)

func (c *slogCore) level(l zapcore.Level) slog.Level {
	if c.quiet != nil && c.quiet.Load() {
		return slog.LevelDebug
	}
	return slogLevel(l)
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= c.min && c.h.Enabled(context.Background(), c.level(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	cp := *c
	cp.attrs = append(slices.Clip(c.attrs), fieldAttrs(fields)...)
	return &cp
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, c.level(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(c.attrs...)
	r.AddAttrs(fieldAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs turns zap fields into slog attributes, keeping their order.
func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		if f.Type == zapcore.SkipType {
			continue
		}
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys) // one key except for errors ("error", "errorVerbose")
		for _, k := range keys {
			out = append(out, slog.Any(k, enc.Fields[k]))
		}
	}
	return out
}
