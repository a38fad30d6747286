package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/gslb"
	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/topology"
)

func (l *runningLab) resolveA(t *testing.T) (string, error) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(l.eps.Host, dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, l.eps.GSLB)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return "", fmt.Errorf("rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return r.Answer[0].(*dns.A).A.String(), nil
}

// TestGSLBFailover: the DNS answer names the preferred region; after the
// region is killed it changes within the bound that follows from the
// topology: (interval + timeout) × (toleratedFailures + 1) + interval.
func TestGSLBFailover(t *testing.T) {
	const file = "testdata/fast-dns.yaml"
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	bound := gslb.FailoverBound(topo.GSLB)
	p := topo.GSLB.Probe
	if want := (p.Interval.D()+p.Timeout.D())*time.Duration(p.Tolerated()+1) + p.Interval.D(); bound != want {
		t.Fatalf("published bound %s, formula gives %s", bound, want)
	}
	l := startLab(t, "-f", file)
	if l.eps.Zone != "contoso.test." || l.eps.GSLB == "" {
		t.Fatalf("endpoints: zone %q gslb %q", l.eps.Zone, l.eps.GSLB)
	}
	eventually(t, 5*time.Second, "answer is westeurope", func() error {
		a, err := l.resolveA(t)
		if err == nil && a != l.eps.Regions["westeurope"].Address {
			err = fmt.Errorf("answer %s", a)
		}
		return err
	})
	// The kill goes through the control API, not the CLI, so that no
	// process start lies in the measured interval; the kill happened
	// between killSent and killDone.
	var proc lab.RegionProcess
	killSent := time.Now()
	err = l.client.Do(t.Context(), http.MethodPost, "/v1/regions/westeurope/kill", nil, &proc)
	killDone := time.Now()
	if err != nil || proc.State != lab.StateKilled || proc.PID != 0 {
		t.Fatalf("kill westeurope: %v, %+v", err, proc)
	}
	// Ask every 10 ms: the answer changed after the last query answered
	// westeurope was sent and before the first northeurope answer came.
	var lastOld, firstNew time.Time
	for deadline := killDone.Add(bound + 2*time.Second); ; time.Sleep(10 * time.Millisecond) {
		asked := time.Now()
		a, err := l.resolveA(t)
		if err == nil && a == l.eps.Regions["northeurope"].Address {
			firstNew = time.Now()
			break
		}
		if err == nil && a == l.eps.Regions["westeurope"].Address {
			lastOld = asked
		}
		if asked.After(deadline) {
			t.Fatalf("answer still %s %v %s after the kill, beyond the bound %s", a, err, time.Since(killDone), bound)
		}
	}
	// The change took between lastOld − killDone and firstNew − killSent.
	// The margin is that measurement's own uncertainty (the kill request
	// plus one query interval), so the test fails only when the answer
	// certainly changed later than the bound after the kill.
	least, most := max(lastOld.Sub(killDone), 0), firstNew.Sub(killSent)
	t.Logf("DNS answer changed %s to %s after the kill; bound %s", least.Round(time.Millisecond), most.Round(time.Millisecond), bound)
	if least > bound {
		t.Fatalf("answer changed at least %s after the kill, beyond the bound %s", least, bound)
	}
}
