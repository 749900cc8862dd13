package queue

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestStepIsOneRoundTripPerItem: a drain's step acks the item in hand and
// reads the next batch in one script call; activation folds into the first;
// the step that finds the queue empty ends the lease, so no yield is needed.
func TestStepIsOneRoundTripPerItem(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:step"
		f.enqueue("quick", key, "a", "b", "c")
		ls, err := f.e.Claim(f.ctx, "quick", 1)
		if err != nil || len(ls) != 1 {
			t.Fatalf("claim: %v %v", ls, err)
		}
		l := ls[0]
		l.Invocation = "inv-1"
		b, err := f.e.Step(f.ctx, &l, Step{Activate: true, Fetch: 2, Release: true})
		if err != nil || !slices.Equal(idsOf(b.Items), []string{"a", "b"}) || b.Released {
			t.Fatalf("activate+fetch: %+v %v", b, err)
		}
		// A second invocation cannot activate it now.
		dup := ls[0]
		dup.Invocation = "inv-2"
		if _, err := f.e.Step(f.ctx, &dup, Step{Activate: true, Fetch: 1}); !errors.Is(err, ErrLeaseActive) {
			t.Fatalf("duplicate activation: %v, want ErrLeaseActive", err)
		}
		// Ack a (one in hand left): no read.
		if b, err = f.e.Step(f.ctx, &l, Step{Ack: []string{"a"}}); err != nil || len(b.Items) != 0 || b.Depth != -1 {
			t.Fatalf("ack a: %+v %v", b, err)
		}
		// Ack b and read on: c.
		if b, err = f.e.Step(f.ctx, &l, Step{Ack: []string{"b"}, Fetch: 2, Release: true}); err != nil || !slices.Equal(idsOf(b.Items), []string{"c"}) {
			t.Fatalf("ack b + read: %+v %v", b, err)
		}
		// An ack of an id that is not the head changes nothing.
		if _, err = f.e.Step(f.ctx, &l, Step{Ack: []string{"zz"}, Fetch: 2, Release: true}); !errors.Is(err, ErrHeadMismatch) {
			t.Fatalf("ack of a wrong id: %v", err)
		}
		if d := f.depth(key); d != 1 {
			t.Fatalf("depth %d after a refused ack, want 1", d)
		}
		// Ack c and read: empty, lease ended, key out of the index.
		if b, err = f.e.Step(f.ctx, &l, Step{Ack: []string{"c"}, Fetch: 2, Release: true}); err != nil || !b.Released || b.Depth != 0 {
			t.Fatalf("ack c: %+v %v", b, err)
		}
		if info, _ := f.e.Inspect(f.ctx, key); info.Lease != nil {
			t.Fatalf("lease still held after the step found the queue empty: %+v", info.Lease)
		}
		f.claimNone("quick")
		// The key is free: a new item makes it ready at once.
		if r, _ := f.e.Enqueue(f.ctx, "quick", f.item(key, "d")); !r.Ready {
			t.Fatalf("enqueue after release: %+v, want ready", r)
		}
	})
}

// TestNextTakesOldestReadyAcrossShards: a work-conserving drain's Next
// leases the lane's keys oldest ready-at first over every shard, bound to
// its invocation, and reports false when none is ready.
func TestNextTakesOldestReadyAcrossShards(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		var want []string
		for i := range 12 {
			key := fmt.Sprintf("t%02d:order.paid", i)
			f.enqueue("quick", key, "x")
			want = append(want, key)
			f.clk.Advance(time.Millisecond)
		}
		f.enqueue("slow", "other:slow.report", "x")
		var got []string
		for {
			l, ok, err := f.e.Next(f.ctx, "quick", "inv-9")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if l.Invocation != "inv-9" || l.Lane != "quick" {
				t.Fatalf("lease %+v", l)
			}
			// Bound already: another invocation cannot activate it.
			other := l
			other.Invocation = "inv-x"
			if err := f.e.Activate(f.ctx, &other, "inv-x"); !errors.Is(err, ErrLeaseActive) {
				t.Fatalf("activate by another invocation: %v", err)
			}
			got = append(got, l.Key)
			if len(got) > 20 {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Next order:\n got %v\nwant %v", got, want)
		}
	})
}

// TestG3NextNeverHandsOneKeyTwice: drains calling Next at once never get the
// same key, and every ready key is taken once.
func TestG3NextNeverHandsOneKeyTwice(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		const keys = 60
		for i := range keys {
			f.enqueue("quick", fmt.Sprintf("t%02d:c", i), "x")
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for {
					l, ok, err := f.e.Next(f.ctx, "quick", fmt.Sprintf("inv-%d", w))
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					seen[l.Key]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != keys {
			t.Fatalf("%d keys taken, want %d", len(seen), keys)
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("key %s taken %d times", k, n)
			}
		}
	})
}

// TestG7SlotsCapALane: slots never exceed the lane's concurrency; a released
// slot frees at once, one that runs out (a crashed drain) frees by itself,
// and a renewed one stays.
func TestG7SlotsCapALane(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.ClaimTTL = 10 * time.Second; o.LeaseTTL = 30 * time.Second })
		n, err := f.e.AcquireSlots(f.ctx, "quick", 3, []string{"a", "b", "c", "d"})
		if err != nil || n != 3 {
			t.Fatalf("acquire 4 of cap 3: %d %v", n, err)
		}
		if n, _ := f.e.AcquireSlots(f.ctx, "quick", 3, []string{"e"}); n != 0 {
			t.Fatalf("acquire on a full lane: %d", n)
		}
		if n, _ := f.e.AcquireSlots(f.ctx, "slow", 1, []string{"s"}); n != 1 {
			t.Fatalf("another lane is not capped by this one: %d", n)
		}
		if err := f.e.ReleaseSlot(f.ctx, "quick", "a"); err != nil {
			t.Fatal(err)
		}
		live, _ := f.e.LiveSlots(f.ctx, "quick", "slow")
		if live["quick"] != 2 || live["slow"] != 1 {
			t.Fatalf("live slots %v", live)
		}
		f.clk.Advance(5 * time.Second)
		if ok, err := f.e.RenewSlot(f.ctx, "quick", "b"); err != nil || !ok {
			t.Fatalf("renew b: %v %v", ok, err)
		}
		f.clk.Advance(6 * time.Second) // c ran out; b was renewed
		if ok, _ := f.e.RenewSlot(f.ctx, "quick", "c"); ok {
			t.Fatalf("renewed a slot that ran out")
		}
		if n, _ := f.e.AcquireSlots(f.ctx, "quick", 3, []string{"f", "g", "h"}); n != 2 {
			t.Fatalf("acquire after one release and one expiry: %d, want 2", n)
		}
	})
}

// TestWakeSignal: Wake wakes a waiting WaitWake; wakes do not pile up.
func TestWakeSignal(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		for range 5 {
			if err := f.e.Wake(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := f.e.WaitWake(f.ctx, time.Second); err != nil || !ok {
			t.Fatalf("wait after wake: %v %v", ok, err)
		}
		begin := time.Now()
		if ok, err := f.e.WaitWake(f.ctx, 50*time.Millisecond); err != nil || ok {
			t.Fatalf("second wait: %v %v (five wakes must leave one signal)", ok, err)
		}
		if d := time.Since(begin); d < 40*time.Millisecond {
			t.Fatalf("empty wait returned after %v, want about 50ms", d)
		}
		done := make(chan bool)
		go func() {
			ok, _ := f.e.WaitWake(f.ctx, 5*time.Second)
			done <- ok
		}()
		deadline := time.Now().Add(5 * time.Second)
		for {
			_ = f.e.Wake(f.ctx)
			select {
			case ok := <-done:
				if !ok {
					t.Fatal("waiter timed out")
				}
				return
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("waiter never woke")
			}
		}
	})
}

// TestDedupSetPrunesExpiredIDs: expired ids leave a busy key's dedup set
// (one enqueue in pruneEvery prunes), so it holds about one window of ids.
func TestDedupSetPrunesExpiredIDs(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.DedupWindow = time.Minute })
		key := "acme:busy"
		for i := range 40 {
			f.enqueue("quick", key, fmt.Sprintf("old%d", i))
		}
		f.clk.Advance(2 * time.Minute)
		for i := range 2 * pruneEvery {
			f.enqueue("quick", key, fmt.Sprintf("new%d", i))
		}
		dd := f.e.ks.dedup(f.e.ks.shardOf(key), key)
		if n := rdb.ZCard(f.ctx, dd).Val(); n > 2*pruneEvery {
			t.Fatalf("dedup set holds %d ids, want at most the %d of the window", n, 2*pruneEvery)
		}
	})
}
