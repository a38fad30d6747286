package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// topLevel returns the keys of a JSON object in order, duplicates kept
// (decoding into a map would hide them).
func topLevel(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("line %q is not a JSON object: %v", line, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
	}
	return keys
}

func TestOneComponentKey(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want string // the component; "" for none
	}{
		{"untagged", func(l *slog.Logger) { l.Info("m") }, ""},
		{"tagged once", func(l *slog.Logger) { Component(l, "lab").Info("m") }, "lab"},
		{"tagged twice", func(l *slog.Logger) {
			Component(Component(l, "frontdoor").With("pop", "pop-eu"), "health").Info("m")
		}, "health"},
		{"With on a tagged logger", func(l *slog.Logger) {
			Component(l, "witness").With("component", "witness", "region", "a").Info("m")
		}, "witness"},
		{"on the record", func(l *slog.Logger) { Component(l, "lab").Info("m", "component", "gslb") }, "gslb"},
		{"inside a group", func(l *slog.Logger) {
			Component(l, "lab").WithGroup("g").With("component", "x").Info("m")
		}, "lab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := NewLogger(&buf, LogConfig{Format: "json"})
			if err != nil {
				t.Fatal(err)
			}
			tc.log(l)
			line := strings.TrimSpace(buf.String())
			n := 0
			for _, k := range topLevel(t, line) {
				if k == ComponentKey {
					n++
				}
			}
			if tc.want == "" {
				if n != 0 {
					t.Fatalf("%s: component key without a component", line)
				}
				return
			}
			if n != 1 {
				t.Fatalf("%s: component key %d times, want once", line, n)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil || v[ComponentKey] != tc.want {
				t.Fatalf("%s: component %v, want %q (%v)", line, v[ComponentKey], tc.want, err)
			}
		})
	}
}

func TestOneComponentKeyText(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, LogConfig{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	Component(Component(l, "frontdoor"), "health").With("region", "a").Info("probe")
	if line := buf.String(); strings.Count(line, " component=") != 1 || !strings.Contains(line, " component=health ") {
		t.Fatalf("%q: want component=health once", line)
	}
}
