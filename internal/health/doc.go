// Package health decides which targets (regional stamps) can take traffic.
// It is shared by the front door (L7) and the GSLB (DNS), which read its
// verdicts on their request paths: Checker.Healthy and Checker.RTT are
// lock-free.
//
// A Checker combines three signals, as Azure Front Door, Traffic Manager
// and Envoy do:
//
//   - Active probes (Front Door, Traffic Manager): each target's URL is
//     probed on its own schedule, HEAD by default, on a fresh connection, and
//     only the expected statuses (200) pass. A probe that has no response
//     headers after Config.Timeout fails.
//   - A decision rule turns probe outcomes into a verdict (below).
//   - Passive outlier ejection (Envoy): the component that sends real
//     traffic reports each outcome (Checker.Report); Outlier.ConsecutiveErrors
//     failures in a row eject the target for an ejection period that doubles
//     with repeated ejections, up to a cap, and at most a share of the
//     targets is ejected at once. An ejected target is not Healthy whatever
//     its probes say.
//
// Every state change is an Event (with a human-readable reason), kept in a
// per-target history, logged, and published to subscribers.
//
// # Decision rules
//
// A new target is "unknown" and not Healthy until it is probed. Its first
// probe decides: healthy if it passed, unhealthy if it failed. From then on:
//
// Window rule (Front Door; the default): the target is healthy when at
// least SuccessfulSamples (R) of its last SampleSize (N) probes passed. The
// window starts filled with the outcome of the first probe, so a target that
// passed its first probe needs N−R+1 failures to become unhealthy, and one
// that failed it needs R passes to become healthy.
//
// Consecutive rule (Traffic Manager; Config.Consecutive): a healthy target
// becomes unhealthy on its (ToleratedFailures+1)-th consecutive failed probe
// and healthy again on its first passing probe.
//
// # Schedule and detection bounds
//
// Probe starts follow a fixed cadence: a probe starts Interval after the
// start of the previous one (FastInterval while the target is unhealthy),
// less a random jitter that only ever shortens the wait, or as soon as the
// previous probe ends if that is later; probes of one target never overlap.
// A probe ends at most Timeout after its start, and Timeout ≤ Interval. Hence
// a target that stops answering at time D (crash, hang, or failing status)
// is marked unhealthy no later than:
//
//	window rule:       D + Interval×(SampleSize−SuccessfulSamples+1) + Timeout
//	consecutive rule:  D + Interval×(ToleratedFailures+1) + Timeout
//	                   ≤ D + (Interval+Timeout)×(ToleratedFailures+1)
//
// The detecting probe is the (N−R+1)-th, respectively (ToleratedFailures+1)-th,
// probe that starts after D; the bound is reached when every one of them
// hangs until Timeout and D falls just after a probe started, and detection
// is up to Timeout sooner when failures are immediate (connection refused,
// 503). The last form is Traffic Manager's published formula, which assumes
// the next probe waits Interval after a timeout; the fixed cadence makes it
// a strict upper bound. FastInterval applies only once the target is
// unhealthy, so it does not shorten detection. The matching lower bound,
// Config.MinDetection, is the best case: failures immediate, the first
// right after D, the waits Interval less the largest jitter, so
// Interval×(1−Jitter)×(SampleSize−SuccessfulSamples), respectively
// ×ToleratedFailures. With the topology defaults:
// front door (1s, 500ms, 4/2) ≤ 3.5s; GSLB (10s, 5s, 3 tolerated) ≤ 45s
// (Traffic Manager's formula: 60s). Consumers add their own delay: the DNS
// TTL for the GSLB; nothing for the front door, which reads Healthy per
// request. Passive ejection with the default ConsecutiveErrors of 1 reacts
// to the first failed request.
//
// A target that answers again at time U is marked healthy no later than:
//
//	window rule:       U + SuccessfulSamples×max(FastInterval, Timeout) + Timeout
//	consecutive rule:  U + max(FastInterval, Timeout) + Timeout
//
// (max(FastInterval, Timeout) because a probe that was hanging at U delays
// the next one until its timeout.)
//
// # Time
//
// Every schedule, timeout and ejection period runs on Config.Clock, so tests
// drive a Checker with a FakeClock (FakeClock.SettleProbes lets each probe's
// result count before time moves on); it is the one way geostamp's tests
// control time, also where real servers run over real sockets. Probe
// latency (RTT) is measured on the wall clock, since it measures the
// network.
package health
