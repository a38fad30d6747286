package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/geostamp/geostamp/internal/failover"
	"github.com/geostamp/geostamp/internal/telemetry"
	"github.com/geostamp/geostamp/internal/topology"
	"github.com/geostamp/geostamp/internal/tracestore"
	"github.com/geostamp/geostamp/internal/wan"
	"github.com/geostamp/geostamp/internal/witness"
)

// Config of a lab.
type Config struct {
	Topology *topology.Topology
	// StateDir holds endpoints.json, the token, logs and region data;
	// default .geostamp.
	StateDir string
	// Exe is the geostamp binary started for each region; default the
	// running executable.
	Exe string
	// Logger receives the lab's own logs.
	Logger *slog.Logger
	// Progress receives human-readable progress lines; nil discards them.
	Progress io.Writer
	// RegionLog sets the region processes' log format and level.
	RegionLog LogSpec
	// ProbeInterval is the time between two synthetic user flows of each
	// probe target (every POP, every stamp directly; see internal/probe)
	// once the lab is ready; 0: no probes.
	ProbeInterval time.Duration
	// Prometheus: run Prometheus (the prometheus program on PATH) on
	// DIR/prometheus/ while the lab runs.
	Prometheus bool
	// Traces keeps the spans every process of the lab exports (see
	// ServeTraces), served by GET /v1/traces; nil: no trace store, and the
	// front door POPs record no spans.
	Traces *tracestore.Store
}

// Event is something that happened in the lab, for users and drills.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Region string    `json:"region,omitempty"`
	Link   string    `json:"link,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// Failover steps (kind "failover"), from the regions' controllers.
	Service  string `json:"service,omitempty"`
	Step     string `json:"step,omitempty"`
	Mode     string `json:"mode,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	Position uint64 `json:"position,omitempty"`
	// Gap is set on promote steps, Discarded on rejoin steps (0 included).
	Gap       *uint64 `json:"gap,omitempty"`
	Discarded *uint64 `json:"discarded,omitempty"`
}

// GlobalRegion is the region of the log lines of the lab's global layer
// (front door POPs, GSLB, WAN links, control API, probes) that name no
// region of their own.
const GlobalRegion = "global"

// Lab runs a topology on this machine.
type Lab struct {
	cfg      Config
	topo     *topology.Topology
	dir      string
	log      *slog.Logger
	progress io.Writer
	ready    chan struct{}

	net     *wan.Net
	witness map[string]*WitnessSpec
	etcd    *clientv3.Client // the lab's own member (witness site)
	auth    *witness.Authority
	pgPorts map[string]int // region -> PostgreSQL port, when a service uses it
	glob    *global
	regions []*regionProc
	byName  map[string]*regionProc
	token   string
	fdid    string
	promBin string // the prometheus binary, with Config.Prometheus

	// metrics is the lab process's own registry (control, WAN links,
	// probes), on the control API's /metrics.
	metrics *telemetry.Registry

	mu        sync.Mutex
	endpoints *Endpoints
	events    []Event
}

// New checks the configuration; it starts nothing.
func New(cfg Config) (*Lab, error) {
	if cfg.Topology == nil {
		return nil, errors.New("lab: no topology")
	}
	for _, name := range []string{"orders", "catalog"} {
		if _, ok := cfg.Topology.DataService(name); !ok {
			return nil, fmt.Errorf("lab: the sample workload needs a data service named %q in the topology", name)
		}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = ".geostamp"
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if cfg.Exe == "" {
		if cfg.Exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	// Every line of the lab process belongs to the global layer unless it
	// names a region of its own (the witness site's member names its site).
	if cfg.Logger == nil {
		cfg.Logger = telemetry.Discard()
	}
	cfg.Logger = cfg.Logger.With(telemetry.RegionKey, GlobalRegion)
	var promBin string
	if cfg.Prometheus {
		if promBin, err = findPrometheus(); err != nil {
			return nil, err
		}
	}
	return &Lab{
		promBin:  promBin,
		cfg:      cfg,
		topo:     cfg.Topology,
		dir:      dir,
		log:      telemetry.Component(cfg.Logger, "lab"),
		progress: cfg.Progress,
		ready:    make(chan struct{}),
		byName:   map[string]*regionProc{},
		metrics:  telemetry.NewRegistry(nil),
	}, nil
}

// Ready is closed once every stamp is healthy and endpoints.json is written.
func (l *Lab) Ready() <-chan struct{} { return l.ready }

// Endpoints returns the lab's endpoints, nil before Ready.
func (l *Lab) Endpoints() *Endpoints {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endpoints
}

// Events returns what happened so far.
func (l *Lab) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

func (l *Lab) event(e Event) {
	e.Time = time.Now()
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	args := []any{"kind", e.Kind}
	for _, kv := range [][2]string{{"region", e.Region}, {"link", e.Link}, {"detail", e.Detail}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	l.log.Info("event", args...)
}

func (l *Lab) printf(format string, args ...any) { fmt.Fprintf(l.progress, format, args...) }

// Run starts every region and the control API, waits until the stamps are
// healthy, writes endpoints.json, and runs until ctx ends; then it stops
// every process and listener it started.
func (l *Lab) Run(ctx context.Context) error {
	if err := l.claimDir(); err != nil {
		return err
	}
	start := time.Now()
	l.net = wan.New(l.cfg.Logger)
	l.metrics.Registerer.MustRegister(l.net.Collector())
	defer l.shutdown()
	if err := l.setLinks(); err != nil {
		return err
	}
	ingressPort := l.topo.Lab.IngressPort
	if ingressPort == 0 {
		var err error
		if ingressPort, err = commonFreePort(l.topo.Regions); err != nil {
			return err
		}
	}
	wctx, stopWitness := context.WithCancel(ctx)
	defer stopWitness()
	if err := l.startWitness(wctx); err != nil {
		return err
	}
	if err := l.planPostgres(); err != nil {
		return err
	}
	for i, r := range l.topo.Regions {
		if err := l.startRegion(ctx, i, r, ingressPort); err != nil {
			return err
		}
	}
	gctx, stopGlobal := context.WithCancel(ctx)
	glob, globalDone, err := l.startGlobal(gctx, ingressPort)
	l.glob = glob
	if globalDone != nil {
		defer func() { stopGlobal(); <-globalDone }()
	}
	if err != nil {
		stopGlobal()
		return err
	}
	defer stopGlobal()
	ctl, ctlLn, err := l.listenControl()
	if err != nil {
		return err
	}
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		ctl.Serve(ctlLn)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ctl.Shutdown(sctx)
		<-ctlDone
	}()

	eps := l.buildEndpoints("http://" + ctlLn.Addr().String())
	glob.addEndpoints(eps, l)
	l.printf("waiting for every stamp to report healthy...\n")
	if err := l.waitHealthy(ctx, eps); err != nil {
		return err
	}
	l.awaitWitnessLeader(ctx, 10*time.Second)
	if err := l.writePrometheus(eps); err != nil {
		return err
	}
	if l.promBin != "" {
		url, promDone, err := l.runPrometheus(ctx, l.promBin)
		if promDone != nil {
			defer func() { <-promDone }()
		}
		if err != nil {
			return err
		}
		eps.Prometheus = url
		l.printf("prometheus on %s\n", url)
	}
	// The effective topology, every default filled in: drills read their
	// objectives and floor from it.
	if b, err := topology.Marshal(l.topo); err != nil {
		return fmt.Errorf("lab: %w", err)
	} else if err := os.WriteFile(filepath.Join(l.dir, "topology.yaml"), b, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := writeJSONFile(filepath.Join(l.dir, "endpoints.json"), eps, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer os.Remove(filepath.Join(l.dir, "endpoints.json"))
	l.mu.Lock()
	l.endpoints = eps
	l.mu.Unlock()
	l.event(Event{Kind: "ready", Detail: fmt.Sprintf("all regions healthy in %s", time.Since(start).Round(time.Millisecond))})
	l.printf("all regions healthy in %s\n", time.Since(start).Round(100*time.Millisecond))
	close(l.ready)
	go l.printFailovers(ctx)
	waitProbes, err := l.startProbes(ctx, eps)
	if err != nil {
		return err
	}
	defer waitProbes()
	<-ctx.Done()
	l.printf("stopping...\n")
	return nil
}

// claimDir creates the state dir, refuses one used by a running lab, and
// writes a fresh token.
func (l *Lab) claimDir() error {
	for _, d := range []string{l.dir, filepath.Join(l.dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if old, err := ReadEndpoints(l.dir); err == nil && old.PID > 0 && old.PID != os.Getpid() && syscall.Kill(old.PID, 0) == nil {
		return fmt.Errorf("lab: a lab is already running in %s (pid %d); stop it or use another --state-dir", l.dir, old.PID)
	}
	l.token = randomHex(32)
	l.fdid = randomHex(16)
	if err := os.WriteFile(l.tokenFile(), []byte(l.token+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: token: %w", err)
	}
	return os.Chmod(l.tokenFile(), 0o600)
}

func (l *Lab) tokenFile() string { return filepath.Join(l.dir, "token") }

// setLinks creates a WAN link for every pair of sites with the topology's
// latencies.
func (l *Lab) setLinks() error {
	sites := l.topo.Sites()
	for i, a := range sites {
		for _, b := range sites[i+1:] {
			link := l.net.Link(a, b)
			for _, d := range [][2]string{{a, b}, {b, a}} {
				lat := l.topo.Latency(d[0], d[1])
				if err := link.SetLatency(d[0], d[1], lat.Latency.D(), lat.Jitter.D()); err != nil {
					return fmt.Errorf("lab: %w", err)
				}
			}
		}
	}
	return nil
}

func (l *Lab) startRegion(ctx context.Context, i int, r topology.Region, ingressPort int) error {
	spec := RegionSpec{
		Name:      r.Name,
		Index:     i,
		Host:      r.Address,
		Ports:     RegionPorts{Ingress: ingressPort},
		DataDir:   filepath.Join(l.dir, "regions", r.Name),
		Replicas:  r.Replicas,
		FDID:      l.fdid,
		TokenFile: l.tokenFile(),
		Log:       l.cfg.RegionLog,
	}
	spec.Witness = l.witness[r.Name]
	for _, d := range l.topo.Data {
		spec.Services = append(spec.Services, ServiceSpec{
			Name: d.Name, Kind: d.Kind, Engine: d.Engine, Primary: d.Primary,
			Replication: d.Replication, Policy: d.Failover.Policy, Grace: d.Failover.Grace.D(), Lease: d.Failover.Lease.D(),
			Regions: l.preferenceOrder(),
		})
	}
	if port, ok := l.pgPorts[r.Name]; ok {
		spec.Postgres = &PostgresSpec{Port: port, Peers: map[string]string{}}
		for _, other := range l.topo.Regions {
			if other.Name == r.Name {
				continue
			}
			addr, err := l.net.Proxy("postgres "+r.Name+"->"+other.Name, r.Name, other.Name, net.JoinHostPort(l.topo.Lab.Host, "0"),
				net.JoinHostPort(other.Address, strconv.Itoa(l.pgPorts[other.Name])))
			if err != nil {
				return fmt.Errorf("lab: %w", err)
			}
			spec.Postgres.Peers[other.Name] = addr
		}
	}
	// Leafnode remotes: the lower regions, each through its WAN link, so
	// leaf connections form a tree.
	for _, lower := range l.regions {
		addr, err := l.net.Proxy("nats-leaf "+r.Name+"->"+lower.spec.Name, r.Name, lower.spec.Name, net.JoinHostPort(l.topo.Lab.Host, "0"),
			net.JoinHostPort(lower.spec.Host, strconv.Itoa(lower.ports().NATSLeaf)))
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		spec.LeafRemotes = append(spec.LeafRemotes, addr)
	}
	if err := os.MkdirAll(spec.DataDir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	specPath, logPath := regionFiles(l.dir, r.Name)
	p := &regionProc{exe: l.cfg.Exe, specPath: specPath, logPath: logPath, spec: spec, onExit: l.regionExited}
	l.regions = append(l.regions, p)
	l.byName[r.Name] = p
	l.printf("starting region %-14s on %s\n", r.Name, r.Address)
	return p.start(ctx, l.topo.Lab.StartTimeout.D())
}

func (l *Lab) regionExited(name, state, detail string) {
	if state == StateExited {
		l.printf("region %s died (%s); it is not restarted: `geostamp region restart %s` brings it back\n", name, detail, name)
	}
	l.event(Event{Kind: "region-" + state, Region: name, Detail: detail})
}

func (l *Lab) buildEndpoints(control string) *Endpoints {
	eps := &Endpoints{
		Name:      l.topo.Name,
		Regions:   map[string]RegionEndpoint{},
		Control:   control,
		TokenFile: l.tokenFile(),
		StateDir:  l.dir,
		PID:       os.Getpid(),
		FDID:      l.fdid,
	}
	for _, p := range l.regions {
		ports := p.ports()
		host := p.spec.Host
		ingress := "http://" + net.JoinHostPort(host, strconv.Itoa(ports.Ingress))
		eps.Regions[p.spec.Name] = RegionEndpoint{
			Address: host,
			Ingress: ingress,
			Health:  ingress + "/health/stamp",
			Admin:   "http://" + net.JoinHostPort(host, strconv.Itoa(ports.Admin)),
			NATS:    "nats://" + net.JoinHostPort(host, strconv.Itoa(ports.NATSClient)),
		}
	}
	return eps
}

// waitHealthy polls every stamp's /health/stamp until all answer 200.
func (l *Lab) waitHealthy(ctx context.Context, eps *Endpoints) error {
	deadline := time.Now().Add(l.topo.Lab.StartTimeout.D())
	client := &http.Client{Timeout: time.Second}
	pending := map[string]string{}
	for name, r := range eps.Regions {
		pending[name] = r.Health
	}
	for {
		for name, url := range pending {
			if p := l.byName[name]; p.snapshot().State != StateRunning {
				return fmt.Errorf("lab: region %s is %s; see %s", name, p.snapshot().State, p.logPath)
			}
			if resp, err := client.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					l.printf("region %-14s healthy\n", name)
					delete(pending, name)
				}
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: regions not healthy within %s: %v (see %s)", l.topo.Lab.StartTimeout, keys(pending), filepath.Join(l.dir, "logs"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// shutdown stops every region process and every WAN link; safe after a
// partial start.
func (l *Lab) shutdown() {
	var wg sync.WaitGroup
	for _, p := range l.regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(5 * time.Second)
		}()
	}
	wg.Wait()
	if l.net != nil {
		l.net.Close()
	}
}

// startWitness plans every site's etcd member and runs the witness site's
// member in this process (the region processes run theirs). Without a
// witness site, the lab's client talks to the regions' members.
func (l *Lab) startWitness(ctx context.Context) error {
	specs, err := l.planWitness()
	if err != nil {
		return err
	}
	l.witness = specs
	logger := telemetry.Component(l.cfg.Logger, "witness")
	if w := l.topo.Witness; w != "" {
		logger = logger.With(telemetry.RegionKey, w)
		errc := make(chan error, 2)
		go func() {
			for err := range errc {
				l.log.Error("witness site", "err", err)
			}
		}()
		l.etcd, err = runWitnessMember(ctx, specs[w], logger, errc)
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		go l.leadFromWitness(ctx, specs[w].ClientURL)
	} else {
		var eps []string
		for _, s := range specs {
			eps = append(eps, s.ClientURL)
		}
		if l.etcd, err = witness.NewClient(eps, logger); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	l.auth = witness.NewAuthority(l.etcd, "", l.log)
	context.AfterFunc(ctx, func() { l.etcd.Close() })
	return nil
}

// printFailovers prints each failover step of every region as it happens.
func (l *Lab) printFailovers(ctx context.Context) {
	prefix := failover.DefaultPrefix + "events/"
	for ctx.Err() == nil {
		for resp := range l.etcd.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix()) {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				var e failover.Event
				if ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &e) != nil {
					continue
				}
				l.printf("failover %s: %-12s %-8s epoch %d  %s\n", e.Service, e.Region, e.Step, e.Epoch, e.Detail)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// leadFromWitness keeps the raft leadership at the witness site's member
// when it can. Why: a region's lease renewals go to the leader, so with the
// leader in a region, a cut between the two regions could cost the other
// region its lease although it still reaches the witness. With the witness
// leading, a region keeps its lease exactly as long as it reaches the
// witness, which is what the topology's witness means.
func (l *Lab) leadFromWitness(ctx context.Context, self string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		l.witnessLeads(ctx, self)
	}
}

// witnessLeads moves the raft leadership to the witness site's member if
// another member leads, and reports whether the witness leads now.
func (l *Lab) witnessLeads(ctx context.Context, self string) bool {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	st, err := l.etcd.Status(sctx, self)
	var leaderURLs []string
	if err == nil && st.Leader != 0 && st.Leader != st.Header.MemberId {
		if ml, err := l.etcd.MemberList(sctx); err == nil {
			for _, m := range ml.Members {
				if m.ID == st.Leader {
					leaderURLs = m.ClientURLs
				}
			}
		}
	}
	cancel()
	if err != nil || st.Leader == 0 {
		return false
	}
	if st.Leader == st.Header.MemberId {
		return true
	}
	if len(leaderURLs) == 0 {
		return false
	}
	cli, err := witness.NewClient(leaderURLs, nil)
	if err != nil {
		return false
	}
	defer cli.Close()
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := cli.MoveLeader(mctx, st.Header.MemberId); err != nil {
		return false
	}
	l.log.Info("witness: raft leadership moved to the witness site", "from", st.Leader)
	return true
}

// awaitWitnessLeader waits, up to bound, until the witness site leads, so
// that a ready lab survives the loss of any one region without an
// election (with the leader in a region, killing that region stalls every
// lease renewal for an election: a spurious failover).
func (l *Lab) awaitWitnessLeader(ctx context.Context, bound time.Duration) {
	w := l.topo.Witness
	if w == "" || l.etcd == nil {
		return
	}
	for end := time.Now().Add(bound); time.Now().Before(end) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		if l.witnessLeads(ctx, l.witness[w].ClientURL) {
			return
		}
	}
	l.log.Warn("witness: the witness site does not lead the raft group yet; losing the leading region will cost an election", "waited", bound)
}

// planPostgres picks a PostgreSQL port in every region when a service
// uses the postgres engine.
func (l *Lab) planPostgres() error {
	uses := false
	for _, d := range l.topo.Data {
		uses = uses || d.Engine == "postgres"
	}
	if !uses {
		return nil
	}
	l.pgPorts = map[string]int{}
	for _, r := range l.topo.Regions {
		ports, err := freePorts(r.Address, 1)
		if err != nil {
			return fmt.Errorf("lab: postgres port in %s: %w", r.Name, err)
		}
		l.pgPorts[r.Name] = ports[0]
	}
	return nil
}

// preferenceOrder lists the regions by priority (file order on ties).
func (l *Lab) preferenceOrder() []string {
	rs := append([]topology.Region(nil), l.topo.Regions...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Priority < rs[j].Priority })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// commonFreePort finds a port that is free on every region's address, so
// that every ingress listens on the same port. It comes from below the
// ephemeral range (see freePorts): region processes bind it after other
// listeners of theirs took ports chosen by the OS.
func commonFreePort(regions []topology.Region) (int, error) {
	for range 100 {
		ports, err := freePorts(regions[0].Address, 1)
		if err != nil {
			return 0, fmt.Errorf("lab: region %s: %w (on Linux every 127.x.y.z address is local; elsewhere add the address to the loopback interface)", regions[0].Name, err)
		}
		port, ok := ports[0], true
		var held []net.Listener
		for _, r := range regions[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(r.Address, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("lab: found no port free on every region address; set lab.ingressPort")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
