package witness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const testTTL = 2 * time.Second // etcd's minimum with the default 1 s election timeout

func TestGrantsAndEpochs(t *testing.T) {
	c := startCluster(t, "a", "b", "w")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ml, err := c.sites["a"].cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ml.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "a,b,w" {
		t.Fatalf("members %v, want a, b and w", names)
	}

	authA, authB := c.auth("a"), c.auth("b")
	watch := authB.Watch(ctx, "orders")
	if o := recv(t, watch); o.Held() || o.Epoch != 0 {
		t.Fatalf("watch before any grant: %+v", o)
	}

	g1, err := authA.Acquire(ctx, "orders", "a", testTTL)
	if err != nil {
		t.Fatal(err)
	}
	if g1.Epoch != 1 || g1.Holder != "a" || g1.LeaseID == 0 {
		t.Fatalf("first grant %+v, want epoch 1 for a", g1)
	}
	if o := recv(t, watch); o.Holder != "a" || o.Epoch != 1 {
		t.Fatalf("watch after acquire: %+v", o)
	}

	_, err = authB.Acquire(ctx, "orders", "b", testTTL)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "held by a at epoch 1") {
		t.Fatalf("second acquire: %v, want ErrHeld naming a at epoch 1", err)
	}
	before := time.Now()
	o, err := authB.Current(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o.Holder != "a" || o.Epoch != 1 || o.Expires.Before(before.Add(time.Second)) || o.Expires.After(time.Now().Add(testTTL+time.Second)) {
		t.Fatalf("current %+v (read at %v)", o, before)
	}

	held1, err := authA.Hold(ctx, g1)
	if err != nil {
		t.Fatal(err)
	}
	if !held1.Valid() || held1.Epoch() != 1 {
		t.Fatalf("held1 valid %v epoch %d", held1.Valid(), held1.Epoch())
	}
	if err := held1.Check(ctx); err != nil {
		t.Fatalf("strict check of the holder: %v", err)
	}

	// Transfer is a compare-and-swap on the holder.
	if _, err := authB.Transfer(ctx, "orders", "b", "b", testTTL); !errors.Is(err, ErrNotHolder) ||
		!strings.Contains(err.Error(), "b does not hold it, a does") {
		t.Fatalf("transfer from a non-holder: %v", err)
	}
	g2, err := authB.Transfer(ctx, "orders", "a", "b", testTTL)
	if err != nil {
		t.Fatal(err)
	}
	if g2.Epoch != 2 || g2.Holder != "b" {
		t.Fatalf("transfer grant %+v, want epoch 2 for b", g2)
	}
	// A transfer by someone else fences the old Held at its next renewal.
	select {
	case <-held1.Done():
	case <-time.After(held1.Timing().Renew + time.Second):
		t.Fatal("held1 still running after the transfer")
	}
	if !errors.Is(held1.Err(), ErrFenced) || held1.Valid() {
		t.Fatalf("held1 after transfer: valid %v err %v, want ErrFenced", held1.Valid(), held1.Err())
	}
	if err := held1.Check(ctx); !errors.Is(err, ErrFenced) {
		t.Fatalf("held1.Check: %v, want ErrFenced", err)
	}
	if err := authA.Check(ctx, "orders", 1); !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "current 2") {
		t.Fatalf("check epoch 1: %v, want ErrFenced (current 2)", err)
	}
	if err := authA.Check(ctx, "orders", 2); err != nil {
		t.Fatalf("check epoch 2: %v", err)
	}
	if err := authA.Check(ctx, "orders", 3); err == nil || errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "never granted") {
		t.Fatalf("check epoch 3: %v, want 'never granted'", err)
	}

	// Held.Transfer stops acting before the transfer commits.
	held2, err := authB.Hold(ctx, g2)
	if err != nil {
		t.Fatal(err)
	}
	g3, err := held2.Transfer(ctx, "a", testTTL)
	if err != nil {
		t.Fatal(err)
	}
	if held2.Valid() || !errors.Is(held2.Err(), ErrReleased) || g3.Epoch != 3 || g3.Holder != "a" {
		t.Fatalf("after held2.Transfer: valid %v err %v grant %+v", held2.Valid(), held2.Err(), g3)
	}

	// Force takes over a live lease; the old Held is fenced at its next renewal.
	held3, err := authA.Hold(ctx, g3)
	if err != nil {
		t.Fatal(err)
	}
	g4, err := authB.Force(ctx, "orders", "b", testTTL)
	if err != nil {
		t.Fatal(err)
	}
	if g4.Epoch != 4 {
		t.Fatalf("forced grant %+v, want epoch 4", g4)
	}
	select {
	case <-held3.Done():
	case <-time.After(held3.Timing().Renew + time.Second):
		t.Fatal("held3 still running after force")
	}
	if !errors.Is(held3.Err(), ErrFenced) {
		t.Fatalf("held3: %v, want ErrFenced", held3.Err())
	}

	// Release frees the group at once; the epoch stays.
	held4, err := authB.Hold(ctx, g4)
	if err != nil {
		t.Fatal(err)
	}
	if err := held4.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if held4.Valid() || !errors.Is(held4.Err(), ErrReleased) {
		t.Fatalf("held4 after release: valid %v err %v", held4.Valid(), held4.Err())
	}
	if o, err := authA.Current(ctx, "orders"); err != nil || o.Held() || o.Epoch != 4 {
		t.Fatalf("current after release: %+v %v", o, err)
	}
	g5, err := authA.Acquire(ctx, "orders", "a", testTTL)
	if err != nil || g5.Epoch != 5 {
		t.Fatalf("acquire after release: %+v %v", g5, err)
	}
	if o := recvUntil(t, watch, func(o Owner) bool { return o.Epoch == 5 }); o.Holder != "a" {
		t.Fatalf("watch after release and acquire: %+v", o)
	}

	if _, err := authA.Acquire(ctx, "catalog", "b", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	all, err := authB.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(summaries(all)); got != "[catalog:b@1 orders:a@5]" {
		t.Fatalf("list: %s", got)
	}
}

func TestArguments(t *testing.T) {
	// No cluster needed: arguments are checked before any request.
	a := NewAuthority(nil, "", nil)
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"group with a slash", func() error { _, err := a.Acquire(ctx, "a/b", "x", testTTL); return err }(), `group "a/b" must be`},
		{"empty holder", func() error { _, err := a.Acquire(ctx, "orders", "", testTTL); return err }(), `holder "" must be`},
		{"short ttl", func() error { _, err := a.Acquire(ctx, "orders", "x", 500*time.Millisecond); return err }(), "ttl 500ms is shorter than 1s"},
		{"transfer from nobody", func() error { _, err := a.Transfer(ctx, "orders", "", "x", testTTL); return err }(), `from "" must be`},
		{"hold a zero grant", func() error { _, err := a.Hold(ctx, Grant{Group: "orders", Holder: "x", TTL: testTTL}); return err }(), "not a grant"},
		{"margin too large", func() error {
			_, err := NewAuthority(nil, "", nil, WithMargin(3*time.Second)).Acquire(ctx, "orders", "x", testTTL)
			return err
		}(), "margin 3s must be positive and shorter than ttl 2s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", tc.err, tc.want)
			}
		})
	}
}

// TestIsolatedHolderDemotesItself cuts the holder's site off from both
// others and measures: the holder stops (Valid false) by its deadline
// (last confirmed renewal + ttl - margin, which is before cut + ttl -
// margin), the other side acquires only after the lease has expired at the
// authority (never before last renewal + ttl), so the two never overlap;
// after healing the old holder stays stopped and is fenced.
func TestIsolatedHolderDemotesItself(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time lease bounds over etcd clusters (12 s a case); the full run checks them")
	}
	for _, tc := range []struct{ name, raftLeader string }{
		{"holder's member is the raft leader", "a"},
		{"holder's member is a follower", "w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, "a", "b", "w")
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			c.moveLeader(ctx, tc.raftLeader)
			authA, authB := c.auth("a"), c.auth("b")

			g, err := authA.Acquire(ctx, "orders", "a", testTTL)
			if err != nil {
				t.Fatal(err)
			}
			held, err := authA.Hold(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			tm := held.Timing()
			time.Sleep(2 * tm.Renew) // a few renewals in steady state
			if !held.Valid() {
				t.Fatalf("not valid before the cut: %v", held.Err())
			}

			// The holder's write path checks Valid continuously. lastTrue is
			// the clock read just before the last call that returned true:
			// that call read the clock later, so Valid was true at a time
			// >= lastTrue, which must be before the deadline whatever the
			// scheduling. firstFalse is when a call first returned false;
			// how late that is after the deadline depends on scheduling.
			var lastTrue, firstFalse time.Time
			stopPoll := make(chan struct{})
			pollDone := make(chan struct{})
			go func() {
				defer close(pollDone)
				for {
					select {
					case <-stopPoll:
						return
					default:
					}
					before := time.Now()
					if !held.Valid() {
						firstFalse = time.Now()
						return
					}
					lastTrue = before
					time.Sleep(time.Millisecond)
				}
			}()

			cutAt := time.Now()
			c.isolate("a", true)

			// The majority side tries to take over as fast as it can.
			var g2 Grant
			var acquiredAt time.Time
			var heldErrs int
			for {
				actx, acancel := context.WithTimeout(ctx, time.Second)
				g2, err = authB.Acquire(actx, "orders", "b", testTTL)
				acancel()
				if err == nil {
					acquiredAt = time.Now()
					break
				}
				if errors.Is(err, ErrHeld) {
					heldErrs++
				}
				if ctx.Err() != nil {
					t.Fatalf("majority never acquired: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			close(stopPoll)
			<-pollDone
			if firstFalse.IsZero() {
				t.Fatalf("old holder still valid when the majority acquired at cut+%v", acquiredAt.Sub(cutAt))
			}
			lastRenew := held.Renewed()
			deadline := lastRenew.Add(tm.TTL - tm.Margin)
			t.Logf("ttl %v margin %v renew every %v", tm.TTL, tm.Margin, tm.Renew)
			t.Logf("last confirmed renewal sent at cut%+v: deadline cut+%v (bound: cut+ttl-margin = cut+%v)",
				lastRenew.Sub(cutAt), deadline.Sub(cutAt), tm.TTL-tm.Margin)
			t.Logf("write path: last Valid()=true at cut+%v, first false seen at cut+%v (%v after the deadline)",
				lastTrue.Sub(cutAt), firstFalse.Sub(cutAt), firstFalse.Sub(deadline))
			t.Logf("new holder acquired at cut+%v (lower bound: last renewal+ttl = cut+%v), after %d ErrHeld",
				acquiredAt.Sub(cutAt), lastRenew.Add(tm.TTL).Sub(cutAt), heldErrs)

			// Exact properties (independent of scheduling).
			if !lastRenew.Before(cutAt) {
				t.Errorf("a renewal sent at cut+%v was confirmed although a was cut off", lastRenew.Sub(cutAt))
			}
			if !lastTrue.Before(deadline) {
				t.Errorf("Valid() returned true at >= cut+%v, not before the deadline cut+%v", lastTrue.Sub(cutAt), deadline.Sub(cutAt))
			}
			if acquiredAt.Before(lastRenew.Add(tm.TTL)) {
				t.Errorf("majority acquired at cut+%v, before the lease could expire (last renewal+ttl = cut+%v)",
					acquiredAt.Sub(cutAt), lastRenew.Add(tm.TTL).Sub(cutAt))
			}
			// So the old holder's last true Valid() (< deadline = last renewal +
			// ttl - margin) precedes the new grant (>= last renewal + ttl) by at
			// least the margin. When the poller saw false is logged, not
			// asserted: it only measures this machine's scheduling.
			if g2.Epoch != g.Epoch+1 || g2.Holder != "b" {
				t.Errorf("majority grant %+v, want epoch %d for b", g2, g.Epoch+1)
			}
			select {
			case <-held.Done():
			case <-time.After(time.Second):
				t.Fatal("old Held did not end")
			}
			if !errors.Is(held.Err(), ErrExpired) {
				t.Errorf("old Held ended with %v, want ErrExpired", held.Err())
			}

			// Heal: the old holder rejoins, stays stopped and is fenced.
			c.isolate("a", false)
			eventually(t, 15*time.Second, "old holder's check after healing", func() error {
				if err := authA.Check(ctx, "orders", g.Epoch); !errors.Is(err, ErrFenced) {
					return fmt.Errorf("check: %v, want ErrFenced", err)
				}
				return nil
			})
			if err := held.Check(ctx); !errors.Is(err, ErrFenced) {
				t.Errorf("held.Check after healing: %v, want ErrFenced", err)
			}
			if held.Valid() {
				t.Error("old holder valid again after healing")
			}
			if _, err := authA.Acquire(ctx, "orders", "a", testTTL); !errors.Is(err, ErrHeld) {
				t.Errorf("old holder re-acquire after healing: %v, want ErrHeld", err)
			}
		})
	}
}

func TestMinorityCannotAcquire(t *testing.T) {
	c := startCluster(t, "a", "b", "w")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	authA, authB := c.auth("a"), c.auth("b")
	if _, err := authB.Acquire(ctx, "catalog", "b", testTTL); err != nil {
		t.Fatal(err)
	}
	c.isolate("a", true)

	const limit = 2 * time.Second
	start := time.Now()
	actx, acancel := context.WithTimeout(ctx, limit)
	_, err := authA.Acquire(actx, "orders", "a", testTTL)
	acancel()
	took := time.Since(start)
	t.Logf("minority acquire failed after %v: %v", took, err)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("minority acquire: %v, want ErrNoQuorum", err)
	}
	if took > limit+time.Second {
		t.Fatalf("minority acquire took %v, ctx allowed %v", took, limit)
	}
	cctx, ccancel := context.WithTimeout(ctx, limit)
	err = authA.Check(cctx, "catalog", 1)
	ccancel()
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("minority check: %v, want ErrNoQuorum", err)
	}
	// The majority side is unaffected.
	g, err := authB.Acquire(ctx, "orders", "b", testTTL)
	if err != nil || g.Epoch != 1 {
		t.Fatalf("majority acquire: %+v %v", g, err)
	}
}

func TestRestartedMemberRejoins(t *testing.T) {
	c := startCluster(t, "a", "b", "w")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	authA := c.auth("a")
	if _, err := authA.Acquire(ctx, "orders", "a", testTTL); err != nil {
		t.Fatal(err)
	}
	idBefore := c.memberID(ctx, "b")

	c.stop("b")
	g2, err := authA.Force(ctx, "orders", "a", testTTL) // a and w are a quorum
	if err != nil {
		t.Fatal(err)
	}
	c.start("b")
	c.waitReady("b")

	authB := c.auth("b")
	eventually(t, 10*time.Second, "restarted member serves the epoch written while it was down", func() error {
		return authB.Check(ctx, "orders", g2.Epoch)
	})
	if id := c.memberID(ctx, "b"); id != idBefore {
		t.Fatalf("member id %x after restart, was %x", id, idBefore)
	}
	// b votes again: with a cut off, b and w still form a quorum.
	c.isolate("a", true)
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if _, err := authB.Acquire(actx, "catalog", "b", testTTL); err != nil {
		t.Fatalf("acquire by the restarted member's side with a cut off: %v", err)
	}
}

func recv(t *testing.T, ch <-chan Owner) Owner {
	t.Helper()
	select {
	case o, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("nothing from watch in 5s")
	}
	return Owner{}
}

func recvUntil(t *testing.T, ch <-chan Owner, ok func(Owner) bool) Owner {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if o := recv(t, ch); ok(o) {
			return o
		}
	}
	t.Fatal("watch never showed the expected owner")
	return Owner{}
}

func summaries(os []Owner) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = fmt.Sprintf("%s:%s@%d", o.Group, o.Holder, o.Epoch)
	}
	return out
}

// TestOneWayCutEndsLease: when the holder's traffic towards the raft
// leader's site (the witness) stops in either direction, or towards both
// other sites, its lease at the authority ends one TTL after its last
// renewal, and the other region acquires. The cut holds bytes like the
// lab's (connections stay open).
func TestOneWayCutEndsLease(t *testing.T) {
	if testing.Short() {
		t.Skip("three 3-member clusters, about 30 s; skipped with -short (the race pass)")
	}
	if testing.Short() {
		t.Skip("real-time lease bounds over etcd clusters (9 s a case); the full run checks them")
	}
	for _, tc := range []struct {
		name string
		cuts [][2]string // from, to
	}{
		{"holder to witness", [][2]string{{"a", "w"}}},
		{"witness to holder", [][2]string{{"w", "a"}}},
		{"holder to both others", [][2]string{{"a", "w"}, {"a", "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, "a", "b", "w")
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			c.moveLeader(ctx, "w")
			authA, authB := c.auth("a"), c.auth("b")
			g, err := authA.Acquire(ctx, "orders", "a", testTTL)
			if err != nil {
				t.Fatal(err)
			}
			held, err := authA.Hold(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			tm := held.Timing()
			time.Sleep(2 * tm.Renew)

			cutAt := time.Now()
			for _, k := range tc.cuts {
				c.holdOneWay(k[0], k[1], true)
			}
			defer func() {
				for _, k := range tc.cuts {
					c.holdOneWay(k[0], k[1], false)
				}
			}()
			// Like the failover controller, a keeps trying to hold the
			// grant again once its Held has ended: those attempts must not
			// keep the lease alive either.
			rehold := make(chan struct{})
			reholdDone := make(chan struct{})
			go func() {
				defer close(reholdDone)
				select {
				case <-held.Done():
				case <-rehold:
					return
				}
				for {
					hctx, hcancel := context.WithTimeout(ctx, 500*time.Millisecond)
					h, err := authA.Hold(hctx, g)
					hcancel()
					if err == nil {
						t.Errorf("a held its grant again across the cut (deadline %v)", h.Deadline())
						h.Release(ctx)
					}
					select {
					case <-rehold:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}()
			defer func() { close(rehold); <-reholdDone }()
			// The authority's TTL (whole seconds), one renewal that may have
			// been in flight at the cut, and etcd's expiry scan (every 500 ms).
			const expiryScan = 500 * time.Millisecond
			bound := time.Duration(ceilSeconds(tm.TTL))*time.Second + tm.Renew + expiryScan
			var acquiredAt time.Time
			for time.Since(cutAt) < bound+3*time.Second {
				actx, acancel := context.WithTimeout(ctx, time.Second)
				g2, err := authB.Acquire(actx, "orders", "b", testTTL)
				acancel()
				if err == nil {
					acquiredAt = time.Now()
					if g2.Epoch != g.Epoch+1 {
						t.Errorf("b got epoch %d, want %d", g2.Epoch, g.Epoch+1)
					}
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if acquiredAt.IsZero() {
				o, _ := authB.Current(ctx, "orders")
				t.Fatalf("b could not acquire within cut+%v; the authority still says %+v", time.Since(cutAt).Round(time.Millisecond), o)
			}
			lastRenew := held.Renewed()
			t.Logf("last confirmed renewal at cut%+v; b acquired at cut+%v (bound cut+%v)",
				lastRenew.Sub(cutAt).Round(time.Millisecond), acquiredAt.Sub(cutAt).Round(time.Millisecond), bound)
			if d := acquiredAt.Sub(cutAt); d > bound {
				t.Errorf("b acquired at cut+%v, later than cut+%v", d, bound)
			}
			if !lastRenew.Before(cutAt) {
				t.Errorf("a renewal sent at cut+%v was confirmed across the cut", lastRenew.Sub(cutAt))
			}
			// a may revoke its lease once its own deadline passed (when its
			// proposals still reach the leader), not before.
			if dl := lastRenew.Add(tm.TTL - tm.Margin); acquiredAt.Before(dl) {
				t.Errorf("b acquired at cut+%v, before a's deadline cut+%v", acquiredAt.Sub(cutAt), dl.Sub(cutAt))
			}
			select {
			case <-held.Done():
			case <-time.After(time.Second):
				t.Fatal("a's Held did not end")
			}
		})
	}
}
