// Package workload is the sample application that runs in every deployment
// stamp: a stateless HTTP API for orders and a product catalog, kept in
// geo-replicated data services. Replicas hold no state of their own, so any
// replica in any region can serve any request its data services allow.
package workload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/geostamp/geostamp/internal/data"
	"github.com/geostamp/geostamp/internal/httpjson"
)

// HeaderRegion names the region that served a response. It is set on every
// response, errors included.
const HeaderRegion = "X-Geostamp-Region"

// Limits of the API.
const (
	MaxBodyBytes     = 1 << 20 // request bodies larger than this get 413
	MaxItemLen       = 200     // characters in an order's item
	MaxSKULen        = 128     // bytes in a catalog SKU
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Config configures an App.
type Config struct {
	// Region is the region this replica runs in; required. It is stamped on
	// orders and on every response.
	Region string
	// Orders holds orders (key: order id); required.
	Orders data.Store
	// Catalog holds catalog items (key: SKU); required.
	Catalog data.Store
	// Timeout bounds the data-service calls of one request; a request that
	// runs out gets 504. Default 5s.
	Timeout time.Duration
	// Logger receives server-side errors. Default: discard.
	Logger *slog.Logger
	// Registerer, when set, receives the workload's metrics (operations by
	// service, kind and outcome, and their duration).
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Region == "" {
		errs = append(errs, errors.New("region: required"))
	}
	if c.Orders == nil {
		errs = append(errs, errors.New("orders: required"))
	}
	if c.Catalog == nil {
		errs = append(errs, errors.New("catalog: required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// App is the workload's HTTP handler. It is safe for concurrent use.
type App struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	now func() time.Time
	m   *metrics
}

var _ http.Handler = (*App)(nil)

// New validates cfg and returns the application. It has no side effects.
func New(cfg Config) (*App, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("workload: invalid config: %w", err)
	}
	a := &App{
		cfg: cfg,
		log: cfg.Logger.With("component", "workload", "region", cfg.Region),
		mux: http.NewServeMux(),
		now: time.Now,
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("workload: metrics: %w", err)
	}
	a.m = m
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("POST /orders", a.handle("orders", "create", a.createOrder))
	a.mux.HandleFunc("GET /orders", a.handle("orders", "list", a.listOrders))
	a.mux.HandleFunc("GET /orders/{id}", a.handle("orders", "get", a.getOrder))
	a.mux.HandleFunc("PUT /catalog/{sku}", a.handle("catalog", "put", a.putItem))
	a.mux.HandleFunc("GET /catalog/{sku}", a.handle("catalog", "get", a.getItem))
	return a, nil
}

// ServeHTTP routes r. Unknown routes and wrong methods get JSON errors like
// every other failure.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(HeaderRegion, a.cfg.Region)
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r) // populates path values
		return
	}
	// The mux's own not-found, method-not-allowed or redirect handler.
	// Capture its answer so 404 and 405 are rendered as JSON.
	h, _ := a.mux.Handler(r)
	rec := &captureWriter{header: make(http.Header)}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusNotFound:
		a.writeError(w, r, fmt.Errorf("%w: %s %s", errNoRoute, r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		a.writeError(w, r, fmt.Errorf("%w: %s %s (allowed: %s)", errMethod, r.Method, r.URL.Path, allow))
	default: // redirect to the canonical path
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		w.Write(rec.body.Bytes())
	}
}

func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
}

// handle adapts a handler that returns a status and a JSON value, or an
// error. Each call is a span "service.op" (continuing the ingress's
// traceparent), the parent of the data-service calls it makes.
func (a *App) handle(service, op string, fn func(ctx context.Context, r *http.Request) (int, any, error)) http.HandlerFunc {
	name := service + "." + op
	kind := "read"
	if op == "create" || op == "put" {
		kind = "write"
	}
	om := a.m.forOp(service, kind)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, span := startSpan(r, name, service, a.cfg.Region)
		defer span.End()
		// With w, the server closes the connection after a too-large body.
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
		code, v, err := fn(ctx, r)
		if err != nil {
			failed, _ := status(err)
			om.observe(ctx, failed, time.Since(start))
			endSpan(span, 0, err)
			// The request's span, so that the failure's log line has its trace id.
			a.writeError(w, r.WithContext(ctx), err)
			return
		}
		om.observe(ctx, code, time.Since(start))
		endSpan(span, code, nil)
		httpjson.Write(w, code, v)
	}
}

// order is the stored form of an order.
type order struct {
	ID      string    `json:"id"`
	Item    string    `json:"item"`
	Qty     int64     `json:"qty"`
	Region  string    `json:"region"`
	Created time.Time `json:"created"`
}

// orderView is an order as returned by the API.
type orderView struct {
	order
	Seq uint64 `json:"seq"`
}

type createOrderRequest struct {
	Item *string `json:"item"`
	Qty  *int64  `json:"qty"`
}

type createOrderResponse struct {
	ID     string `json:"id"`
	Region string `json:"region"`
	Seq    uint64 `json:"seq"`
	// DataRegion is the region whose primary acknowledged the write.
	DataRegion string `json:"data_region,omitempty"`
}

func (a *App) createOrder(ctx context.Context, r *http.Request) (int, any, error) {
	var req createOrderRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	var errs []string
	switch {
	case req.Item == nil || *req.Item == "":
		errs = append(errs, `field "item" is required`)
	case utf8.RuneCountInString(*req.Item) > MaxItemLen:
		errs = append(errs, fmt.Sprintf(`field "item" must be at most %d characters`, MaxItemLen))
	}
	switch {
	case req.Qty == nil:
		errs = append(errs, `field "qty" is required`)
	case *req.Qty < 1:
		errs = append(errs, `field "qty" must be at least 1`)
	}
	if len(errs) > 0 {
		return 0, nil, badRequest(errs...)
	}
	o := order{
		ID:      newID(),
		Item:    *req.Item,
		Qty:     *req.Qty,
		Region:  a.cfg.Region,
		Created: a.now().UTC(),
	}
	value, err := json.Marshal(o)
	if err != nil {
		return 0, nil, err
	}
	rec, err := a.cfg.Orders.Put(ctx, o.ID, value)
	if err != nil {
		return 0, nil, &opError{Op: "create order", Err: err}
	}
	return http.StatusCreated, createOrderResponse{ID: o.ID, Region: o.Region, Seq: rec.Seq, DataRegion: rec.Region}, nil
}

func (a *App) getOrder(ctx context.Context, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	op := fmt.Sprintf("get order %q", id)
	if !validID(id) {
		// Not an id this API could have issued; do not hand it to the store.
		return 0, nil, &opError{Op: op, Err: data.ErrNotFound}
	}
	rec, err := a.cfg.Orders.Get(ctx, id)
	if err != nil {
		return 0, nil, &opError{Op: op, Err: err}
	}
	v, err := decodeOrder(rec)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

type listOrdersResponse struct {
	Orders []orderView `json:"orders"`
	// Next is the seq to pass as after to continue; it equals after when
	// there are no newer orders.
	Next uint64 `json:"next"`
}

func (a *App) listOrders(ctx context.Context, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, nil, badRequest(fmt.Sprintf(`query parameter "after" must be a non-negative integer, got %q`, s))
		}
		after = n
	}
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			return 0, nil, badRequest(fmt.Sprintf(`query parameter "limit" must be an integer from 1 to %d, got %q`, MaxListLimit, s))
		}
		limit = n
	}
	recs, err := a.cfg.Orders.List(ctx, after, limit)
	if err != nil {
		return 0, nil, &opError{Op: "list orders", Err: err}
	}
	resp := listOrdersResponse{Orders: make([]orderView, 0, len(recs)), Next: after}
	for _, rec := range recs {
		v, err := decodeOrder(rec)
		if err != nil {
			return 0, nil, err
		}
		resp.Orders = append(resp.Orders, v)
		resp.Next = rec.Seq
	}
	return http.StatusOK, resp, nil
}

func decodeOrder(rec data.Record) (orderView, error) {
	var o order
	if err := json.Unmarshal(rec.Value, &o); err != nil {
		return orderView{}, fmt.Errorf("workload: order %q at seq %d is corrupt: %w", rec.Key, rec.Seq, err)
	}
	return orderView{order: o, Seq: rec.Seq}, nil
}

// item is the stored form of a catalog item.
type item struct {
	SKU   string  `json:"sku"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

// itemView is a catalog item as returned by the API.
type itemView struct {
	item
	Seq uint64 `json:"seq"`
}

type putItemRequest struct {
	Name  *string  `json:"name"`
	Price *float64 `json:"price"`
}

func (a *App) putItem(ctx context.Context, r *http.Request) (int, any, error) {
	sku := r.PathValue("sku")
	var errs []string
	if !validSKU(sku) {
		errs = append(errs, fmt.Sprintf("sku must be 1 to %d characters from A-Z a-z 0-9 . _ -", MaxSKULen))
	}
	var req putItemRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == nil || *req.Name == "" {
		errs = append(errs, `field "name" is required`)
	}
	switch {
	case req.Price == nil:
		errs = append(errs, `field "price" is required`)
	case *req.Price < 0:
		errs = append(errs, `field "price" must be at least 0`)
	}
	if len(errs) > 0 {
		return 0, nil, badRequest(errs...)
	}
	it := item{SKU: sku, Name: *req.Name, Price: *req.Price}
	value, err := json.Marshal(it)
	if err != nil {
		return 0, nil, err
	}
	rec, err := a.cfg.Catalog.Put(ctx, sku, value)
	if err != nil {
		return 0, nil, &opError{Op: fmt.Sprintf("put catalog item %q", sku), Err: err}
	}
	return http.StatusOK, itemView{item: it, Seq: rec.Seq}, nil
}

func (a *App) getItem(ctx context.Context, r *http.Request) (int, any, error) {
	sku := r.PathValue("sku")
	op := fmt.Sprintf("get catalog item %q", sku)
	if !validSKU(sku) {
		return 0, nil, &opError{Op: op, Err: data.ErrNotFound}
	}
	rec, err := a.cfg.Catalog.Get(ctx, sku)
	if err != nil {
		return 0, nil, &opError{Op: op, Err: err}
	}
	var it item
	if err := json.Unmarshal(rec.Value, &it); err != nil {
		return 0, nil, fmt.Errorf("workload: catalog item %q at seq %d is corrupt: %w", sku, rec.Seq, err)
	}
	return http.StatusOK, itemView{item: it, Seq: rec.Seq}, nil
}

// newID returns a random 16-byte id in hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// validSKU keeps SKUs to characters every data engine accepts in a key.
func validSKU(sku string) bool {
	if sku == "" || len(sku) > MaxSKULen {
		return false
	}
	for _, c := range []byte(sku) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// decodeBody decodes the single JSON object in r's body into v, rejecting
// unknown fields and bodies over MaxBodyBytes (r.Body is limited by handle).
func decodeBody(r *http.Request, v any) error {
	if r.ContentLength > MaxBodyBytes {
		return &http.MaxBytesError{Limit: MaxBodyBytes}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err == nil {
			return badRequest("request body must contain a single JSON object")
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("request body must contain a single JSON object")
	}
	return nil
}

// jsonError turns a decoding error into one that says what is wrong.
func jsonError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("request body is truncated JSON")
	case errors.As(err, &syntaxErr):
		return badRequest(fmt.Sprintf("request body is invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest(fmt.Sprintf("request body must be a JSON object, got %s", typeErr.Value))
		}
		return badRequest(fmt.Sprintf("field %q must be %s, got %s", typeErr.Field, typeName(typeErr.Type.Kind().String()), typeErr.Value))
	}
	// encoding/json reports unknown fields only as text.
	const prefix = "json: unknown field "
	if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return badRequest("unknown field " + msg[len(prefix):])
	}
	return badRequest("request body is invalid: " + err.Error())
}

func typeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "a " + kind
}

// Errors that decide the response status; see status.
var (
	errNoRoute = errors.New("no such route")
	errMethod  = errors.New("method not allowed")
)

// requestError is a problem with the request, shown to the client as is.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(msgs ...string) error {
	msg := msgs[0]
	for _, m := range msgs[1:] {
		msg += "; " + m
	}
	return &requestError{msg: msg}
}

// opError names the operation a data-service error happened in.
type opError struct {
	Op  string
	Err error
}

func (e *opError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *opError) Unwrap() error { return e.Err }

// status maps an error to the HTTP status and the message shown to the
// client. It is the only place that decides error statuses.
func status(err error) (code int, msg string) {
	prefix := ""
	var op *opError
	if errors.As(err, &op) {
		prefix = op.Op + ": "
	}
	var (
		reqErr *requestError
		maxErr *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit)
	case errors.As(err, &reqErr):
		return http.StatusBadRequest, reqErr.msg
	case errors.Is(err, errNoRoute), errors.Is(err, errMethod):
		code := http.StatusNotFound
		if errors.Is(err, errMethod) {
			code = http.StatusMethodNotAllowed
		}
		return code, err.Error()
	case errors.Is(err, data.ErrNotFound):
		return http.StatusNotFound, prefix + data.ErrNotFound.Error()
	case errors.Is(err, data.ErrFenced):
		return http.StatusServiceUnavailable, prefix + data.ErrFenced.Error()
	case errors.Is(err, data.ErrUnavailable):
		return http.StatusServiceUnavailable, prefix + data.ErrUnavailable.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, prefix + "data service timed out"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, prefix + "request canceled"
	}
	return http.StatusInternalServerError, "internal error"
}

func (a *App) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if code >= 500 {
		a.log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	httpjson.Error(w, code, msg)
}

// captureWriter records a response written by the mux's internal handlers.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
