package queue

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// eachRedis runs fn against the real standalone and cluster servers and
// against the embedded server `hookline dev` uses, which runs the same
// scripts.
func eachRedis(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient)) {
	redistest.Each(t, fn)
	t.Run("embedded", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		fn(t, rdb)
	})
}

// indexed returns the received-at the oldest-item index holds for key, or
// zero when the key is not in it.
func (f *fixture) indexed(lane, key string) time.Time {
	f.t.Helper()
	s, err := f.rdb.ZScore(f.ctx, f.e.ks.oldest(f.e.shard(key), lane), key).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return time.UnixMilli(int64(s))
}

// TestOldestItemOverEveryState: the lane's oldest item is found whatever
// state its key is in (leased, throttled, retrying, parked, paused), not
// only among ready keys, and the load counts keys by state and items.
func TestOldestItemOverEveryState(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := setup(t, rdb)
		at := map[string]time.Time{}
		add := func(key string, ids ...string) {
			at[key] = f.clk.Now()
			f.enqueue("quick", key, ids...)
			f.clk.Advance(time.Second)
		}
		add("parked:x", "p1", "p2")
		add("leased:x", "l1")
		add("throttled:x", "t1", "t2", "t3")
		add("retrying:x", "r1")
		add("paused:x", "s1")
		add("ready:x", "y1")
		add("other:x", "o1")

		// Work each key into its state, oldest first (Claim is oldest first).
		take := func(want string) *Lease {
			t.Helper()
			l := f.claimOne("quick", "inv-"+want)
			if l.Key != want {
				t.Fatalf("claimed %s, want %s", l.Key, want)
			}
			if _, err := f.e.Fetch(f.ctx, l, 10); err != nil {
				t.Fatal(err)
			}
			return l
		}
		if _, err := f.e.Fail(f.ctx, take("parked:x"), "p1", Failure{Reason: "HTTP 500", Permanent: true, Policy: Park}); err != nil {
			t.Fatal(err)
		}
		take("leased:x") // stays leased
		if _, err := f.e.Yield(f.ctx, take("throttled:x"), f.clk.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Fail(f.ctx, take("retrying:x"), "r1", Failure{Reason: "HTTP 503", MaxAttempts: 5}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Pause(f.ctx, "paused:x", Change{}); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(200 * time.Millisecond)

		// Only ready:x and other:x are ready; the oldest item is parked:x's
		// head.
		ld, err := f.e.LaneLoad(f.ctx, "quick")
		if err != nil {
			t.Fatal(err)
		}
		want := LaneLoad{Lane: "quick", KeysWithWork: 7, Ready: 2, Leased: 1, Delayed: 2, Retrying: 1, Paused: 1, Parked: 1,
			QueuedItems: 10, ItemsExact: true, OldestItem: at["parked:x"], OldestReady: at["ready:x"]}
		if ld != want {
			t.Fatalf("load\n got %+v\nwant %+v", ld, want)
		}
		if age := f.clk.Now().Sub(ld.OldestItem); age < 6*time.Second {
			t.Fatalf("oldest item age %v, want the parked key's (over 6s)", age)
		}

		// Resolve the keys oldest first: the oldest item moves on each time.
		if _, err := f.e.Skip(f.ctx, "parked:x", Change{Note: "poisoned"}); err != nil {
			t.Fatal(err)
		}
		// p2 was received with p1: the index keeps the key at that time.
		if got, _ := f.e.OldestItem(f.ctx, "quick"); !got.Equal(at["parked:x"]) {
			t.Fatalf("after skip: oldest %v, want p2's %v", got, at["parked:x"])
		}
		if _, err := f.e.Skip(f.ctx, "parked:x", Change{Note: "poisoned"}); err != nil {
			t.Fatal(err)
		}
		if f.indexed("quick", "parked:x") != (time.Time{}) {
			t.Fatal("an emptied key stayed in the index")
		}
		if got, _ := f.e.OldestItem(f.ctx, "quick"); !got.Equal(at["leased:x"]) {
			t.Fatalf("oldest %v, want the leased key's %v", got, at["leased:x"])
		}
		keys, err := f.e.OldestKeys(f.ctx, "quick", 3)
		if err != nil || len(keys) != 3 || keys[0].Key != "leased:x" || keys[1].Key != "throttled:x" || keys[2].Key != "retrying:x" {
			t.Fatalf("oldest keys %+v %v", keys, err)
		}
		if _, err := f.e.LaneLoad(f.ctx, "nope"); !errors.Is(err, ErrUnknownLane) {
			t.Fatalf("unknown lane: %v", err)
		}
	})
}

// TestOldestIndexFollowsTheHead: the index holds the head's received-at as
// the scripts move the head (read, dead letter, skip, redrive), never a
// later time than the head's, and forgets an emptied key.
func TestOldestIndexFollowsTheHead(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := setup(t, rdb)
		const key = "acme:head"
		at := make([]time.Time, 6)
		for i := range at {
			at[i] = f.clk.Now()
			f.enqueue("quick", key, string(rune('a'+i)))
			f.clk.Advance(time.Second)
		}
		check := func(when string, want time.Time) {
			t.Helper()
			if got := f.indexed("quick", key); !got.Equal(want) {
				t.Fatalf("%s: index %v, want %v", when, got, want)
			}
		}
		check("enqueued", at[0])
		l := f.claimOne("quick", "inv")
		if _, err := f.e.Step(f.ctx, l, Step{Fetch: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Step(f.ctx, l, Step{Ack: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		check("ack without a read (stale by one item, never later)", at[0])
		if _, err := f.e.Step(f.ctx, l, Step{Ack: []string{"b"}, Fetch: 2}); err != nil {
			t.Fatal(err)
		}
		check("ack with the next read", at[2])
		if _, err := f.e.Fail(f.ctx, l, "c", Failure{Reason: "bad", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		check("dead letter", at[3])
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Skip(f.ctx, key, Change{Note: "x"}); err != nil {
			t.Fatal(err)
		}
		check("skip", at[4])
		if rd, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); err != nil || len(rd.IDs) != 2 {
			t.Fatalf("redrive: %+v %v", rd, err)
		}
		check("redrive", at[2])

		// A key queued before the index existed enters it at its next read.
		if err := f.rdb.ZRem(f.ctx, f.e.ks.oldest(f.e.shard(key), "quick"), key).Err(); err != nil {
			t.Fatal(err)
		}
		l = f.claimOne("quick", "inv2")
		b, err := f.e.Step(f.ctx, l, Step{Fetch: 10})
		if err != nil || len(b.Items) != 4 {
			t.Fatalf("fetch: %v %v", b, err)
		}
		check("first read after losing the entry", at[2])
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, it.ID)
		}
		if b, err := f.e.Step(f.ctx, l, Step{Ack: ids, Fetch: 10, Release: true}); err != nil || !b.Released {
			t.Fatalf("ack all: %+v %v", b, err)
		}
		check("emptied", time.Time{})
		if ld, err := f.e.LaneLoad(f.ctx, "quick"); err != nil || ld.KeysWithWork != 0 || ld.QueuedItems != 0 || !ld.OldestItem.IsZero() {
			t.Fatalf("empty lane load %+v %v", ld, err)
		}
	})
}

// TestLaneLoadCountsBeyondTheCap: past MaxCountKeys keys, the items of the
// keys not read count one each and the count says it is not exact.
func TestLaneLoadCountsBeyondTheCap(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.Shards = 1 })
		var entries []Entry
		for i := range MaxCountKeys + 5 {
			entries = append(entries, Entry{Lane: "slow", Item: f.item("t"+strconv.Itoa(i)+":c", "x")})
		}
		entries = append(entries, Entry{Lane: "slow", Item: f.item("t0:c", "y")})
		if _, err := f.e.EnqueueBatch(f.ctx, entries); err != nil {
			t.Fatal(err)
		}
		ld, err := f.e.LaneLoad(f.ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		if ld.KeysWithWork != MaxCountKeys+5 || ld.ItemsExact || ld.QueuedItems != MaxCountKeys+6 {
			t.Fatalf("load %+v", ld)
		}
	})
}

// TestG9OldestIndexSafe: the index carries its shard's hash tag (so the
// scripts touch one slot) and, as queue data, has no TTL.
func TestG9OldestIndexSafe(t *testing.T) {
	ks := keyspace{prefix: "hl", shards: 16}
	if k := ks.oldest(7, "quick"); k != "hl:{07}:oldest:quick" {
		t.Fatalf("oldest index key %q", k)
	}
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.enqueue("quick", "acme:ttl", "a")
		k := f.e.ks.oldest(f.e.shard("acme:ttl"), "quick")
		if ttl := rdb.PTTL(f.ctx, k).Val(); ttl != -1 {
			t.Fatalf("%s has PTTL %v, want -1 (exists, no TTL)", k, ttl)
		}
	})
}
