package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/gslb"
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

// TestGSLBFailover: the DNS answer names the preferred region; after
// `geostamp region kill` it changes within the bound that follows from the
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
	start := time.Now() // before the CLI runs: the measurement includes its start-up
	if _, e, code := l.cli("region", "kill", "westeurope"); code != 0 {
		t.Fatalf("kill: %s", e)
	}
	// Polling every 50ms adds up to 50ms to the measurement; the margin
	// covers that and nothing else.
	took := eventually(t, bound+2*time.Second, "answer moves to northeurope", func() error {
		a, err := l.resolveA(t)
		if err == nil && a != l.eps.Regions["northeurope"].Address {
			err = fmt.Errorf("answer %s", a)
		}
		return err
	})
	took = time.Since(start)
	t.Logf("DNS answer changed %s after the kill; bound %s", took.Round(time.Millisecond), bound)
	if took > bound+50*time.Millisecond {
		t.Fatalf("answer changed after %s, beyond the bound %s", took, bound)
	}
}
