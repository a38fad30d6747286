// Package witness is the authority for failover decisions: leases and
// fencing epochs for named failover groups (one per primary-secondary data
// service, e.g. "orders"), kept in etcd with a quorum across sites.
//
// # Pieces
//
//   - Member: an embedded etcd member. The lab runs one per region process
//     and one at the witness site, so a region cut off from both others is
//     in the minority. Production uses an external etcd cluster instead
//     (NewClient with its endpoints); everything else takes any
//     *clientv3.Client.
//   - Authority: Acquire, Force, Transfer, Current, Check, List, Watch over
//     a key prefix.
//   - Held: a holder's live lease. Valid is the cheap check a primary makes
//     before acknowledging each write; it turns false by the holder's own
//     monotonic clock before the lease can have expired at the authority.
//   - PeerRouter: sends each member's raft traffic through the WAN link
//     from that member's site (the lab's wiring of the peer URLs).
//
// # Keys
//
// For a group G under prefix P (default "/geostamp/witness/"):
//
//	P + G + "/epoch"  decimal fencing epoch; never deleted, only incremented
//	P + G + "/owner"  JSON owner record, attached to the holder's etcd lease
//
// Acquire, Force and Transfer are one transaction that compares the
// mod-revisions of both keys with those just read, writes epoch+1 and the
// new owner record (with the new lease). So epochs are granted once each,
// in order, and at most one owner record exists per group. Acquire also
// needs the owner key to be absent: the previous lease expired (etcd
// deleted the key) or was released.
//
// # Timing and safety
//
// Each renewal of a Held is a linearizable read of the group (the gate), a
// keepalive of its etcd lease, then another linearizable read that must
// still show the holder's epoch and lease (a "confirmed renewal"). The gate
// is there because etcd forwards a follower's keepalive to the leader
// outside raft, on a path a one-way cut from the holder to the leader does
// not stop: only a keepalive sent right after a quorum read proves the
// holder still reaches the quorum, so the lease ends at the authority one
// TTL after the holder's path to the quorum broke, whatever the direction.
// Let s be the holder's local monotonic time just before it sent the gate
// of its last confirmed renewal.
// The holder is Valid until
//
//	D = s + ttl − margin        (holder's clock)
//
// and never again after D (losing validity is final; a holder that wants
// the group back must acquire a new epoch). ttl is the TTL the holder asked
// for; the authority's TTL is that rounded up to whole seconds (and at least
// etcd's minimum, 1.5 election timeouts), never less.
//
// The etcd leader that processed the keepalive did so at real time t ≥ s
// and set the lease's expiry to t + TTL by its clock. A later raft leader
// restarts every lease at (its election time + TTL + one election timeout)
// — etcd's lessor Promote, with lease checkpointing off, as Member leaves
// it — which is later still: a deposed leader serves renewals for at most
// about one election timeout after its successor is elected (raft
// CheckQuorum), and the confirmation read (a quorum read, which a deposed
// or isolated leader cannot serve) rules out renewals that only a minority
// saw. The owner key is deleted only when the lease has expired at the
// authority, and only then can another holder Acquire. So the next epoch is
// granted at real time
//
//	T_new ≥ s + TTL(authority clock) ≥ s + ttl
//
// Assumption: clocks may be offset by any amount but their rates differ
// from real time by at most ρ (the holder's and the etcd leaders'). Then D
// is reached no later than real time s + (ttl − margin)/(1 − ρ), which is
// before s + ttl/(1 + ρ) ≤ T_new whenever margin ≥ 2ρ·ttl/(1+ρ) ≈ 2ρ·ttl.
// Quartz clocks drift by under 100 ppm; 2ρ·ttl is 1 ms for ttl 5 s at
// ρ = 100 ppm. The rest of the margin is for the write path: margin must
// also exceed the longest time between a Valid() check that returned true
// and the acknowledgement it allows (check after the local commit, right
// before acknowledging). A process that is paused for longer than that
// (SIGSTOP, a long GC pause, a VM freeze) between the check and the
// acknowledgement can acknowledge late; strict write paths therefore call
// Check (a linearizable read of the epoch) after committing and before
// acknowledging, and replicas and readers compare epochs (fencing tokens),
// so a late write of an old epoch is refused where the epochs meet.
//
// Default margin: ttl/5. Renewals every (ttl − margin)/3, so two renewals
// in a row may fail (an etcd leader election takes 1-2 s) before the holder
// demotes itself; failed renewals are retried every quarter period.
//
// Quorum: with three members (two regions and the witness) a region cut off
// from both others cannot renew (no quorum read) or acquire (no quorum
// write): its holder demotes itself by D ≤ T_cut + ttl − margin, where
// T_cut is when the cut began, and the other region with the witness can
// acquire once the lease has expired at the authority (T_cut + ttl plus, if
// the cut-off member was the raft leader, an election and one election
// timeout of extension, plus up to 0.5 s for etcd's expiry scan). Requests
// fail with ErrNoQuorum when a quorum does not answer in time.
//
// Force breaks the wait on purpose: it grants a new epoch while the old
// lease may still be live. The old holder learns it at its next renewal
// (within one renewal period, if it can reach a quorum), and Check fails
// for it at once; if it cannot reach a quorum it stays Valid until its D.
// A forced failover that must not overlap waits for Owner.Expires first.
//
// # Logs
//
// etcd's own logs (zap) are forwarded to the injected *slog.Logger. gRPC
// has one process-wide logger, which by default writes errors to stderr;
// setting it (grpclog.SetLoggerV2) is the job of main or telemetry, not of
// this package.
package witness
