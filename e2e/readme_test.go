package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geostamp/geostamp/internal/drill"
	"github.com/geostamp/geostamp/internal/lab"
	"github.com/geostamp/geostamp/internal/topology"
)

// readme is README.md taken apart: its run and test commands, the geostamp
// commands of the tour in order with the output shown for them, and its
// endpoints.json example.
type readme struct {
	text      string
	blocks    []string     // `go run ./cmd/geostamp …` and `go test …` lines
	cmds      []readmeCmd  // every `./geostamp …` line
	endpoints string       // the JSON block of "## endpoints.json"
	sections  []readmeSect // the API descriptions, see apiSection
}

type readmeCmd struct {
	line string   // as written, without "./geostamp " and the comment
	args []string // its fields
	out  []string // the lines shown after a "$ ./geostamp" line
}

type readmeSect struct{ marker, text string }

func parseReadme(t *testing.T) readme {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	r := readme{text: string(b)}
	var fence, heading string
	var cur *readmeCmd
	var js strings.Builder
	for _, raw := range strings.Split(r.text, "\n") {
		if strings.HasPrefix(raw, "```") {
			if fence == "" {
				fence = strings.TrimPrefix(raw, "```") + " "
			} else {
				fence, cur = "", nil
			}
			continue
		}
		if fence == "" {
			if strings.HasPrefix(raw, "## ") {
				heading = strings.TrimPrefix(raw, "## ")
			}
			continue
		}
		if heading == "endpoints.json" && strings.HasPrefix(fence, "json") {
			js.WriteString(raw + "\n")
			continue
		}
		prompt := strings.HasPrefix(raw, "$ ")
		line := strings.TrimSpace(strings.TrimPrefix(raw, "$ "))
		if strings.HasPrefix(line, "go run ./cmd/geostamp ") || strings.HasPrefix(line, "go test ") {
			r.blocks = append(r.blocks, line)
		}
		if rest, ok := strings.CutPrefix(line, "./geostamp "); ok {
			if i := strings.Index(rest, "#"); i >= 0 {
				rest = rest[:i]
			}
			rest = strings.Join(strings.Fields(rest), " ")
			r.cmds = append(r.cmds, readmeCmd{line: rest, args: strings.Fields(rest)})
			cur = nil
			if prompt {
				cur = &r.cmds[len(r.cmds)-1]
			}
			continue
		}
		switch {
		case prompt:
			cur = nil
		case cur != nil && strings.HasPrefix(fence, "console"):
			cur.out = append(cur.out, raw)
		}
	}
	r.endpoints = js.String()
	// The API descriptions: each runs from its marker to the next marker or
	// heading.
	markers := []string{"The control API (`control`)", "Each region's admin address (`regions.*.admin`)",
		"A front door POP's admin API (`pops[].admin`)", "The GSLB's admin API (`gslb_admin`)"}
	for _, m := range markers {
		i := strings.Index(r.text, m)
		if i < 0 {
			t.Fatalf("README has no section starting %q", m)
		}
		end := len(r.text)
		for _, other := range append(slices.Clone(markers), "\n## ") {
			if j := strings.Index(r.text[i+len(m):], other); j >= 0 && i+len(m)+j < end {
				end = i + len(m) + j
			}
		}
		r.sections = append(r.sections, readmeSect{marker: m, text: r.text[i:end]})
	}
	return r
}

// section returns the README's text about one API.
func (r readme) section(t *testing.T, marker string) string {
	t.Helper()
	for _, s := range r.sections {
		if strings.HasPrefix(s.marker, marker) {
			return s.text
		}
	}
	t.Fatalf("no README section %q", marker)
	return ""
}

// TestReadme keeps the README honest: it starts with the run and test
// commands; every geostamp command it shows runs against a real lab (or,
// for the two that run a whole drill, exists), with the exit status and the
// output the README says; the API routes it lists are exactly those the code
// serves, and answer; its endpoints.json example matches the real file.
func TestReadme(t *testing.T) {
	r := parseReadme(t)
	if len(r.blocks) < 2 || r.blocks[0] != "go run ./cmd/geostamp up" || !strings.HasPrefix(r.blocks[1], "go test ") {
		t.Fatalf("README must start with the run command and then the test command; found %q", r.blocks)
	}
	if b, err := os.ReadFile("../.ci/run"); err != nil || !strings.Contains(string(b), "\n"+r.blocks[1]+"\n") {
		t.Fatalf(".ci/run does not run the README's test command %q", r.blocks[1])
	}
	t.Run("routes", func(t *testing.T) { readmeRoutes(t, r) })

	start := time.Now()
	l := startLab(t)
	tour := newTour(t, l, r)
	tour.run()
	tour.checkCovered()
	t.Logf("the tour took %s", time.Since(start).Round(100*time.Millisecond))
}

// Where each API's routes are registered, and the README section that
// lists them.
var apiSources = []struct{ marker, file, from string }{
	{"The control API", "../internal/lab/control.go", ""},
	{"Each region's admin address", "../internal/lab/region.go", "func regionAdmin("},
	{"A front door POP's admin API", "../internal/frontdoor/admin.go", ""},
	{"The GSLB's admin API", "../internal/gslb/admin.go", ""},
}

var (
	codeRoute   = regexp.MustCompile(`(?:HandleFunc|Handle)\("([^"]+)"|URL\.Path == "(/[^"]*)"`)
	readmeRoute = regexp.MustCompile("`((?:GET|POST|PUT|DELETE|HEAD) /[^`]*)`")
	placeholder = regexp.MustCompile(`\{[^}]*\}`)
)

// routeMatch compares two routes segment by segment; a {placeholder} on
// either side matches any segment, and a query is ignored.
func routeMatch(a, b string) bool {
	norm := func(s string) []string {
		s, _, _ = strings.Cut(s, "?")
		s = placeholder.ReplaceAllString(strings.ReplaceAll(s, `\|`, "|"), "{}")
		return strings.Split(strings.TrimSuffix(s, "/"), "/")
	}
	as, bs := norm(a), norm(b)
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i] != bs[i] && as[i] != "{}" && bs[i] != "{}" {
			return false
		}
	}
	return true
}

// readmeRoutes: the README lists every route of the four APIs, and no route
// they do not serve (the GSLB's admin API once was said to serve the front
// door's /admin/origins).
func readmeRoutes(t *testing.T, r readme) {
	for _, api := range apiSources {
		b, err := os.ReadFile(api.file)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if api.from != "" {
			i := strings.Index(src, api.from)
			if i < 0 {
				t.Fatalf("%s: no %q", api.file, api.from)
			}
			src = src[i:]
			if j := strings.Index(src, "\n}\n"); j >= 0 {
				src = src[:j]
			}
		}
		var code []string
		for _, m := range codeRoute.FindAllStringSubmatch(src, -1) {
			route := m[1]
			if m[2] != "" {
				route = "GET " + m[2]
			}
			if route == "/" || strings.HasPrefix(route, "/debug/pprof/") {
				continue // the token-checked tree; pprof's standard paths
			}
			code = append(code, route)
		}
		text := r.section(t, api.marker)
		var doc []string
		for _, m := range readmeRoute.FindAllStringSubmatch(text, -1) {
			for _, alt := range strings.Split(m[1], ", ") {
				doc = append(doc, alt)
			}
		}
		if len(code) == 0 || len(doc) == 0 {
			t.Fatalf("%s: %d routes in %s, %d in the README", api.marker, len(code), api.file, len(doc))
		}
		for _, c := range code {
			if !slices.ContainsFunc(doc, func(d string) bool { return routeMatch(c, d) }) {
				t.Errorf("%s: %s serves %q, which the README does not list", api.marker, api.file, c)
			}
		}
		for _, d := range doc {
			if !slices.ContainsFunc(code, func(c string) bool { return routeMatch(c, d) }) {
				t.Errorf("%s: the README lists %q, which %s does not serve", api.marker, d, api.file)
			}
		}
	}
}

// tour runs the README's commands against a lab, in an order that leaves
// the lab fit for the next one, and checks what each one printed and did.
type tour struct {
	t    *testing.T
	l    *runningLab
	r    readme
	topo *topology.Topology
	ran  map[string]bool // README command lines run
	fd   *http.Client    // trusts the lab CA
	we   lab.RegionEndpoint
	ne   lab.RegionEndpoint
}

// curlForm is the header `curl -d` sends; the front door's WAF blocks a
// body without a Content-Type.
var curlForm = []string{"Content-Type", "application/x-www-form-urlencoded"}

// tourAck is the answer to POST /orders.
type tourAck struct {
	ID string `json:"id"`
}

const (
	tourWE = "westeurope"
	tourNE = "northeurope"
)

func newTour(t *testing.T, l *runningLab, r readme) *tour {
	topo, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(l.eps.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", l.eps.CAFile)
	}
	fd := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
	t.Cleanup(fd.CloseIdleConnections)
	return &tour{t: t, l: l, r: r, topo: topo, ran: map[string]bool{}, fd: fd,
		we: l.eps.Regions[tourWE], ne: l.eps.Regions[tourNE]}
}

// geostamp runs a command of the README (line as written there) from the
// repository root, as the README does, against the lab when it needs one;
// it fails the test unless the exit status is want.
func (tr *tour) geostamp(line string, want int) (stdout, stderr string) {
	tr.t.Helper()
	args := strings.Fields(line)
	if slices.ContainsFunc(tr.r.cmds, func(c readmeCmd) bool { return c.line == line }) {
		tr.ran[line] = true
	}
	switch args[0] {
	case "validate", "topology":
	default:
		args = append(args, "--state-dir", tr.l.dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = ".."
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != want {
		tr.t.Fatalf("geostamp %s: exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", line, code, err, want, o.String(), e.String())
	}
	return o.String(), e.String()
}

// shown returns the output the README shows for a command.
func (tr *tour) shown(line string) []string {
	for _, c := range tr.r.cmds {
		if c.line == line {
			return c.out
		}
	}
	tr.t.Fatalf("the README does not show `geostamp %s`", line)
	return nil
}

// checkCovered fails for a README command the tour did not run.
func (tr *tour) checkCovered() {
	for _, c := range tr.r.cmds {
		if !tr.ran[c.line] {
			tr.t.Errorf("the README shows `geostamp %s`, which TestReadme does not run", c.line)
		}
	}
}

// table returns the rows of a tabwriter table whose first field is key.
func tourTable(out, key string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == key {
			rows = append(rows, f)
		}
	}
	return rows
}

// row returns the row of a tabwriter table whose first fields are keys.
func (tr *tour) row(out string, keys ...string) []string {
	tr.t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(keys) && slices.Equal(f[:len(keys)], keys) {
			return f
		}
	}
	tr.t.Fatalf("no row %v in:\n%s", keys, out)
	return nil
}

// http sends a request and returns the status, headers and body; a
// transport error is status 0 with the error as body.
func (tr *tour) http(c *http.Client, method, url, body string, hdr ...string) (int, http.Header, string) {
	tr.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tr.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// stamp sends a request to a stamp directly, with the origin-lock header.
func (tr *tour) stamp(method, url, body string) (int, http.Header, string) {
	return tr.http(&http.Client{Timeout: 5 * time.Second}, method, url, body, "X-Geostamp-FDID", tr.l.eps.FDID)
}

func (tr *tour) stampHealth(ep lab.RegionEndpoint) (int, string) {
	var rep struct{ Status, Region string }
	code, _, b := tr.http(&http.Client{Timeout: 2 * time.Second}, http.MethodGet, ep.Health, "")
	json.Unmarshal([]byte(b), &rep)
	return code, rep.Status
}

// orders is the lab's view of the orders service in each region.
func (tr *tour) orders() map[string]lab.RegionStatus {
	var out map[string]lab.RegionStatus
	if err := tr.l.client.Do(context.Background(), http.MethodGet, "/v1/data", nil, &out); err != nil {
		tr.t.Fatal(err)
	}
	return out
}

func (tr *tour) ordersLag(region string) (uint64, bool) {
	for _, s := range tr.orders()[region].Data {
		if s.Service == "orders" {
			return s.LagWrites, true
		}
	}
	return 0, false
}

func (tr *tour) step(name string, f func()) {
	tr.t.Helper()
	start := time.Now()
	f()
	tr.t.Logf("%-28s %s", name, time.Since(start).Round(time.Millisecond))
}

func (tr *tour) run() {
	tr.step("validate, topology", tr.offline)
	tr.step("up output", tr.upOutput)
	tr.step("endpoints.json", tr.endpointsFile)
	tr.step("APIs answer", tr.apisAnswer)
	tr.step("front door", tr.frontDoor)
	tr.step("stamps directly", tr.stamps)
	tr.step("sample workload", tr.workload)
	tr.step("status, data", tr.statusData)
	tr.step("link cut, heal, latency", tr.links)
	tr.step("region freeze, resume", tr.freeze)
	tr.step("region drain, undrain", tr.drain)
	tr.step("region brownout", tr.brownout)
	tr.step("failover", tr.failover)
	tr.step("DNS", tr.dns)
	tr.step("POP kill, restart", tr.pop)
	tr.step("region kill, restart", tr.killRestart)
	tr.step("drill commands", tr.drills)
	tr.step("Ctrl-C", tr.interrupt)
}

// offline: validate and topology, with the exit status and output shown.
func (tr *tour) offline() {
	for _, c := range tr.r.cmds {
		if c.args[0] != "validate" {
			continue
		}
		want := 0
		if slices.ContainsFunc(c.out, func(s string) bool { return strings.Contains(s, "problem(s)") }) {
			want = 1
		}
		o, e := tr.geostamp(c.line, want)
		if got := strings.Split(strings.TrimSuffix(o+e, "\n"), "\n"); !slices.Equal(got, c.out) {
			tr.t.Errorf("geostamp %s printed\n%s\nthe README shows\n%s", c.line, strings.Join(got, "\n"), strings.Join(c.out, "\n"))
		}
	}
	o, _ := tr.geostamp("topology", 0)
	f := filepath.Join(tr.t.TempDir(), "topology.yaml")
	if err := os.WriteFile(f, []byte(o), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	if _, err := topology.Load(f); err != nil {
		tr.t.Errorf("geostamp topology printed a topology that does not load: %v", err)
	}
	// "with every default filled in": defaults the embedded file leaves out.
	for _, d := range []string{"perTryTimeout: 2s", "degradedTTL: 5s", "maxEjected: 50%", "lease: 5s"} {
		if !strings.Contains(o, d) {
			tr.t.Errorf("geostamp topology lacks the default %q", d)
		}
	}
}

var tourDigits = regexp.MustCompile(`[0-9]+`)

// upOutput: every line the README shows for `geostamp up` is printed, up
// to numbers (ports, durations) and spacing.
func (tr *tour) upOutput() {
	norm := func(s string) string { return strings.Join(strings.Fields(tourDigits.ReplaceAllString(s, "0")), " ") }
	shown := tr.shown("up")
	tr.ran["up"] = true
	if len(shown) < 5 {
		tr.t.Fatalf("the README shows only %d lines of `geostamp up`", len(shown))
	}
	// endpoints.json, which startLab waits for, is written just before the
	// table is printed.
	eventually(tr.t, 5*time.Second, "geostamp up prints what the README shows", func() error {
		var got []string
		for _, line := range strings.Split(tr.l.out.String(), "\n") {
			got = append(got, norm(line))
		}
		for _, s := range shown {
			if strings.TrimSpace(s) != "..." && !slices.Contains(got, norm(s)) {
				return fmt.Errorf("no line like %q in:\n%s", s, tr.l.out.String())
			}
		}
		return nil
	})
	if tr.we.Ingress[strings.LastIndex(tr.we.Ingress, ":"):] != tr.ne.Ingress[strings.LastIndex(tr.ne.Ingress, ":"):] {
		tr.t.Errorf("the README says every ingress listens on the same port: %s, %s", tr.we.Ingress, tr.ne.Ingress)
	}
}

// endpointsFile: every key of the README's example is in the real file.
func (tr *tour) endpointsFile() {
	var doc, real map[string]any
	if err := json.Unmarshal([]byte(tr.r.endpoints), &doc); err != nil {
		tr.t.Fatalf("README's endpoints.json example: %v\n%s", err, tr.r.endpoints)
	}
	b, err := os.ReadFile(filepath.Join(tr.l.dir, "endpoints.json"))
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &real); err != nil {
		tr.t.Fatal(err)
	}
	var walk func(path string, d, r any)
	walk = func(path string, d, r any) {
		switch d := d.(type) {
		case map[string]any:
			rm, ok := r.(map[string]any)
			if !ok {
				tr.t.Errorf("endpoints.json: %s is not an object: %v", path, r)
				return
			}
			for k, v := range d {
				if _, ok := rm[k]; !ok {
					tr.t.Errorf("endpoints.json has no %s.%s, which the README shows", path, k)
					continue
				}
				walk(path+"."+k, v, rm[k])
			}
		case []any:
			ra, ok := r.([]any)
			if !ok || len(ra) < len(d) {
				tr.t.Errorf("endpoints.json: %s: %v, the README shows %d entries", path, r, len(d))
				return
			}
			for i := range d {
				walk(fmt.Sprintf("%s[%d]", path, i), d[i], ra[i])
			}
		}
	}
	walk("", doc, real)
	if got := tr.l.eps.FrontDoor; len(got) != 2 || got[0] != tr.l.eps.POPs[0].HTTPS || got[1] != tr.l.eps.POPs[0].HTTP {
		tr.t.Errorf("frontdoor %v: want the POP's HTTPS then HTTP URL", got)
	}
}

// apisAnswer: every GET route the README lists answers 200 with the token
// and 401 without, except where the README says no token is needed.
func (tr *tour) apisAnswer() {
	c := &http.Client{Timeout: 5 * time.Second}
	bases := map[string]string{
		"The control API":              tr.l.eps.Control,
		"Each region's admin address":  tr.we.Admin,
		"A front door POP's admin API": tr.l.eps.POPs[0].Admin,
		"The GSLB's admin API":         tr.l.eps.GSLBAdmin,
	}
	tokenless := map[string]bool{"Each region's admin address GET /metrics": true, "A front door POP's admin API GET /healthz": true, "The control API GET /metrics": true}
	// {id} is the trace of a request through the front door, which
	// returns its id; spans reach the store in batches (500 ms in the lab).
	_, h, _ := tr.http(tr.fd, http.MethodGet, tr.l.eps.POPs[0].HTTPS+"/orders", "")
	traceID := h.Get("X-Geostamp-Trace-Id")
	if traceID == "" {
		tr.t.Error("a request through the front door returned no X-Geostamp-Trace-Id")
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if code, _, _ := tr.http(c, http.MethodGet, tr.l.eps.Control+"/v1/traces/"+traceID, "", "Authorization", "Bearer "+tr.l.client.Token()); code == http.StatusOK {
			break
		}
	}
	for marker, base := range bases {
		text := tr.r.section(tr.t, marker)
		for _, m := range readmeRoute.FindAllStringSubmatch(text, -1) {
			for _, route := range strings.Split(m[1], ", ") {
				method, path, _ := strings.Cut(route, " ")
				if method != http.MethodGet {
					continue
				}
				path = strings.NewReplacer("{service}", "orders", "{name}", tourWE, "{region}", tourWE, "[&affinity=REGION]", "", "=IP", "=127.0.0.1", "{id}", traceID).Replace(path)
				if strings.HasPrefix(path, "/admin/explain") && !strings.Contains(path, "client=") {
					path += "?client=127.0.0.1"
				}
				open := tokenless[marker+" GET "+path]
				if open && !strings.Contains(text, "without the token") {
					tr.t.Errorf("%s: %s answers without the token; the README should say so", marker, path)
				}
				if code, _, b := tr.http(c, method, base+path, ""); !open && code != http.StatusUnauthorized {
					tr.t.Errorf("%s: GET %s without the token: %d %.200s, want 401", marker, path, code, b)
				}
				if code, _, b := tr.http(c, method, base+path, "", "Authorization", "Bearer "+tr.l.client.Token()); code != http.StatusOK {
					tr.t.Errorf("%s: GET %s: %d %.200s", marker, path, code, b)
				}
			}
		}
	}
}

// frontDoor: the curl commands of the tour, through the POP's HTTPS
// listener with the lab CA (HTTP/2), and its plain listener.
func (tr *tour) frontDoor() {
	fd := tr.l.eps.POPs[0].HTTPS
	code, h, b := tr.http(tr.fd, http.MethodPost, fd+"/orders", `{"item":"book","qty":1}`, curlForm...)
	if code != http.StatusCreated {
		tr.t.Fatalf("POST %s/orders: %d %s", fd, code, b)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(b), &raw); err != nil {
		tr.t.Fatalf("POST /orders answered %s: %v", b, err)
	}
	for _, k := range []string{"id", "region", "seq", "data_region"} {
		if raw[k] == nil || raw[k] == "" {
			tr.t.Errorf("POST /orders answered %s: no %q", b, k)
		}
	}
	if raw["data_region"] != tourWE || h.Get("X-Geostamp-Region") == "" {
		tr.t.Errorf("POST /orders: data_region %v (want the orders primary %s), X-Geostamp-Region %q", raw["data_region"], tourWE, h.Get("X-Geostamp-Region"))
	}
	req, _ := http.NewRequest(http.MethodGet, fd+"/orders?after=0", nil)
	req.Header.Set("X-Geostamp-Debug", "1")
	resp, err := tr.fd.Do(req)
	if err != nil {
		tr.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		tr.t.Errorf("GET %s/orders?after=0: %d over %s, want 200 over HTTP/2", fd, resp.StatusCode, resp.Proto)
	}
	if route := resp.Header.Get("X-Geostamp-Route"); !strings.Contains(route, "target=") || resp.Header.Get("X-Geostamp-Region") == "" {
		tr.t.Errorf("X-Geostamp-Debug: 1 got X-Geostamp-Route %q, X-Geostamp-Region %q", route, resp.Header.Get("X-Geostamp-Region"))
	}
	if code, _, b := tr.http(&http.Client{Timeout: 5 * time.Second}, http.MethodGet, tr.l.eps.POPs[0].HTTP+"/orders?after=0", ""); code != http.StatusOK {
		tr.t.Errorf("plain HTTP listener: %d %s", code, b)
	}
}

// dns: the dig commands of the tour.
func (tr *tour) dns() {
	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := c.Exchange(m, tr.l.eps.GSLB)
		if err != nil {
			tr.t.Fatalf("dig %s: %v", name, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			tr.t.Fatalf("dig %s: %s with %d answers", name, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		return r
	}
	host := "app.contoso.test."
	if tr.l.eps.Host != host || tr.l.eps.Zone != "contoso.test." {
		tr.t.Fatalf("the README asks for %s; the lab serves %s in %s", host, tr.l.eps.Host, tr.l.eps.Zone)
	}
	// The GSLB probes on its own schedule: its first probes may predate the
	// stamps' health, and a healthy stamp is seen at the next probe, which
	// starts within an interval and ends within the timeout.
	p := tr.topo.GSLB.Probe
	eventually(tr.t, p.Interval.D()+p.Timeout.D()+2*time.Second, "the GSLB sees every region healthy", func() error {
		code, _, b := tr.http(&http.Client{Timeout: 2 * time.Second}, http.MethodGet, tr.l.eps.GSLBAdmin+"/admin/health", "",
			"Authorization", "Bearer "+tr.l.client.Token())
		var h struct {
			Degraded bool
			Regions  []struct{ Healthy bool }
		}
		if code != http.StatusOK || json.Unmarshal([]byte(b), &h) != nil || h.Degraded || len(h.Regions) != 2 {
			return fmt.Errorf("%d %.300s", code, b)
		}
		for _, r := range h.Regions {
			if !r.Healthy {
				return fmt.Errorf("%.300s", b)
			}
		}
		return nil
	})
	a, ok := ask(host, dns.TypeA).Answer[0].(*dns.A)
	if !ok || a.A.String() != tr.we.Address {
		tr.t.Errorf("A %s: %v, want %s (priority routing, all healthy)", host, a, tr.we.Address)
	}
	txt, ok := ask("_why."+host, dns.TypeTXT).Answer[0].(*dns.TXT)
	if !ok || !strings.Contains(strings.Join(txt.Txt, ""), tr.we.Address) {
		tr.t.Errorf("TXT _why.%s: %v, want an explanation naming %s", host, txt, tr.we.Address)
	}
}

// stamps: the origin lock and the direct requests of the tour.
func (tr *tour) stamps() {
	if code, _, b := tr.http(&http.Client{Timeout: 5 * time.Second}, http.MethodGet, tr.we.Ingress+"/orders?after=0", ""); code != http.StatusForbidden {
		tr.t.Errorf("a stamp without X-Geostamp-FDID: %d %s, want 403 (origin lock)", code, b)
	}
	code, _, b := tr.stamp(http.MethodPost, tr.we.Ingress+"/orders", `{"item":"book","qty":1}`)
	if code != http.StatusCreated {
		tr.t.Fatalf("POST %s/orders: %d %s", tr.we.Ingress, code, b)
	}
	id := decode[tourAck](tr.t, []byte(b)).ID
	eventually(tr.t, 5*time.Second, "the order written in westeurope, read in northeurope", func() error {
		code, h, b := tr.stamp(http.MethodGet, tr.ne.Ingress+"/orders/"+id, "")
		if code != http.StatusOK || h.Get("X-Geostamp-Region") != tourNE {
			return fmt.Errorf("%d, X-Geostamp-Region %q: %s", code, h.Get("X-Geostamp-Region"), b)
		}
		return nil
	})
	var rep struct {
		Status, Region string
		Checks         []struct{ Name, Status string }
	}
	code, _, b = tr.http(&http.Client{Timeout: 2 * time.Second}, http.MethodGet, tr.ne.Health, "")
	if err := json.Unmarshal([]byte(b), &rep); err != nil || code != http.StatusOK || rep.Status != "healthy" || rep.Region != tourNE || len(rep.Checks) < 3 {
		tr.t.Errorf("GET %s: %d %s", tr.ne.Health, code, b)
	}
}

func (tr *tour) statusData() {
	o, _ := tr.geostamp("status", 0)
	for _, ep := range []struct {
		name string
		lab.RegionEndpoint
	}{{tourWE, tr.we}, {tourNE, tr.ne}} {
		f := tr.row(o, ep.name)
		if len(f) != 5 || f[1] != "running" || f[3] != "healthy" || f[4] != ep.Ingress {
			tr.t.Errorf("status: %v, want %s running PID healthy %s", f, ep.name, ep.Ingress)
		}
	}
	o, _ = tr.geostamp("data", 0)
	if f := tr.row(o, "orders", tourWE); f[2] != "primary" || f[3] != tourWE {
		tr.t.Errorf("data: %v, want westeurope primary", f)
	}
	if f := tr.row(o, "orders", tourNE); f[2] != "secondary" || f[3] != tourWE {
		tr.t.Errorf("data: %v, want northeurope secondary of westeurope", f)
	}
}

// links: a cut stops replication (lag grows), a heal resumes it, latency
// is set both ways.
func (tr *tour) links() {
	o, _ := tr.geostamp("link cut westeurope northeurope", 0)
	if f := tr.row(o, "westeurope<->northeurope"); !slices.Equal(f[1:], []string{"CUT", "CUT"}) {
		tr.t.Errorf("link cut printed %v", f)
	}
	code, _, b := tr.stamp(http.MethodPost, tr.we.Ingress+"/orders", `{"item":"book","qty":1}`)
	if code != http.StatusCreated {
		tr.t.Fatalf("POST during the cut: %d %s", code, b)
	}
	id := decode[tourAck](tr.t, []byte(b)).ID
	eventually(tr.t, 5*time.Second, "northeurope's lag grows during the cut", func() error {
		if lag, _ := tr.ordersLag(tourNE); lag < 1 {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})
	if code, _, _ := tr.stamp(http.MethodGet, tr.ne.Ingress+"/orders/"+id, ""); code != http.StatusNotFound {
		tr.t.Errorf("an order written during the cut answered %d in northeurope, want 404 (not replicated)", code)
	}
	o, _ = tr.geostamp("link heal westeurope northeurope", 0)
	lat := tr.topo.Latency(tourWE, tourNE).Latency.String()
	if f := tr.row(o, "westeurope<->northeurope"); !slices.Equal(f[1:], []string{lat, lat}) {
		tr.t.Errorf("link heal printed %v, want %s both ways", f, lat)
	}
	eventually(tr.t, 10*time.Second, "replication catches up after the heal", func() error {
		if code, _, b := tr.stamp(http.MethodGet, tr.ne.Ingress+"/orders/"+id, ""); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, b)
		}
		if lag, _ := tr.ordersLag(tourNE); lag != 0 {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})
	o, _ = tr.geostamp("link latency westeurope northeurope 80ms --jitter 5ms", 0)
	if f := tr.row(o, "westeurope<->northeurope"); !slices.Equal(f[1:], []string{"80ms", "±5ms", "80ms", "±5ms"}) {
		tr.t.Errorf("link latency printed %v", f)
	}
	// Back to the topology's latency (not in the README), so the rest of
	// the tour runs as fast as the lab it started with.
	tr.geostamp("link latency westeurope northeurope "+lat, 0)
}

func (tr *tour) freeze() {
	o, _ := tr.geostamp("region freeze northeurope", 0)
	if !regexp.MustCompile(`^region northeurope: frozen \(pid \d+\)\n$`).MatchString(o) {
		tr.t.Errorf("region freeze printed %q", o)
	}
	if s, _ := tr.geostamp("status", 0); tr.row(s, tourNE)[1] != "frozen" {
		tr.t.Errorf("status after freeze:\n%s", s)
	}
	// A frozen process accepts connections and answers nothing.
	if code, _, b := tr.http(&http.Client{Timeout: 500 * time.Millisecond}, http.MethodGet, tr.ne.Health, ""); code != 0 {
		tr.t.Errorf("a frozen stamp answered %d %s", code, b)
	}
	o, _ = tr.geostamp("region resume northeurope", 0)
	if !regexp.MustCompile(`^region northeurope: running \(pid \d+\)\n$`).MatchString(o) {
		tr.t.Errorf("region resume printed %q", o)
	}
	eventually(tr.t, 10*time.Second, "northeurope healthy after resume", func() error {
		if code, st := tr.stampHealth(tr.ne); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, st)
		}
		return nil
	})
}

// drain: out of rotation (the front door stops routing to it within its
// detection bound), still serving.
func (tr *tour) drain() {
	tr.geostamp("region drain northeurope", 0)
	if code, st := tr.stampHealth(tr.ne); code != http.StatusServiceUnavailable || st != "drained" {
		tr.t.Errorf("/health/stamp of a drained stamp: %d %q, want 503 drained", code, st)
	}
	if s, _ := tr.geostamp("status", 0); tr.row(s, tourNE)[3] != "drained" {
		tr.t.Errorf("status after drain:\n%s", s)
	}
	if code, _, b := tr.stamp(http.MethodGet, tr.ne.Ingress+"/orders?after=0", ""); code != http.StatusOK {
		tr.t.Errorf("a drained stamp should still serve: %d %s", code, b)
	}
	// The front door's probes see the drain within their detection bound
	// (window rule), plus a margin for a loaded machine.
	p := tr.topo.FrontDoor.Probe
	bound := p.Interval.D()*time.Duration(p.SampleSize-p.SuccessfulSamples+1) + p.Timeout.D() + 2*time.Second
	eventually(tr.t, bound, "the front door takes northeurope out of rotation", func() error {
		if tr.eligible(tourNE) {
			return fmt.Errorf("still eligible")
		}
		return nil
	})
	tr.geostamp("region undrain northeurope", 0)
	if code, st := tr.stampHealth(tr.ne); code != http.StatusOK {
		tr.t.Errorf("/health/stamp after undrain: %d %q", code, st)
	}
	// Back in rotation once successfulSamples probes passed: each starts at
	// most an interval after the previous one (timeout ≤ interval).
	bound = p.Interval.D()*time.Duration(p.SuccessfulSamples) + p.Timeout.D() + 2*time.Second
	eventually(tr.t, bound, "the front door puts northeurope back in rotation", func() error {
		if !tr.eligible(tourNE) {
			return fmt.Errorf("not eligible")
		}
		return nil
	})
}

func (tr *tour) eligible(region string) bool {
	tr.t.Helper()
	code, _, b := tr.http(&http.Client{Timeout: 2 * time.Second}, http.MethodGet, tr.l.eps.POPs[0].Admin+"/admin/origins/"+region, "",
		"Authorization", "Bearer "+tr.l.client.Token())
	var o struct{ Eligible bool }
	if code != http.StatusOK || json.Unmarshal([]byte(b), &o) != nil {
		tr.t.Fatalf("GET /admin/origins/%s: %d %s", region, code, b)
	}
	return o.Eligible
}

// brownout: a share of the stamp's requests fail, /health/stamp does not,
// and GETs through the front door see no error (retried elsewhere).
func (tr *tour) brownout() {
	tr.geostamp("region brownout westeurope --share 0.5", 0)
	const n = 40
	failed := 0
	for range n {
		switch code, _, b := tr.stamp(http.MethodGet, tr.we.Ingress+"/orders?after=0&limit=1", ""); code {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			failed++
		default:
			tr.t.Fatalf("brownout answered %d %s", code, b)
		}
	}
	// Each request fails with probability 0.5: all or none of 40 is 2^-39.
	if failed == 0 || failed == n {
		tr.t.Errorf("brownout --share 0.5: %d of %d requests failed", failed, n)
	}
	if code, st := tr.stampHealth(tr.we); code != http.StatusOK {
		tr.t.Errorf("/health/stamp during a brownout: %d %s, want 200 (not affected)", code, st)
	}
	for i := range 20 {
		if code, _, b := tr.http(tr.fd, http.MethodGet, tr.l.eps.POPs[0].HTTPS+"/orders?after=0&limit=1", ""); code != http.StatusOK {
			tr.t.Errorf("GET %d through the front door during a brownout: %d %s, want no error", i, code, b)
		}
	}
	tr.geostamp("region brownout westeurope --share 0", 0)
	for range 20 {
		if code, _, b := tr.stamp(http.MethodGet, tr.we.Ingress+"/orders?after=0&limit=1", ""); code != http.StatusOK {
			tr.t.Fatalf("after --share 0: %d %s", code, b)
		}
	}
}

var failoverHead = regexp.MustCompile(`^(planned|forced) failover of orders: (\w+) -> (\w+), epoch (\d+), promoted after [0-9.]+s\n`)

func (tr *tour) failover() {
	check := func(line, mode, from, to string) {
		o, _ := tr.geostamp(line, 0)
		m := failoverHead.FindStringSubmatch(o)
		if m == nil || m[1] != mode || m[2] != from || m[3] != to {
			tr.t.Fatalf("geostamp %s printed:\n%s", line, o)
		}
		if p := tr.promoteRow(o, to); !strings.Contains(p, "[gap 0]") {
			tr.t.Errorf("geostamp %s: the promote step %q lacks [gap 0] (nothing was left to replicate)", line, p)
		}
		var g lab.Group
		if err := tr.l.client.Do(context.Background(), http.MethodGet, "/v1/failover/orders", nil, &g); err != nil {
			tr.t.Fatal(err)
		}
		if g.Primary != to || g.ReadWrite != tr.l.eps.Regions[to].NATS {
			tr.t.Errorf("GET /v1/failover/orders after the failover: %+v, want primary %s at %s", g, to, tr.l.eps.Regions[to].NATS)
		}
		eventually(tr.t, 5*time.Second, to+" primary in geostamp data", func() error {
			o, _ := tr.geostamp("data", 0)
			for _, f := range tourTable(o, "orders") {
				if want := map[bool]string{true: "primary", false: "secondary"}[f[1] == to]; f[2] != want || f[3] != to {
					return fmt.Errorf("%v", f)
				}
			}
			return nil
		})
	}
	check("failover orders --to northeurope", "planned", tourWE, tourNE)
	check("failover orders --to westeurope --forced", "forced", tourNE, tourWE)
	eventually(tr.t, 5*time.Second, "writes through the front door reach the new primary", func() error {
		code, _, b := tr.http(tr.fd, http.MethodPost, tr.l.eps.POPs[0].HTTPS+"/orders", `{"item":"book","qty":1}`, curlForm...)
		var ack struct {
			DataRegion string `json:"data_region"`
		}
		if code != http.StatusCreated || json.Unmarshal([]byte(b), &ack) != nil || ack.DataRegion != tourWE {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
}

// promoteRow returns the promote step of region in a failover's step table
// (TIME REGION STEP …).
func (tr *tour) promoteRow(out, region string) string {
	tr.t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == region && f[2] == "promote" {
			return line
		}
	}
	tr.t.Fatalf("no promote step of %s in:\n%s", region, out)
	return ""
}

// pop: POST /v1/pops/{name}/{kill|restart}, which no CLI command wraps.
func (tr *tour) pop() {
	pop := tr.l.eps.POPs[0]
	do := func(action string) {
		if err := tr.l.client.Do(context.Background(), http.MethodPost, "/v1/pops/"+pop.Name+"/"+action, nil, nil); err != nil {
			tr.t.Fatalf("POST /v1/pops/%s/%s: %v", pop.Name, action, err)
		}
	}
	do("kill")
	tr.fd.CloseIdleConnections()
	if code, _, b := tr.http(tr.fd, http.MethodGet, pop.HTTPS+"/orders?after=0&limit=1", ""); code != 0 {
		tr.t.Errorf("a killed POP answered %d %s", code, b)
	}
	do("restart")
	if code, _, b := tr.http(tr.fd, http.MethodGet, pop.HTTPS+"/orders?after=0&limit=1", ""); code != http.StatusOK {
		tr.t.Errorf("a restarted POP: %d %s", code, b)
	}
}

// killRestart: a dead region costs GETs through the front door nothing,
// while writes fail until the data service fails over; restart brings the
// region back on its addresses with its data.
func (tr *tour) killRestart() {
	// The claim needs northeurope in the front door's rotation: the POP
	// restarted just before probes it afresh, and on a slow machine its
	// first passing probe of northeurope can come after the kill.
	tr.l.waitEligible(tr.t)
	code, _, b := tr.stamp(http.MethodPost, tr.we.Ingress+"/orders", `{"item":"book","qty":1}`)
	if code != http.StatusCreated {
		tr.t.Fatalf("POST before the kill: %d %s", code, b)
	}
	before := decode[tourAck](tr.t, []byte(b)).ID
	s, _ := tr.geostamp("status", 0)
	oldPID := tr.row(s, tourWE)[2]

	o, _ := tr.geostamp("region kill westeurope", 0)
	killed := time.Now()
	if o != "region westeurope: killed\n" {
		tr.t.Errorf("region kill printed %q", o)
	}
	for i := range 10 {
		code, h, b := tr.http(tr.fd, http.MethodGet, tr.l.eps.POPs[0].HTTPS+"/orders?after=0&limit=1", "")
		if code != http.StatusOK || h.Get("X-Geostamp-Region") != tourNE {
			tr.t.Errorf("GET %d through the front door after the kill: %d from %q %s, want 200 from northeurope", i, code, h.Get("X-Geostamp-Region"), b)
		}
	}
	code, _, b = tr.http(tr.fd, http.MethodPost, tr.l.eps.POPs[0].HTTPS+"/orders", `{"item":"book","qty":1}`, curlForm...)
	// The claim holds until the orders group can promote northeurope: not
	// before the grace has passed.
	grace := tr.topo.Data[0].Failover.Grace.D()
	if tr.topo.Data[0].Name != "orders" {
		tr.t.Fatalf("the default topology's first data service is %s", tr.topo.Data[0].Name)
	}
	if since := time.Since(killed); since < grace {
		if code != http.StatusServiceUnavailable || !strings.Contains(b, "data service unavailable") {
			tr.t.Errorf("a write %s after its primary's region died: %d %s, want 503 data service unavailable", since.Round(time.Millisecond), code, b)
		}
	} else {
		tr.t.Errorf("the write after the kill was sent %s later, past the grace (%s): it cannot show the claim", since, grace)
	}
	s, _ = tr.geostamp("status", 0)
	if f := tr.row(s, tourWE); f[1] != "killed" {
		tr.t.Errorf("status after kill: %v", f)
	}

	o, _ = tr.geostamp("region restart westeurope", 0)
	m := regexp.MustCompile(`^region westeurope: running \(pid (\d+)\)\n$`).FindStringSubmatch(o)
	if m == nil || m[1] == oldPID {
		tr.t.Fatalf("region restart printed %q (pid before the kill: %s)", o, oldPID)
	}
	s, _ = tr.geostamp("status", 0)
	if f := tr.row(s, tourWE); f[1] != "running" || f[len(f)-1] != tr.we.Ingress {
		tr.t.Errorf("status after restart: %v, want running at %s", f, tr.we.Ingress)
	}
	eventually(tr.t, 10*time.Second, "the restarted region serves the order it held before the kill", func() error {
		code, h, b := tr.stamp(http.MethodGet, tr.we.Ingress+"/orders/"+before, "")
		if code != http.StatusOK || h.Get("X-Geostamp-Region") != tourWE {
			return fmt.Errorf("%d from %q: %s", code, h.Get("X-Geostamp-Region"), b)
		}
		return nil
	})
}

// drills: the cheap drill commands run; the two that run a whole drill
// (over a minute each) are run by TestDrillRegionOutage, so here they only
// have to exist.
func (tr *tour) drills() {
	o, _ := tr.geostamp("drill list", 0)
	for _, name := range []string{"region-outage", "data-primary-loss", "kill-region"} {
		if !strings.Contains(o, name) {
			tr.t.Errorf("drill list lacks %s", name)
		}
	}
	// The summary.json fields the README names exist.
	i := strings.Index(tr.r.text, "`summary.json` (")
	j := strings.Index(tr.r.text[i:], ")")
	if i < 0 || j < 0 {
		tr.t.Fatal("the README does not list summary.json's fields")
	}
	tags := map[string]bool{}
	st := reflect.TypeFor[drill.Summary]()
	for k := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(k).Tag.Get("json"), ",")
		tags[name] = true
	}
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(tr.r.text[i+len("`summary.json` ("):i+j], -1) {
		if !tags[m[1]] {
			tr.t.Errorf("the README names summary.json field %q; drill.Summary has no such field", m[1])
		}
	}
	o, _ = tr.geostamp("drill data-primary-loss --dry-run", 0)
	for _, want := range []string{"timeline", "fault: crash-data service=orders", "floor ", "objectives RTO"} {
		if !strings.Contains(o, want) {
			tr.t.Errorf("drill data-primary-loss --dry-run lacks %q:\n%s", want, o)
		}
	}
	for _, c := range tr.r.cmds {
		if c.args[0] != "drill" || tr.ran[c.line] {
			continue
		}
		if c.line != "drill region-outage --region westeurope" && !strings.HasPrefix(c.line, "drill analyze ") {
			continue // not a long one: it must have run above
		}
		if _, e := tr.geostamp(c.args[0]+" "+c.args[1]+" -h", 0); !strings.Contains(e, "geostamp drill") || !strings.Contains(e, c.args[1]) {
			tr.t.Errorf("geostamp drill %s -h printed no help about it:\n%s", c.args[1], e)
		}
		tr.ran[c.line] = true
	}
}

// workload: the sample workload's table, at a stamp.
func (tr *tour) workload() {
	check := func(what string, code int, h http.Header, b string, want int) {
		tr.t.Helper()
		if code != want || h.Get("X-Geostamp-Region") != tourWE {
			tr.t.Errorf("%s: %d from %q %.200s, want %d from %s", what, code, h.Get("X-Geostamp-Region"), b, want, tourWE)
		}
	}
	code, h, b := tr.stamp(http.MethodGet, tr.we.Ingress+"/orders/no-such-order", "")
	check("GET an unknown order", code, h, b, http.StatusNotFound)
	code, h, b = tr.stamp(http.MethodPost, tr.we.Ingress+"/orders", `{"item":`)
	check("POST invalid JSON", code, h, b, http.StatusBadRequest)
	var e struct{ Error string }
	if json.Unmarshal([]byte(b), &e) != nil || e.Error == "" {
		tr.t.Errorf("invalid JSON answered %s, want a message", b)
	}
	code, h, b = tr.stamp(http.MethodPost, tr.we.Ingress+"/orders", `{"item":"`+strings.Repeat("x", 1<<20)+`","qty":1}`)
	check("POST a body over 1 MiB", code, h, b, http.StatusRequestEntityTooLarge)
	code, h, b = tr.stamp(http.MethodPut, tr.we.Ingress+"/catalog/book-1", `{"name":"Book","price":9.5}`)
	check("PUT /catalog/book-1", code, h, b, http.StatusOK)
	code, h, b = tr.stamp(http.MethodGet, tr.we.Ingress+"/catalog/book-1", "")
	check("GET /catalog/book-1", code, h, b, http.StatusOK)
	var it struct {
		Name  string
		Price float64
	}
	if json.Unmarshal([]byte(b), &it) != nil || it.Name != "Book" || it.Price != 9.5 {
		tr.t.Errorf("GET /catalog/book-1: %s, want the stored item", b)
	}
	code, h, b = tr.stamp(http.MethodGet, tr.we.Ingress+"/orders?after=0&limit=2", "")
	check("GET /orders?after=0&limit=2", code, h, b, http.StatusOK)
	var list struct {
		Orders []struct{ Seq uint64 }
	}
	if json.Unmarshal([]byte(b), &list) != nil || len(list.Orders) != 2 || list.Orders[0].Seq >= list.Orders[1].Seq {
		tr.t.Errorf("GET /orders?after=0&limit=2: %s, want 2 orders in sequence order", b)
	}
	code, _, b = tr.http(&http.Client{Timeout: 2 * time.Second}, http.MethodHead, tr.we.Health, "")
	if code != http.StatusOK {
		tr.t.Errorf("HEAD /health/stamp: %d %s", code, b)
	}
}

// interrupt: Ctrl-C stops every process and listener the lab started.
func (tr *tour) interrupt() {
	s, _ := tr.geostamp("status", 0)
	var pids []int
	for _, r := range []string{tourWE, tourNE} {
		var pid int
		fmt.Sscan(tr.row(s, r)[2], &pid)
		if pid <= 0 {
			tr.t.Fatalf("status: no pid for %s:\n%s", r, s)
		}
		pids = append(pids, pid)
	}
	if err := tr.l.cmd.Process.Signal(os.Interrupt); err != nil {
		tr.t.Fatal(err)
	}
	select {
	case <-tr.l.done:
	case <-time.After(20 * time.Second):
		tr.t.Fatalf("geostamp up still runs 20s after Ctrl-C")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			tr.t.Errorf("region process %d outlived the lab (kill -0: %v)", pid, err)
		}
	}
	for _, addr := range []string{hostPort(tr.we.Ingress), hostPort(tr.ne.Ingress), hostPort(tr.l.eps.Control),
		hostPort(tr.l.eps.POPs[0].HTTPS), hostPort(tr.l.eps.POPs[0].Admin), tr.l.eps.GSLB, hostPort(tr.l.eps.GSLBAdmin)} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			tr.t.Errorf("%s still accepts connections after Ctrl-C", addr)
		}
	}
	if _, err := os.Stat(filepath.Join(tr.l.dir, "endpoints.json")); !errors.Is(err, fs.ErrNotExist) {
		tr.t.Errorf("endpoints.json outlived the lab: %v", err)
	}
}

func hostPort(url string) string {
	_, rest, _ := strings.Cut(url, "://")
	return rest
}
