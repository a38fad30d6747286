package postgres

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			Region:   "westeurope",
			Dir:      "/tmp/x",
			Peers:    map[string]string{"northeurope": "127.0.0.1:5433"},
			Services: []Service{{Name: "orders"}, {Name: "pay_ments-2", Replication: ReplicationSync}},
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "valid without peers or services", mutate: func(c *Config) { c.Peers, c.Services = nil, nil }},
		{
			name:   "missing region and dir",
			mutate: func(c *Config) { c.Region, c.Dir = "", "" },
			want:   []string{`region: "" must be`, "dir: required"},
		},
		{
			name:   "port out of range",
			mutate: func(c *Config) { c.Port = 70000 },
			want:   []string{"port: 70000 out of range"},
		},
		{
			name: "bad peers",
			mutate: func(c *Config) {
				c.Peers = map[string]string{"westeurope": "127.0.0.1:1", "b": "nohost", "c": "127.0.0.1:0", "d e": "127.0.0.1:5"}
			},
			want: []string{
				"peers[westeurope]: a region is not its own peer",
				`peers[b]: "nohost": address nohost: missing port`,
				`peers[c]: "127.0.0.1:0" is not host:port`,
				`peers[d e]: "d e" is not a region name`,
			},
		},
		{
			name: "bad services",
			mutate: func(c *Config) {
				c.Services = []Service{
					{Name: "orders"}, {Name: "orders"}, {Name: "meta"}, {Name: "a.b"},
					{Name: strings.Repeat("x", 49)}, {Name: "ok", Replication: "semi"},
				}
			},
			want: []string{
				`services[1].name: duplicate service "orders"`,
				`services[2].name: "meta" is reserved`,
				`services[3].name: "a.b" must be 1-48`,
				`services[4].name: "xxxx`,
				`services[5].replication: "semi" must be "async" or "sync"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			_, err := New(c)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	e, err := New(Config{Region: "a", Dir: "/tmp/x", Services: []Service{{Name: "orders"}}})
	if err != nil {
		t.Fatal(err)
	}
	if e.cfg.Host != "127.0.0.1" || e.cfg.Services[0].Replication != ReplicationAsync || e.cfg.Logger == nil {
		t.Fatalf("defaults not filled: %+v", e.cfg)
	}
	if e.cfg.anySync() {
		t.Fatal("anySync with only async services")
	}
	if _, err := e.Replica("nope"); err == nil || !strings.Contains(err.Error(), `unknown service "nope"`) {
		t.Fatalf("Replica(nope): %v", err)
	}
}
