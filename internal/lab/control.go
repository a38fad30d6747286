package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/geostamp/geostamp/internal/auth"
	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/failover"
	"github.com/geostamp/geostamp/internal/httpjson"
	"github.com/geostamp/geostamp/internal/stamp"
	"github.com/geostamp/geostamp/internal/topology"
)

// RegionInfo is one region in the control API's list.
type RegionInfo struct {
	RegionProcess
	Address string          `json:"address"`
	Ingress string          `json:"ingress"`
	Health  json.RawMessage `json:"health,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// LinkRequest is the body of POST /v1/links/{a}/{b}/{action}.
type LinkRequest struct {
	// OneWay limits cut, heal and latency to traffic from a to b.
	OneWay  bool              `json:"one_way,omitempty"`
	Latency topology.Duration `json:"latency,omitempty"`
	Jitter  topology.Duration `json:"jitter,omitempty"`
}

func (l *Lab) listenControl() (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(l.topo.Lab.Host, "0"))
	if err != nil {
		return nil, nil, fmt.Errorf("lab: control API: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/regions", l.handleRegions)
	mux.HandleFunc("POST /v1/regions/{name}/{action}", l.handleRegionAction)
	mux.HandleFunc("GET /v1/links", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, l.net.Links())
	})
	mux.HandleFunc("POST /v1/links/{a}/{b}/{action}", l.handleLinkAction)
	mux.HandleFunc("GET /v1/data", l.handleData)
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, l.allEvents(r.Context()))
	})
	mux.HandleFunc("GET /v1/failover", l.handleGroups)
	mux.HandleFunc("GET /v1/failover/{service}", l.handleGroups)
	mux.HandleFunc("POST /v1/failover/{service}", l.handleFailover)
	mux.HandleFunc("POST /v1/data/{service}/crash", l.handleCrash)
	mux.HandleFunc("POST /v1/pops/{name}/{action}", l.handlePOP)
	mux.HandleFunc("GET /v1/traces", l.handleTraces)
	mux.HandleFunc("GET /v1/traces/{id}", l.handleTrace)
	mux.HandleFunc("GET /v1/endpoints", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, l.Endpoints())
	})
	// Metrics are read-only and scraped without the token, as usual.
	top := http.NewServeMux()
	top.Handle("GET /metrics", l.metrics.Handler())
	top.Handle("/", auth.Bearer(l.token, traceControl(l.countFaults(mux))))
	srv := &http.Server{Handler: top, ReadHeaderTimeout: 5 * time.Second}
	return srv, ln, nil
}

func errorJSON(w http.ResponseWriter, code int, format string, args ...any) {
	httpjson.Error(w, code, fmt.Sprintf(format, args...))
}

func (l *Lab) regionEndpoint(name string) RegionEndpoint {
	if eps := l.Endpoints(); eps != nil {
		return eps.Regions[name]
	}
	return RegionEndpoint{}
}

func (l *Lab) handleRegions(w http.ResponseWriter, r *http.Request) {
	out := make([]RegionInfo, len(l.regions))
	client := &http.Client{Timeout: 500 * time.Millisecond}
	done := make(chan struct{})
	for i, p := range l.regions {
		go func() {
			defer func() { done <- struct{}{} }()
			ep := l.regionEndpoint(p.spec.Name)
			info := RegionInfo{RegionProcess: p.snapshot(), Address: p.spec.Host, Ingress: ep.Ingress}
			if ep.Health != "" && info.State == StateRunning {
				if b, err := get(r.Context(), client, ep.Health, ""); err != nil {
					info.Error = err.Error()
				} else {
					info.Health = b
				}
			}
			out[i] = info
		}()
	}
	for range l.regions {
		<-done
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (l *Lab) handleRegionAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	p, ok := l.byName[name]
	if !ok {
		errorJSON(w, http.StatusNotFound, "no region %q (regions: %s)", name, strings.Join(l.topo.RegionNames(), ", "))
		return
	}
	var err error
	switch action {
	case "kill":
		err = p.kill(StateKilled)
	case "freeze":
		err = p.signal(syscall.SIGSTOP, StateFrozen)
	case "resume":
		err = p.signal(syscall.SIGCONT, StateRunning)
	case "restart":
		if p.snapshot().PID != 0 {
			err = p.kill(StateKilled)
		}
		if err == nil {
			err = p.start(r.Context(), l.topo.Lab.StartTimeout.D())
		}
	case "drain", "undrain":
		err = l.regionAdmin(r.Context(), name, action, nil)
	case "brownout":
		var f stamp.Fault
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
			errorJSON(w, http.StatusBadRequest, "invalid fault JSON (want {\"share\": 0.5, \"status\": 503, \"delay\": \"1s\"}): %v", err)
			return
		}
		if err := f.Validate(); err != nil {
			errorJSON(w, http.StatusBadRequest, "%v", err)
			return
		}
		b, _ := json.Marshal(f)
		err = l.regionAdmin(r.Context(), name, "fault", b)
	default:
		errorJSON(w, http.StatusNotFound, "unknown action %q (kill, freeze, resume, restart, drain, undrain, brownout)", action)
		return
	}
	if err != nil {
		errorJSON(w, http.StatusConflict, "%v", err)
		return
	}
	l.event(Event{Kind: "region-" + action, Region: name})
	httpjson.Write(w, http.StatusOK, p.snapshot())
}

func (l *Lab) regionAdmin(ctx context.Context, name, action string, body []byte) error {
	ep := l.regionEndpoint(name)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ep.Admin+"/admin/"+action, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("region %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return fmt.Errorf("region %s: %s %s", name, resp.Status, httpjson.ErrorMessage(b))
	}
	return nil
}

func (l *Lab) handleLinkAction(w http.ResponseWriter, r *http.Request) {
	a, b, action := r.PathValue("a"), r.PathValue("b"), r.PathValue("action")
	link, ok := l.net.Find(a, b)
	if !ok {
		errorJSON(w, http.StatusNotFound, "no WAN link between %q and %q (sites: %s)", a, b, strings.Join(l.topo.Sites(), ", "))
		return
	}
	var req LinkRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			errorJSON(w, http.StatusBadRequest, "invalid JSON body: %v", err)
			return
		}
	}
	var err error
	switch action {
	case "cut":
		if req.OneWay {
			err = link.Cut(a, b)
		} else {
			link.CutBoth()
		}
	case "heal":
		if req.OneWay {
			err = link.Heal(a, b)
		} else {
			link.HealBoth()
		}
	case "latency":
		err = link.SetLatency(a, b, req.Latency.D(), req.Jitter.D())
		if err == nil && !req.OneWay {
			err = link.SetLatency(b, a, req.Latency.D(), req.Jitter.D())
		}
	default:
		errorJSON(w, http.StatusNotFound, "unknown action %q (cut, heal, latency)", action)
		return
	}
	if err != nil {
		errorJSON(w, http.StatusBadRequest, "%v", err)
		return
	}
	dir := a + "<->" + b
	if req.OneWay {
		dir = a + "->" + b
	}
	l.event(Event{Kind: "link-" + action, Link: dir, Detail: req.Latency.String()})
	httpjson.Write(w, http.StatusOK, link.State())
}

// handleData gathers every region's replication state. A secondary cut off
// from its primary cannot know the primary's position; the control plane
// can, so it fills PrimarySeq and LagWrites in from the primary's report.
func (l *Lab) handleData(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, l.dataStatus(r.Context()))
}

func (l *Lab) dataStatus(ctx context.Context) map[string]RegionStatus {
	client := &http.Client{Timeout: 3 * time.Second}
	all := make([]RegionStatus, len(l.regions))
	var wg sync.WaitGroup
	for i, p := range l.regions {
		wg.Go(func() {
			st := RegionStatus{Region: p.spec.Name}
			if b, err := get(ctx, client, l.regionEndpoint(p.spec.Name).Admin+"/admin/status", l.token); err != nil {
				st.Error = err.Error()
			} else if err := json.Unmarshal(b, &st); err != nil {
				st.Error = err.Error()
			}
			all[i] = st
		})
	}
	wg.Wait()
	out := map[string]RegionStatus{}
	for _, st := range all {
		out[st.Region] = st
	}
	for _, st := range out {
		for i := range st.Data {
			s := &st.Data[i]
			if s.PrimarySeq != 0 || s.Role == data.RolePrimary {
				continue
			}
			for _, ps := range out[s.Primary].Data {
				if ps.Service == s.Service && ps.Role == data.RolePrimary {
					s.PrimarySeq = ps.LastSeq
					if ps.LastSeq > s.LastSeq {
						s.LagWrites = ps.LastSeq - s.LastSeq
					}
					s.Detail = strings.TrimPrefix(s.Detail+"; primary position from the control plane", "; ")
				}
			}
		}
	}
	return out
}

func get(ctx context.Context, c *http.Client, url, token string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, nil
}

// FailoverRequest is the body of POST /v1/failover/{service}.
type FailoverRequest struct {
	To   string `json:"to"`
	Mode string `json:"mode"` // planned (default) or forced
	// Timeout bounds the whole failover; default 30s.
	Timeout topology.Duration `json:"timeout,omitempty"`
}

// FailoverResult is the answer: the failover's steps in every region.
type FailoverResult struct {
	Service string  `json:"service"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Mode    string  `json:"mode"`
	Epoch   uint64  `json:"epoch"`
	Seconds float64 `json:"seconds"`
	Steps   []Event `json:"steps"`
	// TraceID is the failover's trace (GET /v1/traces/{id}).
	TraceID string `json:"trace_id,omitempty"`
}

func (l *Lab) handleFailover(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	svc, ok := l.topo.DataService(name)
	if !ok || svc.Kind != data.KindPrimarySecondary {
		errorJSON(w, http.StatusNotFound, "no primary-secondary data service %q", name)
		return
	}
	var req FailoverRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		errorJSON(w, http.StatusBadRequest, `invalid JSON body (want {"to": "REGION", "mode": "planned"|"forced"}): %v`, err)
		return
	}
	if req.Mode == "" {
		req.Mode = failover.ModePlanned
	}
	if _, ok := l.topo.Region(req.To); !ok {
		errorJSON(w, http.StatusBadRequest, "to: %q is not a region (regions: %s)", req.To, strings.Join(l.topo.RegionNames(), ", "))
		return
	}
	timeout := req.Timeout.D()
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	l.event(Event{Kind: "failover-request", Service: name, Region: req.To, Mode: req.Mode})
	res, err := failover.Ask(r.Context(), l.etcd, l.auth, "", name, req.To, req.Mode, timeout)
	out := FailoverResult{Service: name, From: res.From, To: req.To, Mode: req.Mode, Epoch: res.Epoch, Seconds: res.Seconds, TraceID: res.TraceID}
	for _, e := range res.Steps {
		out.Steps = append(out.Steps, failoverEvent(e))
	}
	switch {
	case errors.Is(err, failover.ErrRefused):
		errorJSON(w, http.StatusConflict, "%v", err)
	case err != nil:
		httpjson.Write(w, http.StatusGatewayTimeout, map[string]any{"error": err.Error(), "result": out})
	default:
		httpjson.Write(w, http.StatusOK, out)
	}
}

// Group is a failover group as the control API shows it: who is primary
// at which epoch, and the read-write and read-only endpoints of its engine.
type Group struct {
	Service string `json:"service"`
	Engine  string `json:"engine"`
	Policy  string `json:"policy"`
	Primary string `json:"primary"`
	Epoch   uint64 `json:"epoch"`
	// ReadWrite reaches the primary; ReadOnly the secondaries (engine
	// addresses: postgres:// or nats:// URLs).
	ReadWrite string   `json:"read_write,omitempty"`
	ReadOnly  []string `json:"read_only,omitempty"`
}

func (l *Lab) handleGroups(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var out []Group
	for _, d := range l.topo.Data {
		if d.Kind != data.KindPrimarySecondary || (r.PathValue("service") != "" && r.PathValue("service") != d.Name) {
			continue
		}
		owner, err := l.auth.Current(ctx, d.Name)
		if err != nil {
			errorJSON(w, http.StatusServiceUnavailable, "witness: %v", err)
			return
		}
		g := Group{Service: d.Name, Engine: d.Engine, Policy: d.Failover.Policy, Primary: owner.Holder, Epoch: owner.Epoch}
		for _, reg := range l.topo.Regions {
			addr := l.engineURL(d.Engine, reg)
			if reg.Name == owner.Holder {
				g.ReadWrite = addr
			} else {
				g.ReadOnly = append(g.ReadOnly, addr)
			}
		}
		out = append(out, g)
	}
	if r.PathValue("service") != "" {
		if len(out) == 0 {
			errorJSON(w, http.StatusNotFound, "no primary-secondary data service %q", r.PathValue("service"))
			return
		}
		httpjson.Write(w, http.StatusOK, out[0])
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

// engineURL is where a region's data engine listens.
func (l *Lab) engineURL(engine string, r topology.Region) string {
	if engine == "postgres" {
		return "postgres://postgres@" + net.JoinHostPort(r.Address, strconv.Itoa(l.pgPorts[r.Name])) + "/postgres"
	}
	return l.regionEndpoint(r.Name).NATS
}

func failoverEvent(e failover.Event) Event {
	out := Event{Time: e.Time, Kind: "failover", Region: e.Region, Service: e.Service, Step: e.Step, Mode: e.Mode,
		Epoch: e.Epoch, Position: e.Position, Detail: e.Detail}
	switch e.Step {
	case failover.StepPromote:
		out.Gap = &e.Gap
	case failover.StepRejoin:
		out.Discarded = &e.Discarded
	}
	return out
}

// allEvents merges the lab's events with the failover steps recorded at
// the witness, in time order.
func (l *Lab) allEvents(ctx context.Context) []Event {
	evs := l.Events()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if fevs, err := failover.Events(ctx, l.etcd, "", "", time.Time{}); err == nil {
		for _, e := range fevs {
			evs = append(evs, failoverEvent(e))
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	return evs
}

// handleCrash makes the data engine of a service's current primary die,
// leaving its region running (the data-primary-loss fault).
func (l *Lab) handleCrash(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	svc, ok := l.topo.DataService(name)
	if !ok || svc.Kind != data.KindPrimarySecondary {
		errorJSON(w, http.StatusNotFound, "no primary-secondary data service %q", name)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	owner, err := l.auth.Current(ctx, name)
	if err != nil {
		errorJSON(w, http.StatusServiceUnavailable, "witness: %v", err)
		return
	}
	if owner.Holder == "" {
		errorJSON(w, http.StatusConflict, "%s has no primary now", name)
		return
	}
	if err := l.regionAdmin(ctx, owner.Holder, "data/"+name+"/crash", nil); err != nil {
		errorJSON(w, http.StatusBadGateway, "%v", err)
		return
	}
	l.event(Event{Kind: "data-crash", Region: owner.Holder, Service: name, Epoch: owner.Epoch, Detail: "the primary's data engine was killed"})
	httpjson.Write(w, http.StatusOK, map[string]any{"service": name, "region": owner.Holder, "epoch": owner.Epoch})
}

func (l *Lab) handlePOP(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var err error
	switch action {
	case "kill":
		err = l.glob.killPOP(name)
	case "restart":
		err = l.glob.restartPOP(name)
	default:
		errorJSON(w, http.StatusNotFound, "unknown action %q (kill, restart)", action)
		return
	}
	if err != nil {
		errorJSON(w, http.StatusNotFound, "%v", err)
		return
	}
	l.event(Event{Kind: "pop-" + action, Region: name})
	httpjson.Write(w, http.StatusOK, map[string]string{"pop": name, "action": action})
}
