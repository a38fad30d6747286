package frontdoor

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

func TestWAF(t *testing.T) {
	attack := "/search?q=" + url.QueryEscape("<script>alert(document.cookie)</script>")
	sqli := "/orders?id=" + url.QueryEscape("1' OR '1'='1' UNION SELECT password FROM users--")
	for _, tc := range []struct {
		mode        string
		wantAttack  int
		wantMatches bool
	}{
		{WAFPrevention, http.StatusForbidden, true},
		{WAFDetection, http.StatusOK, true},
		{WAFOff, http.StatusOK, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			we := newBackend(t, "westeurope")
			tp := topo(func(t *topology.Topology) { t.FrontDoor.WAF.Mode = tc.mode }, "westeurope")
			fd := start(t, Config{Topology: tp, Origins: []Origin{we.origin()}})
			if (fd.waf != nil) != (tc.mode != WAFOff) {
				t.Fatalf("mode %s: waf built = %v", tc.mode, fd.waf != nil)
			}
			fd.waitHealthy(t, "westeurope")
			c := client(5 * time.Second)
			hdr := []string{"Accept", "*/*", "User-Agent", "geostamp-test/1"}
			if code, _, _ := get(t, c, fd.url("/orders/42")); code != 200 { // Go's client: no Accept, numeric Host
				t.Errorf("benign GET: %d", code)
			}
			resp, err := c.Post(fd.url("/orders"), "application/json", strings.NewReader(`{"item":"book","qty":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("benign JSON POST: %d", resp.StatusCode)
			}
			// What the README does with curl: JSON sent as a form.
			req, _ := http.NewRequest("POST", fd.url("/orders"), strings.NewReader(`{"item":"book","qty":1}`))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("User-Agent", "curl/7.88.1")
			req.Header.Set("Accept", "*/*")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("curl-style POST: %d", resp.StatusCode)
			}
			if code, _, _ := get(t, c, fd.url("/orders?after=0&limit=10"), HeaderDebug, "1", "User-Agent", "curl/7.88.1", "Accept", "*/*"); code != 200 {
				t.Errorf("curl-style GET with a query: %d", code)
			}
			hits := we.hits.Load()
			for _, path := range []string{attack, sqli} {
				if code, _, body := get(t, c, fd.url(path), hdr...); code != tc.wantAttack {
					t.Errorf("%s: %d %q, want %d", path, code, body, tc.wantAttack)
				}
			}
			if tc.mode == WAFPrevention && we.hits.Load() != hits {
				t.Errorf("blocked requests reached the region")
			}
			if got := metric(t, fd.reg, "geostamp_frontdoor_waf_matches_total") > 0; got != tc.wantMatches {
				t.Errorf("waf_matches_total > 0 is %v, want %v", got, tc.wantMatches)
			}
		})
	}
}
