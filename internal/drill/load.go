package drill

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geostamp/geostamp/internal/fault"
	"github.com/geostamp/geostamp/internal/httpjson"
)

// Defaults of LoadConfig.
const (
	DefaultRate       = 200.0
	DefaultReadShare  = 0.7
	DefaultTimeout    = 5 * time.Second
	DefaultDNSClients = 20
	// HeaderRegion names the region that served a response; HeaderFDID
	// carries the front door id that stamps require (origin lock) from
	// requests that bypass the front door.
	HeaderRegion = "X-Geostamp-Region"
	HeaderFDID   = "X-Geostamp-FDID"
	// HeaderDataRegion, when a response carries it, names the region whose
	// data service acknowledged a write (Op.DataRegion).
	HeaderDataRegion = "X-Geostamp-Data-Region"
)

// Targets are the addresses the load reaches.
type Targets struct {
	// FrontDoor is the front door's base URL (https:// or http://).
	FrontDoor string
	// RootCAs verifies the front door's certificate; nil means the system's.
	RootCAs *x509.CertPool
	// DNSServer is the GSLB's address (host:port) and DNSName the routed
	// name (fully qualified), for the dns path.
	DNSServer, DNSName string
	// IngressPort is the port of every region's ingress: a DNS answer (an
	// address) is reached on it, over plain HTTP.
	IngressPort string
	// FDID is sent as X-Geostamp-FDID on requests that bypass the front
	// door (dns path, readback), as the stamps' origin lock requires.
	FDID string
	// Regions maps each region to its ingress base URL, for the readback;
	// empty: the readback goes through the front door.
	Regions map[string]string
}

// LoadConfig configures the load generator.
type LoadConfig struct {
	// Rate is the open-loop rate in operations per second over all
	// streams; default 200.
	Rate float64
	// ReadShare is the share of reads (the rest are unique order writes);
	// default 0.7. Set WriteOnly for none.
	ReadShare float64
	WriteOnly bool
	// Duration is the length of the schedule; required.
	Duration time.Duration
	// Timeout bounds each operation; an operation without an answer by
	// then is unknown. Default 5s.
	Timeout time.Duration
	// Streams are the paths and connection modes, interleaved over the one
	// schedule (operation seq uses Streams[seq % len]); default the front
	// door with pooled and fresh connections.
	Streams []fault.Stream
	// Service is the data service the orders API writes; default orders.
	Service string
	// DNSClients is the number of simulated clients on the dns path, each
	// with its own TTL-respecting cache; default 20.
	DNSClients int
	// Workers bounds the operations in flight; default enough for every
	// operation to take Timeout: Rate × (Timeout + 1s). When all are busy
	// the generator falls behind, and says so.
	Workers int
	// RunID makes write keys unique across runs; required.
	RunID string
	// Seed chooses the read/write mix; the same seed gives the same mix.
	Seed uint64
}

func (c *LoadConfig) setDefaults() {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.ReadShare == 0 && !c.WriteOnly {
		c.ReadShare = DefaultReadShare
	}
	if c.WriteOnly {
		c.ReadShare = 0
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if len(c.Streams) == 0 {
		c.Streams = []fault.Stream{{Path: fault.PathFrontDoor, Conn: fault.ConnPooled}, {Path: fault.PathFrontDoor, Conn: fault.ConnFresh}}
	}
	if c.Service == "" {
		c.Service = "orders"
	}
	if c.DNSClients == 0 {
		c.DNSClients = DefaultDNSClients
	}
	if c.Workers == 0 {
		c.Workers = int(math.Ceil(c.Rate * (c.Timeout + time.Second).Seconds()))
	}
}

// validate reports every problem of c (defaults filled in) and t at once.
func (c LoadConfig) validate(t Targets) error {
	var errs []error
	if c.Rate <= 0 || c.Rate > 20000 {
		errs = append(errs, fmt.Errorf("rate: must be above 0 and at most 20000 operations/s, got %g", c.Rate))
	}
	if c.ReadShare < 0 || c.ReadShare > 1 {
		errs = append(errs, fmt.Errorf("read share: must be between 0 and 1, got %g", c.ReadShare))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("duration: required"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", c.Timeout))
	}
	if c.RunID == "" {
		errs = append(errs, errors.New("run id: required"))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: must be at least 1, got %d", c.Workers))
	}
	for _, s := range c.Streams {
		switch s.Path {
		case fault.PathFrontDoor, fault.PathDNS, fault.PathFallback:
		default:
			errs = append(errs, fmt.Errorf("stream %s: unknown path", s))
		}
		if s.Conn != fault.ConnPooled && s.Conn != fault.ConnFresh {
			errs = append(errs, fmt.Errorf("stream %s: unknown connection mode", s))
		}
		if s.Path != fault.PathDNS && t.FrontDoor == "" {
			errs = append(errs, fmt.Errorf("stream %s: no front door URL", s))
		}
		if s.Path != fault.PathFrontDoor && (t.DNSServer == "" || t.DNSName == "" || t.IngressPort == "") {
			errs = append(errs, fmt.Errorf("stream %s: the dns path needs a DNS server, a name and the ingress port (a lab provides them)", s))
		}
	}
	return errors.Join(errs...)
}

// LoadGenerator is the open-loop load generator: operation seq is sent at
// LoadStart + seq/Rate whatever happened to earlier ones, by a bounded pool
// of workers, and each attempt is written to the history as it completes.
type LoadGenerator struct {
	cfg   LoadConfig
	tg    Targets
	w     *Writer
	clock *runClock
	start int64 // LoadStart, ns on the run's clock

	clients map[fault.Stream]*http.Client
	dns     []*dnsCache
	latest  atomic.Pointer[ackedWrite]
	stats   Stats

	mu     sync.Mutex
	writes []int64 // seqs of write operations, in order
}

type ackedWrite struct{ key, id string }

// runClock is the run's one monotonic clock: nanoseconds since t=0.
type runClock struct{ t0 time.Time }

func (c *runClock) now() int64 { return int64(time.Since(c.t0)) }

// sleepUntil waits until the run's clock reads t, or ctx ends.
func (c *runClock) sleepUntil(ctx context.Context, t int64) error {
	d := time.Duration(t - c.now())
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// instant is when, on the run's clock, wall-clock time w happened
// (events reported by other processes carry wall-clock times).
func (c *runClock) instant(w time.Time) int64 {
	return int64(w.Round(0).Sub(c.t0.Round(0)))
}

// NewLoadGenerator returns a generator writing to w on the clock that started
// at t0, with its first operation at loadStart (ns after t0). It starts
// nothing.
func NewLoadGenerator(cfg LoadConfig, tg Targets, w *Writer, t0 time.Time, loadStart int64) (*LoadGenerator, error) {
	cfg.setDefaults()
	if err := cfg.validate(tg); err != nil {
		return nil, fmt.Errorf("drill: load: %w", err)
	}
	g := &LoadGenerator{cfg: cfg, tg: tg, w: w, clock: &runClock{t0: t0}, start: loadStart, clients: map[fault.Stream]*http.Client{}}
	for _, s := range cfg.Streams {
		tlsCfg := &tls.Config{RootCAs: tg.RootCAs, MinVersion: tls.VersionTLS12}
		tr := &http.Transport{
			Proxy:               nil, // never an environment proxy: measure the platform
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConns:        cfg.Workers,
			MaxIdleConnsPerHost: cfg.Workers,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			DisableKeepAlives:   s.Conn == fault.ConnFresh,
		}
		g.clients[s] = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	for i := range cfg.DNSClients {
		g.dns = append(g.dns, &dnsCache{server: tg.DNSServer, name: tg.DNSName, index: i, of: cfg.DNSClients})
	}
	return g, nil
}

// Scheduled is the number of operations in the schedule.
func (g *LoadGenerator) Scheduled() int64 {
	return int64(math.Floor(g.cfg.Duration.Seconds()*g.cfg.Rate + 1e-9))
}

// Intended is the scheduled instant of operation seq.
func (g *LoadGenerator) Intended(seq int64) int64 {
	return g.start + int64(math.Round(float64(seq)*1e9/g.cfg.Rate))
}

// Result is what the generator reports about its own schedule.
type Result struct {
	// Scheduled operations were dispatched (fewer than planned when the
	// run was cut short).
	Scheduled int64
	// MaxLag is the largest delay between an operation's intended instant
	// and its hand-over to a worker; LateOps were handed over more than
	// DefaultMaxSendLag late.
	MaxLag  time.Duration
	LateOps int64
	// Behind is set when the generator could not keep its schedule (more
	// than DefaultMaxLateFraction of the operations late).
	Behind bool
	// Writes are the keys of every write sent, acknowledged or not.
	Writes []string
}

type job struct {
	seq      int64
	intended int64
	write    bool
}

// Run sends the schedule and returns when every operation has completed
// (or timed out). If ctx ends first, no further operation is dispatched.
func (g *LoadGenerator) Run(ctx context.Context) Result {
	n := g.Scheduled()
	jobs := make(chan job)
	var wg sync.WaitGroup
	// Operations run on their own context, so that an interruption stops
	// the schedule but lets operations in flight end with an outcome.
	opCtx := context.WithoutCancel(ctx)
	for range min(g.cfg.Workers, int(n)+1) {
		wg.Go(func() {
			for j := range jobs {
				g.do(opCtx, j)
			}
		})
	}
	// The simulated DNS clients keep their answers fresh while the load
	// runs (see dnsCache).
	dnsCtx, stopDNS := context.WithCancel(ctx)
	var dnsWG sync.WaitGroup
	if g.usesDNS() {
		for _, c := range g.dns {
			dnsWG.Go(func() { c.run(dnsCtx, g.clock) })
		}
	}
	defer func() { stopDNS(); dnsWG.Wait() }()
	var res Result
	writeShare := 1 - g.cfg.ReadShare
	for seq := int64(0); seq < n; seq++ {
		at := g.Intended(seq)
		if g.clock.sleepUntil(ctx, at) != nil {
			break
		}
		j := job{seq: seq, intended: at, write: unit(g.cfg.Seed, seq) < writeShare}
		if j.write {
			g.mu.Lock()
			g.writes = append(g.writes, seq)
			g.mu.Unlock()
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		lag := time.Duration(g.clock.now() - at)
		res.MaxLag = max(res.MaxLag, lag)
		if lag > DefaultMaxSendLag {
			res.LateOps++
		}
		res.Scheduled = seq + 1
	}
	close(jobs)
	wg.Wait()
	for _, c := range g.clients {
		c.CloseIdleConnections()
	}
	res.Behind = res.Scheduled > 0 && float64(res.LateOps) > DefaultMaxLateFraction*float64(res.Scheduled)
	g.mu.Lock()
	for _, seq := range g.writes {
		if seq < res.Scheduled {
			res.Writes = append(res.Writes, g.key(seq))
		}
	}
	g.mu.Unlock()
	return res
}

func (g *LoadGenerator) usesDNS() bool {
	for _, s := range g.cfg.Streams {
		if s.Path != fault.PathFrontDoor {
			return true
		}
	}
	return false
}

// unit maps (seed, seq) to [0, 1) with splitmix64: a fixed, uniform mix.
func unit(seed uint64, seq int64) float64 {
	z := seed + uint64(seq)*0x9e3779b97f4a7c15 + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// key is the unique order key of write seq; it is the order's item, so
// that it can be found in the readback even when the write's outcome
// (and so its server-assigned id) is unknown.
func (g *LoadGenerator) key(seq int64) string { return fmt.Sprintf("drill-%s-%d", g.cfg.RunID, seq) }

// KeyPrefix is the prefix of every write key of the run.
func (g *LoadGenerator) KeyPrefix() string { return "drill-" + g.cfg.RunID + "-" }

// do runs one operation: one attempt, or two when a front door connection
// fails on the fallback path.
func (g *LoadGenerator) do(ctx context.Context, j job) {
	st := g.cfg.Streams[int(j.seq%int64(len(g.cfg.Streams)))]
	g.stats.sent.Add(1)
	g.stats.inFlight.Add(1)
	defer g.stats.inFlight.Add(-1)
	op := Op{Seq: j.seq, Service: g.cfg.Service, Intended: j.intended, Attempt: 1, Conn: st.Conn}
	if j.write {
		op.Op, op.Key = OpWrite, g.key(j.seq)
	} else {
		op.Op = OpRead
		if a := g.latest.Load(); a != nil {
			op.Key, op.ID = a.key, a.id
		}
	}
	// The timeout runs from the hand-over to the worker, for all attempts.
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	switch st.Path {
	case fault.PathFrontDoor:
		op.Path = PathFrontDoor
		g.attempt(ctx, &op, g.tg.FrontDoor, g.clients[st], "")
	case fault.PathDNS:
		op.Path = PathDNS
		g.viaDNS(ctx, &op, st, j.seq)
	case fault.PathFallback:
		op.Path = PathFrontDoor
		g.attempt(ctx, &op, g.tg.FrontDoor, g.clients[st], "")
		if op.Outcome == Fail && op.Status == 0 && ctx.Err() == nil {
			g.record(&op)
			op = Op{Seq: op.Seq, Op: op.Op, Key: op.Key, ID: op.ID, Service: op.Service, Intended: op.Intended,
				Attempt: 2, Path: PathDNS, Conn: st.Conn}
			g.viaDNS(ctx, &op, st, j.seq)
		}
	}
	g.record(&op)
}

// record writes one attempt and counts it.
func (g *LoadGenerator) record(op *Op) {
	_ = g.w.Write(op) // a write error is sticky and reported by Flush
	g.stats.count(op)
	if op.Op == OpWrite && op.Outcome == OK && op.ID != "" {
		g.latest.Store(&ackedWrite{key: op.Key, id: op.ID})
	}
}

func (g *LoadGenerator) viaDNS(ctx context.Context, op *Op, st fault.Stream, seq int64) {
	c := g.dns[int(seq/int64(len(g.cfg.Streams)))%len(g.dns)]
	op.Sent = g.clock.now()
	addr, err := c.get(ctx, g.clock)
	if err != nil {
		op.Done = g.clock.now()
		op.Outcome, op.Error = classify(ctx, err), "dns: "+err.Error()
		return
	}
	op.Addr = net.JoinHostPort(addr, g.tg.IngressPort)
	g.attempt(ctx, op, "http://"+op.Addr, g.clients[st], g.tg.FDID)
}

// orderAck is the body of a created order (workload's createOrderResponse),
// with the data region when the platform reports it.
type orderAck struct {
	ID         string `json:"id"`
	Region     string `json:"region"`
	Seq        uint64 `json:"seq"`
	DataRegion string `json:"data_region"`
}

// attempt sends op to base and fills its outcome. Sent is kept when
// already set (the dns path counts the resolution as service time).
func (g *LoadGenerator) attempt(ctx context.Context, op *Op, base string, c *http.Client, fdid string) {
	var req *http.Request
	var err error
	if op.Op == OpWrite {
		body, _ := json.Marshal(map[string]any{"item": op.Key, "qty": 1})
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		u := base + "/orders?limit=1"
		if op.ID != "" {
			u = base + "/orders/" + url.PathEscape(op.ID)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	if op.Sent == 0 {
		op.Sent = g.clock.now()
	}
	if err != nil {
		op.Done, op.Outcome, op.Error = g.clock.now(), Fail, err.Error()
		return
	}
	if fdid != "" {
		req.Header.Set(HeaderFDID, fdid)
	}
	resp, err := c.Do(req)
	if err != nil {
		op.Done = g.clock.now()
		op.Outcome, op.Error = classify(ctx, err), shortError(err)
		return
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	op.Done = g.clock.now()
	op.Status, op.Region = resp.StatusCode, resp.Header.Get(HeaderRegion)
	op.DataRegion = resp.Header.Get(HeaderDataRegion)
	switch {
	case rerr != nil:
		op.Outcome, op.Error = classify(ctx, rerr), "reading the response: "+shortError(rerr)
	case resp.StatusCode/100 == 2:
		op.Outcome = OK
		if op.Op == OpWrite {
			var ack orderAck
			if json.Unmarshal(b, &ack) == nil {
				op.ID, op.Position = ack.ID, ack.Seq
				if ack.DataRegion != "" {
					op.DataRegion = ack.DataRegion
				}
			}
		} else if op.ID != "" {
			op.Found = ptr(true)
		}
	case resp.StatusCode == http.StatusNotFound && op.Op == OpRead && op.ID != "" && op.Region != "":
		// The application answered: the order is not there (yet).
		op.Outcome, op.Found = OK, ptr(false)
	default:
		op.Outcome, op.Error = Fail, excerpt(b)
	}
}

// classify tells a timeout (unknown outcome) from a failure the client
// knows about (refused, reset, DNS error).
func classify(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
		return Unknown
	}
	return Fail
}

func shortError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if msg := httpjson.ErrorMessage(b); msg != "" {
		s = msg
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Stats counts operations as they complete, for the live progress.
type Stats struct {
	sent, inFlight    atomic.Int64
	ok, fail, unknown atomic.Int64
	mu                sync.Mutex
	served            map[string]int64 // successful operations by region
}

func (s *Stats) count(op *Op) {
	switch op.Outcome {
	case OK:
		s.ok.Add(1)
		s.mu.Lock()
		if s.served == nil {
			s.served = map[string]int64{}
		}
		s.served[op.Region]++
		s.mu.Unlock()
	case Fail:
		s.fail.Add(1)
	default:
		s.unknown.Add(1)
	}
}

// Snapshot are the generator's counters since its start.
type Snapshot struct {
	Sent, InFlight, OK, Fail, Unknown int64
	// Served counts successful operations by serving region.
	Served map[string]int64
}

// Snapshot returns the counters now.
func (g *LoadGenerator) Snapshot() Snapshot {
	s := &g.stats
	out := Snapshot{Sent: s.sent.Load(), InFlight: s.inFlight.Load(), OK: s.ok.Load(), Fail: s.fail.Load(), Unknown: s.unknown.Load(),
		Served: map[string]int64{}}
	s.mu.Lock()
	for k, v := range s.served {
		out.Served[k] = v
	}
	s.mu.Unlock()
	return out
}

// FormatRegions lists regions by count, e.g. "westeurope 120, northeurope 80".
func FormatRegions(m map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range m {
		if v > 0 {
			if k == "" {
				k = noRegion
			}
			l = append(l, kv{k, v})
		}
	}
	// Largest first, then by name.
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && (l[j].v > l[j-1].v || l[j].v == l[j-1].v && l[j].k < l[j-1].k); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.k + " " + strconv.FormatInt(e.v, 10)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
