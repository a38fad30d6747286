// Package failover runs the failover group of each primary-secondary data
// service: the state machine that detects a lost primary, decides, fences,
// promotes, repoints and rejoins, so that at most one region accepts writes
// and every loss is counted.
//
// One Controller runs per service in every region. The single source of
// truth is the witness (package witness): the region that holds the group's
// lease is the primary at the lease's epoch; every other region follows it.
// The Controller makes the local data.Replica agree with the witness:
//
//   - holder with a valid lease → Promote(epoch)
//   - another holder            → Follow(holder, epoch); an old primary
//     rejoins and discards its divergent tail
//   - lease invalid or nobody   → Fence (local, works while cut off)
//
// Because a Held turns invalid by the holder's own clock before the lease can
// expire at the witness, and the next epoch is granted only after that, an
// isolated old primary fences itself before a new one is promoted; writes
// are addressed to an epoch, so one that reaches a deposed primary is
// refused there too. The replica is promoted with the Held itself
// (data.Replica.Promote): it checks Held.Valid before acknowledging each
// write and fences itself when the Held ends, so neither waits for this
// controller's step, which can block for seconds while the witness is
// unreachable.
//
// # Failovers
//
//   - planned (Request with ModePlanned): the holder fences and publishes
//     its final position; the target waits until its replica holds it, takes
//     the lease over (witness Transfer: only if the holder still has it),
//     promotes. Zero loss; needs both sides and the witness. If the target
//     does not catch up before the deadline, the holder unfences.
//   - forced (ModeForced): the target takes a new epoch at once (witness
//     Force) and promotes; the loss is the unreplicated tail, reported as
//     the promote event's gap and, exactly, as the rejoining old primary's
//     discarded count.
//   - automatic (policy automatic): when nobody has held the lease for
//     grace, the best candidate (the freshest reported position, then the
//     topology's preference order) acquires it. Acquire needs a witness
//     quorum, so a region cut off from the witness never promotes.
//
// # Keys
//
// Besides the witness's own keys, under Prefix + group + "/":
//
//	pos/REGION   JSON Report: position, role and epoch of each region's
//	             replica, refreshed every ReportEvery
//	request      JSON Request: a pending planned or forced failover
//	handoff      JSON Handoff: the fenced holder's final position
//	last         JSON LastPrimary: the last promoted region and epoch
//	events/ID    JSON Event: each step, for the control API and drills
package failover
