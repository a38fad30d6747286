// Package drill runs failover drills and measures them. Execute runs one:
// an open-loop load (LoadGenerator) on the front door and DNS paths while
// the plan's steps (package fault) inject faults on the same clock,
// then waits for replication to converge, reads every write back from
// every region and writes history.jsonl, summary.json and report.html.
// FloorFor and FloorForPlan give the RTO's floor: the best case the
// configuration allows.
//
// Measurements are plain records and every number is a pure function of
// them (Analyze, WriteReport), so a saved run can be analysed again:
// `geostamp drill analyze DIR` reads a history with ReadFile (AnalyzeDir).
// The history format, the definitions Analyze applies and the report are
// specified below.
//
// # History format (history.jsonl, version 1)
//
// One JSON object per line; every line has a "type". Instants are integer
// nanoseconds since the run's start on ONE monotonic clock (Go:
// time.Since(start), which uses the monotonic reading); configuration
// durations are float seconds with a _seconds suffix.
//
//	{"type":"run", ...}       first line, exactly once: the header (Run)
//	{"type":"op", ...}        one per attempt of each client operation (Op)
//	{"type":"event", ...}     fault, heal, failover-step, phase, note (Event)
//	{"type":"readback", ...}  one per key and region after convergence (Readback)
//	{"type":"end", ...}       last line: scheduled count, generator self-check (End)
//
// Run: version, scenario, topology, model, regions, services (name, kind,
// replication, initial primary), target, started (wall clock of t=0),
// rate (total operations per second over all paths), load_start (ns of seq
// 0), read_share, timeout_seconds, objectives {rto_seconds, rpo_seconds,
// availability_percent}, floor [{name, seconds, formula}] (see FloorFor),
// generator_behind.
//
// Op: seq, op (read|write), key, id, service, intended, sent, done,
// outcome (ok|fail|unknown), status, region (X-Geostamp-Region),
// data_region, position, attempt, path (frontdoor|dns|direct), conn
// (pooled|fresh), addr, found (reads), error. Rules for generators:
//
//   - Open loop, one schedule: seq counts operations from 0 over all paths
//     and connection modes, and intended = load_start + seq/rate whatever
//     happened to earlier operations. Interleave paths over the one
//     schedule (e.g. by seq modulo the number of streams).
//   - sent is when the request was handed to the HTTP client (so waiting
//     for a pooled connection is service time, not generator lag); done is
//     when the outcome was known. An operation still pending when the run
//     ends is written with outcome unknown and done 0.
//   - ok: the service answered as specified (a read of an absent key
//     answered 404 is ok with found=false); fail: an error answer or a
//     refused/reset connection; unknown: no answer within the timeout.
//   - Write keys are unique in the run and chosen by the client (e.g. in
//     the order's item), so they are known even when the outcome is
//     unknown and can be read back. A read names the key of a write; set
//     found on every ok read.
//   - A generator that retries writes one record per attempt (attempt 1,
//     2, …) with the same seq and intended.
//   - data_region is the region whose data service acknowledged a write,
//     when the platform says so; without it, split brain can be
//     attributed only in the active-passive model (region is then the
//     writer).
//
// Event: t, kind, name (fault or heal name), step (detect|decide|fence|
// promote|repoint|rejoin), phase, region (faulted region; fenced old
// primary; promoted new primary), service ("" = all), epoch, gap (on
// promote: writes the new primary lacked by replication positions),
// discarded (on rejoin: writes the old primary dropped), detail. Failover
// steps outside this list (abort, unfence, …) are written as notes.
//
// Readback: t, region, key, service, found, error. After convergence, the
// generator reads back every write (acknowledged, failed and unknown)
// from every region it can reach; a readback that got no answer carries
// error and counts neither way.
//
// The generator of this package (LoadGenerator, run by Execute) follows
// these rules: one dispatcher hands each operation to a bounded pool of
// workers at its intended instant; writes create an order whose item is
// the key; reads fetch the most recently acknowledged order; on the dns
// path, simulated clients resolve at the GSLB and keep each answer for its
// TTL (see dnsCache). After the load, Execute runs the plan's repair
// (logged as notes: it is not a failback), waits until every region answers
// and replication has converged, and lists each region's replica at its
// ingress for the readback.
//
// End: t, scheduled (number of operations in the schedule), generator_behind,
// max_lag (ns), detail.
//
// Writer is safe for concurrent use and buffered (call Flush periodically
// and at the end). Reader streams records, names the line in every error,
// rejects unknown types and fields, and drops a last line cut off by a
// crash (History.Truncated).
//
// # Definitions applied by Analyze
//
// Operations. Records with the same seq are one operation: its outcome,
// region, sent and done are those of its last attempt; its intended
// instant that of its first. An operation is successful when its outcome
// is ok (and, with Options.SlowAfter, its latency does not exceed it).
// failed_requests counts operations whose outcome is fail or unknown.
//
// RTO. T is the first fault event. Candidates are the operations intended
// at or after T, in intended order. The platform has recovered at the
// first candidate c such that each of the Hold/Window consecutive windows
// [t_c + k·Window, t_c + (k+1)·Window) holds at least one operation and a
// success ratio ≥ RecoveryRatio, and the last window ends within the
// schedule. Operations are bucketed by INTENDED instant, so an operation
// delayed by the stall it measures still counts where it belongs.
// RTO = t_c − T, and 0 when c is the first candidate (no measurable
// outage). Its resolution is t_c − t_{c−1}, the send interval at the
// recovery point (1/rate for a valid run): the true recovery instant lies
// in (T + RTO − resolution, T + RTO]. A failure anywhere in the hold
// pushes recovery past it, so a flapping recovery is not counted. If no
// candidate qualifies, rto_seconds is null and the verdict fails. No fault
// event: RTO 0. Defaults: Window 1 s, Hold 5 s, RecoveryRatio = the
// availability objective (99.95 % → 0.9995; 1 without one). With 200
// operations per 1-s window that ratio means every operation must succeed;
// at 10,000 per window it tolerates 5 failures. Each path/connection
// stream gets its own RTO the same way (streams in summary.json).
//
// Failback. The failback starts at the first phase event "failback" at or
// after T, else at the first heal event at or after T. Its RTO is measured
// from there in the same way, if it starts after the recovery. The
// outage window spans the failed operations from T to the failback start
// (first to last failure, by intended instant); the failback outage those
// after it.
//
// Phases, for latency: steady [load_start, T), fault [T, recovery),
// recovery [recovery, failback), failback [failback, end). latency is
// intended→done (free of coordinated omission), service_time is sent→done
// of the last attempt (what a closed-loop client reports); both are
// nearest-rank percentiles over operations that completed (done > 0),
// failed ones included.
//
// Lost writes. Only acknowledged writes (outcome ok) can be lost. The
// authoritative region of a write is the primary of its data service at
// the end of the run: the region of the last promote step for that
// service (or for all services), else the header's initial primary. A
// write is lost when the authoritative region answered the readback and
// did not find it; when the authoritative region is unknown or did not
// answer (multi-write and cache services, an unreachable region), when no
// region that answered found it. Acknowledged writes without any answered
// readback are unverified: the run is then invalid, since loss cannot be
// measured. Writes with an unknown outcome are never loss (they are
// reported as applied or absent); neither are failed writes (a failed
// write found anyway is reported). A surviving write missing from another
// answering region is divergent (reported, not loss).
//
// Split brain. A lost write is a split-brain write when the region that
// acknowledged it (data_region, or region in the active-passive model) was
// at acknowledgement time (done) fenced (a fence step naming it, not
// followed by its own promotion) or not the primary (the primary being the
// region of the last promote step before, else the initial primary).
// Without data_region in an active-active model the writer is unknown: a
// lost write acknowledged after a failover step is then counted as lost,
// with a note. lost_writes excludes split-brain writes; split_brain_writes
// counts them and fails the verdict.
//
// RPO. Over the lost (non-split-brain) writes: rpo_seconds = the last lost
// acknowledgement (done) minus the recovery point, which is the
// acknowledgement of the last write that survived before the first lost
// one (load_start if none did): "last acknowledged minus last surviving".
// 0 when nothing was lost. position_gap (sum of promote gaps) is reported
// beside lost_writes as a cross-check, with a note when they differ;
// discarded_writes (sum of rejoin discards) is the exact loss by
// positions, acknowledged or not, with a note when it is below the
// ledger's count.
//
// Stale reads. A read is stale when it succeeded with found=false while
// the write of its key had been acknowledged (done) before the read was
// sent. Write keys are unique, so older data means absent data. Reads
// without found are not judged.
//
// Validity. A run is invalid, and cannot pass, when: it has no operations
// or no rate; more than MaxLateFraction (1 %) of operations were sent
// (first attempt) more than MaxSendLag (25 ms) after their intended
// instant — the generator fell behind, so failures it should have seen
// were not measured; the generator says it fell behind; an operation's
// intended instant is off load_start + seq/rate by more than half a send
// interval (not an open-loop history: a closed-loop client's record);
// scheduled operations have no record; records are duplicated; or
// acknowledged writes were never read back.
//
// Verdict. pass when the run is valid and: RTO ≤ objective (recovered);
// failback RTO ≤ the RTO objective when there is a failback after the
// recovery; lost_writes = 0, or rpo_seconds ≤ a non-zero RPO objective;
// no split-brain write; and, when an availability objective is set, the
// availability outside the recovery intervals (from T to the recovery,
// from the failback start to its recovery; an operation in flight when an
// interval begins belongs to it) meets it (a drill that causes an outage
// cannot meet a monthly availability target over its own minutes; the
// outage itself is judged by the RTO). Otherwise fail, with every reason
// in summary.json.
//
// Floor. The header's floor terms come in groups (FloorTerm.Group): the
// terms of a group happen one after the other, the groups at the same
// time from the fault, so floor_rto_seconds is the largest group sum
// (FloorSeconds; terms without a group form one group). The generator
// computes them from the topology, the health checker's schedule and the
// failover controller's timing with FloorFor or FloorForPlan. Each term is
// a lower bound, the best case: routing — front door detection
// (SampleSize−SuccessfulSamples) × the shortest wait between probes
// (Interval less the jitter), or GSLB detection ToleratedFailures × that
// wait, plus the TTL less its spacing across the load's DNS clients (TTL −
// TTL/clients: the last client cache refreshed that long before the answer
// changed) — and data — the promotion of an automatic failover group:
// after a lost region, its lease less one renewal period (the lease was
// last renewed at most that long before the fault) plus the grace; after a
// failed data engine in a live region, the controller's ReplicaDownAfter
// plus the grace. A dead region refusing connections costs no detection on
// the front door path (retries); the measured RTO can still come in under
// the floor by its resolution, and that is noted.
//
// # Report
//
// WriteReport renders one self-contained HTML page (inline CSS and
// server-side SVG, no script, nothing fetched): the verdict in big type,
// the reasons, a timeline (success ratio, successful operations per second
// by serving region, p99 latency by region and p50 overall, per 1-s bucket
// by intended instant; fault, heal, failover steps, phases, the floor and
// the RTO objective as labelled vertical lines; the recovery interval
// shaded), and tables of numbers, checks, floor terms, phases, regions,
// paths, failover steps and events. For browser tests: <meta
// name="geostamp-verdict" content="pass|fail">, <div id="verdict">,
// <svg id="timeline"> with path.series elements, and the summary as JSON in
// <script type="application/json" id="summary-json">.
package drill
