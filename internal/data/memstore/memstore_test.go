package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/geostamp/geostamp/internal/data"
)

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s := New("cache", "westeurope")

	r1, err := s.Put(ctx, "a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Put(ctx, "a", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Seq != 1 || r2.Seq != 2 {
		t.Fatalf("seqs = %d, %d; want 1, 2", r1.Seq, r2.Seq)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != "2" || got.Seq != 2 || got.Key != "a" {
		t.Fatalf("Get = %+v; want latest value 2 at seq 2", got)
	}
	if got.Time.IsZero() {
		t.Error("record time is zero")
	}

	// Returned values are copies.
	got.Value[0] = 'x'
	again, _ := s.Get(ctx, "a")
	if string(again.Value) != "2" {
		t.Errorf("mutating a returned value changed the store: %q", again.Value)
	}

	_, err = s.Get(ctx, "missing")
	if !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("Get(missing) err = %v; want ErrNotFound", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	s := New("cache", "r")
	for i := range 5 {
		if _, err := s.Put(ctx, fmt.Sprintf("k%d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"all", 0, 100, []uint64{1, 2, 3, 4, 5}},
		{"limited", 0, 2, []uint64{1, 2}},
		{"after", 2, 100, []uint64{3, 4, 5}},
		{"after and limit", 1, 2, []uint64{2, 3}},
		{"past end", 5, 10, nil},
		{"zero limit", 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := s.List(ctx, tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, r := range recs {
				seqs = append(seqs, r.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
				t.Errorf("List(%d, %d) seqs = %v; want %v", tt.after, tt.limit, seqs, tt.want)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := New("cache", "r")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, "a", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put err = %v; want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get err = %v; want context.Canceled", err)
	}
	if _, err := s.List(ctx, 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("List err = %v; want context.Canceled", err)
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	s := New("cache", "westeurope")
	s.Put(ctx, "a", nil)
	st := s.Status(ctx)
	want := data.Status{
		Service: "cache", Kind: data.KindCache, Region: "westeurope",
		Role: data.RolePrimary, Primary: "westeurope",
		LastSeq: 1, PrimarySeq: 1, Readable: true, Writable: true,
	}
	if st != want {
		t.Errorf("Status = %+v; want %+v", st, want)
	}
}

func TestConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	s := New("cache", "r")
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Put(ctx, fmt.Sprintf("%d-%d", w, i), nil); err != nil {
					t.Error(err)
				}
				s.Get(ctx, "0-0")
				s.List(ctx, 0, 10)
			}
		})
	}
	wg.Wait()
	recs, err := s.List(ctx, 0, workers*each+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != workers*each {
		t.Fatalf("len = %d; want %d", len(recs), workers*each)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("recs[%d].Seq = %d; want %d (gap or reorder)", i, r.Seq, i+1)
		}
	}
}
