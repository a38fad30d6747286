package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
	"github.com/geostamp/geostamp/internal/wan"
)

// fakeLab records control API calls and answers them from a table.
type fakeLab struct {
	calls   []string // "METHOD path body"
	answers map[string]any
	fail    map[string]error
}

var _ Controller = (*fakeLab)(nil)

func (f *fakeLab) Do(_ context.Context, method, path string, body, out any) error {
	b, _ := json.Marshal(body)
	if body == nil {
		b = nil
	}
	f.calls = append(f.calls, strings.TrimSpace(method+" "+path+" "+string(b)))
	if err := f.fail[path]; err != nil {
		return err
	}
	if a, ok := f.answers[method+" "+path]; ok && out != nil {
		raw, _ := json.Marshal(a)
		return json.Unmarshal(raw, out)
	}
	return nil
}

func TestActionCheck(t *testing.T) {
	topo := topology.Default()
	cases := []struct {
		name   string
		action string
		args   Args
		want   []string // substrings, one per problem, in order
	}{
		{"ok", "kill-region", Args{"region": "westeurope"}, nil},
		{"missing", "kill-region", Args{}, []string{`steps[0].args: kill-region needs argument "region"`}},
		{"unknown region", "kill-region", Args{"region": "mars"}, []string{`steps[0].args.region: "mars" is not a region of the topology (westeurope, northeurope)`}},
		{"unknown arg", "kill-region", Args{"region": "westeurope", "regoin": "x"}, []string{`steps[0].args.regoin: unknown argument of kill-region (arguments: region)`}},
		{"brownout values", "brownout", Args{"region": "westeurope", "share": "1.5", "status": "200", "delay": "soon"}, []string{
			`steps[0].args.delay: "soon" is not a duration`,
			`steps[0].args.share: "1.5" is not a share between 0 and 1`,
			`steps[0].args.status: "200" is not an HTTP error status`}},
		{"link sites", "cut-link", Args{"a": "westeurope", "b": "francecentral", "one-way": "maybe"}, []string{
			`steps[0].args.one-way: "maybe" is not true or false`}},
		{"bad site", "cut-link", Args{"a": "westeurope", "b": "pop-us"}, []string{`steps[0].args.b: "pop-us" is not a site`}},
		{"service kind", "crash-data", Args{"service": "cache"}, []string{`steps[0].args.service: "cache" is not a primary-secondary data service of the topology (orders, catalog)`}},
		{"mode", "failover", Args{"mode": "gentle"}, []string{`steps[0].args.mode: "gentle" is not planned or forced`}},
		{"pop", "kill-pop", Args{"pop": "pop-us"}, []string{`steps[0].args.pop: "pop-us" is not a front door POP of the topology (pop-eu)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, ok := Lookup(c.action)
			if !ok {
				t.Fatalf("no action %q", c.action)
			}
			errs := a.Check("steps[0].args", c.args, topo)
			if len(errs) != len(c.want) {
				t.Fatalf("got %d problems %v, want %d", len(errs), errs, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("problem %d: %q does not contain %q", i, errs[i], w)
				}
				var fe *topology.FieldError
				if !errors.As(errs[i], &fe) {
					t.Errorf("problem %d is not a *topology.FieldError", i)
				}
			}
		})
	}
}

func TestEveryActionIsDocumented(t *testing.T) {
	for _, a := range Actions() {
		if a.Summary == "" || (a.Kind != KindFault && a.Kind != KindHeal) || a.run == nil {
			t.Errorf("%s: summary %q kind %q", a.Name, a.Summary, a.Kind)
		}
		for _, p := range a.Params {
			if p.Help == "" || p.Type == "" {
				t.Errorf("%s.%s: help %q type %q", a.Name, p.Name, p.Help, p.Type)
			}
			if p.Default != "" {
				if msg := checkValue(p.Type, p.Default, topology.Default()); msg != "" {
					t.Errorf("%s.%s: default %q: %s", a.Name, p.Name, p.Default, msg)
				}
			}
		}
	}
}

func TestApply(t *testing.T) {
	gap := int64(3)
	cases := []struct {
		name    string
		step    Step
		answers map[string]any
		calls   []string
		events  []Event // compared on Kind, Name, Region, Step, Gap, Detail substring
	}{
		{
			name:    "kill",
			step:    Step{Action: "kill-region", Args: Args{"region": "westeurope"}},
			answers: map[string]any{"POST /v1/regions/westeurope/kill": map[string]any{"state": "killed"}},
			calls:   []string{"POST /v1/regions/westeurope/kill"},
			events:  []Event{{Kind: KindFault, Name: "kill-region", Region: "westeurope", Detail: "region kill: killed"}},
		},
		{
			name:   "restart as heal",
			step:   Step{Action: "restart-region", Args: Args{"region": "westeurope"}},
			calls:  []string{"POST /v1/regions/westeurope/restart"},
			events: []Event{{Kind: KindHeal, Name: "restart-region", Region: "westeurope"}},
		},
		{
			name:   "brownout defaults",
			step:   Step{Action: "brownout", Args: Args{"region": "northeurope"}},
			calls:  []string{`POST /v1/regions/northeurope/brownout {"share":0.5,"status":503,"delay":"0s"}`},
			events: []Event{{Kind: KindFault, Name: "brownout", Region: "northeurope", Detail: "0.5 of requests answered 503"}},
		},
		{
			name:   "end brownout",
			step:   Step{Action: "end-brownout", Args: Args{"region": "northeurope"}},
			calls:  []string{`POST /v1/regions/northeurope/brownout {"share":0,"delay":"0s"}`},
			events: []Event{{Kind: KindHeal, Name: "end-brownout", Detail: "brownout ended"}},
		},
		{
			name:   "cut one way",
			step:   Step{Action: "cut-link", Args: Args{"a": "westeurope", "b": "northeurope", "one-way": "true"}},
			calls:  []string{`POST /v1/links/westeurope/northeurope/cut {"one_way":true}`},
			events: []Event{{Kind: KindFault, Name: "cut-link", Detail: "link westeurope->northeurope cut"}},
		},
		{
			name:   "latency as heal",
			step:   Step{Action: "latency", Kind: KindHeal, Args: Args{"a": "westeurope", "b": "northeurope", "latency": "12ms"}},
			calls:  []string{`POST /v1/links/westeurope/northeurope/latency {"latency":"12ms"}`},
			events: []Event{{Kind: KindHeal, Name: "latency", Detail: "latency 12ms"}},
		},
		{
			name: "isolate",
			step: Step{Action: "isolate-region", Args: Args{"region": "westeurope"}},
			answers: map[string]any{"GET /v1/links": []wan.LinkState{
				{A: "westeurope", B: "northeurope"}, {A: "northeurope", B: "francecentral"}, {A: "pop-eu", B: "westeurope"}}},
			calls: []string{"GET /v1/links", "POST /v1/links/westeurope/northeurope/cut {}", "POST /v1/links/pop-eu/westeurope/cut {}"},
			events: []Event{{Kind: KindFault, Name: "isolate-region", Region: "westeurope",
				Detail: "cut 2 links: westeurope<->northeurope, pop-eu<->westeurope"}},
		},
		{
			name: "crash",
			step: Step{Action: "crash-data"},
			answers: map[string]any{
				"GET /v1/data": Data{"westeurope": {Data: []Replica{{Service: "orders", Role: "primary", LastSeq: 10}}},
					"northeurope": {Data: []Replica{{Service: "orders", Role: "secondary", LastSeq: 9}}}},
				"POST /v1/data/orders/crash": map[string]any{"service": "orders", "region": "westeurope", "epoch": 2}},
			calls: []string{"GET /v1/data", "POST /v1/data/orders/crash"},
			events: []Event{{Kind: KindFault, Name: "crash-data", Region: "westeurope",
				Detail: "positions before: northeurope 9 (secondary), westeurope 10 (primary)"}},
		},
		{
			name: "failover to the secondary",
			step: Step{Action: "failover", Args: Args{"mode": "forced"}},
			answers: map[string]any{
				"GET /v1/data": Data{"westeurope": {Data: []Replica{{Service: "orders", Role: "primary"}}},
					"northeurope": {Data: []Replica{{Service: "orders", Role: "secondary"}}}},
				"POST /v1/failover/orders": map[string]any{"service": "orders", "from": "westeurope", "to": "northeurope", "mode": "forced", "epoch": 3,
					"steps": []map[string]any{
						{"time": "2025-03-01T12:00:00Z", "kind": "failover", "step": "promote", "region": "northeurope", "service": "orders", "epoch": 3, "gap": 3},
						{"time": "2025-03-01T12:00:00.5Z", "kind": "failover", "step": "repoint", "region": "westeurope", "service": "orders", "epoch": 3}}}},
			calls: []string{"GET /v1/data", `POST /v1/failover/orders {"to":"northeurope","mode":"forced"}`},
			events: []Event{
				{Kind: KindFault, Name: "failover", Region: "westeurope", Detail: "forced failover of orders from westeurope to northeurope"},
				{Kind: KindStep, Step: "promote", Region: "northeurope", Gap: &gap},
				{Kind: KindStep, Step: "repoint", Region: "westeurope"}},
		},
		{
			name:   "pop",
			step:   Step{Action: "kill-pop", Args: Args{"pop": "pop-eu"}},
			calls:  []string{"POST /v1/pops/pop-eu/kill"},
			events: []Event{{Kind: KindFault, Name: "kill-pop", Region: "pop-eu"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeLab{answers: c.answers}
			evs, err := Apply(context.Background(), f, c.step)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(f.calls, "\n") != strings.Join(c.calls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(c.calls, "\n"))
			}
			if len(evs) != len(c.events) {
				t.Fatalf("events %+v, want %d", evs, len(c.events))
			}
			for i, w := range c.events {
				g := evs[i]
				if g.Kind != w.Kind || g.Name != w.Name || w.Region != "" && g.Region != w.Region || g.Step != w.Step ||
					!strings.Contains(g.Detail, w.Detail) || (w.Gap != nil) != (g.Gap != nil) || w.Gap != nil && *w.Gap != *g.Gap {
					t.Errorf("event %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestApplyWithoutLab(t *testing.T) {
	if _, err := Apply(context.Background(), nil, Step{Action: "kill-region", Args: Args{"region": "westeurope"}}); !errors.Is(err, ErrNeedsLab) {
		t.Fatalf("kill-region without a lab: %v, want ErrNeedsLab", err)
	}
	evs, err := Apply(context.Background(), nil, Step{Action: "mark", Args: Args{"name": "pulled the plug", "region": "westeurope"}})
	if err != nil || len(evs) != 1 || evs[0].Kind != KindFault || evs[0].Detail != "pulled the plug" {
		t.Fatalf("mark: %+v %v", evs, err)
	}
	if _, err := Apply(context.Background(), nil, Step{Action: "explode"}); err == nil || !strings.Contains(err.Error(), `unknown action "explode"`) {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestApplyReportsTheAPIError(t *testing.T) {
	f := &fakeLab{fail: map[string]error{"/v1/data/orders/crash": errors.New("orders has no primary now")}}
	_, err := Apply(context.Background(), f, Step{Action: "crash-data"})
	if err == nil || !strings.Contains(err.Error(), "crash-data service=orders: orders has no primary now") {
		t.Fatalf("err = %v", err)
	}
}

func TestWatcher(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	evs := []map[string]any{
		{"time": t0.Add(-time.Second), "kind": "ready"},
		{"time": t0.Add(time.Second), "kind": "region-kill", "region": "westeurope"},
		{"time": t0.Add(15 * time.Second), "kind": "failover", "step": "promote", "region": "northeurope", "service": "orders", "epoch": 2},
		{"time": t0.Add(16 * time.Second), "kind": "failover", "step": "rejoin", "region": "westeurope", "service": "orders", "epoch": 2, "discarded": 4},
	}
	f := &fakeLab{answers: map[string]any{"GET /v1/events": evs}}
	w := NewWatcher(f, t0)
	got, err := w.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Kind != KindNote || got[0].Name != "region-kill" {
		t.Errorf("lab event: %+v", got[0])
	}
	if p := got[1]; p.Kind != KindStep || p.Step != "promote" || p.Gap == nil || *p.Gap != 0 || p.Epoch != 2 {
		t.Errorf("promote without a gap field means gap 0: %+v", p)
	}
	if r := got[2]; r.Step != "rejoin" || r.Discarded == nil || *r.Discarded != 4 {
		t.Errorf("rejoin: %+v", r)
	}
	again, _ := w.Poll(context.Background())
	if len(again) != 0 {
		t.Fatalf("events reported twice: %+v", again)
	}
	w2 := NewWatcher(f, t0)
	w2.Seen(got[1])
	if got2, _ := w2.Poll(context.Background()); len(got2) != 2 {
		t.Fatalf("Seen did not suppress the promote: %+v", got2)
	}
}

func TestDataConverged(t *testing.T) {
	d := Data{
		"westeurope":  {Data: []Replica{{Service: "orders", Role: "fenced", LastSeq: 12}}},
		"northeurope": {Data: []Replica{{Service: "orders", Role: "primary", LastSeq: 10}}},
		"eastus":      {Data: []Replica{{Service: "orders", Role: "secondary", LastSeq: 9}}},
		"gone":        {Error: "connection refused"},
	}
	if ok, why := d.Converged("orders"); ok || why != "eastus at 9, primary northeurope at 10" {
		t.Fatalf("converged %v %q", ok, why)
	}
	r := d["eastus"]
	r.Data[0].LastSeq = 10
	if ok, why := d.Converged("orders"); !ok {
		t.Fatalf("a fenced replica must not hold convergence up: %s", why)
	}
	if ok, why := d.Answering("orders", []string{"northeurope", "eastus"}); !ok {
		t.Fatalf("answering: %s", why)
	}
	if ok, why := d.Answering("orders", []string{"northeurope", "westeurope"}); ok || why != `westeurope's replica of orders is "fenced"` {
		t.Fatalf("a fenced replica has not rejoined: %v %q", ok, why)
	}
	if ok, why := d.Answering("orders", []string{"gone"}); ok || why != "gone does not answer" {
		t.Fatalf("down region: %v %q", ok, why)
	}
	if p := d.Primary("orders"); p != "northeurope" {
		t.Fatalf("primary %q", p)
	}
	if got := fmt.Sprint(d.Positions("orders")); got != "eastus 10 (secondary), northeurope 10 (primary), westeurope 12 (fenced)" {
		t.Fatalf("positions %q", got)
	}
}
