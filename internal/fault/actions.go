package fault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

// Failover modes (the failover action's mode argument).
const (
	ModePlanned = "planned"
	ModeForced  = "forced"
)

var (
	regionParam  = Param{Name: "region", Type: TypeRegion, Required: true, Help: "the region, e.g. westeurope"}
	serviceParam = Param{Name: "service", Type: TypeService, Default: "orders", Help: "a primary-secondary data service"}
	linkParams   = []Param{
		{Name: "a", Type: TypeSite, Required: true, Help: "one site of the link (region, witness or POP)"},
		{Name: "b", Type: TypeSite, Required: true, Help: "the other site"},
		{Name: "one-way", Type: TypeBool, Default: "false", Help: "only traffic from a to b"},
	}
)

// actions is the registry: every named fault and repair. It is a literal,
// not filled by init(), so the set is visible in one place.
var actions = map[string]Action{
	"kill-region":    regionAction("kill-region", "kill", KindFault, "SIGKILL the region's process: a regional outage"),
	"freeze-region":  regionAction("freeze-region", "freeze", KindFault, "SIGSTOP the region's process: a hang (connections are accepted, nothing answers)"),
	"resume-region":  regionAction("resume-region", "resume", KindHeal, "SIGCONT a frozen region"),
	"restart-region": regionAction("restart-region", "restart", KindHeal, "start the region again (killing it first if it runs), with the same addresses and data"),
	"drain-region":   regionAction("drain-region", "drain", KindFault, "take the region's stamp out of rotation (/health/stamp answers 503) without stopping it"),
	"undrain-region": regionAction("undrain-region", "undrain", KindHeal, "put a drained stamp back in rotation"),
	"brownout": {
		Name: "brownout", Kind: KindFault, NeedsLab: true,
		Summary: "make a share of the stamp's responses fail with a status or slow down (/health/stamp is not affected)",
		Params: []Param{regionParam,
			{Name: "share", Type: TypeShare, Default: "0.5", Help: "share of requests affected, 0 to 1"},
			{Name: "status", Type: TypeStatus, Default: "503", Help: "status answered to affected requests; 0 only delays them"},
			{Name: "delay", Type: TypeDuration, Default: "0s", Help: "delay added to affected requests"}},
		run: brownout,
	},
	"end-brownout": {
		Name: "end-brownout", Kind: KindHeal, NeedsLab: true,
		Summary: "end a brownout", Params: []Param{regionParam},
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			return brownout(ctx, c, Args{"region": a["region"], "share": "0", "status": "0", "delay": "0s"})
		},
	},
	"cut-link":  linkAction("cut-link", "cut", KindFault, "drop all traffic on the WAN link between two sites (a partition)"),
	"heal-link": linkAction("heal-link", "heal", KindHeal, "let traffic pass on a cut WAN link again"),
	"latency": {
		Name: "latency", Kind: KindFault, NeedsLab: true,
		Summary: "set the one-way latency of a WAN link (both directions unless one-way); log it as a heal to set it back",
		Params: append(append([]Param{}, linkParams...),
			Param{Name: "latency", Type: TypeDuration, Required: true, Help: "one-way latency, e.g. 200ms"},
			Param{Name: "jitter", Type: TypeDuration, Default: "0s", Help: "latency jitter"}),
		run: latency,
	},
	"isolate-region": {
		Name: "isolate-region", Kind: KindFault, NeedsLab: true,
		Summary: "cut every WAN link of a region (to the other regions, the witness and the front door POPs)",
		Params:  []Param{regionParam},
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			return isolate(ctx, c, a["region"], "cut")
		},
	},
	"reconnect-region": {
		Name: "reconnect-region", Kind: KindHeal, NeedsLab: true,
		Summary: "heal every WAN link of a region",
		Params:  []Param{regionParam},
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			return isolate(ctx, c, a["region"], "heal")
		},
	},
	"crash-data": {
		Name: "crash-data", Kind: KindFault, NeedsLab: true,
		Summary: "make the data engine of a service's current primary die; its region keeps running",
		Params:  []Param{serviceParam},
		run:     crashData,
	},
	"failover": {
		Name: "failover", Kind: KindFault, NeedsLab: true,
		Summary: "fail a data service over to another region: planned (fence, catch up, promote; no loss) or forced (promote now; the unreplicated tail is lost)",
		Params: []Param{serviceParam,
			{Name: "to", Type: TypeRegion, Help: "the new primary; default the first region that is not the primary"},
			{Name: "mode", Type: TypeMode, Default: ModePlanned, Help: "planned or forced"}},
		run: failover,
	},
	"kill-pop":    popAction("kill-pop", "kill", KindFault, "make a front door POP die (its listeners close)"),
	"restart-pop": popAction("restart-pop", "restart", KindHeal, "bring a front door POP back"),
	"mark": {
		Name: "mark", Kind: KindFault, NeedsLab: false,
		Summary: "record a fault (or heal) that someone else injects, e.g. by hand on real endpoints; nothing is done",
		Params: []Param{{Name: "name", Type: TypeText, Default: "manual", Help: "what is injected"},
			{Name: "region", Type: TypeText, Help: "the region concerned"}},
		run: func(_ context.Context, _ Controller, a Args) ([]Event, error) {
			return []Event{{Region: a["region"], Detail: a["name"]}}, nil
		},
	},
}

func post(ctx context.Context, c Controller, path string, body, out any) error {
	return c.Do(ctx, http.MethodPost, path, body, out)
}

func regionAction(name, verb, kind, summary string) Action {
	return Action{
		Name: name, Kind: kind, Summary: summary, NeedsLab: true,
		Params: []Param{regionParam},
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			r := a["region"]
			var p struct {
				State string `json:"state"`
				PID   int    `json:"pid"`
			}
			if err := post(ctx, c, "/v1/regions/"+url.PathEscape(r)+"/"+verb, nil, &p); err != nil {
				return nil, err
			}
			detail := "region " + verb + ": " + p.State
			if p.PID != 0 {
				detail += fmt.Sprintf(" (pid %d)", p.PID)
			}
			return []Event{{Region: r, Detail: detail}}, nil
		},
	}
}

func brownout(ctx context.Context, c Controller, a Args) ([]Event, error) {
	share, _ := strconv.ParseFloat(a["share"], 64)
	status, _ := strconv.Atoi(a["status"])
	delay, _ := time.ParseDuration(a["delay"])
	// The body of POST /v1/regions/{r}/brownout (stamp.Fault).
	body := struct {
		Share  float64 `json:"share"`
		Status int     `json:"status,omitempty"`
		Delay  string  `json:"delay,omitempty"`
	}{share, status, delay.String()}
	if err := post(ctx, c, "/v1/regions/"+url.PathEscape(a["region"])+"/brownout", body, nil); err != nil {
		return nil, err
	}
	detail := "brownout ended"
	if share > 0 {
		detail = fmt.Sprintf("%g of requests answered %d after %s", share, status, delay)
		if status == 0 {
			detail = fmt.Sprintf("%g of requests delayed by %s", share, delay)
		}
	}
	return []Event{{Region: a["region"], Detail: detail}}, nil
}

// linkRequest is the body of POST /v1/links/{a}/{b}/{action} (lab.LinkRequest).
type linkRequest struct {
	OneWay  bool              `json:"one_way,omitempty"`
	Latency topology.Duration `json:"latency,omitempty"`
	Jitter  topology.Duration `json:"jitter,omitempty"`
}

func linkName(a Args) string {
	if a["one-way"] == "true" {
		return a["a"] + "->" + a["b"]
	}
	return a["a"] + "<->" + a["b"]
}

func linkAction(name, verb, kind, summary string) Action {
	return Action{
		Name: name, Kind: kind, Summary: summary, NeedsLab: true,
		Params: linkParams,
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			oneWay, _ := strconv.ParseBool(a["one-way"])
			path := "/v1/links/" + url.PathEscape(a["a"]) + "/" + url.PathEscape(a["b"]) + "/" + verb
			if err := post(ctx, c, path, linkRequest{OneWay: oneWay}, nil); err != nil {
				return nil, err
			}
			return []Event{{Link: linkName(a), Detail: "link " + linkName(a) + " " + verb}}, nil
		},
	}
}

func latency(ctx context.Context, c Controller, a Args) ([]Event, error) {
	oneWay, _ := strconv.ParseBool(a["one-way"])
	lat, _ := time.ParseDuration(a["latency"])
	jit, _ := time.ParseDuration(a["jitter"])
	path := "/v1/links/" + url.PathEscape(a["a"]) + "/" + url.PathEscape(a["b"]) + "/latency"
	req := linkRequest{OneWay: oneWay, Latency: topology.Duration(lat), Jitter: topology.Duration(jit)}
	if err := post(ctx, c, path, req, nil); err != nil {
		return nil, err
	}
	return []Event{{Link: linkName(a), Detail: fmt.Sprintf("link %s latency %s ±%s", linkName(a), lat, jit)}}, nil
}

// isolate cuts (or heals) both directions of every WAN link of region.
func isolate(ctx context.Context, c Controller, region, verb string) ([]Event, error) {
	links, err := Links(ctx, c)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, l := range links {
		if l.A != region && l.B != region {
			continue
		}
		path := "/v1/links/" + url.PathEscape(l.A) + "/" + url.PathEscape(l.B) + "/" + verb
		if err := post(ctx, c, path, linkRequest{}, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s<->%s: %w", l.A, l.B, err))
			continue
		}
		names = append(names, l.A+"<->"+l.B)
	}
	if len(names) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("region %q has no WAN link", region)
	}
	ev := Event{Region: region, Detail: fmt.Sprintf("%s %d links: %s", verb, len(names), strings.Join(names, ", "))}
	return []Event{ev}, errors.Join(errs...)
}

func crashData(ctx context.Context, c Controller, a Args) ([]Event, error) {
	svc := a["service"]
	// The replication positions just before the crash, for the report
	// (writes in flight may still move them).
	before := ""
	if st, err := DataStatus(ctx, c); err == nil {
		before = "; positions before: " + st.Positions(svc)
	}
	var out struct {
		Region string `json:"region"`
		Epoch  int64  `json:"epoch"`
	}
	if err := post(ctx, c, "/v1/data/"+url.PathEscape(svc)+"/crash", nil, &out); err != nil {
		return nil, err
	}
	return []Event{{Region: out.Region, Service: svc, Epoch: out.Epoch,
		Detail: fmt.Sprintf("the data engine of %s's primary %s died (epoch %d)%s", svc, out.Region, out.Epoch, before)}}, nil
}

// failoverResult is the answer of POST /v1/failover/{service}.
type failoverResult struct {
	Service string     `json:"service"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	Mode    string     `json:"mode"`
	Epoch   int64      `json:"epoch"`
	Seconds float64    `json:"seconds"`
	Steps   []labEvent `json:"steps"`
}

func failover(ctx context.Context, c Controller, a Args) ([]Event, error) {
	svc, to := a["service"], a["to"]
	if to == "" {
		st, err := DataStatus(ctx, c)
		if err != nil {
			return nil, err
		}
		if to = st.Secondary(svc); to == "" {
			return nil, fmt.Errorf("no region to fail %s over to: no secondary answers", svc)
		}
	}
	body := struct {
		To   string `json:"to"`
		Mode string `json:"mode"`
	}{to, a["mode"]}
	var res failoverResult
	if err := post(ctx, c, "/v1/failover/"+url.PathEscape(svc), body, &res); err != nil {
		return nil, err
	}
	evs := []Event{{Region: res.From, Service: svc, Epoch: res.Epoch,
		Detail: fmt.Sprintf("%s failover of %s from %s to %s (epoch %d) in %.3gs", res.Mode, svc, res.From, res.To, res.Epoch, res.Seconds)}}
	for _, e := range res.Steps {
		evs = append(evs, e.event())
	}
	return evs, nil
}

func popAction(name, verb, kind, summary string) Action {
	return Action{
		Name: name, Kind: kind, Summary: summary, NeedsLab: true,
		Params: []Param{{Name: "pop", Type: TypePOP, Required: true, Help: "the POP, e.g. pop-eu"}},
		run: func(ctx context.Context, c Controller, a Args) ([]Event, error) {
			if err := post(ctx, c, "/v1/pops/"+url.PathEscape(a["pop"])+"/"+verb, nil, nil); err != nil {
				return nil, err
			}
			return []Event{{Region: a["pop"], Detail: "front door POP " + a["pop"] + " " + verb}}, nil
		},
	}
}
