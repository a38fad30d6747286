package wan

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the state of every link of n, read at scrape time,
// per link ("a<->b") and direction ("a->b").
func (n *Net) Collector() prometheus.Collector { return &collector{n: n} }

var (
	descBytes   = prometheus.NewDesc("geostamp_wan_bytes_total", "Bytes carried by the link in a direction, over all its proxies.", []string{"link", "direction"}, nil)
	descCut     = prometheus.NewDesc("geostamp_wan_link_cut", "1 while the direction is cut.", []string{"link", "direction"}, nil)
	descCuts    = prometheus.NewDesc("geostamp_wan_cuts_total", "Times the direction was cut.", []string{"link", "direction"}, nil)
	descHeals   = prometheus.NewDesc("geostamp_wan_heals_total", "Times a cut of the direction was healed.", []string{"link", "direction"}, nil)
	descLatency = prometheus.NewDesc("geostamp_wan_latency_seconds", "Configured one-way latency of the direction.", []string{"link", "direction"}, nil)
)

type collector struct{ n *Net }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBytes, descCut, descCuts, descHeals, descLatency} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.n.mu.Lock()
	links := make([]*Link, 0, len(c.n.links))
	for _, l := range c.n.links {
		links = append(links, l)
	}
	c.n.mu.Unlock()
	for _, l := range links {
		l.mu.Lock()
		dirs := l.dirs
		l.mu.Unlock()
		for d, g := range l.gates {
			from, to := l.a, l.b
			if d == dirBA {
				from, to = to, from
			}
			dir := from + "->" + to
			cuts, heals := g.counts()
			cut := 0.0
			if g.isShut() {
				cut = 1
			}
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(g.bytes.Load()), l.name, dir)
			ch <- prometheus.MustNewConstMetric(descCut, prometheus.GaugeValue, cut, l.name, dir)
			ch <- prometheus.MustNewConstMetric(descCuts, prometheus.CounterValue, float64(cuts), l.name, dir)
			ch <- prometheus.MustNewConstMetric(descHeals, prometheus.CounterValue, float64(heals), l.name, dir)
			ch <- prometheus.MustNewConstMetric(descLatency, prometheus.GaugeValue, dirs[d].latency.Seconds(), l.name, dir)
		}
	}
}
