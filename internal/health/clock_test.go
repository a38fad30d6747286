package health

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func TestFakeClock(t *testing.T) {
	clk := NewFakeClock(t0)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+clk.Now().Sub(t0).String()) }
	}
	clk.AfterFunc(3*time.Second, at("c"))
	clk.AfterFunc(time.Second, at("a"))
	clk.AfterFunc(time.Second, at("a2")) // same due time: creation order
	stopped := clk.AfterFunc(2*time.Second, at("never"))
	clk.AfterFunc(2*time.Second, func() {
		at("b")()
		clk.AfterFunc(0, at("b-now"))                 // due at once: runs in this Advance
		clk.AfterFunc(500*time.Millisecond, at("b+")) // created by a callback
	})
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}
	if n := clk.Pending(); n != 4 {
		t.Fatalf("Pending = %d, want 4", n)
	}

	clk.Advance(2500 * time.Millisecond)
	want := []string{"a@1s", "a2@1s", "b@2s", "b-now@2s", "b+@2.5s"}
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if now := clk.Now(); !now.Equal(t0.Add(2500 * time.Millisecond)) {
		t.Fatalf("Now = %v, want t0+2.5s", now)
	}
	clk.Advance(-time.Second) // counts as 0
	clk.Advance(time.Hour)
	if got[len(got)-1] != "c@3s" || clk.Pending() != 0 {
		t.Fatalf("fired %v, pending %d; want c@3s last and nothing pending", got, clk.Pending())
	}

	// A timer with a zero duration waits for the next Advance.
	ran := false
	clk.AfterFunc(0, func() { ran = true })
	if ran {
		t.Fatal("AfterFunc(0) ran inside AfterFunc")
	}
	settled := 0
	clk.SetSettle(func() { settled++ })
	clk.Advance(0)
	if !ran || settled != 1 {
		t.Fatalf("after Advance(0): ran=%v settled=%d, want true 1", ran, settled)
	}
}

func TestRealClock(t *testing.T) {
	done := make(chan struct{})
	Real.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	if tm := Real.AfterFunc(time.Hour, func() {}); !tm.Stop() {
		t.Fatal("Stop of a pending real timer returned false")
	}
	if Real.Now().IsZero() {
		t.Fatal("Real.Now is zero")
	}
}
