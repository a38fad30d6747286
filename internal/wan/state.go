package wan

import (
	"encoding/json"
	"fmt"
	"time"
)

// LinkState is a snapshot of a link. AToB is traffic from A to B.
type LinkState struct {
	Name    string       `json:"name"`
	A       string       `json:"a"`
	B       string       `json:"b"`
	AToB    DirState     `json:"a_to_b"`
	BToA    DirState     `json:"b_to_a"`
	Proxies []ProxyState `json:"proxies"`
}

// DirState is the configuration of one direction of a link.
type DirState struct {
	Latency Duration `json:"latency"`
	Jitter  Duration `json:"jitter"`
	Cut     bool     `json:"cut"`
}

// ProxyState describes one proxy: connections dialed from site From to
// Listen are forwarded to Upstream in site To.
type ProxyState struct {
	Name     string `json:"name"`
	From     string `json:"from"`
	To       string `json:"to"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
}

// Duration is a time.Duration written as "12ms" in JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "12ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "12ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("wan: want a duration string such as \"12ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	*d = Duration(v)
	return nil
}
