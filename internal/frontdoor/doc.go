// Package frontdoor is geostamp's global L7 entry point, one per POP (the
// counterpart of Azure Front Door): a reverse proxy that sends each request
// to the best healthy region and, for requests that may be repeated, moves
// it to the next region when the first one fails, so that a regional outage
// costs those requests no errors.
//
// # Request path
//
// For each request the front door
//
//  1. finds the client (the connection's peer, or the right-most untrusted
//     X-Forwarded-For hop when the peer is a trusted proxy,
//     routing.ClientAddr) and its geo code (routing.GeoTable over the
//     topology's geoip map);
//  2. decides with routing.Decide over the regions as candidates, using the
//     front door's method (priority, weighted or latency), the health
//     checker's verdicts and RTTs, the operator's runtime changes (weight,
//     priority, drain, enable) and the affinity cookie when affinity is on;
//  3. forwards the request to Decision.Order[0] and, on a connect error, a
//     per-try timeout or a 502/503/504 answer, to the next region of the
//     order, up to frontdoor.retry.attempts tries in all, when the request
//     may be repeated: an idempotent method (GET, HEAD, OPTIONS, PUT,
//     DELETE) or an Idempotency-Key header, and a body small enough to be
//     replayed (ReplayLimit, 1 MiB). Any request whose connection was
//     refused (so it never left) moves on too. The per-try timeout runs
//     from the start of the try (from the end of the upload for bodies too
//     large to replay) to the response head. Retries after a timeout or a
//     502/503/504 are capped by a retry budget (Envoy): concurrent retries
//     may not exceed max(minRetries, budget × requests in flight), the
//     latter taken as its recent peak (decaying 15% every 250ms) so that the
//     budget does not collapse while requests stuck on a frozen region time
//     out one after another. Retries after a connect error (refused, reset
//     or closed before any answer) need no budget: the failed region's
//     application never saw the request, so the retry is failover, not
//     extra load, and a crash fails every request in flight at once;
//  4. reports every try's outcome to the health checker (passive outlier
//     ejection: with the defaults the first failed request ejects a
//     region), and passes the chosen region's answer through.
//
// Routing decisions are cheap: the candidates are a snapshot rebuilt when
// health changes (checker events), when the admin API changes a region
// (at once, so runtime changes apply to the next request) and every 250ms
// (probe RTTs). Decisions without affinity are memoized per snapshot.
//
// Geographic pinning: when the geoip table maps the client to a geo code
// that some enabled region lists (or, failing that, a region lists WORLD),
// those regions are preferred: the other regions only serve the client
// when none of them is eligible, and as retry targets. Unlike the GSLB's
// geographic method, the front door spills over to other geos rather than
// failing, since zero-error failover is its purpose.
//
// # Upstream requests
//
// The front door sends HTTP/1.1 to each region's origin URL over pooled
// keep-alive connections, with Host set to the origin's host and
// X-Forwarded-For (the peer appended), X-Forwarded-Proto, X-Forwarded-Host
// and X-Geostamp-FDID (origin lock: stamps reject requests without their
// front door's id). Hop-by-hop headers are removed both ways. The answer's
// X-Geostamp-Region passes through. A request with X-Geostamp-Debug: 1 gets
// an X-Geostamp-Route header: the decision (routing.Decision.Explain) and
// every try with its outcome.
//
// Gateway failures (connect errors, timeouts, 502, 503, 504) count as
// failures for passive ejection; other statuses, 500 included, count as
// answers: one application error must not eject a whole region.
//
// # Listeners
//
// The plain listener speaks HTTP/1.1 through the package's own lean server
// (no allocation on the common path of a proxied keep-alive request;
// bench/frontdoor.sh measures its CPU per request against HAProxy). It
// rejects malformed requests itself, before any region sees them: a bad
// request line or header line, an invalid or conflicting Content-Length,
// Content-Length together with Transfer-Encoding, an unsupported transfer
// coding (400/501), headers over MaxHeaderBytes (431), a body over
// MaxBodyBytes (413). The TLS listener serves HTTP/1.1 and HTTP/2 (ALPN)
// through net/http with the same proxy core (Handler). Beyond MaxConcurrent
// requests in flight, requests get an immediate 503 with Retry-After.
//
// # Admin API
//
// On the admin listener, every path needs "Authorization: Bearer TOKEN"
// (package auth: 401 otherwise, and always when no token is configured):
// GET /admin/origins (each region's routing settings and health state with
// its event history), POST /admin/origins/{name} with a JSON object of
// any of weight, priority, drained and enabled, GET /admin/health (the
// health checker's view), GET /admin/explain?client=IP[&affinity=REGION]
// (how a client is routed now), GET /metrics (Prometheus) and
// /debug/pprof/. GET /healthz answers without a token.
package frontdoor
