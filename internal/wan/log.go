package wan

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"

	"github.com/rs/zerolog"
)

// newZerolog returns the zerolog logger handed to toxiproxy. Its events go
// to l, never to stdout or stderr. toxiproxy logs every accepted and closed
// connection, including the normal teardown at Close, so its events are
// logged at Debug, except its errors (such as failing to dial an upstream),
// which are logged at Warn. Trace events are not built at all.
func newZerolog(l *slog.Logger) zerolog.Logger {
	return zerolog.New(slogWriter{l}).Level(zerolog.DebugLevel)
}

// slogWriter turns zerolog's JSON events into slog records.
type slogWriter struct{ log *slog.Logger }

var _ zerolog.LevelWriter = slogWriter{}

// Write implements io.Writer for events without a level.
func (w slogWriter) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

// WriteLevel implements zerolog.LevelWriter.
func (w slogWriter) WriteLevel(zl zerolog.Level, p []byte) (int, error) {
	level := slog.LevelDebug
	if zl >= zerolog.ErrorLevel && zl <= zerolog.PanicLevel {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return len(p), nil
	}
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		w.log.Log(ctx, level, strings.TrimSpace(string(p)))
		return len(p), nil
	}
	msg, _ := fields[zerolog.MessageFieldName].(string)
	delete(fields, zerolog.MessageFieldName)
	delete(fields, zerolog.LevelFieldName)
	delete(fields, zerolog.TimestampFieldName)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	w.log.LogAttrs(ctx, level, msg, attrs...)
	return len(p), nil
}
