package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/data/memstore"
)

const region = "westeurope"

// server starts the app over real HTTP with the given stores (memstore by
// default).
func server(t *testing.T, orders, catalog data.Store, timeout time.Duration) *httptest.Server {
	t.Helper()
	if orders == nil {
		orders = memstore.New("orders", region)
	}
	if catalog == nil {
		catalog = memstore.New("catalog", region)
	}
	app, err := New(Config{Region: region, Orders: orders, Catalog: catalog, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as an object.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func do(t *testing.T, srv *httptest.Server, method, path string, body io.Reader) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func doString(t *testing.T, srv *httptest.Server, method, path, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return do(t, srv, method, path, r)
}

// checkError asserts an error response: status, region header, JSON body
// whose message contains want.
func checkError(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d; want %d (body %s)", r.status, status, r.body)
	}
	if got := r.header.Get(HeaderRegion); got != region {
		t.Errorf("%s = %q; want %q", HeaderRegion, got, region)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	msg, _ := r.json(t)["error"].(string)
	if !strings.Contains(msg, want) {
		t.Errorf("error = %q; want it to contain %q", msg, want)
	}
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Timeout: -time.Second})
	if err == nil {
		t.Fatal("New(empty config) succeeded")
	}
	for _, want := range []string{"region: required", "orders: required", "catalog: required", "timeout: must not be negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestCreateAndGetOrder(t *testing.T) {
	srv := server(t, nil, nil, 0)

	r := doString(t, srv, "POST", "/orders", `{"item": "widget", "qty": 3}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST status = %d; want 201 (%s)", r.status, r.body)
	}
	created := r.json(t)
	id, _ := created["id"].(string)
	if !hexID.MatchString(id) {
		t.Errorf("id = %q; want 32 hex digits", id)
	}
	if created["region"] != region || created["seq"] != 1.0 {
		t.Errorf("POST body = %v; want region %s, seq 1", created, region)
	}
	if r.header.Get(HeaderRegion) != region {
		t.Errorf("missing %s on success", HeaderRegion)
	}

	r = doString(t, srv, "GET", "/orders/"+id, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET status = %d (%s)", r.status, r.body)
	}
	got := r.json(t)
	if got["id"] != id || got["item"] != "widget" || got["qty"] != 3.0 || got["region"] != region || got["seq"] != 1.0 {
		t.Errorf("GET body = %v", got)
	}
	if c, _ := got["created"].(string); c == "" {
		t.Errorf("created missing: %v", got)
	} else if _, err := time.Parse(time.RFC3339Nano, c); err != nil {
		t.Errorf("created %q: %v", c, err)
	}
	if len(got) != 6 {
		t.Errorf("GET body has fields %v; want id,item,qty,region,created,seq", got)
	}

	// Each order gets its own id.
	r2 := doString(t, srv, "POST", "/orders", `{"item": "widget", "qty": 3}`).json(t)
	if r2["id"] == id || r2["seq"] != 2.0 {
		t.Errorf("second order = %v; want a new id and seq 2", r2)
	}
}

func TestCreateOrderStoresOrderJSON(t *testing.T) {
	orders := memstore.New("orders", region)
	srv := server(t, orders, nil, 0)
	id := doString(t, srv, "POST", "/orders", `{"item": "w", "qty": 1}`).json(t)["id"].(string)
	rec, err := orders.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	if err := json.Unmarshal(rec.Value, &stored); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "item", "qty", "region", "created"} {
		if _, ok := stored[k]; !ok {
			t.Errorf("stored order lacks %q: %s", k, rec.Value)
		}
	}
	if len(stored) != 5 {
		t.Errorf("stored order = %s; want exactly id,item,qty,region,created", rec.Value)
	}
}

func TestOrderErrors(t *testing.T) {
	srv := server(t, nil, nil, 0)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"invalid JSON", "POST", "/orders", `not json`, 400, "invalid JSON at byte 2"},
		{"truncated JSON", "POST", "/orders", `{"item": "x", "qty": 1`, 400, "truncated"},
		{"empty body", "POST", "/orders", ``, 400, "request body is empty"},
		{"not an object", "POST", "/orders", `[1, 2]`, 400, "must be a JSON object, got array"},
		{"two objects", "POST", "/orders", `{"item": "x", "qty": 1} {}`, 400, "single JSON object"},
		{"item wrong type", "POST", "/orders", `{"item": 5, "qty": 1}`, 400, `field "item" must be a string, got number`},
		{"qty string", "POST", "/orders", `{"item": "x", "qty": "2"}`, 400, `field "qty" must be an integer, got string`},
		{"qty fraction", "POST", "/orders", `{"item": "x", "qty": 1.5}`, 400, `field "qty" must be an integer, got number 1.5`},
		{"unknown field", "POST", "/orders", `{"item": "x", "qty": 1, "color": "red"}`, 400, `unknown field "color"`},
		{"item missing", "POST", "/orders", `{"qty": 1}`, 400, `field "item" is required`},
		{"item empty", "POST", "/orders", `{"item": "", "qty": 1}`, 400, `field "item" is required`},
		{"item null", "POST", "/orders", `{"item": null, "qty": 1}`, 400, `field "item" is required`},
		{"item too long", "POST", "/orders", `{"item": "` + strings.Repeat("x", 201) + `", "qty": 1}`, 400, `field "item" must be at most 200 characters`},
		{"qty missing", "POST", "/orders", `{"item": "x"}`, 400, `field "qty" is required`},
		{"qty zero", "POST", "/orders", `{"item": "x", "qty": 0}`, 400, `field "qty" must be at least 1`},
		{"qty negative", "POST", "/orders", `{"item": "x", "qty": -4}`, 400, `field "qty" must be at least 1`},
		{"all problems at once", "POST", "/orders", `{}`, 400, `field "item" is required; field "qty" is required`},
		{"unknown order", "GET", "/orders/" + strings.Repeat("ab", 16), "", 404, `get order "` + strings.Repeat("ab", 16) + `": not found`},
		{"malformed order id", "GET", "/orders/nope", "", 404, `get order "nope": not found`},
		{"after not a number", "GET", "/orders?after=x", "", 400, `query parameter "after" must be a non-negative integer, got "x"`},
		{"after negative", "GET", "/orders?after=-1", "", 400, `query parameter "after" must be a non-negative integer`},
		{"limit zero", "GET", "/orders?limit=0", "", 400, `query parameter "limit" must be an integer from 1 to 1000, got "0"`},
		{"limit too large", "GET", "/orders?limit=1001", "", 400, `query parameter "limit" must be an integer from 1 to 1000`},
		{"limit not a number", "GET", "/orders?limit=ten", "", 400, `query parameter "limit" must be an integer from 1 to 1000`},
		{"unknown route", "GET", "/nope", "", 404, "no such route: GET /nope"},
		{"order subpath", "GET", "/orders/a/b", "", 404, "no such route"},
		{"wrong method on collection", "DELETE", "/orders", "", 405, "method not allowed: DELETE /orders"},
		{"wrong method on order", "POST", "/orders/" + strings.Repeat("ab", 16), "", 405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doString(t, srv, tt.method, tt.path, tt.body)
			checkError(t, r, tt.status, tt.want)
		})
	}
}

func TestItemLengthCountsCharacters(t *testing.T) {
	srv := server(t, nil, nil, 0)
	item := strings.Repeat("é", MaxItemLen) // 400 bytes, 200 characters
	r := doString(t, srv, "POST", "/orders", fmt.Sprintf(`{"item": %q, "qty": 1}`, item))
	if r.status != http.StatusCreated {
		t.Fatalf("status = %d (%s); want 201 for %d characters", r.status, r.body, MaxItemLen)
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	srv := server(t, nil, nil, 0)
	tests := []struct {
		method, path string
		allow        []string
	}{
		{"DELETE", "/orders", []string{"GET", "POST"}},
		{"PATCH", "/catalog/sku-1", []string{"GET", "PUT"}},
		{"POST", "/healthz", []string{"GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := doString(t, srv, tt.method, tt.path, "")
			checkError(t, r, 405, "method not allowed")
			allow := r.header.Get("Allow")
			for _, m := range tt.allow {
				if !strings.Contains(allow, m) {
					t.Errorf("Allow = %q; want it to contain %s", allow, m)
				}
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	srv := server(t, nil, nil, 0)
	// A syntactically plausible order whose total size is 1 MiB + 1.
	prefix, suffix := `{"item": "`, `", "qty": 1}`
	big := prefix + strings.Repeat("x", MaxBodyBytes+1-len(prefix)-len(suffix)) + suffix
	if len(big) != MaxBodyBytes+1 {
		t.Fatalf("body is %d bytes", len(big))
	}
	t.Run("with content length", func(t *testing.T) {
		r := doString(t, srv, "POST", "/orders", big)
		checkError(t, r, 413, "request body exceeds 1048576 bytes")
	})
	t.Run("chunked", func(t *testing.T) {
		// A reader of unknown length makes the client send chunks, so only
		// the MaxBytesReader can catch it.
		r := do(t, srv, "POST", "/orders", io.MultiReader(strings.NewReader(big)))
		checkError(t, r, 413, "request body exceeds 1048576 bytes")
	})
	t.Run("catalog", func(t *testing.T) {
		r := doString(t, srv, "PUT", "/catalog/sku-1", big)
		checkError(t, r, 413, "request body exceeds")
	})
	t.Run("exactly the limit is accepted", func(t *testing.T) {
		body := `{"item": "x", "qty": 1}`
		body += strings.Repeat(" ", MaxBodyBytes-len(body))
		r := doString(t, srv, "POST", "/orders", body)
		if r.status != http.StatusCreated {
			t.Fatalf("status = %d (%s); want 201", r.status, r.body)
		}
	})
}

func TestListOrders(t *testing.T) {
	srv := server(t, nil, nil, 0)

	// Empty store.
	r := doString(t, srv, "GET", "/orders", "")
	if r.status != 200 || compact(t, r.body) != `{"orders":[],"next":0}` {
		t.Fatalf("empty list = %d %s", r.status, r.body)
	}

	var ids []string
	for i := range 5 {
		m := doString(t, srv, "POST", "/orders", fmt.Sprintf(`{"item": "item-%d", "qty": %d}`, i, i+1)).json(t)
		ids = append(ids, m["id"].(string))
	}

	type page struct {
		Orders []struct {
			ID   string `json:"id"`
			Item string `json:"item"`
			Qty  int    `json:"qty"`
			Seq  uint64 `json:"seq"`
		} `json:"orders"`
		Next uint64 `json:"next"`
	}
	list := func(query string) page {
		t.Helper()
		r := doString(t, srv, "GET", "/orders"+query, "")
		if r.status != 200 {
			t.Fatalf("GET /orders%s = %d %s", query, r.status, r.body)
		}
		var p page
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	tests := []struct {
		query    string
		wantSeqs []uint64
		wantNext uint64
	}{
		{"", []uint64{1, 2, 3, 4, 5}, 5},
		{"?limit=2", []uint64{1, 2}, 2},
		{"?after=2&limit=2", []uint64{3, 4}, 4},
		{"?after=4", []uint64{5}, 5},
		{"?after=5", nil, 5},
		{"?limit=1000", []uint64{1, 2, 3, 4, 5}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			p := list(tt.query)
			var seqs []uint64
			for _, o := range p.Orders {
				seqs = append(seqs, o.Seq)
				i := int(o.Seq) - 1
				if o.ID != ids[i] || o.Item != fmt.Sprintf("item-%d", i) || o.Qty != i+1 {
					t.Errorf("order at seq %d = %+v; want id %s", o.Seq, o, ids[i])
				}
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.wantSeqs) || p.Next != tt.wantNext {
				t.Errorf("seqs %v next %d; want %v next %d", seqs, p.Next, tt.wantSeqs, tt.wantNext)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	srv := server(t, nil, nil, 0)

	r := doString(t, srv, "PUT", "/catalog/sku-1", `{"name": "Widget", "price": 9.5}`)
	if r.status != http.StatusOK {
		t.Fatalf("PUT = %d %s", r.status, r.body)
	}
	want := `{"sku":"sku-1","name":"Widget","price":9.5,"seq":1}`
	if got := compact(t, r.body); got != want {
		t.Errorf("PUT body = %s; want %s", got, want)
	}
	r = doString(t, srv, "GET", "/catalog/sku-1", "")
	if got := compact(t, r.body); r.status != 200 || got != want {
		t.Errorf("GET = %d %s; want 200 %s", r.status, got, want)
	}

	// Overwrite; price 0 is allowed.
	r = doString(t, srv, "PUT", "/catalog/sku-1", `{"name": "Free widget", "price": 0}`)
	want = `{"sku":"sku-1","name":"Free widget","price":0,"seq":2}`
	if got := compact(t, r.body); r.status != 200 || got != want {
		t.Errorf("PUT again = %d %s; want 200 %s", r.status, got, want)
	}
	r = doString(t, srv, "GET", "/catalog/sku-1", "")
	if got := compact(t, r.body); got != want {
		t.Errorf("GET after overwrite = %s; want %s", got, want)
	}
}

func TestCatalogErrors(t *testing.T) {
	srv := server(t, nil, nil, 0)
	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"unknown sku", "GET", "/catalog/nope", "", 404, `get catalog item "nope": not found`},
		{"name missing", "PUT", "/catalog/a", `{"price": 1}`, 400, `field "name" is required`},
		{"name empty", "PUT", "/catalog/a", `{"name": "", "price": 1}`, 400, `field "name" is required`},
		{"price missing", "PUT", "/catalog/a", `{"name": "n"}`, 400, `field "price" is required`},
		{"price negative", "PUT", "/catalog/a", `{"name": "n", "price": -0.01}`, 400, `field "price" must be at least 0`},
		{"price string", "PUT", "/catalog/a", `{"name": "n", "price": "1"}`, 400, `field "price" must be a number, got string`},
		{"name wrong type", "PUT", "/catalog/a", `{"name": true, "price": 1}`, 400, `field "name" must be a string, got bool`},
		{"unknown field", "PUT", "/catalog/a", `{"name": "n", "price": 1, "sku": "b"}`, 400, `unknown field "sku"`},
		{"invalid JSON", "PUT", "/catalog/a", `{name: "n"}`, 400, "invalid JSON"},
		{"invalid sku", "PUT", "/catalog/a%20b", `{"name": "n", "price": 1}`, 400, "sku must be 1 to 128 characters"},
		{"sku too long", "PUT", "/catalog/" + strings.Repeat("s", 129), `{"name": "n", "price": 1}`, 400, "sku must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, doString(t, srv, tt.method, tt.path, tt.body), tt.status, tt.want)
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := server(t, nil, nil, 0)
	r := doString(t, srv, "GET", "/healthz", "")
	if r.status != 200 || string(r.body) != "ok" || r.header.Get(HeaderRegion) != region {
		t.Errorf("GET /healthz = %d %q region %q", r.status, r.body, r.header.Get(HeaderRegion))
	}
	r = doString(t, srv, "HEAD", "/healthz", "")
	if r.status != 200 || len(r.body) != 0 {
		t.Errorf("HEAD /healthz = %d %q", r.status, r.body)
	}
}

// faultStore fails every call with err, or blocks until the context ends
// when block is set.
type faultStore struct {
	err   error
	block bool
}

var _ data.Store = (*faultStore)(nil)

func (f *faultStore) fail(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return fmt.Errorf("fault: %w", ctx.Err())
	}
	return fmt.Errorf("fault: %w", f.err)
}

func (f *faultStore) Put(ctx context.Context, _ string, _ []byte) (data.Record, error) {
	return data.Record{}, f.fail(ctx)
}
func (f *faultStore) Get(ctx context.Context, _ string) (data.Record, error) {
	return data.Record{}, f.fail(ctx)
}
func (f *faultStore) List(ctx context.Context, _ uint64, _ int) ([]data.Record, error) {
	return nil, f.fail(ctx)
}
func (f *faultStore) Status(context.Context) data.Status { return data.Status{} }

func TestDataServiceErrors(t *testing.T) {
	id := strings.Repeat("0f", 16)
	tests := []struct {
		name       string
		store      *faultStore
		status     int
		want       string
		retryAfter string
	}{
		{"unavailable", &faultStore{err: data.ErrUnavailable}, 503, "data service unavailable", "1"},
		{"fenced", &faultStore{err: data.ErrFenced}, 503, "replica is fenced", "1"},
		{"deadline", &faultStore{block: true}, 504, "data service timed out", ""},
		{"other", &faultStore{err: errors.New("disk on fire")}, 500, "internal error", ""},
	}
	requests := []struct{ method, path, body, op string }{
		{"POST", "/orders", `{"item": "x", "qty": 1}`, "create order"},
		{"GET", "/orders/" + id, "", "get order"},
		{"GET", "/orders", "", "list orders"},
		{"PUT", "/catalog/a", `{"name": "n", "price": 1}`, "put catalog item"},
		{"GET", "/catalog/a", "", "get catalog item"},
	}
	for _, tt := range tests {
		srv := server(t, tt.store, tt.store, 50*time.Millisecond)
		for _, rq := range requests {
			t.Run(tt.name+"/"+rq.method+" "+rq.path, func(t *testing.T) {
				r := doString(t, srv, rq.method, rq.path, rq.body)
				checkError(t, r, tt.status, tt.want)
				if got := r.header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After = %q; want %q", got, tt.retryAfter)
				}
				msg := r.json(t)["error"].(string)
				if tt.status != 500 && !strings.HasPrefix(msg, rq.op) {
					t.Errorf("error %q does not name the operation %q", msg, rq.op)
				}
				if strings.Contains(msg, "disk on fire") {
					t.Errorf("internal error leaked to the client: %q", msg)
				}
			})
		}
	}
}

func TestStatusMapping(t *testing.T) {
	// status is the single mapping; check it directly for wrapped errors.
	tests := []struct {
		err  error
		code int
	}{
		{fmt.Errorf("x: %w", data.ErrNotFound), 404},
		{fmt.Errorf("x: %w", data.ErrUnavailable), 503},
		{fmt.Errorf("x: %w", data.ErrFenced), 503},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 504},
		{&http.MaxBytesError{Limit: 1}, 413},
		{badRequest("bad"), 400},
		{errNoRoute, 404},
		{errMethod, 405},
		{errors.New("boom"), 500},
	}
	for _, tt := range tests {
		if code, _ := status(tt.err); code != tt.code {
			t.Errorf("status(%v) = %d; want %d", tt.err, code, tt.code)
		}
	}
}

// compact returns a JSON body without insignificant spaces, so that tests
// compare the answer, not its indentation.
func compact(t *testing.T, body []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, body); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	return b.String()
}
