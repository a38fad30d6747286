package lab

import (
	"net/http/httptest"
	"testing"
)

func TestFaultKind(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/v1/regions/westeurope/kill", "region_kill"},
		{"POST", "/v1/links/westeurope/northeurope/cut", "link_cut"},
		{"POST", "/v1/pops/pop-eu/restart", "pop_restart"},
		{"POST", "/v1/data/orders/crash", "data_crash"},
		{"POST", "/v1/failover/orders", "failover"},
		{"GET", "/v1/regions", ""},
		{"GET", "/v1/failover/orders", ""},
		{"POST", "/v1/nothing", ""},
	} {
		if got := faultKind(httptest.NewRequest(c.method, c.path, nil)); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}
