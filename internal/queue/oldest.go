package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The oldest-item index: one sorted set per shard and lane,
//
//	<p>:{NN}:oldest:<lane>   ZSET   key -> received-at ms of its head item
//
// holding every key of the lane with queued items, whatever its state:
// ready, leased, delayed (retrying or rate-limited) and paused or parked.
// Its first entry per shard is the shard's oldest waiting item, so the age
// of a lane's oldest item is one ZRANGE per shard (O(log n)) instead of a
// read of every key.
//
// The scripts keep it, at no cost to most items:
//
//   - enqueue adds a key when its item finds the queue empty (the item is
//     then the head);
//   - a step that reads items (a drain's first step on a key, and the step
//     whose ack uses up the batch in hand and reads the next) sets the head's
//     received-at; a step that only acks does not;
//   - a dead letter (Fail at its last attempt, Skip) sets the new head's, a
//     redrive the redriven head's;
//   - a key whose queue empties leaves it.
//
// So between a drain's reads the entry may hold the received-at of an item
// already acked: at most one batch (drain.batch items) behind the head, and
// never later than the head's. The age it gives is therefore never
// smaller than the true age of the oldest item: an alarm on it errs late
// by at most the spread of one batch's receipt times, never early. A key
// queued before the index existed enters it at its drain's next read.

// LaneLoad describes the work of one lane, for metrics and status.
type LaneLoad struct {
	Lane string
	// KeysWithWork counts the lane's keys with queued items, in any state.
	KeysWithWork int64
	// Ready keys are claimable now; Leased keys have a live lease; Delayed
	// keys wait for a time (a retry's backoff, a rate-limit slot, a
	// released dispatch), of which Retrying wait for a retry of their head.
	Ready, Leased, Delayed, Retrying int64
	// Paused keys were paused by an operator; Parked keys were paused by
	// the park policy (their head used its attempts). The engine marks both
	// the same way; a paused key whose meta records its head's failure
	// counts as parked, so an operator's pause of a key between retries
	// counts as parked too.
	Paused, Parked int64
	// QueuedItems counts the items of the lane's keys. It reads the length
	// of every key with work, up to MaxCountKeys keys; beyond that the rest
	// count one item each and ItemsExact is false.
	QueuedItems int64
	ItemsExact  bool
	// OldestItem is the received-at of the oldest queued item over every
	// key with work (zero if none; see the index's bounded staleness above).
	OldestItem time.Time
	// OldestReady is the ready-at of the oldest ready key (zero if none):
	// how long ready work has waited for lane capacity.
	OldestReady time.Time
}

// MaxCountKeys bounds the keys whose length LaneLoad reads per lane.
const MaxCountKeys = 20_000

// lengthChunk bounds the commands of one pipeline of LaneLoad.
const lengthChunk = 1000

// LaneLoad reads the load of lane: its keys by state, its queued items and
// its oldest item. It costs a few round trips per lane and one command per
// leased, delayed or paused key and per key with work (up to
// MaxCountKeys); it is for metrics and operators, not for the hot path.
func (e *Engine) LaneLoad(ctx context.Context, lane string) (LaneLoad, error) {
	if !e.laneKnown(lane) {
		return LaneLoad{}, fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	now := e.nowMs()
	nowStr := strconv.FormatInt(now, 10)
	perShardKeys := max(1, MaxCountKeys/e.opt.Shards)
	type shardCmds struct {
		ready, work         *redis.IntCmd
		later, paused, keys *redis.StringSliceCmd
		oldestReady, oldest *redis.ZSliceCmd
	}
	cmds := make([]shardCmds, e.opt.Shards)
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s := range cmds {
			r, o := e.ks.ready(s, lane), e.ks.oldest(s, lane)
			cmds[s] = shardCmds{
				ready:       p.ZCount(ctx, r, "-inf", nowStr),
				later:       p.ZRangeByScore(ctx, r, &redis.ZRangeBy{Min: "(" + nowStr, Max: "+inf"}),
				oldestReady: p.ZRangeWithScores(ctx, r, 0, 0),
				oldest:      p.ZRangeWithScores(ctx, o, 0, 0),
				work:        p.ZCard(ctx, o),
				keys:        p.ZRange(ctx, o, 0, int64(perShardKeys-1)),
				paused:      p.ZRange(ctx, e.ks.paused(s), 0, -1),
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return LaneLoad{}, fmt.Errorf("queue: load of %s: %w", lane, err)
	}
	ld := LaneLoad{Lane: lane, ItemsExact: true}
	oldest, oldestReady := int64(math.MaxInt64), int64(math.MaxInt64)
	type ref struct {
		shard int
		key   string
	}
	var later, paused, work []ref
	for s, c := range cmds {
		ld.Ready += c.ready.Val()
		ld.KeysWithWork += c.work.Val()
		if z := c.oldestReady.Val(); len(z) == 1 && c.ready.Val() > 0 {
			oldestReady = min(oldestReady, int64(z[0].Score))
		}
		if z := c.oldest.Val(); len(z) == 1 {
			oldest = min(oldest, int64(z[0].Score))
		}
		for _, k := range c.later.Val() {
			later = append(later, ref{s, k})
		}
		for _, k := range c.paused.Val() {
			paused = append(paused, ref{s, k})
		}
		keys := c.keys.Val()
		for _, k := range keys {
			work = append(work, ref{s, k})
		}
		if extra := c.work.Val() - int64(len(keys)); extra > 0 {
			ld.QueuedItems += extra // at least one item each
			ld.ItemsExact = false
		}
	}
	if oldest != math.MaxInt64 {
		ld.OldestItem = time.UnixMilli(oldest)
	}
	if oldestReady != math.MaxInt64 {
		ld.OldestReady = time.UnixMilli(oldestReady)
	}

	// Keys scored after now are leased (a live lease) or delayed; a
	// delayed key whose head failed before is retrying. Paused keys are
	// those of this lane (their meta says so) with work.
	type keyCmds struct {
		lease *redis.StringCmd
		meta  *redis.SliceCmd
	}
	laterCmds := make([]keyCmds, len(later))
	pausedCmds := make([]*redis.SliceCmd, len(paused))
	lengths := make([]*redis.IntCmd, len(work))
	err = e.chunked(ctx, len(later)+len(paused)+len(work), func(p redis.Pipeliner, i int) {
		switch {
		case i < len(later):
			r := later[i]
			laterCmds[i] = keyCmds{lease: p.HGet(ctx, e.ks.lease(r.shard), r.key), meta: p.HMGet(ctx, e.ks.meta(r.shard, r.key), "attempts")}
		case i < len(later)+len(paused):
			r := paused[i-len(later)]
			pausedCmds[i-len(later)] = p.HMGet(ctx, e.ks.meta(r.shard, r.key), "lane", "paused", "err")
		default:
			r := work[i-len(later)-len(paused)]
			lengths[i-len(later)-len(paused)] = p.LLen(ctx, e.ks.queue(r.shard, r.key))
		}
	})
	if err != nil {
		return LaneLoad{}, fmt.Errorf("queue: load of %s: %w", lane, err)
	}
	for _, c := range laterCmds {
		if _, dl, _, ok := parseLease(c.lease.Val()); ok && dl > now {
			ld.Leased++
			continue
		}
		ld.Delayed++
		if v := c.meta.Val(); len(v) == 1 {
			if a, _ := v[0].(string); a != "" && a != "0" {
				ld.Retrying++
			}
		}
	}
	for _, c := range pausedCmds {
		v := c.Val()
		if len(v) != 3 {
			continue
		}
		l, _ := v[0].(string)
		p, _ := v[1].(string)
		if l != lane || p != "1" {
			continue // another lane's, no work left, or resumed meanwhile
		}
		if failed, _ := v[2].(string); failed != "" {
			ld.Parked++
		} else {
			ld.Paused++
		}
	}
	for _, c := range lengths {
		ld.QueuedItems += c.Val()
	}
	return ld, nil
}

// chunked runs n commands, added by add(p, i), in pipelines of lengthChunk.
func (e *Engine) chunked(ctx context.Context, n int, add func(p redis.Pipeliner, i int)) error {
	for from := 0; from < n; from += lengthChunk {
		to := min(n, from+lengthChunk)
		_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := from; i < to; i++ {
				add(p, i)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

// OldestItem returns the received-at of the oldest queued item of lane over
// every key with work, ready or not (zero when the lane has none), in one
// round trip: one ZRANGE of each shard's oldest-item index.
func (e *Engine) OldestItem(ctx context.Context, lane string) (time.Time, error) {
	keys, err := e.OldestKeys(ctx, lane, 1)
	if err != nil || len(keys) == 0 {
		return time.Time{}, err
	}
	return keys[0].ReceivedAt, nil
}

// KeyAge is a key with work and the received-at of its head item as the
// oldest-item index holds it.
type KeyAge struct {
	Key        string
	Lane       string
	ReceivedAt time.Time
}

// OldestKeys returns up to n keys of lane with the oldest items, oldest
// first, in one round trip (n entries of each shard's index).
func (e *Engine) OldestKeys(ctx context.Context, lane string, n int) ([]KeyAge, error) {
	if !e.laneKnown(lane) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	if n <= 0 {
		return nil, nil
	}
	cmds, err := perShard(ctx, e, "read oldest items", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, e.ks.oldest(s, lane), 0, int64(n-1))
	})
	if err != nil {
		return nil, err
	}
	var out []KeyAge
	for _, c := range cmds {
		for _, z := range c.Val() {
			out = append(out, KeyAge{Key: z.Member.(string), Lane: lane, ReceivedAt: time.UnixMilli(int64(z.Score))})
		}
	}
	slices.SortFunc(out, func(a, b KeyAge) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), strings.Compare(a.Key, b.Key))
	})
	return out[:min(n, len(out))], nil
}
