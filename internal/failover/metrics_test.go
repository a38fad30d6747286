package failover

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/geostamp/geostamp/internal/data"
)

// TestMetrics: after a planned failover, the collector shows the new
// primary, its epoch, the steps by mode, the failover's duration and the
// lease the new primary holds; its output passes the linter.
func TestMetrics(t *testing.T) {
	l := newLab(t, Config{Group: "orders", Initial: we, LeaseTTL: 2 * time.Second}, we, ne)
	l.waitRole(we, data.RolePrimary, 10*time.Second)
	l.waitRole(ne, data.RoleSecondary, 10*time.Second)
	if _, err := Ask(t.Context(), l.cli, l.auth, "", "orders", ne, ModePlanned, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	l.waitRole(we, data.RoleSecondary, 10*time.Second)
	reg := prometheus.NewRegistry()
	for _, r := range []string{we, ne} {
		reg.MustRegister(prometheus.WrapCollectorWith(prometheus.Labels{"region": r}, NewCollector(l.ctls[r])))
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
						continue metric
					}
				}
				return valueOf(m)
			}
		}
		t.Fatalf("no %s %v", name, labels)
		return 0
	}
	waitFor(t, func() bool { return value("geostamp_failover_epoch", map[string]string{"region": we}) == 2 })
	checks := []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
	}{
		{"geostamp_failover_epoch", map[string]string{"region": ne}, func(v float64) bool { return v == 2 }},
		{"geostamp_failover_primary", map[string]string{"region": ne}, func(v float64) bool { return v == 1 }},
		{"geostamp_failover_primary", map[string]string{"region": we}, func(v float64) bool { return v == 0 }},
		{"geostamp_failover_transitions_total", map[string]string{"region": ne, "action": "promote", "mode": "planned"}, func(v float64) bool { return v == 1 }},
		{"geostamp_failover_transitions_total", map[string]string{"region": we, "action": "fence", "mode": "planned"}, func(v float64) bool { return v == 1 }},
		{"geostamp_failover_transitions_total", map[string]string{"region": ne, "action": "promote", "mode": "forced"}, func(v float64) bool { return v == 0 }},
		{"geostamp_failover_last_duration_seconds", map[string]string{"region": ne}, func(v float64) bool { return v > 0 && v < 10 }},
		{"geostamp_witness_lease_held", map[string]string{"region": ne}, func(v float64) bool { return v == 1 }},
		{"geostamp_witness_lease_held", map[string]string{"region": we}, func(v float64) bool { return v == 0 }},
		{"geostamp_witness_lease_remaining_seconds", map[string]string{"region": ne}, func(v float64) bool { return v > 0 && v <= 2 }},
	}
	for _, c := range checks {
		if v := value(c.name, c.labels); !c.ok(v) {
			t.Errorf("%s %v = %v", c.name, c.labels, v)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", err, problems)
	}
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
