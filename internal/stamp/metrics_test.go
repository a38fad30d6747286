package stamp

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetrics: requests are counted by route class and code, drain and
// health follow the stamp, each check's result is a series, and the
// output passes the Prometheus linter.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var failing atomic.Bool
	s, _ := start(t, Config{Registerer: reg, Checks: []Check{{Name: "data", Run: func(context.Context) (string, error) {
		if failing.Load() {
			return "", errors.New("down")
		}
		return "ok", nil
	}}}})
	waitHealthy(t, s)
	for range 3 {
		get(t, s, "/orders")
	}
	get(t, s, "/nope")
	get(t, s, HealthPath)
	m := s.m
	if n := testutil.ToFloat64(m.requests.WithLabelValues(routeApp, "200")); n != 3 {
		t.Errorf("app 200 requests %v, want 3", n)
	}
	if n := testutil.ToFloat64(m.requests.WithLabelValues(routeApp, "404")); n != 1 {
		t.Errorf("app 404 requests %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.requests.WithLabelValues(routeHealth, "200")); n < 1 {
		t.Errorf("health requests %v, want at least 1", n)
	}
	gauge := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	if gauge("geostamp_stamp_healthy") != 1 || gauge("geostamp_stamp_drained") != 0 {
		t.Error("healthy stamp: want healthy 1, drained 0")
	}
	s.SetDrained(true)
	if gauge("geostamp_stamp_healthy") != 0 || gauge("geostamp_stamp_drained") != 1 {
		t.Error("drained stamp: want healthy 0, drained 1")
	}
	s.SetDrained(false)
	failing.Store(true)
	waitFor(t, "the data check's failure in its series", func() bool {
		return testutil.ToFloat64(m.checkUp.WithLabelValues("data")) == 0
	})
	if testutil.ToFloat64(m.checkUp.WithLabelValues(CheckReplicas)) != 1 {
		t.Error("replicas check not up")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", err, problems)
	}
	if out, _ := testutil.GatherAndCount(reg, "geostamp_stamp_health_check_duration_seconds"); out != 3 {
		t.Errorf("%d check duration series, want 3 (ingress, replicas, data)", out)
	}
}
