package health

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/topology"
)

func TestDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"method", c.Method, "HEAD"},
		{"expect", c.Expect[0], 200},
		{"interval", c.Interval, time.Second},
		{"timeout", c.Timeout, 500 * time.Millisecond},
		{"fastInterval", c.FastInterval, 500 * time.Millisecond},
		{"jitter", c.Jitter, 0.1},
		{"sampleSize", c.SampleSize, 4},
		{"successfulSamples", c.SuccessfulSamples, 2},
		{"consecutiveErrors", c.Outlier.ConsecutiveErrors, 1},
		{"ejectFor", c.Outlier.EjectFor, 10 * time.Second},
		{"maxEjectFor", c.Outlier.MaxEjectFor, 5 * time.Minute},
		{"maxEjectedFraction", c.Outlier.MaxEjectedFraction, 0.5},
		{"history", c.History, 64},
		{"clock", c.Clock, Real},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	tr, ok := c.Client.Transport.(*http.Transport)
	if !ok || !tr.DisableKeepAlives || tr.Proxy != nil {
		t.Errorf("default client transport = %#v, want no keep-alive and no proxy", c.Client.Transport)
	}

	// Derived defaults.
	short := Config{Interval: 15 * time.Millisecond}
	short.setDefaults()
	if short.Timeout != 15*time.Millisecond || short.FastInterval != 10*time.Millisecond {
		t.Errorf("interval 15ms: timeout %s fastInterval %s, want 15ms 10ms", short.Timeout, short.FastInterval)
	}
	tiny := Config{Interval: 5 * time.Millisecond}
	tiny.setDefaults()
	if tiny.FastInterval != 5*time.Millisecond {
		t.Errorf("interval 5ms: fastInterval %s, want 5ms (never above interval)", tiny.FastInterval)
	}
	cons := Config{Consecutive: true}
	cons.setDefaults()
	if cons.SampleSize != 0 || cons.ToleratedFailures != 0 || cons.Validate() != nil {
		t.Errorf("consecutive defaults: sampleSize %d toleratedFailures %d err %v", cons.SampleSize, cons.ToleratedFailures, cons.Validate())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // every one must appear; nil: valid
	}{
		{"defaults", Config{}, nil},
		{"get", Config{Method: "GET", Expect: []int{200, 204}}, nil},
		{"consecutive", Config{Consecutive: true, ToleratedFailures: 3, Interval: 10 * time.Second, Timeout: 5 * time.Second}, nil},
		{"custom prober ignores method", Config{Method: "PING", Prober: ProberFunc(nil)}, nil},
		{"bad method and status", Config{Method: "POST", Expect: []int{200, 42}},
			[]string{`method: must be HEAD or GET, got "POST"`, "expect[1]: 42 is not an HTTP status"}},
		{"negative durations", Config{Interval: -1, Timeout: -1, FastInterval: -1},
			[]string{"interval: must be positive, got -1ns", "timeout: must be positive", "fastInterval: must be positive"}},
		{"timeout above interval", Config{Interval: time.Second, Timeout: 2 * time.Second},
			[]string{"timeout: 2s must not exceed interval (1s)"}},
		{"fast above interval", Config{Interval: time.Second, FastInterval: 2 * time.Second},
			[]string{"fastInterval: 2s must not exceed interval (1s)"}},
		{"jitter", Config{Jitter: 1}, []string{"jitter: must be below 1, got 1"}},
		{"window bounds", Config{SampleSize: 3, SuccessfulSamples: 4},
			[]string{"successfulSamples: must be 1 to sampleSize (3), got 4"}},
		{"window size", Config{SampleSize: -2, SuccessfulSamples: 1},
			[]string{"sampleSize: must be 1 to 100, got -2"}},
		{"both rules", Config{Consecutive: true, SampleSize: 4},
			[]string{"sampleSize: window rule settings (sampleSize, successfulSamples) cannot be combined with consecutive"}},
		{"tolerated without consecutive", Config{ToleratedFailures: 3},
			[]string{"toleratedFailures: needs consecutive: true"}},
		{"tolerated range", Config{Consecutive: true, ToleratedFailures: -1},
			[]string{"toleratedFailures: must be 0 to 100, got -1"}},
		{"outlier", Config{Outlier: Outlier{ConsecutiveErrors: -1, EjectFor: time.Minute, MaxEjectFor: time.Second, MaxEjectedFraction: 1.5}},
			[]string{"outlier.consecutiveErrors: must be at least 1, got -1", "outlier.maxEjectFor: 1s must be at least ejectFor (1m0s)",
				"outlier.maxEjectedFraction: must be above 0 and at most 1, got 1.5"}},
		{"history", Config{History: -1}, []string{"history: must be at least 1, got -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.setDefaults()
			err := cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tt.want), err)
			}
		})
	}
}

func TestNewValidatesTargets(t *testing.T) {
	_, err := New(Config{Interval: -1}, []Target{
		{Name: "a", URL: "http://127.0.0.1:1/health"},
		{Name: "a", URL: "http://127.0.0.1:2/health"},
		{Name: "", URL: "ftp://x/"},
		{Name: "c", URL: "http:///nohost"},
		{Name: "d"},
	})
	if err == nil {
		t.Fatal("New accepted invalid config and targets")
	}
	for _, w := range []string{
		"health: invalid config: ",
		"interval: must be positive",
		`targets[1].name: "a" is already used`,
		"targets[2].name: required",
		`targets[2].url: "ftp://x/" must be an http:// or https:// URL with a host`,
		`targets[3].url: "http:///nohost" must be`,
		"targets[4].url: required",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	// With a custom prober, URLs are the prober's business.
	if _, err := New(Config{Prober: ProberFunc(func(ctx context.Context, t Target) Result { return Result{} })}, []Target{{Name: "a"}}); err != nil {
		t.Errorf("custom prober without URL: %v", err)
	}
}

func TestFromTopology(t *testing.T) {
	topo := topology.Topology{Name: "contoso", Regions: []topology.Region{{Name: "westeurope"}}}
	topo.SetDefaults()

	fd := FrontDoorConfig(topo.FrontDoor)
	if fd.Consecutive || fd.SampleSize != 4 || fd.SuccessfulSamples != 2 || fd.Interval != time.Second ||
		fd.Timeout != 500*time.Millisecond || fd.Method != "HEAD" {
		t.Errorf("front door config = %+v", fd)
	}
	if o := fd.Outlier; o.ConsecutiveErrors != 1 || o.EjectFor != 10*time.Second || o.MaxEjectFor != 5*time.Minute || o.MaxEjectedFraction != 0.5 {
		t.Errorf("front door outlier = %+v", o)
	}
	g := GSLBConfig(topo.GSLB)
	if !g.Consecutive || g.ToleratedFailures != 3 || g.SampleSize != 0 || g.Interval != 10*time.Second || g.Timeout != 5*time.Second {
		t.Errorf("gslb config = %+v", g)
	}
	for name, cfg := range map[string]Config{"frontdoor": fd, "gslb": g} {
		if _, err := New(cfg, []Target{{Name: "westeurope", URL: "http://127.0.1.1:8080" + topo.FrontDoor.Probe.Path}}); err != nil {
			t.Errorf("%s: New: %v", name, err)
		}
	}
	tm := FromTopology(topology.Probe{ToleratedFailures: new(int), Interval: topology.Duration(time.Second)}, topology.Outlier{}, TrafficManagerStyle)
	if !tm.Consecutive || tm.ToleratedFailures != 0 || !slices.Equal(tm.Expect, nil) {
		t.Errorf("traffic manager style = %+v", tm)
	}
}
