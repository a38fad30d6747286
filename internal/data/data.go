// Package data defines the contract of geo-replicated data services and
// holds their engines. A service is replicated between regions; each region
// sees it through a Store that writes where the service's writer lives and
// reads locally.
package data

import (
	"context"
	"errors"
	"time"
)

// Kinds of data service, as named in the topology.
const (
	KindPrimarySecondary = "primary-secondary"
	KindMultiWrite       = "multi-write"
	KindCache            = "cache"
)

// Role of a region's replica of a service.
type Role string

const (
	RolePrimary   Role = "primary"
	RoleSecondary Role = "secondary"
	RoleFenced    Role = "fenced"
)

// Sentinel errors; callers map them to HTTP statuses in one place.
var (
	ErrNotFound    = errors.New("not found")
	ErrUnavailable = errors.New("data service unavailable")
	ErrFenced      = errors.New("replica is fenced")
)

// Record is one stored value with its replication position.
type Record struct {
	Key   string    `json:"key"`
	Seq   uint64    `json:"seq"`
	Value []byte    `json:"value"`
	Time  time.Time `json:"time"`
	// Region is, on a write's acknowledgement, the region whose primary
	// stored it (drills attribute split brain with it); "" on reads.
	Region string `json:"region,omitempty"`
}

// Status is the replication state of one service as seen from one region.
type Status struct {
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Region  string `json:"region"`
	Role    Role   `json:"role"`
	Primary string `json:"primary"`
	Epoch   uint64 `json:"epoch"`
	// LastSeq is the last position held locally; PrimarySeq the last known
	// position of the primary (0 when unreachable).
	LastSeq    uint64 `json:"last_seq"`
	PrimarySeq uint64 `json:"primary_seq"`
	// LagWrites is PrimarySeq-LastSeq when the primary is known.
	LagWrites uint64 `json:"lag_writes"`
	// LagSeconds is the age of the oldest write the replica lacks (0 when caught up).
	LagSeconds float64 `json:"lag_seconds"`
	// Rebuilding: the replica is copying back history it discarded when it
	// rejoined (data.Rebuilder); until done it lacks acknowledged writes
	// and is no failover candidate.
	Rebuilding bool `json:"rebuilding,omitempty"`
	// Readable and Writable say what this region can do with the service now.
	Readable bool   `json:"readable"`
	Writable bool   `json:"writable"`
	Detail   string `json:"detail,omitempty"`
}

// Store is one data service as one region uses it.
type Store interface {
	// Put writes value under key at the service's writer (the primary region
	// for primary-secondary services) and returns it once acknowledged.
	Put(ctx context.Context, key string, value []byte) (Record, error)
	// Get returns the latest value of key from the local replica.
	Get(ctx context.Context, key string) (Record, error)
	// List returns up to limit records with Seq > after, in order, from the
	// local replica.
	List(ctx context.Context, after uint64, limit int) ([]Record, error)
	// Status reports the replication state; it does not block on the WAN
	// for longer than ctx allows.
	Status(ctx context.Context) Status
}

// Replica is one region's copy of a primary-secondary service, as the
// failover controller (package failover) drives it. Its Store methods route
// writes to the primary of the current epoch: after Promote, locally; after
// Follow, to that primary. Until the controller has called one of them (a
// region that just started), writes fail with ErrUnavailable. Writes are
// addressed to an epoch, and a primary stores only writes addressed to its
// own epoch, so a write can never land on a fenced or deposed primary.
type Replica interface {
	Store
	// Position returns the last position held locally. Positions count
	// writes (1, 2, 3, … in commit order) and are comparable across the
	// regions of a service: a replica at position p holds exactly the
	// primary's writes 1..p of the history it follows.
	Position(ctx context.Context) (uint64, error)
	// Fence makes the local replica refuse writes now, using only local
	// means (it must work while the region is cut off), and returns the
	// final local position. Idempotent.
	Fence(ctx context.Context) (uint64, error)
	// Promote makes the local replica the writable primary of epoch under
	// lease: it stops following and accepts writes addressed to epoch. It
	// checks lease.Valid() right before acknowledging each write and
	// acknowledges none once it is false, and it fences itself (as Fence)
	// when lease.Done() closes, whatever its controller is doing. A nil
	// lease is never checked (engine tests without a witness). Idempotent
	// for the same epoch; a repeated call replaces the lease.
	Promote(ctx context.Context, epoch uint64, lease Lease) error
	// Follow makes the local replica a secondary of primary at epoch and
	// routes writes there. A replica that was primary or fenced rejoins: it
	// discards its divergent tail (the writes the new primary's history
	// lacks) and returns how many writes it discarded. Idempotent.
	Follow(ctx context.Context, primary string, epoch uint64) (discarded uint64, err error)
}

// Lease is a primary's witness lease as its write path sees it
// (*witness.Held implements it). Valid costs an atomic load and a
// monotonic clock read, no I/O; it turns false at the holder's deadline
// (lease − margin after its last confirmed renewal) and stays false. Done
// is closed once the lease has ended.
type Lease interface {
	Valid() bool
	Done() <-chan struct{}
}

// ErrLeaseEnded means a primary's lease ended before it could acknowledge
// a write: the write was refused, or its outcome is unknown (errors wrap
// ErrFenced or ErrUnavailable too, saying which).
var ErrLeaseEnded = errors.New("primary's lease ended")

// Rebuilder is implemented by replicas that may rebuild their copy when
// they rejoin (JetStream recreates a mirror from scratch). RebuildTarget is
// the primary's position at that moment, 0 if none: until the replica holds
// it again, it lacks acknowledged writes it used to hold, and an automatic
// failover must not promote it.
type Rebuilder interface {
	RebuildTarget() uint64
}

// Crasher is implemented by replicas whose engine can be made to die on its
// own, without the region process (the data-primary-loss fault): the
// engine stops at once, unflushed state may be lost, and it stays down until
// the region restarts.
type Crasher interface {
	Crash() error
}
