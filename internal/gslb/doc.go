// Package gslb is geostamp's health-checked authoritative DNS server: the
// counterpart of Azure DNS with Traffic Manager. It serves one zone
// (topology gslb.zone) over UDP and TCP and answers the routed name
// <host>.<zone> with the address of the region chosen by routing.Decide
// (the policy code the front door uses), from the verdicts of a
// health.Checker that probes every stamp with Traffic Manager semantics.
//
// # Names and records
//
//	<zone>             SOA, NS (topology gslb.nameservers)
//	<host>.<zone>      A / AAAA of the routed region(s): Region.Address, and
//	                   Region.Address6 (or an IPv6 Address) for AAAA
//	<region>.<zone>    A / AAAA of that region, whatever its health
//	ns1.<zone>         A / AAAA of the listen address (glue), when it is a
//	                   specified IP address
//	_why.<host>.<zone> TXT: why the last answer for the client's subnet was
//	                   chosen (routing.Decision.Explain), TTL 0
//
// Names are matched case-insensitively and the question is echoed as sent
// (0x20 bits preserved). Names in the zone that do not exist get NXDOMAIN,
// existing names without data of the asked type NODATA; both carry the SOA
// in the authority section with TTL = SOA MINIMUM = the negative TTL (the
// configured ttl). Names outside the zone and classes other than IN get
// REFUSED, zone transfers REFUSED, opcodes other than QUERY NOTIMP, EDNS
// versions other than 0 BADVERS, and malformed queries FORMERR (or nothing,
// when not even the header can be read, or when the packet is a response).
//
// EDNS0: the server advertises a 1232-byte UDP payload and honours the
// client's (a UDP answer is at most min(client size, 1232) bytes, at least
// 512; 512 without EDNS). An answer that does not fit is sent with the TC bit
// and only the question (and OPT), so that the client retries over TCP,
// where the full answer is sent. The DO bit is copied. EDNS Client Subnet
// (RFC 7871) is used for routing when present with a SOURCE PREFIX-LENGTH
// above 0, and always echoed (FAMILY, SOURCE PREFIX-LENGTH and ADDRESS as
// sent) with a SCOPE PREFIX-LENGTH that says how far the answer holds:
// 0 when it does not depend on the client (priority, weighted, multivalue,
// region names, the apex); for performance and geographic routing the
// shortest prefix of the client address inside which every address matches
// the same networks of the table (Region.Networks, respectively the
// topology geoip table), which is the matched prefix length unless a more
// specific network lies nearby. Malformed ECS options (wrong address length,
// bits set beyond the source prefix, unknown family) get FORMERR, as RFC
// 7871 §6 asks.
//
// # Routing
//
// gslb.routing selects the routing.Method: priority, weighted (one record,
// chosen by weight), performance (client network → region), geographic
// (client address → geo code by the topology geoip table → region, with
// WORLD as the default) or multivalue (up to gslb.maxRecords healthy
// records). The client is the ECS address when present, else the source of
// the query (the resolver). When every region is unhealthy the decision
// fails open and the answer names every region of its pool, in preference
// order, so that clients can try each (for geographic routing, the regions
// of the client's geo): never NXDOMAIN, never an empty answer because of
// health.
//
// Answers are precomputed: each health state is an immutable snapshot
// swapped atomically (RCU), and each routing decision is memoized per
// client class and per weighted choice (routing.Decision.RandSpan), so the
// query path does not allocate. On Linux, UDP queries are read and answered
// in batches (recvmmsg, sendmmsg). bench/gslb.sh compares the server with
// knot and bind9.
//
// # Health and TTL
//
// Every enabled region is probed (HEAD <probe URL>, 200 passes) every
// gslb.probe.interval with gslb.probe.timeout, and marked unhealthy on its
// (toleratedFailures+1)-th consecutive failure (health.GSLBConfig). Answers
// carry gslb.ttl while every region is healthy and gslb.degradedTTL while
// any enabled region is not (unknown at start, unhealthy, or failing open).
//
// # Failover time
//
// A stamp that stops answering at time D is marked unhealthy by
// D + interval×(toleratedFailures+1) + timeout at the latest (see the health
// package), and the DNS answer changes at that moment (the checker's event
// swaps the state). The bound this package publishes and tests, Traffic
// Manager's formula plus one interval of slack for the probe phase, is
//
//	answer changes within (interval + timeout) × (toleratedFailures + 1) + interval
//
// and a client that cached the old answer moves after at most one more
// normal ttl (the degraded TTL applies only to answers given after the
// failure). With the topology defaults (10s, 5s, 3 tolerated, ttl 10s) the
// answer changes within 70s (the health bound is 45s), and clients follow
// within 80s. Resolvers that raise TTLs, and clients that keep connections
// open, take longer; that is outside the server's control.
//
// # Explain and admin API
//
// Each A/AAAA answer is recorded per client subnet (the ECS prefix or the
// query source, at most /24 for IPv4 and /56 for IPv6) in a fixed-size
// table. A TXT query for _why.<host>.<zone> explains the last answer for the
// querier's subnet, or the decision a query would get now when none is
// recorded. The admin API (bearer token; 401 without it) serves
// GET /admin/explain?client=IP (the same, as JSON), GET /admin/health
// (health.TargetState of every region with its history, the TTL in force)
// and GET /metrics.
//
// # Metrics and query log
//
// geostamp_gslb_queries_total{proto,qtype,rcode},
// geostamp_gslb_answers_total{region} (each region whose record was
// answered), geostamp_gslb_fail_open_answers_total,
// geostamp_gslb_truncated_total, geostamp_gslb_dropped_total,
// geostamp_gslb_region_healthy{region}, geostamp_gslb_probe_rtt_seconds{region},
// geostamp_gslb_degraded and geostamp_gslb_ttl_seconds. With
// gslb.queryLog, every query is logged as one JSON line (message "query").
package gslb
