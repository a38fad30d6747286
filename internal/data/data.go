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
