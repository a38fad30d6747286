package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/lab"
)

type orderAck struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Seq    uint64 `json:"seq"`
}

func (l *runningLab) postOrder(region string) orderAck {
	l.t.Helper()
	code, h, b := l.request(http.MethodPost, l.eps.Regions[region].Ingress+"/orders", `{"item":"book","qty":1}`)
	if code != http.StatusCreated {
		l.t.Fatalf("POST /orders via %s: %d %s", region, code, b)
	}
	if got := h.Get("X-Geostamp-Region"); got != region {
		l.t.Fatalf("X-Geostamp-Region = %q, want %q", got, region)
	}
	return decode[orderAck](l.t, b)
}

func (l *runningLab) readable(region, id string) error {
	code, h, b := l.request(http.MethodGet, l.eps.Regions[region].Ingress+"/orders/"+id, "")
	if code != http.StatusOK {
		return fmt.Errorf("GET /orders/%s via %s: %d %s", id, region, code, b)
	}
	if got := h.Get("X-Geostamp-Region"); got != region {
		return fmt.Errorf("served by %q, want %q", got, region)
	}
	return nil
}

func (l *runningLab) dataStatus(region, service string) data.Status {
	l.t.Helper()
	var out map[string]lab.RegionStatus
	if err := l.client.Do(context.Background(), http.MethodGet, "/v1/data", nil, &out); err != nil {
		l.t.Fatal(err)
	}
	for _, s := range out[region].Data {
		if s.Service == service {
			return s
		}
	}
	l.t.Fatalf("no status for %s in %s: %+v", service, region, out[region])
	return data.Status{}
}

func TestLab(t *testing.T) {
	l := startLab(t)
	const we, ne = "westeurope", "northeurope"

	t.Run("endpoints", func(t *testing.T) {
		for _, r := range []string{we, ne} {
			ep, ok := l.eps.Regions[r]
			if !ok || ep.Address == "" || !strings.HasPrefix(ep.Ingress, "http://"+ep.Address+":") || !strings.HasSuffix(ep.Health, "/health/stamp") {
				t.Fatalf("region %s endpoint %+v", r, ep)
			}
		}
		if l.eps.Regions[we].Address != "127.0.1.1" || l.eps.Regions[ne].Address != "127.0.2.1" {
			t.Fatalf("addresses %+v", l.eps.Regions)
		}
		portOf := func(u string) string { return u[strings.LastIndex(u, ":")+1:] }
		if a, b := portOf(l.eps.Regions[we].Ingress), portOf(l.eps.Regions[ne].Ingress); a != b {
			t.Fatalf("ingress ports differ (%s, %s): a DNS answer would not be enough to reach a stamp", a, b)
		}
		fi, err := os.Stat(l.eps.TokenFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("token file %v mode %v", err, fi)
		}
		resp, err := http.Get(l.eps.Control + "/v1/regions")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("control API without token: %d, want 401", resp.StatusCode)
		}
		if out := l.out.String(); !strings.Contains(out, "all regions healthy") || !strings.Contains(out, l.eps.Regions[we].Ingress) {
			t.Fatalf("up printed:\n%s", out)
		}
	})

	t.Run("replication", func(t *testing.T) {
		ack := l.postOrder(we)
		took := eventually(t, 2*time.Second, "order written in westeurope readable in northeurope", func() error { return l.readable(ne, ack.ID) })
		t.Logf("westeurope -> northeurope visible after %s", took)
		// Writes through the secondary go to the primary across the WAN.
		ack2 := l.postOrder(ne)
		eventually(t, 2*time.Second, "order written via northeurope readable in westeurope", func() error { return l.readable(we, ack2.ID) })
	})

	t.Run("partition", func(t *testing.T) {
		l.mustInject(t, "link", "cut", we, ne)
		before := l.dataStatus(ne, "orders")
		var acked []orderAck
		for range 10 {
			acked = append(acked, l.postOrder(we))
		}
		eventually(t, 5*time.Second, "northeurope reports growing lag", func() error {
			s := l.dataStatus(ne, "orders")
			if s.LastSeq != before.LastSeq {
				return fmt.Errorf("replication went on across a cut link: seq %d -> %d", before.LastSeq, s.LastSeq)
			}
			if s.PrimarySeq == 0 || s.LagWrites < 10 {
				return fmt.Errorf("lag %d writes (primary at %d), want >= 10", s.LagWrites, s.PrimarySeq)
			}
			return nil
		})
		if err := l.readable(ne, acked[len(acked)-1].ID); err == nil {
			t.Fatal("a write crossed the cut link")
		}
		l.mustInject(t, "link", "heal", we, ne)
		took := eventually(t, 15*time.Second, "northeurope catches up after heal", func() error {
			for _, a := range acked {
				if err := l.readable(ne, a.ID); err != nil {
					return err
				}
			}
			return nil
		})
		t.Logf("caught up %s after heal", took)
	})

	t.Run("drain", func(t *testing.T) {
		l.mustInject(t, "region", "drain", ne)
		eventually(t, 3*time.Second, "drained health", func() error {
			code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Health, "")
			if code != http.StatusServiceUnavailable || !strings.Contains(string(b), `"drained"`) {
				return fmt.Errorf("%d %s", code, b)
			}
			return nil
		})
		ack := l.postOrder(ne) // still serves
		eventually(t, 2*time.Second, "drained region still serves reads", func() error { return l.readable(ne, ack.ID) })
		l.mustInject(t, "region", "undrain", ne)
		eventually(t, 3*time.Second, "healthy again", func() error {
			if code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Health, ""); code != http.StatusOK {
				return fmt.Errorf("%d %s", code, b)
			}
			return nil
		})
	})

	t.Run("brownout", func(t *testing.T) {
		l.mustInject(t, "region", "brownout", ne, "--share", "1", "--status", "503")
		if code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Ingress+"/orders?after=0", ""); code != http.StatusServiceUnavailable {
			t.Fatalf("GET under brownout: %d %s", code, b)
		}
		if code, _, _ := l.request(http.MethodGet, l.eps.Regions[ne].Health, ""); code != http.StatusOK {
			t.Fatalf("health under brownout: %d, want 200 (probes do not see a brownout)", code)
		}
		l.mustInject(t, "region", "brownout", ne, "--share", "0")
		if code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Ingress+"/orders?after=0", ""); code != http.StatusOK {
			t.Fatalf("GET after brownout: %d %s", code, b)
		}
		if _, e, code := l.cli("region", "brownout", ne, "--share", "3"); code == 0 || !strings.Contains(e, "share") {
			t.Fatalf("share 3 accepted: %d %s", code, e)
		}
	})

	t.Run("kill-restart", func(t *testing.T) {
		ack := l.postOrder(we)
		eventually(t, 2*time.Second, "replicated before the kill", func() error { return l.readable(ne, ack.ID) })
		var before []lab.RegionInfo
		l.client.Do(context.Background(), http.MethodGet, "/v1/regions", nil, &before)
		pid := 0
		for _, r := range before {
			if r.Name == we {
				pid = r.PID
			}
		}
		if pid == 0 {
			t.Fatalf("no pid for westeurope: %+v", before)
		}
		if out, e, code := l.cli("region", "kill", we); code != 0 || !strings.Contains(out, "killed") {
			t.Fatalf("region kill: %s %s", out, e)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Fatalf("westeurope process %d still exists after kill", pid)
		}
		if _, err := net.DialTimeout("tcp", strings.TrimPrefix(l.eps.Regions[we].Ingress, "http://"), time.Second); err == nil {
			t.Fatal("westeurope ingress still accepts connections")
		}
		if err := l.readable(ne, ack.ID); err != nil {
			t.Fatalf("northeurope after westeurope died: %v", err)
		}
		if code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Health, ""); code != http.StatusOK {
			t.Fatalf("northeurope health after westeurope died: %d %s", code, b)
		}
		out, _, _ := l.cli("status")
		if !strings.Contains(out, "killed") {
			t.Fatalf("status does not show the killed region:\n%s", out)
		}
		if out, e, code := l.cli("region", "restart", we); code != 0 || !strings.Contains(out, "running") {
			t.Fatalf("region restart: %s %s", out, e)
		}
		eventually(t, 20*time.Second, "westeurope healthy after restart", func() error {
			if code, _, b := l.request(http.MethodGet, l.eps.Regions[we].Health, ""); code != http.StatusOK {
				return fmt.Errorf("%d %s", code, b)
			}
			return nil
		})
		if err := l.readable(we, ack.ID); err != nil {
			t.Fatalf("data lost over a restart: %v", err)
		}
		ack2 := l.postOrder(we)
		eventually(t, 5*time.Second, "replication after restart", func() error { return l.readable(ne, ack2.ID) })
	})

	t.Run("unexpected-death-is-reported", func(t *testing.T) {
		var regions []lab.RegionInfo
		l.client.Do(context.Background(), http.MethodGet, "/v1/regions", nil, &regions)
		for _, r := range regions {
			if r.Name == ne {
				syscall.Kill(r.PID, syscall.SIGKILL) // not through the lab: a crash
			}
		}
		eventually(t, 5*time.Second, "the lab reports the dead region", func() error {
			out, _, _ := l.cli("status")
			if !strings.Contains(out, "exited (signal: killed)") || !strings.Contains(l.out.String(), "region northeurope died") {
				return fmt.Errorf("status:\n%s", out)
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond) // and does not restart it on its own
		if out, _, _ := l.cli("status"); !strings.Contains(out, "exited") {
			t.Fatalf("the lab restarted a dead region by itself:\n%s", out)
		}
		l.mustInject(t, "region", "restart", ne)
	})

	t.Run("freeze-resume", func(t *testing.T) {
		l.mustInject(t, "region", "freeze", ne)
		c := &http.Client{Timeout: 300 * time.Millisecond}
		if resp, err := c.Get(l.eps.Regions[ne].Health); err == nil {
			resp.Body.Close()
			t.Fatalf("a frozen region answered: %d", resp.StatusCode)
		}
		l.mustInject(t, "region", "resume", ne)
		eventually(t, 5*time.Second, "answers after resume", func() error {
			code, _, b := l.request(http.MethodGet, l.eps.Regions[ne].Health, "")
			if code != http.StatusOK {
				return fmt.Errorf("%d %s", code, b)
			}
			return nil
		})
	})

	t.Run("stop-leaves-nothing", func(t *testing.T) {
		var regions []lab.RegionInfo
		if err := l.client.Do(context.Background(), http.MethodGet, "/v1/regions", nil, &regions); err != nil {
			t.Fatal(err)
		}
		l.cmd.Process.Signal(os.Interrupt)
		select {
		case <-l.done:
		case <-time.After(20 * time.Second):
			t.Fatal("geostamp up did not stop within 20s of Ctrl-C")
		}
		for _, r := range regions {
			if r.PID != 0 && syscall.Kill(r.PID, 0) == nil {
				t.Errorf("region %s (pid %d) outlived geostamp up", r.Name, r.PID)
			}
		}
		addrs := []string{strings.TrimPrefix(l.eps.Control, "http://")}
		for _, r := range l.eps.Regions {
			addrs = append(addrs, strings.TrimPrefix(r.Ingress, "http://"), strings.TrimPrefix(r.Admin, "http://"), strings.TrimPrefix(r.NATS, "nats://"))
		}
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 500*time.Millisecond); err == nil {
				c.Close()
				t.Errorf("%s still listening after geostamp up stopped", a)
			}
		}
		if _, err := os.Stat(filepath.Join(l.dir, "endpoints.json")); !os.IsNotExist(err) {
			t.Errorf("endpoints.json left behind: %v", err)
		}
	})
}

func TestValidateCLI(t *testing.T) {
	_, errOut, code := cli(t, "validate", "-f", "../internal/topology/testdata/three-mistakes.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"3 problem(s)", "regions[1].priority: must be between 1 and 5", "frontdoor.routing:", "frontdoor.prob: unknown field"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, f := range []string{"", "../examples/active-passive.yaml", "../examples/three-region.yaml"} {
		args := []string{"validate"}
		if f != "" {
			args = append(args, "-f", f)
		}
		if out, e, code := cli(t, args...); code != 0 || !strings.Contains(out, "valid") {
			t.Errorf("validate %s: exit %d %s %s", f, code, out, e)
		}
	}
	if _, _, code := cli(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
