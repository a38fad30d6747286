package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load sends GETs through the front door on an open-loop schedule (rate
// per second, for d) and counts what the client sees. fault runs at faultAt.
type loadResult struct {
	sent, ok       int64
	non2xx, errs   int64
	byRegion       sync.Map
	firstBadDetail atomic.Value
}

func openLoop(t *testing.T, url string, rate int, d, faultAt time.Duration, fault func()) *loadResult {
	t.Helper()
	client := &http.Client{
		Timeout:   5 * time.Second, // the client's timeout; the front door's per-try timeout is 2s
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512},
	}
	defer client.CloseIdleConnections()
	res := &loadResult{}
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	faulted := false
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		if !faulted && at.Sub(start) >= faultAt {
			faulted = true
			go fault()
		}
		time.Sleep(time.Until(at))
		wg.Add(1)
		atomic.AddInt64(&res.sent, 1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err != nil {
				atomic.AddInt64(&res.errs, 1)
				res.firstBadDetail.CompareAndSwap(nil, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				atomic.AddInt64(&res.non2xx, 1)
				res.firstBadDetail.CompareAndSwap(nil, fmt.Sprintf("%d from %s", resp.StatusCode, resp.Header.Get("X-Geostamp-Region")))
				return
			}
			atomic.AddInt64(&res.ok, 1)
			n, _ := res.byRegion.LoadOrStore(resp.Header.Get("X-Geostamp-Region"), new(int64))
			atomic.AddInt64(n.(*int64), 1)
		}()
	}
	wg.Wait()
	return res
}

func (r *loadResult) served(region string) int64 {
	if n, ok := r.byRegion.Load(region); ok {
		return atomic.LoadInt64(n.(*int64))
	}
	return 0
}

type originStatus struct {
	Origins []struct {
		Name     string `json:"name"`
		Eligible bool   `json:"eligible"`
	} `json:"origins"`
}

// waitEligible waits until the front door routes to every region again.
func (l *runningLab) waitEligible(t *testing.T) {
	t.Helper()
	eventually(t, 30*time.Second, "front door sees every region eligible", func() error {
		req, _ := http.NewRequest(http.MethodGet, l.eps.POPs[0].Admin+"/admin/origins", nil)
		req.Header.Set("Authorization", "Bearer "+l.client.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var s originStatus
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			return err
		}
		for _, o := range s.Origins {
			if !o.Eligible {
				return fmt.Errorf("%s not eligible", o.Name)
			}
		}
		return nil
	})
}

// TestFrontDoorFailover: 200 GET/s through the front door for 20 s, a fault
// on the preferred region (westeurope) at t=5 s, and not one error at the
// client: the front door retries on northeurope within the request.
func TestFrontDoorFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s per case")
	}
	l := startLab(t)
	url := l.eps.POPs[0].HTTP + "/orders?after=0&limit=1"
	const we, ne = "westeurope", "northeurope"
	cases := []struct {
		name        string
		fault, heal []string
	}{
		{"kill", []string{"region", "kill", we}, []string{"region", "restart", we}},
		{"freeze", []string{"region", "freeze", we}, []string{"region", "resume", we}},
		{"brownout-503", []string{"region", "brownout", we, "--share", "1", "--status", "503"}, []string{"region", "brownout", we, "--share", "0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l.waitEligible(t)
			res := openLoop(t, url, 200, 20*time.Second, 5*time.Second, func() {
				if err := l.inject(c.fault...); err != nil {
					t.Error(err)
				}
			})
			t.Logf("sent %d, ok %d (westeurope %d, northeurope %d), non-2xx %d, errors %d",
				res.sent, res.ok, res.served(we), res.served(ne), res.non2xx, res.errs)
			if res.non2xx+res.errs != 0 {
				t.Errorf("%d non-2xx and %d errors at the client (first: %v)", res.non2xx, res.errs, res.firstBadDetail.Load())
			}
			if res.served(we) < 500 || res.served(ne) < 1000 {
				t.Errorf("westeurope should serve before the fault and northeurope after it: %d / %d", res.served(we), res.served(ne))
			}
			l.mustInject(t, c.heal...)
		})
	}
}
