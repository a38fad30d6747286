package gslb

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Query counters live in shards, one per UDP socket reader and one for
// TCP, so that readers on different cores do not share cache lines; the
// collector sums them when scraped.

var (
	qtypeNames = [...]string{"A", "AAAA", "NS", "SOA", "TXT", "ANY", "other"}
	rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"}
)

func qtypeIndex(t uint16) int {
	switch t {
	case typeA:
		return 0
	case typeAAAA:
		return 1
	case typeNS:
		return 2
	case typeSOA:
		return 3
	case typeTXT:
		return 4
	case typeANY:
		return 5
	}
	return 6
}

func rcodeIndex(r int) int {
	switch {
	case r >= 0 && r <= 5:
		return r
	case r == rcodeBadVers:
		return 6
	}
	return 7
}

type shard struct {
	proto     string
	queries   [len(qtypeNames)][len(rcodeNames)]atomic.Uint64
	regions   []atomic.Uint64 // answers per region
	failOpen  atomic.Uint64
	truncated atomic.Uint64
	dropped   atomic.Uint64
	_         [64]byte // keep the next shard's counters off this cache line
}

func (sh *shard) count(q *query, rcode int) {
	t := len(qtypeNames) - 1
	if q.hasQ {
		t = qtypeIndex(q.qtype)
	}
	sh.queries[t][rcodeIndex(rcode)].Add(1)
}

func (sh *shard) answered(regions []int) {
	for _, i := range regions {
		sh.regions[i].Add(1)
	}
}

// stats is the server's metrics: the shards and a prometheus.Collector.
type stats struct {
	s      *Server
	mu     sync.Mutex
	shards []*shard

	queries, answers, failOpen, truncated, dropped *prometheus.Desc
	healthy, rtt, degraded, ttl                    *prometheus.Desc
}

var _ prometheus.Collector = (*stats)(nil)

func newStats(s *Server) *stats {
	return &stats{
		s:         s,
		queries:   prometheus.NewDesc("geostamp_gslb_queries_total", "DNS queries answered, by transport, query type (\"other\" also for queries without a question) and response code.", []string{"proto", "qtype", "rcode"}, nil),
		answers:   prometheus.NewDesc("geostamp_gslb_answers_total", "Address records answered for the routed name, by region.", []string{"region"}, nil),
		failOpen:  prometheus.NewDesc("geostamp_gslb_fail_open_answers_total", "Routed answers given while no region was healthy (fail-open).", nil, nil),
		truncated: prometheus.NewDesc("geostamp_gslb_truncated_total", "UDP answers sent truncated (TC) because they did not fit.", nil, nil),
		dropped:   prometheus.NewDesc("geostamp_gslb_dropped_total", "Packets not answered (shorter than a header, or responses).", nil, nil),
		healthy:   prometheus.NewDesc("geostamp_gslb_region_healthy", "1 when the region's probes say healthy, else 0.", []string{"region"}, nil),
		rtt:       prometheus.NewDesc("geostamp_gslb_probe_rtt_seconds", "Smoothed round trip of the region's passing probes.", []string{"region"}, nil),
		degraded:  prometheus.NewDesc("geostamp_gslb_degraded", "1 while any enabled region is not healthy (degraded TTL in force).", nil, nil),
		ttl:       prometheus.NewDesc("geostamp_gslb_ttl_seconds", "TTL of routed answers now.", nil, nil),
	}
}

func (st *stats) newShard(proto string) *shard {
	sh := &shard{proto: proto, regions: make([]atomic.Uint64, len(st.s.topo.Regions))}
	st.mu.Lock()
	st.shards = append(st.shards, sh)
	st.mu.Unlock()
	return sh
}

// Describe implements prometheus.Collector.
func (st *stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{st.queries, st.answers, st.failOpen, st.truncated, st.dropped, st.healthy, st.rtt, st.degraded, st.ttl} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (st *stats) Collect(ch chan<- prometheus.Metric) {
	st.mu.Lock()
	shards := append([]*shard(nil), st.shards...)
	st.mu.Unlock()
	regions := st.s.topo.Regions
	byProto := map[string]*[len(qtypeNames)][len(rcodeNames)]uint64{}
	perRegion := make([]uint64, len(regions))
	var failOpen, truncated, dropped uint64
	for _, sh := range shards {
		q := byProto[sh.proto]
		if q == nil {
			q = new([len(qtypeNames)][len(rcodeNames)]uint64)
			byProto[sh.proto] = q
		}
		for t := range sh.queries {
			for r := range sh.queries[t] {
				q[t][r] += sh.queries[t][r].Load()
			}
		}
		for i := range sh.regions {
			perRegion[i] += sh.regions[i].Load()
		}
		failOpen += sh.failOpen.Load()
		truncated += sh.truncated.Load()
		dropped += sh.dropped.Load()
	}
	for proto, q := range byProto {
		for t := range q {
			for r, n := range q[t] {
				if n > 0 {
					ch <- prometheus.MustNewConstMetric(st.queries, prometheus.CounterValue, float64(n), proto, qtypeNames[t], rcodeNames[r])
				}
			}
		}
	}
	for i, r := range regions {
		ch <- prometheus.MustNewConstMetric(st.answers, prometheus.CounterValue, float64(perRegion[i]), r.Name)
	}
	ch <- prometheus.MustNewConstMetric(st.failOpen, prometheus.CounterValue, float64(failOpen))
	ch <- prometheus.MustNewConstMetric(st.truncated, prometheus.CounterValue, float64(truncated))
	ch <- prometheus.MustNewConstMetric(st.dropped, prometheus.CounterValue, float64(dropped))
	for _, ts := range st.s.checker.States() {
		h := 0.0
		if ts.Healthy {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(st.healthy, prometheus.GaugeValue, h, ts.Name)
		ch <- prometheus.MustNewConstMetric(st.rtt, prometheus.GaugeValue, ts.RTT.D().Seconds(), ts.Name)
	}
	cur := st.s.state.Load()
	deg := 0.0
	if cur.degraded {
		deg = 1
	}
	ch <- prometheus.MustNewConstMetric(st.degraded, prometheus.GaugeValue, deg)
	ch <- prometheus.MustNewConstMetric(st.ttl, prometheus.GaugeValue, float64(cur.ttl))
}
