package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// start is the fake clock's starting time in every engine test.
var start = time.UnixMilli(1_763_900_000_000)

type fixture struct {
	t   *testing.T
	ctx context.Context
	rdb redis.UniversalClient
	clk *clock.Fake
	e   *Engine
}

// setup returns an engine on rdb with a key prefix of its own, two lanes
// (quick, slow), a fake clock, no jitter, and opts applied.
func setup(t *testing.T, rdb redis.UniversalClient, opts ...func(*Options)) *fixture {
	t.Helper()
	clk := clock.NewFake(start)
	o := Options{
		Prefix: redistest.Prefix(t),
		Lanes:  []string{"quick", "slow"},
		Clock:  clk,
		Jitter: func() float64 { return 0 },
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := New(rdb, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, ctx: context.Background(), rdb: rdb, clk: clk, e: e}
}

func (f *fixture) item(key, id string) *Item {
	tenant, code, _ := strings.Cut(key, ":")
	return &Item{ID: id, Tenant: tenant, Code: code, Body: []byte(`{"code":"` + code + `","data":{"id":"` + id + `"}}`)}
}

func (f *fixture) enqueue(lane, key string, ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		if _, err := f.e.Enqueue(f.ctx, lane, f.item(key, id)); err != nil {
			f.t.Fatalf("enqueue %s/%s: %v", key, id, err)
		}
	}
}

// claimOne claims the next key of lane and activates it for invocation inv;
// it fails the test if no key is ready.
func (f *fixture) claimOne(lane, inv string) *Lease {
	f.t.Helper()
	ls, err := f.e.Claim(f.ctx, lane, 1)
	if err != nil {
		f.t.Fatalf("claim: %v", err)
	}
	if len(ls) != 1 {
		f.t.Fatalf("claim %s: got %d leases, want 1", lane, len(ls))
	}
	l := ls[0]
	if err := f.e.Activate(f.ctx, &l, inv); err != nil {
		f.t.Fatalf("activate %s: %v", l.Key, err)
	}
	return &l
}

func (f *fixture) claimNone(lane string) {
	f.t.Helper()
	ls, err := f.e.Claim(f.ctx, lane, 10)
	if err != nil {
		f.t.Fatalf("claim: %v", err)
	}
	if len(ls) != 0 {
		f.t.Fatalf("claim %s: got %v, want no ready key", lane, keysOf(ls))
	}
}

func keysOf(ls []Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	return out
}

func (f *fixture) fetchIDs(l *Lease, n int) []string {
	f.t.Helper()
	b, err := f.e.Fetch(f.ctx, l, n)
	if err != nil {
		f.t.Fatalf("fetch %s: %v", l.Key, err)
	}
	return idsOf(b.Items)
}

func idsOf(items []*Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func (f *fixture) ack(l *Lease, ids ...string) int64 {
	f.t.Helper()
	left, err := f.e.Ack(f.ctx, l, ids...)
	if err != nil {
		f.t.Fatalf("ack %s %v: %v", l.Key, ids, err)
	}
	return left
}

func (f *fixture) depth(key string) int64 {
	f.t.Helper()
	info, err := f.e.Inspect(f.ctx, key)
	if err != nil {
		f.t.Fatalf("inspect %s: %v", key, err)
	}
	return info.Depth
}

func seqIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

// TestG2FIFOPerKey: items of a key are handed out strictly in order, across
// batches, claims and interleaved keys; a failing head is retried in place
// while its key waits and other keys go on.
func TestG2FIFOPerKey(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		a, b := seqIDs("a", 25), seqIDs("b", 25)
		for i := range a {
			f.enqueue("quick", "acme:post.create", a[i])
			f.enqueue("quick", "acme:post.delete", b[i])
		}
		got := map[string][]string{}
		for range 200 {
			ls, err := f.e.Claim(f.ctx, "quick", 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) == 0 {
				break
			}
			for i := range ls {
				l := &ls[i]
				if err := f.e.Activate(f.ctx, l, "inv"); err != nil {
					t.Fatal(err)
				}
				ids := f.fetchIDs(l, 4) // small batches: many claims and yields
				got[l.Key] = append(got[l.Key], ids...)
				f.ack(l, ids...)
				if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			f.clk.Advance(time.Millisecond)
		}
		if !slices.Equal(got["acme:post.create"], a) || !slices.Equal(got["acme:post.delete"], b) {
			t.Fatalf("order broken:\n%v\n%v", got["acme:post.create"], got["acme:post.delete"])
		}

		// Retry in place.
		f.enqueue("quick", "acme:retry", "r1", "r2", "r3")
		f.clk.Advance(time.Millisecond)
		f.enqueue("quick", "acme:other", "o1")
		l := f.claimOne("quick", "inv-1")
		if l.Key != "acme:retry" {
			t.Fatalf("claimed %s first, want acme:retry", l.Key)
		}
		if ids := f.fetchIDs(l, 10); !slices.Equal(ids, []string{"r1", "r2", "r3"}) {
			t.Fatalf("fetch = %v", ids)
		}
		res, err := f.e.Fail(f.ctx, l, "r1", Failure{Reason: "upstream 500", MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		// Zero jitter: the first retry waits half of BackoffBase (1s).
		if res.Outcome != Retrying || res.Attempts != 1 || !res.ReadyAt.Equal(f.clk.Now().Add(500*time.Millisecond)) {
			t.Fatalf("fail = %+v", res)
		}
		// The failing key waits; the other key is served meanwhile.
		o := f.claimOne("quick", "inv-2")
		if o.Key != "acme:other" {
			t.Fatalf("claimed %s while acme:retry backs off, want acme:other", o.Key)
		}
		f.claimNone("quick")
		f.clk.Set(res.ReadyAt)
		l = f.claimOne("quick", "inv-3")
		b2, err := f.e.Fetch(f.ctx, l, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ids := idsOf(b2.Items); !slices.Equal(ids, []string{"r1", "r2", "r3"}) || b2.Attempts != 1 {
			t.Fatalf("after retry: items %v attempts %d, want r1 first with 1 attempt", ids, b2.Attempts)
		}
		// Acking out of order is refused and changes nothing.
		if _, err := f.e.Ack(f.ctx, l, "r2"); !errors.Is(err, ErrHeadMismatch) {
			t.Fatalf("ack of a non-head item = %v, want ErrHeadMismatch", err)
		}
		if left := f.ack(l, "r1", "r2"); left != 1 {
			t.Fatalf("left = %d, want 1", left)
		}
		info, _ := f.e.Inspect(f.ctx, "acme:retry")
		if info.Attempts != 0 || info.LastError != "" {
			t.Fatalf("ack did not reset the head's attempts: %+v", info)
		}
	})
}

// TestG2BackoffGrowsAndCaps checks the retry delays: base*2^(n-1), capped,
// upper half jittered.
func TestG2BackoffGrowsAndCaps(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		jit := 0.5
		f := setup(t, rdb, func(o *Options) {
			o.BackoffBase, o.BackoffCap = time.Second, 10*time.Second
			o.Jitter = func() float64 { return jit }
		})
		f.enqueue("slow", "t1:sync", "x")
		want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 7500 * time.Millisecond, 7500 * time.Millisecond}
		for i, w := range want {
			l := f.claimOne("slow", fmt.Sprint("inv", i))
			res, err := f.e.Fail(f.ctx, l, "x", Failure{Reason: "no", MaxAttempts: 100})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.ReadyAt.Sub(f.clk.Now()); got != w || res.Attempts != i+1 {
				t.Fatalf("attempt %d: delay %v attempts %d, want %v and %d", i+1, got, res.Attempts, w, i+1)
			}
			f.clk.Set(res.ReadyAt)
		}
		// RetryAt overrides the backoff.
		l := f.claimOne("slow", "inv-x")
		at := f.clk.Now().Add(42 * time.Second)
		res, err := f.e.Fail(f.ctx, l, "x", Failure{Reason: "429", MaxAttempts: 100, RetryAt: at})
		if err != nil || !res.ReadyAt.Equal(at) {
			t.Fatalf("RetryAt: %+v %v", res, err)
		}
		f.clk.Set(at.Add(-time.Millisecond))
		f.claimNone("slow")
		f.clk.Set(at)
		f.claimOne("slow", "inv-y")
	})
}

// TestG3StaleTokenAfterExpiry: once a lease has run out, its token can no
// longer ack, extend, yield, fail or fetch, and the key is claimable again
// with a larger token.
func TestG3StaleTokenAfterExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.LeaseTTL = 10 * time.Second })
		f.enqueue("quick", "acme:k", "i1", "i2")
		old := f.claimOne("quick", "inv-old")
		f.clk.Advance(10 * time.Second) // exactly at the deadline: expired
		check := func(l *Lease, when string) {
			t.Helper()
			if _, err := f.e.Ack(f.ctx, l, "i1"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: ack = %v, want ErrLeaseLost", when, err)
			}
			if err := f.e.Extend(f.ctx, l); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: extend = %v, want ErrLeaseLost", when, err)
			}
			if _, err := f.e.Yield(f.ctx, l, time.Time{}); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: yield = %v, want ErrLeaseLost", when, err)
			}
			if _, err := f.e.Fail(f.ctx, l, "i1", Failure{Reason: "x", Permanent: true}); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: fail = %v, want ErrLeaseLost", when, err)
			}
			if _, err := f.e.Fetch(f.ctx, l, 1); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: fetch = %v, want ErrLeaseLost", when, err)
			}
			if err := f.e.Activate(f.ctx, &Lease{Key: l.Key, Lane: l.Lane, Token: l.Token}, "inv-late"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: late activate = %v, want ErrLeaseLost", when, err)
			}
		}
		check(old, "expired")
		if d := f.depth("acme:k"); d != 2 {
			t.Fatalf("stale calls changed the queue: depth %d", d)
		}
		// The key is claimable again by itself, with a newer token.
		cur := f.claimOne("quick", "inv-new")
		if cur.Key != "acme:k" || cur.Token <= old.Token {
			t.Fatalf("reclaim: %+v after token %d", cur, old.Token)
		}
		check(old, "superseded")
		if ids := f.fetchIDs(cur, 10); !slices.Equal(ids, []string{"i1", "i2"}) {
			t.Fatalf("new holder sees %v", ids)
		}
		if err := f.e.Extend(f.ctx, cur); err != nil || !cur.Deadline.Equal(f.clk.Now().Add(10*time.Second)) {
			t.Fatalf("extend: %v, deadline %v", err, cur.Deadline)
		}
		f.ack(cur, "i1")
	})
}

// TestG3SecondInvocationCannotActivate: a duplicate delivery of a drain event
// (same token, other invocation id) is refused and cannot act on the key.
func TestG3SecondInvocationCannotActivate(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:k", "i1")
		ls, err := f.e.Claim(f.ctx, "quick", 1)
		if err != nil || len(ls) != 1 {
			t.Fatalf("claim: %v %v", ls, err)
		}
		first, dup := ls[0], ls[0]
		if err := f.e.Activate(f.ctx, &first, "req-A"); err != nil {
			t.Fatal(err)
		}
		if err := f.e.Activate(f.ctx, &dup, "req-B"); !errors.Is(err, ErrLeaseActive) {
			t.Fatalf("second activate = %v, want ErrLeaseActive", err)
		}
		dup.Invocation = "req-B" // even if it ignored the refusal
		if _, err := f.e.Ack(f.ctx, &dup, "i1"); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("ack by the duplicate = %v, want ErrLeaseLost", err)
		}
		again := ls[0]
		if err := f.e.Activate(f.ctx, &again, "req-A"); err != nil {
			t.Fatalf("re-activate by the same invocation = %v", err)
		}
		f.ack(&first, "i1")
	})
}

// TestG3ConcurrentClaimersNeverShareAKey: claimers racing over the same
// ready keys never receive the same key twice.
func TestG3ConcurrentClaimersNeverShareAKey(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		const keys = 300
		var entries []Entry
		for i := range keys {
			entries = append(entries, Entry{Lane: "quick", Item: f.item(fmt.Sprintf("t%d:c", i), "x")})
		}
		if _, err := f.e.EnqueueBatch(f.ctx, entries); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		count := map[string]int{}
		tokens := map[[2]int64]bool{} // (shard, token): tokens count per shard
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ls, err := f.e.Claim(f.ctx, "quick", 7)
					if err != nil {
						errs <- err
						return
					}
					if len(ls) == 0 {
						return
					}
					mu.Lock()
					for _, l := range ls {
						count[l.Key]++
						st := [2]int64{int64(f.e.shard(l.Key)), l.Token}
						if tokens[st] {
							t.Errorf("token %d handed out twice in shard %d", l.Token, st[0])
						}
						tokens[st] = true
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(count) != keys {
			t.Fatalf("claimed %d distinct keys, want %d", len(count), keys)
		}
		for k, n := range count {
			if n != 1 {
				t.Fatalf("key %s claimed %d times", k, n)
			}
		}
		if n, _ := f.e.LiveLeases(f.ctx, "quick"); n != keys {
			t.Fatalf("live leases = %d, want %d", n, keys)
		}
	})
}

// enqueueHot puts n items on one key in batches.
func (f *fixture) enqueueHot(lane, key string, n int) {
	f.t.Helper()
	const batch = 2000
	for i := 0; i < n; i += batch {
		var entries []Entry
		for j := i; j < min(n, i+batch); j++ {
			entries = append(entries, Entry{Lane: lane, Item: f.item(key, fmt.Sprintf("h%06d", j))})
		}
		if _, err := f.e.EnqueueBatch(f.ctx, entries); err != nil {
			f.t.Fatalf("enqueue hot: %v", err)
		}
	}
}

// TestG5HotKeyYieldsBehindColdKeys: a key with 50,000 items works one quantum
// and then waits behind the 1,000 one-item keys that became ready meanwhile.
func TestG5HotKeyYieldsBehindColdKeys(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueueHot("quick", "big:order.sync", 50_000)
		f.clk.Advance(time.Millisecond)
		var cold []Entry
		for i := range 1000 {
			cold = append(cold, Entry{Lane: "quick", Item: f.item(fmt.Sprintf("c%04d:order.sync", i), "x")})
		}
		if _, err := f.e.EnqueueBatch(f.ctx, cold); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(time.Millisecond)
		// The hot key was ready first, so it is claimed first...
		hot := f.claimOne("quick", "inv-hot")
		if hot.Key != "big:order.sync" {
			t.Fatalf("first claim = %s, want the hot key", hot.Key)
		}
		// ...works one quantum (here: one full batch) and yields.
		ids := f.fetchIDs(hot, 100)
		f.ack(hot, ids...)
		if ready, err := f.e.Yield(f.ctx, hot, time.Time{}); err != nil || !ready {
			t.Fatalf("yield = %v %v", ready, err)
		}
		// Every cold key is claimed before the hot key comes round again.
		var order []string
		for {
			ls, err := f.e.Claim(f.ctx, "quick", 64)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) == 0 {
				break
			}
			order = append(order, keysOf(ls)...)
		}
		if len(order) != 1001 || order[1000] != "big:order.sync" {
			t.Fatalf("claim order: %d keys, last %q; want 1001 with the hot key last", len(order), order[len(order)-1])
		}
	})
}

// TestG8BoundedMemory: 50,000 items on one key are one index member, and no
// fetch returns more than the batch size.
func TestG8BoundedMemory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.MaxBatch = 50 })
		f.enqueueHot("slow", "big:sync", 50_000)
		var members int64
		for s := range f.e.opt.Shards {
			for _, lane := range f.e.opt.Lanes {
				members += rdb.ZCard(f.ctx, f.e.ks.ready(s, lane)).Val()
			}
		}
		if members != 1 {
			t.Fatalf("ready index holds %d members for one key, want 1", members)
		}
		l := f.claimOne("slow", "inv")
		for _, n := range []int{1, 50, 51, 1_000_000} {
			b, err := f.e.Fetch(f.ctx, l, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Items) != min(n, 50) || b.Depth != 50_000 {
				t.Fatalf("fetch(%d) returned %d items (depth %d), want %d", n, len(b.Items), b.Depth, min(n, 50))
			}
		}
	})
}

// TestDedupWindow: a repeated id inside the window is dropped; after the
// window it is stored again.
func TestDedupWindow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.DedupWindow = time.Hour })
		r1, err := f.e.Enqueue(f.ctx, "quick", f.item("acme:c", "evt_1"))
		if err != nil || !r1.New || !r1.Ready {
			t.Fatalf("first enqueue: %+v %v", r1, err)
		}
		f.clk.Advance(59 * time.Minute)
		r2, err := f.e.Enqueue(f.ctx, "quick", f.item("acme:c", "evt_1"))
		if err != nil || r2.New || r2.Ready {
			t.Fatalf("duplicate inside window: %+v %v", r2, err)
		}
		if d := f.depth("acme:c"); d != 1 {
			t.Fatalf("duplicate stored: depth %d", d)
		}
		// The same id on another key is another item.
		if r, _ := f.e.Enqueue(f.ctx, "quick", f.item("acme:d", "evt_1")); !r.New {
			t.Fatalf("same id on another key deduplicated")
		}
		f.clk.Advance(time.Minute)
		r3, err := f.e.Enqueue(f.ctx, "quick", f.item("acme:c", "evt_1"))
		if err != nil || !r3.New || r3.Ready {
			t.Fatalf("after the window: %+v %v (want new, key already ready)", r3, err)
		}
		if d := f.depth("acme:c"); d != 2 {
			t.Fatalf("depth %d after the window, want 2", d)
		}
		// While the key has queued items its dedup set has no TTL; once the
		// queue empties it lives one more window.
		dd := f.e.ks.dedup(f.e.shard("acme:c"), "acme:c")
		if ttl := rdb.PTTL(f.ctx, dd).Val(); ttl != -1 {
			t.Fatalf("dedup set TTL %v while items are queued, want none", ttl)
		}
		l := f.claimOne("quick", "inv")
		if _, err := f.e.Ack(f.ctx, l, "evt_1", "evt_1"); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(f.ctx, dd).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("dedup set TTL %v after the queue emptied, want (0, 1h]", ttl)
		}
		// Still a duplicate after the queue emptied, inside the window.
		if r, _ := f.e.Enqueue(f.ctx, "quick", f.item("acme:c", "evt_1")); r.New {
			t.Fatalf("duplicate accepted after its key's queue emptied")
		}
		// Disabled dedup stores every copy.
		g := setup(t, rdb, func(o *Options) { o.DedupWindow = -1 })
		for range 3 {
			if r, err := g.e.Enqueue(g.ctx, "quick", g.item("acme:c", "evt_1")); err != nil || !r.New {
				t.Fatalf("dedup disabled: %+v %v", r, err)
			}
		}
	})
}

// TestDeadLetterAndRedriveKeepOrder: items dead-lettered at max attempts or
// permanently keep their order through redrive, ahead of newer items.
func TestDeadLetterAndRedriveKeepOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:invoice.paid"
		f.enqueue("quick", key, "i1", "i2", "i3", "i4")
		l := f.claimOne("quick", "inv-1")
		res, err := f.e.Fail(f.ctx, l, "i1", Failure{Reason: "bad payload\nline two", Permanent: true, MaxAttempts: 5})
		if err != nil || res.Outcome != DeadLettered || res.Attempts != 1 {
			t.Fatalf("permanent fail: %+v %v", res, err)
		}
		// The lease is kept; i2 is the head now. It fails twice at max 2.
		if ids := f.fetchIDs(l, 1); !slices.Equal(ids, []string{"i2"}) {
			t.Fatalf("head after dead letter = %v", ids)
		}
		res, err = f.e.Fail(f.ctx, l, "i2", Failure{Reason: "503", MaxAttempts: 2})
		if err != nil || res.Outcome != Retrying {
			t.Fatalf("first fail of i2: %+v %v", res, err)
		}
		f.clk.Set(res.ReadyAt)
		l = f.claimOne("quick", "inv-2")
		res, err = f.e.Fail(f.ctx, l, "i2", Failure{Reason: "503 again", MaxAttempts: 2})
		if err != nil || res.Outcome != DeadLettered || res.Attempts != 2 {
			t.Fatalf("second fail of i2: %+v %v", res, err)
		}
		dead, err := f.e.DeadItems(f.ctx, key, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 2 || dead[0].Item.ID != "i1" || dead[1].Item.ID != "i2" ||
			dead[0].Reason != "bad payload line two" || dead[0].Attempts != 1 ||
			dead[1].Reason != "503 again" || dead[1].Attempts != 2 || dead[1].Lane != "quick" ||
			!dead[1].DeadAt.Equal(f.clk.Now()) || string(dead[0].Item.Body) != string(f.item(key, "i1").Body) {
			t.Fatalf("dead letters wrong: %+v %+v", dead[0], dead[1])
		}
		dk, err := f.e.DeadKeys(f.ctx, 10)
		if err != nil || len(dk) != 1 || dk[0].Key != key || dk[0].Count != 2 {
			t.Fatalf("dead keys = %+v %v", dk, err)
		}
		// Redrive refuses while the key is leased.
		if _, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); !errors.Is(err, ErrLeased) {
			t.Fatalf("redrive while leased = %v, want ErrLeased", err)
		}
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			t.Fatal(err)
		}
		f.enqueue("quick", key, "i5")
		rd, err := f.e.Redrive(f.ctx, key, Selection{}, Change{})
		if err != nil || !slices.Equal(rd.IDs, []string{"i1", "i2"}) || rd.Behind != "" {
			t.Fatalf("redrive = %+v %v", rd, err)
		}
		l = f.claimOne("quick", "inv-3")
		if ids := f.fetchIDs(l, 10); !slices.Equal(ids, []string{"i1", "i2", "i3", "i4", "i5"}) {
			t.Fatalf("after redrive the queue is %v", ids)
		}
		if dk, _ := f.e.DeadKeys(f.ctx, 10); len(dk) != 0 {
			t.Fatalf("dead keys after full redrive = %+v", dk)
		}
		f.ack(l, "i1", "i2", "i3", "i4", "i5")

		// Redrive of an idle key (empty queue) uses the dead letter's lane.
		f.enqueue("slow", "acme:idle", "z1")
		l = f.claimOne("slow", "inv-4")
		if _, err := f.e.Fail(f.ctx, l, "z1", Failure{Reason: "x", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			t.Fatal(err)
		}
		f.claimNone("slow")
		if rd, err := f.e.Redrive(f.ctx, "acme:idle", Selection{Count: 1}, Change{}); err != nil || len(rd.IDs) != 1 {
			t.Fatalf("redrive idle key = %+v %v", rd, err)
		}
		if l := f.claimOne("slow", "inv-5"); l.Key != "acme:idle" {
			t.Fatalf("claimed %s", l.Key)
		}
	})
}

// TestParkAndResume: at max attempts with the park policy the key pauses
// with the item kept at its head, until an operator resumes it.
func TestParkAndResume(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:ledger.post"
		f.enqueue("slow", key, "p1", "p2")
		l := f.claimOne("slow", "inv-1")
		res, err := f.e.Fail(f.ctx, l, "p1", Failure{Reason: "ledger closed", MaxAttempts: 1, Policy: Park})
		if err != nil || res.Outcome != Parked {
			t.Fatalf("fail = %+v %v", res, err)
		}
		f.clk.Advance(time.Hour)
		f.claimNone("slow")
		f.enqueue("slow", key, "p3") // work keeps arriving while parked
		f.claimNone("slow")
		info, err := f.e.Inspect(f.ctx, key)
		if err != nil || !info.Paused || info.Depth != 3 || info.Attempts != 1 || info.LastError != "ledger closed" || info.Lease != nil {
			t.Fatalf("inspect parked key = %+v %v", info, err)
		}
		if top, _ := f.e.Top(f.ctx, ByDepth, 5); len(top) != 1 || !top[0].Paused {
			t.Fatalf("Top does not show the parked key: %+v", top)
		}
		rs, err := f.e.Resume(f.ctx, key, Change{})
		if err != nil || !rs.Ready || rs.Was != "parked" {
			t.Fatalf("resume = %+v %v", rs, err)
		}
		l = f.claimOne("slow", "inv-2")
		b, _ := f.e.Fetch(f.ctx, l, 10)
		if ids := idsOf(b.Items); !slices.Equal(ids, []string{"p1", "p2", "p3"}) || b.Attempts != 0 {
			t.Fatalf("after resume: %v attempts %d", ids, b.Attempts)
		}
	})
}

// TestPauseAndResume: a paused key is never claimed; a drain holding it sees
// the pause and its yield does not requeue it; resume makes it ready.
func TestPauseAndResume(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:a", "a1", "a2")
		if _, err := f.e.Pause(f.ctx, "acme:a", Change{}); err != nil {
			t.Fatal(err)
		}
		f.claimNone("quick")
		if res, err := f.e.Resume(f.ctx, "acme:a", Change{}); err != nil || !res.Ready || res.Was != "paused" {
			t.Fatalf("resume = %+v %v", res, err)
		}
		l := f.claimOne("quick", "inv")
		if _, err := f.e.Pause(f.ctx, "acme:a", Change{}); err != nil {
			t.Fatal(err)
		}
		b, err := f.e.Fetch(f.ctx, l, 1)
		if err != nil || !b.Paused {
			t.Fatalf("holder does not see the pause: %+v %v", b, err)
		}
		if ready, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil || ready {
			t.Fatalf("yield of a paused key = %v %v, want not requeued", ready, err)
		}
		f.clk.Advance(time.Hour)
		f.claimNone("quick")
		if _, err := f.e.Resume(f.ctx, "acme:a", Change{}); err != nil {
			t.Fatal(err)
		}
		if l := f.claimOne("quick", "inv-2"); l.Key != "acme:a" {
			t.Fatal(l.Key)
		}
		// Pausing and resuming an idle key is allowed and keeps it idle.
		if _, err := f.e.Pause(f.ctx, "acme:idle", Change{}); err != nil {
			t.Fatal(err)
		}
		if res, err := f.e.Resume(f.ctx, "acme:idle", Change{}); err != nil || res.Ready {
			t.Fatalf("resume idle = %+v %v", res, err)
		}
		if _, err := f.e.Pause(f.ctx, "no-colon", Change{}); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("pause of an invalid key = %v", err)
		}
	})
}

// TestSkipHead: an operator skips a poisoned head item into the dead letters.
func TestSkipHead(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:s", "s1", "s2")
		l := f.claimOne("quick", "inv")
		if _, err := f.e.Skip(f.ctx, "acme:s", Change{Note: "bad"}); !errors.Is(err, ErrLeased) {
			t.Fatalf("skip while leased = %v", err)
		}
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if id, err := f.e.Skip(f.ctx, "acme:s", Change{Note: "ticket 12"}); err != nil || id != "s1" {
			t.Fatalf("skip = %q %v", id, err)
		}
		l = f.claimOne("quick", "inv-2")
		if ids := f.fetchIDs(l, 5); !slices.Equal(ids, []string{"s2"}) {
			t.Fatalf("after skip: %v", ids)
		}
		dead, _ := f.e.DeadItems(f.ctx, "acme:s", 0, 5)
		if len(dead) != 1 || dead[0].Item.ID != "s1" || dead[0].Reason != "skipped by operator: ticket 12" {
			t.Fatalf("dead = %+v", dead)
		}
		f.ack(l, "s2")
		if id, err := f.e.Skip(f.ctx, "acme:s", Change{Note: "x"}); err != nil || id != "" {
			t.Fatalf("skip on empty queue = %q %v", id, err)
		}
	})
}

// TestEnqueueDuringLease: a key whose drain emptied its queue keeps its
// lease; new items wait for that drain (or its lease deadline), not for a
// second claim.
func TestEnqueueDuringLease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:e", "e1")
		l := f.claimOne("quick", "inv")
		if left := f.ack(l, "e1"); left != 0 {
			t.Fatalf("left %d", left)
		}
		r, err := f.e.Enqueue(f.ctx, "quick", f.item("acme:e", "e2"))
		if err != nil || !r.New || r.Ready {
			t.Fatalf("enqueue during lease: %+v %v", r, err)
		}
		f.claimNone("quick")
		// The drain sees the new item in its next fetch and can finish it.
		if ids := f.fetchIDs(l, 5); !slices.Equal(ids, []string{"e2"}) {
			t.Fatalf("fetch = %v", ids)
		}
		if ready, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil || !ready {
			t.Fatalf("yield = %v %v", ready, err)
		}
		l = f.claimOne("quick", "inv-2")
		if l.Key != "acme:e" {
			t.Fatal(l.Key)
		}
		f.ack(l, "e2")
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			t.Fatal(err)
		}
		// A drain that dies after emptying the queue: the next item becomes
		// claimable at the dead lease's deadline.
		f.enqueue("quick", "acme:f", "f1")
		l = f.claimOne("quick", "inv-3")
		f.ack(l, "f1")
		f.enqueue("quick", "acme:f", "f2")
		f.clk.Set(l.Deadline)
		l2 := f.claimOne("quick", "inv-4")
		if l2.Key != "acme:f" || l2.Token <= l.Token {
			t.Fatalf("reclaim %+v", l2)
		}
		f.ack(l2, "f2")
		if _, err := f.e.Yield(f.ctx, l2, time.Time{}); err != nil {
			t.Fatal(err)
		}
		// A holder that dies with an empty queue leaves no trace once the key
		// is used again: its lease field goes at the next enqueue.
		f.enqueue("quick", "acme:g", "g1")
		l = f.claimOne("quick", "inv-5")
		f.ack(l, "g1")
		f.clk.Set(l.Deadline.Add(time.Millisecond))
		f.enqueue("quick", "acme:g", "g2")
		s := f.e.shard("acme:g")
		if rdb.HExists(f.ctx, f.e.ks.lease(s), "acme:g").Val() {
			t.Fatal("the dead holder's lease field is still there after an enqueue")
		}
		if l := f.claimOne("quick", "inv-6"); l.Key != "acme:g" {
			t.Fatalf("claimed %s, want acme:g", l.Key)
		}
	})
}

// TestYieldNotBeforeAndEmpty: yield with a not-before time delays the key;
// yield of an empty key removes it.
func TestYieldNotBeforeAndEmpty(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:y", "y1")
		l := f.claimOne("quick", "inv")
		at := f.clk.Now().Add(3 * time.Second)
		if ready, err := f.e.Yield(f.ctx, l, at); err != nil || !ready {
			t.Fatalf("yield = %v %v", ready, err)
		}
		f.claimNone("quick")
		f.clk.Set(at)
		l = f.claimOne("quick", "inv-2")
		f.ack(l, "y1")
		if ready, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil || ready {
			t.Fatalf("yield of empty key = %v %v", ready, err)
		}
		st, err := f.e.Stats(f.ctx, "quick")
		if err != nil || st != (LaneStats{Lane: "quick"}) {
			t.Fatalf("stats after all done = %+v %v", st, err)
		}
		if n := rdb.HLen(f.ctx, f.e.ks.lease(f.e.shard("acme:y"))).Val(); n != 0 {
			t.Fatalf("lease hash keeps %d fields after yield", n)
		}
	})
}

// TestOperatorReads covers the listings operators use.
func TestOperatorReads(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "a:x", "1", "2", "3")
		f.clk.Advance(time.Second)
		f.enqueue("quick", "b:x", "1")
		f.enqueue("slow", "c:x", "1", "2")
		f.clk.Advance(time.Second)
		ready, err := f.e.readyKeys(f.ctx, "quick", 10)
		if err != nil || len(ready) != 2 || ready[0].Key != "a:x" || ready[1].Key != "b:x" || !ready[0].ReadyAt.Equal(start) {
			t.Fatalf("ready keys = %+v %v", ready, err)
		}
		l := f.claimOne("quick", "req-1")
		leased, err := f.e.leasedKeys(f.ctx, "quick")
		if err != nil || len(leased) != 1 || leased[0].Key != "a:x" || leased[0].Token != l.Token || leased[0].Invocation != "req-1" {
			t.Fatalf("leased keys = %+v %v", leased, err)
		}
		st, err := f.e.Stats(f.ctx, "quick")
		if err != nil || st.Ready != 1 || st.Leased != 1 || st.Delayed != 0 || !st.OldestReady.Equal(start.Add(time.Second)) {
			t.Fatalf("stats = %+v %v", st, err)
		}
		info, err := f.e.Inspect(f.ctx, "a:x")
		if err != nil || info.Depth != 3 || info.OldestAge != 2*time.Second || info.Lane != "quick" || info.Lease == nil || info.Lease.Token != l.Token {
			t.Fatalf("inspect = %+v %v", info, err)
		}
		if _, err := f.e.Fail(f.ctx, l, "1", Failure{Reason: "x", MaxAttempts: 3}); err != nil {
			t.Fatal(err)
		}
		if st, _ := f.e.Stats(f.ctx, "quick"); st.Delayed != 1 || st.Leased != 0 {
			t.Fatalf("stats after a retry = %+v", st)
		}
		byDepth, err := f.e.Top(f.ctx, ByDepth, 2)
		if err != nil || len(byDepth) != 2 || byDepth[0].Key != "a:x" || byDepth[1].Key != "c:x" {
			t.Fatalf("top by depth = %+v %v", byDepth, err)
		}
		byAge, err := f.e.Top(f.ctx, ByAge, 3)
		if err != nil || len(byAge) != 3 || byAge[0].Key != "a:x" || byAge[0].OldestAge != 2*time.Second || byAge[2].OldestAge != time.Second {
			t.Fatalf("top by age = %+v %v", byAge, err)
		}
	})
}

// TestG9NoTTLOnQueueData: only dedup markers expire (ElastiCache Serverless
// evicts volatile keys first).
func TestG9NoTTLOnQueueData(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:ttl"
		f.enqueue("quick", key, "a", "b")
		l := f.claimOne("quick", "inv")
		if _, err := f.e.Fail(f.ctx, l, "a", Failure{Reason: "x", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		s := f.e.shard(key)
		for _, k := range []string{f.e.ks.queue(s, key), f.e.ks.meta(s, key), f.e.ks.ready(s, "quick"),
			f.e.ks.lease(s), f.e.ks.seq(s), f.e.ks.dlq(s, key), f.e.ks.dlqIndex(s)} {
			if ttl := rdb.PTTL(f.ctx, k).Val(); ttl != -1 {
				t.Errorf("%s has PTTL %v, want -1 (exists, no TTL)", k, ttl)
			}
		}
	})
}

// TestG9ScriptsAreServerlessSafe: no script reads the server clock or opens a
// transaction, and every key name of a shard carries the shard's hash tag.
func TestG9ScriptsAreServerlessSafe(t *testing.T) {
	for i, s := range scripts {
		src := strings.ToUpper(scriptSource(s))
		// The one expiry set by a script is the dedup set's, once its key's
		// queue is empty (emptied in leaseLua).
		src = strings.ReplaceAll(src, "REDIS.CALL('PEXPIRE', D, WINDOW)", "")
		for _, bad := range []string{"'TIME'", "\"TIME\"", "'MULTI'", "'EXPIRE'", "'PEXPIRE'", "'EXPIREAT'", "'PEXPIREAT'", "'KEYS'", "'SCAN'"} {
			if strings.Contains(src, bad) {
				t.Errorf("script %d calls %s", i, bad)
			}
		}
	}
	ks := keyspace{prefix: "hl", shards: 16}
	for _, k := range []string{ks.ready(7, "quick"), ks.lease(7), ks.seq(7), ks.paused(7),
		ks.dlqIndex(7), ks.queue(7, "a:b"), ks.meta(7, "a:b"), ks.dlq(7, "a:b"), ks.dedup(7, "a:b"),
		ks.audit(7, "a:b"), ks.deadCount(7), ks.lanePaused(7)} {
		if !strings.HasPrefix(k, "hl:{07}:") {
			t.Errorf("key %q does not carry the shard tag {07}", k)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Prefix: "Bad Prefix"},
		{Shards: -1},
		{Lanes: []string{"a b"}},
		{LeaseTTL: time.Millisecond},
		{MaxBatch: -3},
		{BackoffBase: 10 * time.Second, BackoffCap: time.Second},
	} {
		if _, err := New(nil, o); err == nil {
			t.Errorf("New accepted %+v", o)
		}
	}
	if _, err := New(nil, Options{}); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// TestSingleton: one owner at a time; the lease passes on when it runs out
// or is released.
func TestSingleton(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		acq := func(owner string) bool {
			ok, err := f.e.AcquireSingleton(f.ctx, "scheduler", owner, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !acq("a") || acq("b") || !acq("a") {
			t.Fatal("a should hold the lease and renew it; b should be refused")
		}
		f.clk.Advance(10 * time.Second)
		if !acq("b") || acq("a") {
			t.Fatal("after expiry b should take over")
		}
		if held, err := f.e.ReleaseSingleton(f.ctx, "scheduler", "a"); err != nil || held || acq("a") {
			t.Fatal("a release by a non-owner must not free the lease")
		}
		if held, err := f.e.ReleaseSingleton(f.ctx, "scheduler", "b"); err != nil || !held || !acq("a") {
			t.Fatal("after b released, a should acquire")
		}
	})
}

// TestSingletonHandoff: a standby waiting in WaitSingleton returns as soon
// as the holder releases the lease, and only then; a release by someone
// who does not hold it wakes nobody.
func TestSingletonHandoff(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		if ok, err := f.e.AcquireSingleton(f.ctx, "scheduler", "a", 10*time.Second); err != nil || !ok {
			t.Fatalf("acquire: %v %v", ok, err)
		}
		if held, err := f.e.ReleaseSingleton(f.ctx, "scheduler", "b"); err != nil || held {
			t.Fatalf("release by a non-holder: %v %v", held, err)
		}
		begin := time.Now()
		if ok, err := f.e.WaitSingleton(f.ctx, "scheduler", 50*time.Millisecond); err != nil || ok {
			t.Fatalf("wait with no release: %v %v; want a timeout", ok, err)
		}
		if d := time.Since(begin); d < 40*time.Millisecond {
			t.Fatalf("empty wait returned after %v, want about 50ms", d)
		}

		type result struct {
			ok  bool
			err error
			at  time.Time
		}
		done := make(chan result, 1)
		go func() {
			ok, err := f.e.WaitSingleton(f.ctx, "scheduler", 10*time.Second)
			done <- result{ok, err, time.Now()}
		}()
		// The waiter may not be blocked yet when the lease is released: the
		// signal stays until it is taken, so the wait ends either way.
		released := time.Now()
		if held, err := f.e.ReleaseSingleton(f.ctx, "scheduler", "a"); err != nil || !held {
			t.Fatalf("release by the holder: %v %v", held, err)
		}
		select {
		case r := <-done:
			if r.err != nil || !r.ok {
				t.Fatalf("wait after release: %v %v", r.ok, r.err)
			}
			t.Logf("standby woke %v after the release", r.at.Sub(released))
		case <-time.After(5 * time.Second):
			t.Fatal("standby not woken by the release")
		}
		if ok, err := f.e.AcquireSingleton(f.ctx, "scheduler", "b", 10*time.Second); err != nil || !ok {
			t.Fatalf("standby could not take the released lease: %v %v", ok, err)
		}
		// Signals do not pile up: the release above left none behind.
		if ok, err := f.e.WaitSingleton(f.ctx, "scheduler", 20*time.Millisecond); err != nil || ok {
			t.Fatalf("second wait: %v %v; want a timeout", ok, err)
		}
	})
}
