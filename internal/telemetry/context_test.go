package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// decodeLine decodes one JSON log line, failing on a repeated key.
func decodeLine(t *testing.T, line string) map[string]any {
	t.Helper()
	seen := map[string]bool{}
	for _, k := range topLevel(t, line) {
		if seen[k] {
			t.Fatalf("%s: key %q twice", line, k)
		}
		seen[k] = true
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOneRegionKey(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"none", func(l *slog.Logger) { l.Info("m") }, ""},
		{"process region", func(l *slog.Logger) { l.With("region", "westeurope").Info("m") }, "westeurope"},
		{"tagged again by a component", func(l *slog.Logger) {
			Component(l.With("region", "westeurope"), "jetstream").With("region", "westeurope").Info("m")
		}, "westeurope"},
		{"a global line about a region", func(l *slog.Logger) {
			Component(l.With("region", "global"), "lab").Info("event", "region", "northeurope")
		}, "northeurope"},
		{"an empty region leaves the logger's", func(l *slog.Logger) {
			l.With("region", "global").Info("event", "region", "")
		}, "global"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogConfig{})
			if err != nil {
				t.Fatal(err)
			}
			tc.log(l)
			v := decodeLine(t, strings.TrimSpace(buf.String()))
			got, ok := v[RegionKey]
			if tc.want == "" {
				if ok {
					t.Fatalf("%v: region without one given", v)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("%v: region %v, want %q", v, got, tc.want)
			}
		})
	}
}

func TestTraceContext(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		sampler := sdktrace.NeverSample()
		if sampled {
			sampler = sdktrace.AlwaysSample()
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler))
		ctx, span := tp.Tracer("test").Start(context.Background(), "op")
		var buf bytes.Buffer
		l, err := NewLogger(&buf, LogConfig{})
		if err != nil {
			t.Fatal(err)
		}
		l = Component(l, "stamp").With("region", "westeurope")
		l.InfoContext(ctx, "in a span", "n", 1)
		l.Info("no context")
		l.InfoContext(context.Background(), "a context without a span")
		span.End()
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines: %q", len(lines), buf.String())
		}
		v := decodeLine(t, lines[0])
		sc := span.SpanContext()
		if v[TraceIDKey] != sc.TraceID().String() || v[SpanIDKey] != sc.SpanID().String() {
			t.Errorf("sampled %v: %v, want trace_id %s span_id %s", sampled, v, sc.TraceID(), sc.SpanID())
		}
		if v["component"] != "stamp" || v["region"] != "westeurope" || v["n"] != 1.0 {
			t.Errorf("sampled %v: %v lost the logger's attributes", sampled, v)
		}
		for _, line := range lines[1:] {
			if v := decodeLine(t, line); v[TraceIDKey] != nil || v[SpanIDKey] != nil {
				t.Errorf("%v: trace ids without a span", v)
			}
		}
	}
}
