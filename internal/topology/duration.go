package topology

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "5s" or "250ms" in files and JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration reads a duration as files and API bodies write it: a Go
// duration string such as "5s", "250ms" or "1m30s" (a bare 0 is zero).
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write it like \"5s\" or \"250ms\")", s)
	}
	return Duration(v), nil
}

// UnmarshalYAML accepts what ParseDuration does.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as \"5s\"", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string, as ParseDuration does.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5s\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Percent is a share written as "20%" (or a bare number of percent).
type Percent float64

// UnmarshalYAML accepts "20%" or 20.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a percentage such as \"20%%\"", n.Line)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"), 64)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a percentage (write it like \"20%%\")", n.Line, n.Value)
	}
	*p = Percent(v)
	return nil
}

// MarshalYAML writes the share as "20%".
func (p Percent) MarshalYAML() (any, error) { return p.String(), nil }

func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%" }

// Fraction returns the share as a number between 0 and 1.
func (p Percent) Fraction() float64 { return float64(p) / 100 }

// Latency is the one-way delay of a WAN path: a duration ("12ms") or
// {latency: 12ms, jitter: 2ms}.
type Latency struct {
	Latency Duration `yaml:"latency" json:"latency"`
	Jitter  Duration `yaml:"jitter" json:"jitter"`
}

// UnmarshalYAML accepts a bare duration or a mapping.
func (l *Latency) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		l.Jitter = 0
		return l.Latency.UnmarshalYAML(n)
	}
	type plain Latency
	return n.Decode((*plain)(l))
}

// MarshalYAML writes a bare duration when there is no jitter.
func (l Latency) MarshalYAML() (any, error) {
	if l.Jitter == 0 {
		return l.Latency.String(), nil
	}
	type plain Latency
	return plain(l), nil
}
