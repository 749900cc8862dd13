package queue

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// enqueueAt enqueues items with ids and received-at times 1 ms apart from at.
func (f *fixture) enqueueAt(lane, key string, at time.Time, ids ...string) {
	f.t.Helper()
	for i, id := range ids {
		it := f.item(key, id)
		it.ReceivedAt = at.Add(time.Duration(i) * time.Millisecond)
		if _, err := f.e.Enqueue(f.ctx, lane, it); err != nil {
			f.t.Fatalf("enqueue %s/%s: %v", key, id, err)
		}
	}
}

// failHead claims key's lane, checks the head is id and fails it with f.
func (f *fixture) failHead(lane, id string, fl Failure) FailResult {
	f.t.Helper()
	l := f.claimOne(lane, "inv-"+id)
	if ids := f.fetchIDs(l, 1); !slices.Equal(ids, []string{id}) {
		f.t.Fatalf("head is %v, want %s", ids, id)
	}
	res, err := f.e.Fail(f.ctx, l, id, fl)
	if err != nil {
		f.t.Fatalf("fail %s: %v", id, err)
	}
	if res.Outcome == DeadLettered {
		if _, err := f.e.Yield(f.ctx, l, time.Time{}); err != nil {
			f.t.Fatalf("yield: %v", err)
		}
	}
	return res
}

func deadIDs(t *testing.T, f *fixture, key string) []string {
	t.Helper()
	dead, err := f.e.DeadItems(f.ctx, key, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(dead))
	for i, d := range dead {
		out[i] = d.Item.ID
	}
	return out
}

// TestRedriveRestoresArrivalOrder: a key's dead letters died out of arrival
// order (a skip of a retrying item, a redrive behind a retrying head, later
// failures). Redrive puts them back in arrival order, behind the head item
// that is being retried, with their attempt history; PlanRedrive reports the
// same order without changing anything.
func TestRedriveRestoresArrivalOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:order.paid"
		f.enqueueAt("quick", key, start.Add(-time.Minute), "000000", "000001", "000002", "000003", "000004", "000005")
		once := Failure{Reason: "503", MaxAttempts: 3}
		dead := Failure{Reason: "400", Permanent: true}

		// 000000 fails once, then an operator skips it.
		res := f.failHead("quick", "000000", once)
		if id, err := f.e.Skip(f.ctx, key, Change{By: "ann", Note: "poison"}); err != nil || id != "000000" {
			t.Fatalf("skip = %q %v", id, err)
		}
		// 000001 fails once: it is being retried when 000000 is redriven,
		// so 000000 goes in behind it.
		f.clk.Set(res.ReadyAt)
		res = f.failHead("quick", "000001", once)
		rd, err := f.e.Redrive(f.ctx, key, Selection{IDs: []string{"000000"}}, Change{By: "ann"})
		if err != nil || !slices.Equal(rd.IDs, []string{"000000"}) || rd.Behind != "000001" {
			t.Fatalf("redrive behind a retrying head = %+v %v", rd, err)
		}
		if info, _ := f.e.Inspect(f.ctx, key); info.Attempts != 1 || info.Head.ID != "000001" || !info.ReadyAt.Equal(res.ReadyAt) {
			t.Fatalf("the retrying head lost its attempts or its retry time: %+v", info)
		}
		// Later failures: 000001, 000000, 000002 and 000003 die; 000004 is
		// being retried.
		f.clk.Set(res.ReadyAt)
		f.failHead("quick", "000001", dead)
		f.failHead("quick", "000000", dead)
		f.failHead("quick", "000002", dead)
		f.failHead("quick", "000003", dead)
		res = f.failHead("quick", "000004", Failure{Reason: "503", MaxAttempts: 3, RetryAt: f.clk.Now().Add(time.Hour)})
		if got := deadIDs(t, f, key); !slices.Equal(got, []string{"000001", "000000", "000002", "000003"}) {
			t.Fatalf("dead letters in death order = %v", got)
		}
		want := []string{"000000", "000001", "000002", "000003"}
		plan, err := f.e.PlanRedrive(f.ctx, key, Selection{})
		if err != nil || !slices.Equal(plan.IDs, want) || plan.Behind != "000004" {
			t.Fatalf("plan = %+v %v", plan, err)
		}
		if got := deadIDs(t, f, key); len(got) != 4 {
			t.Fatalf("a plan changed the dead letters: %v", got)
		}
		rd, err = f.e.Redrive(f.ctx, key, Selection{}, Change{By: "ann", Note: "upstream fixed"})
		if err != nil || !slices.Equal(rd.IDs, want) || rd.Behind != "000004" {
			t.Fatalf("redrive = %+v %v", rd, err)
		}
		// The retrying item keeps its retry time: nothing is claimable
		// before it.
		f.claimNone("quick")
		f.clk.Set(res.ReadyAt)
		l := f.claimOne("quick", "inv-after")
		b, err := f.e.Fetch(f.ctx, l, 10)
		if err != nil {
			t.Fatal(err)
		}
		if ids := idsOf(b.Items); !slices.Equal(ids, []string{"000004", "000000", "000001", "000002", "000003", "000005"}) || b.Attempts != 1 {
			t.Fatalf("queue after redrive = %v (head attempts %d)", ids, b.Attempts)
		}
		prior := map[string]int{}
		for _, it := range b.Items {
			prior[it.ID] = it.PriorAttempts
		}
		// 000000: 1 attempt before the skip, 1 before it died again.
		if want := map[string]int{"000004": 0, "000000": 2, "000001": 2, "000002": 1, "000003": 1, "000005": 0}; fmt.Sprint(prior) != fmt.Sprint(want) {
			t.Fatalf("prior attempts = %v, want %v", prior, want)
		}
		if dk, _ := f.e.DeadKeys(f.ctx, 0); len(dk) != 0 {
			t.Fatalf("dead keys after a full redrive = %+v", dk)
		}
		audit, err := f.e.Audit(f.ctx, key, 0)
		if err != nil || len(audit) != 3 || audit[0].Action != "redrive" || audit[0].By != "ann" || audit[0].Note != "upstream fixed" ||
			!strings.Contains(audit[0].Detail, "4 item(s): 000000 000001 000002 000003, behind 000004") ||
			audit[2].Action != "skip" || audit[2].Note != "poison" || !strings.Contains(audit[2].Detail, "000000 after 1 attempt") {
			t.Fatalf("audit = %+v %v", audit, err)
		}
	})
}

// TestRedriveAtHeadResetsNothingItKeeps: with no retrying head the redriven
// items become the head, the key is ready at once, and a count takes the
// earliest arrivals.
func TestRedriveCountTakesEarliestArrivals(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:c"
		f.enqueueAt("slow", key, start.Add(-time.Minute), "a", "b", "c", "d")
		for _, id := range []string{"a", "b", "c"} {
			f.failHead("slow", id, Failure{Reason: "x", Permanent: true})
		}
		// d is queued and has not failed: redriven items go ahead of it.
		rd, err := f.e.Redrive(f.ctx, key, Selection{Count: 2}, Change{})
		if err != nil || !slices.Equal(rd.IDs, []string{"a", "b"}) || rd.Behind != "" {
			t.Fatalf("redrive count 2 = %+v %v", rd, err)
		}
		l := f.claimOne("slow", "inv")
		if ids := f.fetchIDs(l, 10); !slices.Equal(ids, []string{"a", "b", "d"}) {
			t.Fatalf("queue = %v", ids)
		}
		if got := deadIDs(t, f, key); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("dead letters left = %v", got)
		}
		if _, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); !errors.Is(err, ErrLeased) {
			t.Fatalf("redrive of a leased key = %v", err)
		}
	})
}

// TestRedriveInBatches: a redrive moves its items a batch at a time, the
// earliest arrivals first, never splitting items received in the same ms;
// the key is held until the last batch; a later batch (or a later redrive)
// goes in behind the items of an earlier one still queued, ahead of the
// items that arrived after them.
func TestRedriveInBatches(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.e.redriveBatch = 3
		key := "acme:batch"
		at := start.Add(-time.Hour)
		for i := range 10 {
			it := f.item(key, fmt.Sprintf("d%d", i))
			it.ReceivedAt = at.Add(time.Duration(i) * time.Millisecond)
			if i == 3 || i == 4 {
				it.ReceivedAt = at.Add(2 * time.Millisecond) // d2, d3, d4: one ms
			}
			if _, err := f.e.Enqueue(f.ctx, "quick", it); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			f.failHead("quick", fmt.Sprintf("d%d", i), Failure{Reason: "x", Permanent: true})
		}
		f.enqueue("quick", key, "q1", "q2")
		// One batch alone (as if the redrive stopped there): d0..d4, the key
		// held for a minute.
		rd, left, err := f.e.redrive(f.ctx, key, Selection{}, Change{}, false)
		if err != nil || !slices.Equal(rd.IDs, []string{"d0", "d1", "d2", "d3", "d4"}) || left != 5 {
			t.Fatalf("first batch = %+v left %d %v", rd, left, err)
		}
		f.claimNone("quick")
		if info, _ := f.e.Inspect(f.ctx, key); !info.ReadyAt.Equal(start.Add(redriveHold)) {
			t.Fatalf("held until %v", info.ReadyAt)
		}
		// The rest, two batches, behind d0..d4 and ahead of q1 q2.
		rd, err = f.e.Redrive(f.ctx, key, Selection{}, Change{By: "ann"})
		if err != nil || !slices.Equal(rd.IDs, []string{"d5", "d6", "d7", "d8", "d9"}) {
			t.Fatalf("redrive = %+v %v", rd, err)
		}
		l := f.claimOne("quick", "inv")
		want := []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "q1", "q2"}
		if ids := f.fetchIDs(l, 20); !slices.Equal(ids, want) {
			t.Fatalf("queue = %v, want %v", ids, want)
		}
		a, _ := f.e.Audit(f.ctx, key, 0)
		if len(a) != 3 || a[0].Detail != "2 item(s): d8 d9" || a[1].Detail != "3 item(s): d5 d6 d7, 2 more to come" ||
			a[2].Detail != "5 item(s): d0 d1 d2 d3 d4, 5 more to come" {
			t.Fatalf("audit = %+v", a)
		}
	})
}

// TestRedriveConvertsFirstFormatEnvelope: a dead letter holding an envelope
// of the first format comes back in the current format with its history.
func TestRedriveConvertsFirstFormatEnvelope(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:v1"
		s := f.e.shard(key)
		rec := "dead1 1763900000000 3 quick\nold\nhl1 m1\n1763899999000\nacme\nv1\n1\nx-a: b\n{}"
		if err := rdb.RPush(f.ctx, f.e.ks.dlq(s, key), rec).Err(); err != nil {
			t.Fatal(err)
		}
		rdb.ZAdd(f.ctx, f.e.ks.dlqIndex(s), redis.Z{Score: 1763900000000, Member: key})
		if rd, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); err != nil || !slices.Equal(rd.IDs, []string{"m1"}) {
			t.Fatalf("redrive = %+v %v", rd, err)
		}
		items, err := f.e.Items(f.ctx, key, 0, 5)
		if err != nil || len(items) != 1 || items[0].ID != "m1" || items[0].PriorAttempts != 3 || items[0].Header("x-a") != "b" || string(items[0].Body) != "{}" {
			t.Fatalf("items = %+v %v", items, err)
		}
		if env := rdb.LIndex(f.ctx, f.e.ks.queue(s, key), 0).Val(); env != "@m1 1763899999000 1 a3\nx-a: b\n{}" {
			t.Fatalf("envelope = %q", env)
		}
	})
}

// TestDeadLetterCapRetentionAndCounts: bury keeps the newest DeadLetterMax
// records of a key and drops those older than DeadLetterRetention; the
// per-lane counts follow bury, redrive and purge, and are rebuilt for
// dead letters from before the counters existed.
func TestDeadLetterCapRetentionAndCounts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, func(o *Options) { o.DeadLetterMax = 3; o.DeadLetterRetention = time.Hour })
		key := "acme:cap"
		f.enqueue("quick", key, "1", "2", "3", "4", "5")
		for _, id := range []string{"1", "2", "3", "4"} {
			f.failHead("quick", id, Failure{Reason: "x", Permanent: true})
		}
		if got := deadIDs(t, f, key); !slices.Equal(got, []string{"2", "3", "4"}) {
			t.Fatalf("capped dead letters = %v", got)
		}
		f.enqueue("slow", "acme:other", "o1")
		f.failHead("slow", "o1", Failure{Reason: "x", Permanent: true})
		counts, err := f.e.DeadLetterCounts(f.ctx)
		if err != nil || counts["quick"] != 3 || counts["slow"] != 1 {
			t.Fatalf("counts = %v %v", counts, err)
		}
		// Two hours on, the next death drops the ones older than an hour.
		f.clk.Advance(2 * time.Hour)
		f.failHead("quick", "5", Failure{Reason: "x", Permanent: true})
		if got := deadIDs(t, f, key); !slices.Equal(got, []string{"5"}) {
			t.Fatalf("dead letters after retention = %v", got)
		}
		if counts, _ := f.e.DeadLetterCounts(f.ctx); counts["quick"] != 1 {
			t.Fatalf("counts after retention = %v", counts)
		}
		// Purge and redrive count out.
		if ids, err := f.e.PurgeDead(f.ctx, "acme:other", Selection{}, Change{By: "bob"}, false); err != nil || !slices.Equal(ids, []string{"o1"}) {
			t.Fatalf("purge = %v %v", ids, err)
		}
		if counts, _ := f.e.DeadLetterCounts(f.ctx); counts["slow"] != 0 || counts["quick"] != 1 {
			t.Fatalf("counts after purge = %v", counts)
		}
		// Dead letters from before the counters: the counts are rebuilt.
		for s := range f.e.opt.Shards {
			rdb.Del(f.ctx, f.e.ks.deadCount(s))
		}
		if counts, _ := f.e.DeadLetterCounts(f.ctx); counts["quick"] != 1 || counts["slow"] != 0 {
			t.Fatalf("recounted = %v", counts)
		}
		if _, err := f.e.Redrive(f.ctx, key, Selection{}, Change{}); err != nil {
			t.Fatal(err)
		}
		if counts, _ := f.e.DeadLetterCounts(f.ctx); counts["quick"] != 0 {
			t.Fatalf("counts after redrive = %v", counts)
		}
	})
}

// TestPurgeDeadSelection: purge deletes the selected dead letters only, a
// dry run deletes nothing, and the change is audited.
func TestPurgeDeadSelection(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := "acme:p"
		f.enqueue("quick", key, "1", "2", "3")
		for _, id := range []string{"1", "2", "3"} {
			f.failHead("quick", id, Failure{Reason: "x", Permanent: true})
		}
		if ids, err := f.e.PurgeDead(f.ctx, key, Selection{IDs: []string{"2", "9"}}, Change{}, true); err != nil || !slices.Equal(ids, []string{"2"}) {
			t.Fatalf("dry purge = %v %v", ids, err)
		}
		if ids, err := f.e.PurgeDead(f.ctx, key, Selection{IDs: []string{"2"}}, Change{By: "bob", Note: "dup"}, false); err != nil || !slices.Equal(ids, []string{"2"}) {
			t.Fatalf("purge = %v %v", ids, err)
		}
		if got := deadIDs(t, f, key); !slices.Equal(got, []string{"1", "3"}) {
			t.Fatalf("left = %v", got)
		}
		if a, _ := f.e.Audit(f.ctx, key, 1); len(a) != 1 || a[0].Action != "purge" || a[0].By != "bob" || a[0].Detail != "1 item(s): 2" {
			t.Fatalf("audit = %+v", a)
		}
		if ids, _ := f.e.PurgeDead(f.ctx, key, Selection{}, Change{}, false); len(ids) != 2 {
			t.Fatalf("purge all = %v", ids)
		}
		if dk, _ := f.e.DeadKeys(f.ctx, 0); len(dk) != 0 {
			t.Fatalf("dead keys = %+v", dk)
		}
	})
}

// TestLanePause: a paused lane takes webhooks but Claim and Next lease
// none of its keys; other lanes go on; resume lets it go on.
func TestLanePause(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		if err := f.e.PauseLane(f.ctx, "quick", Change{By: "ann", Note: "upstream down"}); err != nil {
			t.Fatal(err)
		}
		if err := f.e.PauseLane(f.ctx, "nope", Change{}); !errors.Is(err, ErrUnknownLane) {
			t.Fatalf("pause of an unknown lane = %v", err)
		}
		f.enqueue("quick", "acme:q", "q1")
		f.enqueue("slow", "acme:s", "s1")
		f.claimNone("quick")
		if _, ok, err := f.e.Next(f.ctx, "quick", "inv"); err != nil || ok {
			t.Fatalf("Next on a paused lane = %v %v", ok, err)
		}
		if l := f.claimOne("slow", "inv"); l.Key != "acme:s" {
			t.Fatal(l.Key)
		}
		lp, err := f.e.PausedLanes(f.ctx)
		if err != nil || len(lp) != 1 || lp[0].Lane != "quick" || lp[0].By != "ann" || lp[0].Note != "upstream down" ||
			lp[0].Shards != f.e.opt.Shards || !lp[0].Since.Equal(start) {
			t.Fatalf("paused lanes = %+v %v", lp, err)
		}
		if info, _ := f.e.Inspect(f.ctx, "acme:q"); !info.LanePaused || info.State != StateReady {
			t.Fatalf("inspect in a paused lane = %+v", info)
		}
		if was, err := f.e.ResumeLane(f.ctx, "quick", Change{}); err != nil || !was {
			t.Fatalf("resume lane = %v %v", was, err)
		}
		if _, ok, err := f.e.Next(f.ctx, "quick", "inv-2"); err != nil || !ok {
			t.Fatalf("Next after resume = %v %v", ok, err)
		}
		if lp, _ := f.e.PausedLanes(f.ctx); len(lp) != 0 {
			t.Fatalf("paused lanes after resume = %+v", lp)
		}
	})
}

// TestSurveyStates: every key is counted once per lane in its state, parked
// keys apart from paused ones, with the lane's items and oldest item age
// over keys in every state.
func TestSurveyStates(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		// Keys become ready one second apart, in the order they are worked
		// below; their items arrived earlier.
		for i, k := range []string{"a:parked", "a:leased", "a:retrying", "a:delayed", "a:paused", "a:ready"} {
			f.clk.Set(start.Add(time.Duration(i-10) * time.Second))
			n := 1
			if k == "a:parked" {
				n = 3
			}
			f.enqueueAt("quick", k, start.Add(time.Duration(-30+i)*time.Second), []string{"1", "2", "3"}[:n]...)
		}
		f.clk.Set(start)
		f.failHead("quick", "1", Failure{Reason: "ledger closed", Permanent: true, Policy: Park}) // a:parked, the oldest
		if l := f.claimOne("quick", "holder"); l.Key != "a:leased" {
			t.Fatalf("claimed %s", l.Key)
		}
		f.failHead("quick", "1", Failure{Reason: "503", MaxAttempts: 5}) // a:retrying
		l := f.claimOne("quick", "y")
		if l.Key != "a:delayed" {
			t.Fatalf("claimed %s", l.Key)
		}
		if _, err := f.e.Yield(f.ctx, l, start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Pause(f.ctx, "a:paused", Change{By: "ann", Note: "hold"}); err != nil {
			t.Fatal(err)
		}
		f.enqueue("slow", "b:ready", "1")
		if _, err := f.e.Pause(f.ctx, "b:idle", Change{}); err != nil {
			t.Fatal(err)
		}
		sv, err := f.e.Survey(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		q := sv.Lanes[0]
		if q.Lane != "quick" || q.Items != 8 || q.Ready != 1 || q.Leased != 1 || q.Retrying != 1 || q.Delayed != 1 || q.Paused != 1 || q.Parked != 1 ||
			q.OldestAge != 30*time.Second || q.Dead != 0 || q.Pause != nil {
			t.Fatalf("quick = %+v", q)
		}
		if s := sv.Lanes[1]; s.Lane != "slow" || s.Items != 1 || s.Ready != 1 || s.Paused != 0 {
			t.Fatalf("slow = %+v", s)
		}
		states := map[string]string{}
		for _, k := range sv.Keys {
			states[k.Key] = k.State
		}
		want := map[string]string{"a:leased": "leased", "a:retrying": "retrying", "a:parked": "parked", "a:paused": "paused",
			"a:delayed": "delayed", "a:ready": "ready", "b:ready": "ready", "b:idle": "paused"}
		if fmt.Sprint(states) != fmt.Sprint(want) {
			t.Fatalf("states = %v\nwant %v", states, want)
		}
		pk, err := f.e.PausedKeys(f.ctx)
		if err != nil || len(pk) != 3 || pk[0].Key != "a:parked" || !pk[0].Parked || pk[0].LastError != "ledger closed" || pk[0].Depth != 3 ||
			pk[1].Key != "a:paused" || pk[1].Parked || pk[1].By != "ann" || pk[1].Note != "hold" || pk[2].Key != "b:idle" {
			t.Fatalf("paused keys = %+v %v", pk, err)
		}
		info, err := f.e.Inspect(f.ctx, "a:parked")
		if err != nil || info.State != StateParked || !info.Parked || !info.Paused || info.Head.ID != "1" || !info.PausedAt.Equal(start) {
			t.Fatalf("inspect parked = %+v %v", info, err)
		}
		if info, _ := f.e.Inspect(f.ctx, "a:retrying"); info.State != StateRetrying || info.ReadyAt.Before(start) || info.Attempts != 1 {
			t.Fatalf("inspect retrying = %+v", info)
		}
		if info, _ := f.e.Inspect(f.ctx, "z:none"); info.Exists() {
			t.Fatalf("an unknown key exists: %+v", info)
		}
		keys, err := f.e.TenantKeys(f.ctx, "a")
		if err != nil || len(keys) != 6 || keys[0] != "a:delayed" {
			t.Fatalf("tenant keys = %v %v", keys, err)
		}
	})
}

// TestAuditBounded: a key keeps its last AuditKeep changes, newest first.
func TestAuditBounded(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		for i := range AuditKeep + 5 {
			f.clk.Advance(time.Second)
			if _, err := f.e.Pause(f.ctx, "acme:a", Change{By: "ann\tx", Note: fmt.Sprintf("n%d\nline", i)}); err != nil {
				t.Fatal(err)
			}
		}
		a, err := f.e.Audit(f.ctx, "acme:a", 0)
		if err != nil || len(a) != AuditKeep || a[0].Note != fmt.Sprintf("n%d line", AuditKeep+4) || a[0].By != "ann x" ||
			a[0].Detail != "already paused" || !a[0].At.Equal(f.clk.Now()) {
			t.Fatalf("audit = %d records, first %+v, %v", len(a), a[0], err)
		}
		if _, err := f.e.Resume(f.ctx, "acme:a", Change{}); err != nil {
			t.Fatal(err)
		}
		if a, _ := f.e.Audit(f.ctx, "acme:a", 1); a[0].Action != "resume" || a[0].By != "unknown" || a[0].Detail != "was paused, no work queued" {
			t.Fatalf("resume audit = %+v", a)
		}
	})
}

// TestHasData: an engine under a prefix nothing was written to finds no
// data; one that enqueued does.
func TestHasData(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		if ok, err := f.e.HasData(f.ctx); err != nil || ok {
			t.Fatalf("fresh prefix: %v %v", ok, err)
		}
		f.enqueue("slow", "a:b", "1")
		if ok, err := f.e.HasData(f.ctx); err != nil || !ok {
			t.Fatalf("after enqueue: %v %v", ok, err)
		}
	})
}
