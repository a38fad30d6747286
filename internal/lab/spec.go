package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RegionSpec is everything a region process needs; the lab writes it as JSON
// and starts `geostamp region run --spec FILE`.
type RegionSpec struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Host    string `json:"host"`
	DataDir string `json:"data_dir"`
	// Ports are 0 on the first start (OS-chosen); a restart reuses the ports
	// of the first start so that links and endpoints stay valid.
	Ports RegionPorts `json:"ports"`
	// LeafRemotes are the WAN-link addresses of the lower regions' leafnode
	// listeners, in preference order.
	LeafRemotes []string      `json:"leaf_remotes"`
	Replicas    int           `json:"replicas"`
	Services    []ServiceSpec `json:"services"`
	FDID        string        `json:"fdid,omitempty"`
	TokenFile   string        `json:"token_file"`
	Log         LogSpec       `json:"log"`
	// Witness is the region's etcd member (failover leases).
	Witness *WitnessSpec `json:"witness,omitempty"`
	// Postgres is set when a service uses the postgres engine.
	Postgres *PostgresSpec `json:"postgres,omitempty"`
}

// PostgresSpec is the region's PostgreSQL instance.
type PostgresSpec struct {
	Port int `json:"port"`
	// Peers: every other region's PostgreSQL, as reached from this region
	// (through the WAN link).
	Peers map[string]string `json:"peers"`
}

// RegionPorts are the listening ports of a region process.
type RegionPorts struct {
	Ingress    int `json:"ingress"`
	Admin      int `json:"admin"`
	NATSClient int `json:"nats_client"`
	NATSLeaf   int `json:"nats_leaf"`
}

// ServiceSpec is one data service as a region runs it.
type ServiceSpec struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Engine  string `json:"engine"`
	Primary string `json:"primary,omitempty"`
	// Primary-secondary services: replication and failover policy, and
	// the regions in preference order.
	Replication string        `json:"replication,omitempty"`
	Policy      string        `json:"policy,omitempty"`
	Grace       time.Duration `json:"grace,omitempty"`
	Lease       time.Duration `json:"lease,omitempty"`
	Regions     []string      `json:"regions,omitempty"`
}

// LogSpec selects the region process's log format and level.
type LogSpec struct {
	Format string `json:"format"`
	Level  string `json:"level"`
}

// ReadyLine is the one JSON line a region process prints on stdout once it
// listens.
type ReadyLine struct {
	Ready bool        `json:"ready"`
	Ports RegionPorts `json:"ports"`
}

// Endpoints is DIR/endpoints.json: how users, tests and tools reach the lab.
type Endpoints struct {
	Name      string                    `json:"name"`
	Regions   map[string]RegionEndpoint `json:"regions"`
	Control   string                    `json:"control"`
	TokenFile string                    `json:"token_file"`
	StateDir  string                    `json:"state_dir"`
	PID       int                       `json:"pid"`
	FDID      string                    `json:"fdid,omitempty"`
	// FrontDoor lists the front door URLs, HTTPS then HTTP, POP by POP.
	FrontDoor []string      `json:"frontdoor,omitempty"`
	POPs      []POPEndpoint `json:"pops,omitempty"`
	// CAFile is the lab CA that signed the front door's certificate.
	CAFile string `json:"ca_file,omitempty"`
	// GSLB is the authoritative DNS server (UDP and TCP), serving Zone;
	// Host is the routed name.
	GSLB      string `json:"gslb,omitempty"`
	GSLBAdmin string `json:"gslb_admin,omitempty"`
	Zone      string `json:"zone,omitempty"`
	Host      string `json:"host,omitempty"`
	// Prometheus is the URL of the Prometheus that `up --prometheus`
	// runs on DIR/prometheus/.
	Prometheus string `json:"prometheus,omitempty"`
}

// POPEndpoint are the addresses of one front door POP.
type POPEndpoint struct {
	Name  string `json:"name"`
	HTTPS string `json:"https"`
	HTTP  string `json:"http"`
	Admin string `json:"admin"`
}

// RegionEndpoint are the addresses of one region.
type RegionEndpoint struct {
	Address string `json:"address"`
	Ingress string `json:"ingress"`
	Health  string `json:"health"`
	Admin   string `json:"admin"`
	NATS    string `json:"nats"`
}

// ReadEndpoints loads DIR/endpoints.json.
func ReadEndpoints(dir string) (*Endpoints, error) {
	b, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("lab: no lab found in %s (is `geostamp up` running? use --state-dir to point at its directory)", dir)
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var e Endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", filepath.Join(dir, "endpoints.json"), err)
	}
	return &e, nil
}

// writeJSONFile writes v as indented JSON to path, atomically (a reader never
// sees half a file).
func writeJSONFile(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
