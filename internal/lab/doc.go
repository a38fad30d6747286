// Package lab runs a whole topology on one machine, for tests, drills and
// `geostamp up`.
//
// The lab process (New, then Lab.Run) plans ports and the witness, then
// runs:
//   - one OS process per region (`geostamp region run`, RunRegion) on its
//     own loopback address;
//   - an etcd member per site, the witness site's in the lab process itself,
//     so that failover leases need a quorum across sites;
//   - the topology's WAN links (package wan), emulated with one-way
//     latency, jitter and cuts: the regions reach each other, and the POPs
//     reach the regions, through them;
//   - the global layer: a front door per POP (HTTP and HTTPS with a local
//     CA) and the GSLB DNS server;
//   - the control API, behind a bearer token (package auth): list regions,
//     links, data status, events and endpoints; kill, freeze, resume,
//     restart, drain, undrain and brown out a region; cut, heal and delay a
//     link; plan or force a failover (/v1/failover) and crash a data engine;
//     kill and restart a POP.
//
// It writes endpoints.json, the token, the effective topology and every
// process's log to the state directory; Dial and Client talk to a running
// lab from another process (the CLI, package fault).
//
// A region process runs its data engines (JetStream, PostgreSQL or the
// in-process store, per service), a failover controller per
// primary-secondary service, the workload replicas behind the stamp's
// ingress, and the region admin API (status, data crash, drain, brownout
// faults; the same bearer-token check) with its metrics.
package lab
