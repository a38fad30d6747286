package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/data/jetstream"
	"github.com/geostamp/geostamp/internal/data/memstore"
	"github.com/geostamp/geostamp/internal/data/postgres"
	"github.com/geostamp/geostamp/internal/failover"
	"github.com/geostamp/geostamp/internal/httpjson"
	"github.com/geostamp/geostamp/internal/stamp"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/witness"
	"github.com/geostamp/geostamp/internal/workload"
)

// RegionStatus is what a region's admin API reports.
type RegionStatus struct {
	Region   string           `json:"region"`
	Health   stamp.Report     `json:"health"`
	Drained  bool             `json:"drained"`
	Data     []data.Status    `json:"data"`
	Failover []failover.State `json:"failover,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// statuses asks every service for its replication state, in parallel.
func (d *regionData) statuses(ctx context.Context, services []ServiceSpec) []data.Status {
	out := make([]data.Status, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		wg.Go(func() { out[i] = d.stores[svc.Name].Status(ctx) })
	}
	wg.Wait()
	return out
}

// RunRegion runs one region process: the data engine, the workload replicas
// behind the stamp's ingress, and the region's admin API. It prints a
// ReadyLine on ready once everything listens, and returns when ctx ends.
func RunRegion(ctx context.Context, spec RegionSpec, logger *slog.Logger, ready io.Writer) error {
	token, err := auth.ReadTokenFile(spec.TokenFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	defer wg.Wait()

	var etcd *clientv3.Client
	if spec.Witness != nil {
		if etcd, err = runWitnessMember(ctx, spec.Witness, telemetry.Component(logger, "witness").With("region", spec.Name), errc); err != nil {
			return fmt.Errorf("region %s: %w", spec.Name, err)
		}
		defer etcd.Close()
	}

	var jsServices []jetstream.Service
	var pgServices []postgres.Service
	for _, s := range spec.Services {
		switch s.Engine {
		case "jetstream":
			jsServices = append(jsServices, jetstream.Service{Name: s.Name, Kind: s.Kind, Primary: s.Primary, Replication: s.Replication, Regions: s.Regions})
		case "postgres":
			pgServices = append(pgServices, postgres.Service{Name: s.Name, Replication: s.Replication})
		}
	}
	engine, err := jetstream.New(jetstream.Config{
		Region:     spec.Name,
		Dir:        filepath.Join(spec.DataDir, "jetstream"),
		Host:       spec.Host,
		ClientPort: spec.Ports.NATSClient,
		LeafPort:   spec.Ports.NATSLeaf,
		Remotes:    spec.LeafRemotes,
		Services:   jsServices,
		Logger:     telemetry.Component(logger, "jetstream").With("region", spec.Name),
	})
	if err != nil {
		return err
	}
	run("jetstream", engine.Run)
	if err := waitReady(ctx, engine.Ready(), errc); err != nil {
		return err
	}
	var pg *postgres.Engine
	if len(pgServices) > 0 {
		if spec.Postgres == nil {
			return fmt.Errorf("region %s: postgres services but no postgres spec", spec.Name)
		}
		pg, err = postgres.New(postgres.Config{
			Region:   spec.Name,
			Dir:      filepath.Join(spec.DataDir, "postgres"),
			Host:     spec.Host,
			Port:     spec.Postgres.Port,
			Peers:    spec.Postgres.Peers,
			Services: pgServices,
			Logger:   telemetry.Component(logger, "postgres").With("region", spec.Name),
		})
		if err != nil {
			return err
		}
		run("postgres", pg.Run)
		if err := waitReady(ctx, pg.Ready(), errc); err != nil {
			return err
		}
	}

	d := &regionData{stores: map[string]data.Store{}, replicas: map[string]data.Replica{}, crashers: map[string]data.Crasher{}, controllers: map[string]*failover.Controller{}}
	// One registry for the whole region process: every series carries the
	// region; the Go runtime and process collectors come with it.
	metrics := telemetry.NewRegistry(prometheus.Labels{"region": spec.Name})
	failovers := failover.NewCollector()
	for _, s := range spec.Services {
		switch {
		case s.Engine == "jetstream" && s.Kind == data.KindPrimarySecondary:
			r, err := engine.Replica(s.Name)
			if err != nil {
				return err
			}
			d.replicas[s.Name], d.stores[s.Name], d.crashers[s.Name] = r, r, engine
		case s.Engine == "jetstream":
			st, err := engine.Store(s.Name)
			if err != nil {
				return err
			}
			d.stores[s.Name] = st
		case s.Engine == "postgres":
			r, err := pg.Replica(s.Name)
			if err != nil {
				return err
			}
			d.replicas[s.Name], d.stores[s.Name], d.crashers[s.Name] = r, r, pg
		case s.Engine == "memory":
			d.stores[s.Name] = memstore.New(s.Name, spec.Name)
		default:
			return fmt.Errorf("region %s: data service %s: engine %q is not supported in the lab", spec.Name, s.Name, s.Engine)
		}
		if r, ok := d.replicas[s.Name]; ok && etcd != nil {
			ctl, err := failover.New(failover.Config{
				Group:     s.Name,
				Region:    spec.Name,
				Regions:   s.Regions,
				Initial:   s.Primary,
				Policy:    s.Policy,
				Grace:     s.Grace,
				LeaseTTL:  s.Lease,
				Replica:   r,
				Authority: witness.NewAuthority(etcd, "", telemetry.Component(logger, "witness"), witness.WithRenewObserver(failovers.ObserveRenewal)),
				Client:    etcd,
				Logger:    logger,
			})
			if err != nil {
				return err
			}
			d.controllers[s.Name] = ctl
			failovers.Add(ctl)
			run("failover "+s.Name, ctl.Run)
		}
	}
	stores := d.stores
	app, err := workload.New(workload.Config{
		Region:     spec.Name,
		Orders:     stores["orders"],
		Catalog:    stores["catalog"],
		Logger:     logger,
		Registerer: metrics.Registerer,
	})
	if err != nil {
		return err
	}
	var checks []stamp.Check
	for _, s := range spec.Services {
		st := stores[s.Name]
		checks = append(checks, stamp.Check{Name: "data:" + s.Name, Run: dataCheck(st, d.controllers[s.Name])})
	}
	stmp, err := stamp.New(stamp.Config{
		Region:      spec.Name,
		Host:        spec.Host,
		IngressPort: spec.Ports.Ingress,
		Replicas:    spec.Replicas,
		Handler:     app,
		Checks:      checks,
		FDID:        spec.FDID,
		Logger:      logger,
		Registerer:  metrics.Registerer,
	})
	if err != nil {
		return err
	}
	run("stamp", stmp.Run)
	if err := waitReady(ctx, stmp.Ready(), errc); err != nil {
		return err
	}

	adminLn, err := net.Listen("tcp", net.JoinHostPort(spec.Host, strconv.Itoa(spec.Ports.Admin)))
	if err != nil {
		return fmt.Errorf("region %s: admin: %w", spec.Name, err)
	}
	admin := &http.Server{Handler: regionAdmin(spec.Name, token, stmp, d, spec.Services, metrics, failovers), ReadHeaderTimeout: 5 * time.Second}
	run("admin", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			admin.Shutdown(sctx)
		}()
		if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})

	line := ReadyLine{Ready: true, Ports: RegionPorts{
		Ingress:    portOf(stmp.IngressAddr()),
		Admin:      portOf(adminLn.Addr().String()),
		NATSClient: portOf(engine.ClientAddr()),
		NATSLeaf:   portOf(engine.LeafAddr()),
	}}
	if err := json.NewEncoder(ready).Encode(line); err != nil {
		return fmt.Errorf("region %s: report ready: %w", spec.Name, err)
	}
	telemetry.Component(logger, "lab").Info("region ready", "ingress", stmp.IngressAddr())
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func waitReady(ctx context.Context, ready <-chan struct{}, errc chan error) error {
	select {
	case <-ready:
		return nil
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// regionData is the region's data services and their failover controllers.
type regionData struct {
	stores      map[string]data.Store
	replicas    map[string]data.Replica
	crashers    map[string]data.Crasher
	controllers map[string]*failover.Controller
}

// dataCheck fails when the region cannot read the service locally, or
// while its failover controller has not made it a primary or a secondary;
// losing the primary makes writes fail but is reported in the detail, since
// the stamp still serves reads.
func dataCheck(st data.Store, ctl *failover.Controller) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		s := st.Status(ctx)
		detail := fmt.Sprintf("%s, primary %s, epoch %d, position %d, lag %d writes %.1fs", s.Role, s.Primary, s.Epoch, s.LastSeq, s.LagWrites, s.LagSeconds)
		if !s.Writable {
			detail += ", not writable"
		}
		if s.Detail != "" {
			detail += ": " + s.Detail
		}
		if !s.Readable {
			return detail, errors.New("not readable")
		}
		if ctl != nil {
			// A fenced replica (a restarted or cut-off old primary, until it
			// follows the new one) may hold writes the primary lacks and
			// cannot take any: traffic belongs elsewhere.
			switch fs := ctl.State(); fs.Role {
			case "":
				return detail, errors.New("waiting for the failover controller's first decision")
			case data.RoleFenced:
				return detail, errors.New("fenced: not serving until it follows the primary")
			}
		}
		return detail, nil
	}
}

func regionAdmin(region, token string, st *stamp.Stamp, d *regionData, services []ServiceSpec, metrics *telemetry.Registry, failovers *failover.Collector) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/status", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 1500*time.Millisecond)
		defer cancel()
		s := RegionStatus{Region: region, Health: st.Health(), Drained: st.Drained(), Data: d.statuses(ctx, services)}
		for _, svc := range services {
			if ctl := d.controllers[svc.Name]; ctl != nil {
				s.Failover = append(s.Failover, ctl.State())
			}
		}
		httpjson.Write(w, http.StatusOK, s)
	})
	mux.HandleFunc("POST /admin/data/{service}/crash", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("service")
		c, ok := d.crashers[name]
		if !ok {
			httpjson.Error(w, http.StatusNotFound, fmt.Sprintf("no primary-secondary service %q in %s", name, region))
			return
		}
		if err := c.Crash(); err != nil {
			httpjson.Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"region": region, "service": name, "crashed": "engine"})
	})
	metrics.Registerer.MustRegister(newReplicationCollector(d, services), failovers)
	mux.HandleFunc("POST /admin/drain", func(w http.ResponseWriter, r *http.Request) {
		st.SetDrained(true)
		httpjson.Write(w, http.StatusOK, map[string]any{"region": region, "drained": true})
	})
	mux.HandleFunc("POST /admin/fault", func(w http.ResponseWriter, r *http.Request) {
		var f stamp.Fault
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
			httpjson.Error(w, http.StatusBadRequest, "invalid fault JSON: "+err.Error())
			return
		}
		if err := st.SetFault(f); err != nil {
			httpjson.Error(w, http.StatusBadRequest, err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, st.Fault())
	})
	mux.HandleFunc("POST /admin/undrain", func(w http.ResponseWriter, r *http.Request) {
		st.SetDrained(false)
		httpjson.Write(w, http.StatusOK, map[string]any{"region": region, "drained": false})
	})
	// Metrics are read-only and scraped without the token, as usual.
	top := http.NewServeMux()
	top.Handle("GET /metrics", metrics.Handler())
	top.Handle("/", auth.Bearer(token, mux))
	return top
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
