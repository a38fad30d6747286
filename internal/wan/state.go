package wan

import "github.com/geostamp/geostamp/internal/topology"

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
	Latency topology.Duration `json:"latency"`
	Jitter  topology.Duration `json:"jitter"`
	Cut     bool              `json:"cut"`
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
