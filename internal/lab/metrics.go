package lab

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geostamp/geostamp/internal/data"
)

// replicationCollector exports each data service's replication state as
// seen from this region, read at scrape time.
type replicationCollector struct {
	d        *regionData
	services []ServiceSpec
	role     *prometheus.Desc
	epoch    *prometheus.Desc
	position *prometheus.Desc
	lag      *prometheus.Desc
	lagSec   *prometheus.Desc
	writable *prometheus.Desc
}

// The region is the registry's constant label.
func newReplicationCollector(d *regionData, services []ServiceSpec) *replicationCollector {
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("geostamp_data_"+name, help, append([]string{"service"}, extra...), nil)
	}
	return &replicationCollector{
		d: d, services: services,
		role:     desc("role", "1 for the replica's current role (primary, secondary, fenced).", "role"),
		epoch:    desc("epoch", "Fencing epoch the replica knows."),
		position: desc("position", "Last replication position held locally (writes)."),
		lag:      desc("lag_writes", "Writes the local replica lacks behind the primary (0 when unknown)."),
		lagSec:   desc("lag_seconds", "Age of the oldest write the local replica lacks."),
		writable: desc("writable", "1 if writes from this region can succeed now."),
	}
}

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.role, c.epoch, c.position, c.lag, c.lagSec, c.writable} {
		ch <- d
	}
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range c.d.statuses(ctx, c.services) {
		if s.Kind != data.KindPrimarySecondary {
			continue
		}
		for _, role := range []data.Role{data.RolePrimary, data.RoleSecondary, data.RoleFenced} {
			ch <- prometheus.MustNewConstMetric(c.role, prometheus.GaugeValue, b2f(s.Role == role), s.Service, string(role))
		}
		ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(s.Epoch), s.Service)
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(s.LastSeq), s.Service)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.LagWrites), s.Service)
		ch <- prometheus.MustNewConstMetric(c.lagSec, prometheus.GaugeValue, s.LagSeconds, s.Service)
		ch <- prometheus.MustNewConstMetric(c.writable, prometheus.GaugeValue, b2f(s.Writable), s.Service)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// countFaults counts the control calls that inject or remove a fault, by
// kind, once they succeeded: geostamp_lab_faults_total.
func (l *Lab) countFaults(next http.Handler) http.Handler {
	faults := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "geostamp_lab_faults_total",
		Help: "Faults injected or removed through the control API, by kind (region_kill, link_cut, failover_forced, pop_restart, ...).",
	}, []string{"kind"})
	l.metrics.Registerer.MustRegister(faults)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := faultKind(r)
		if kind == "" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.code < 400 {
			faults.WithLabelValues(kind).Inc()
		}
	})
}

// faultKind names the fault of a control call, "" for a call that is
// none (reads). The kinds are bounded: the mux refuses other actions.
func faultKind(r *http.Request) string {
	if r.Method != http.MethodPost {
		return ""
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(p) == 4 && p[1] == "regions":
		return "region_" + p[3]
	case len(p) == 5 && p[1] == "links":
		return "link_" + p[4]
	case len(p) == 4 && p[1] == "pops":
		return "pop_" + p[3]
	case len(p) == 4 && p[1] == "data" && p[3] == "crash":
		return "data_crash"
	case len(p) == 3 && p[1] == "failover":
		return "failover"
	}
	return ""
}
