package workload

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/geostamp/geostamp/internal/data/memstore"
)

// TestMetrics: operations are counted by service, kind and outcome.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	app, err := New(Config{Region: region, Orders: memstore.New("orders", region), Catalog: memstore.New("catalog", region), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	defer srv.Close()
	id, _ := doString(t, srv, "POST", "/orders", `{"item": "widget", "qty": 3}`).json(t)["id"].(string)
	doString(t, srv, "GET", "/orders/"+id, "")
	doString(t, srv, "GET", "/orders/0123456789abcdef0123456789abcdef", "")
	doString(t, srv, "POST", "/orders", `{"qty": "x"}`)
	for _, c := range []struct {
		service, kind, outcome string
		want                   float64
	}{
		{"orders", "write", OutcomeOK, 1}, {"orders", "read", OutcomeOK, 1},
		{"orders", "read", OutcomeNotFound, 1}, {"orders", "write", OutcomeRejected, 1},
		{"catalog", "write", OutcomeOK, 0},
	} {
		if got := testutil.ToFloat64(app.m.ops.WithLabelValues(c.service, c.kind, c.outcome)); got != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.service, c.kind, c.outcome, got, c.want)
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
