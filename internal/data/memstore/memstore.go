// Package memstore is an in-process, single-region data engine. It backs
// data services of kind cache (disposable, never replicated) and serves as
// the reference Store in tests.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/geostamp/geostamp/internal/data"
)

var _ data.Store = (*Store)(nil)

// Store keeps every write in memory. The zero value is not usable; call New.
// It is safe for concurrent use.
type Store struct {
	service string
	region  string
	now     func() time.Time

	mu     sync.RWMutex
	seq    uint64
	log    []data.Record          // every write in Seq order
	latest map[string]data.Record // latest write per key
}

// New returns an empty store for service as seen from region.
func New(service, region string) *Store {
	return &Store{
		service: service,
		region:  region,
		now:     time.Now,
		latest:  make(map[string]data.Record),
	}
}

// Put stores value under key with the next sequence number.
func (s *Store) Put(ctx context.Context, key string, value []byte) (data.Record, error) {
	if err := ctx.Err(); err != nil {
		return data.Record{}, fmt.Errorf("memstore %s: put: %w", s.service, err)
	}
	v := make([]byte, len(value))
	copy(v, value)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	rec := data.Record{Key: key, Seq: s.seq, Value: v, Time: s.now()}
	s.log = append(s.log, rec)
	s.latest[key] = rec
	return cloneRecord(rec), nil
}

// Get returns the latest record of key, or an error wrapping data.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (data.Record, error) {
	if err := ctx.Err(); err != nil {
		return data.Record{}, fmt.Errorf("memstore %s: get: %w", s.service, err)
	}
	s.mu.RLock()
	rec, ok := s.latest[key]
	s.mu.RUnlock()
	if !ok {
		return data.Record{}, fmt.Errorf("memstore %s: get %q: %w", s.service, key, data.ErrNotFound)
	}
	return cloneRecord(rec), nil
}

// List returns up to limit records with Seq > after, in Seq order. A limit
// of zero or less returns nothing.
func (s *Store) List(ctx context.Context, after uint64, limit int) ([]data.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore %s: list: %w", s.service, err)
	}
	if limit <= 0 {
		return []data.Record{}, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	// Seq values are 1..len(log) in order, but search rather than index so
	// the invariant is not load-bearing.
	i := sort.Search(len(s.log), func(i int) bool { return s.log[i].Seq > after })
	n := min(limit, len(s.log)-i)
	out := make([]data.Record, 0, n)
	for _, rec := range s.log[i : i+n] {
		out = append(out, cloneRecord(rec))
	}
	return out, nil
}

// Status reports the store as a writable primary of kind cache.
func (s *Store) Status(ctx context.Context) data.Status {
	s.mu.RLock()
	seq := s.seq
	s.mu.RUnlock()
	return data.Status{
		Service:    s.service,
		Kind:       data.KindCache,
		Region:     s.region,
		Role:       data.RolePrimary,
		Primary:    s.region,
		LastSeq:    seq,
		PrimarySeq: seq,
		Readable:   true,
		Writable:   true,
	}
}

func cloneRecord(r data.Record) data.Record {
	v := make([]byte, len(r.Value))
	copy(v, r.Value)
	r.Value = v
	return r
}
