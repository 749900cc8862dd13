package queue

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DeadItem is one dead-letter record.
type DeadItem struct {
	Item     *Item
	DeadAt   time.Time
	Attempts int
	Lane     string
	Reason   string
}

// A dead-letter record is "dead1 <dead-at ms> <attempts> <lane>\n<reason>\n"
// followed by the item's envelope.
func decodeDead(b []byte, key string) (*DeadItem, error) {
	head, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, errBadEnvelope
	}
	reason, env, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, errBadEnvelope
	}
	f := strings.Fields(string(head))
	if len(f) != 4 || f[0] != "dead1" {
		return nil, errBadEnvelope
	}
	at, err1 := strconv.ParseInt(f[1], 10, 64)
	attempts, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return nil, errBadEnvelope
	}
	it, err := decodeItem(env, key)
	if err != nil {
		return nil, err
	}
	return &DeadItem{Item: it, DeadAt: time.UnixMilli(at), Attempts: attempts, Lane: f[3], Reason: string(reason)}, nil
}

// perShard runs one pipeline with a command per shard and returns the
// commands, indexed by shard.
func perShard[C redis.Cmder](ctx context.Context, e *Engine, what string, add func(p redis.Pipeliner, s int) C) ([]C, error) {
	cmds := make([]C, e.opt.Shards)
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s := range cmds {
			cmds[s] = add(p, s)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: %s: %w", what, err)
	}
	return cmds, nil
}

// LaneStats counts a lane's keys over all shards.
type LaneStats struct {
	Lane string
	// Ready keys are claimable now.
	Ready int64
	// Leased keys have a live lease (a drain is working them, or one was
	// dispatched).
	Leased int64
	// Delayed keys wait for a retry time or a rate-limit slot.
	Delayed int64
	// OldestReady is the earliest ready-at among ready keys (zero if none).
	OldestReady time.Time
}

// Stats returns the counts of one lane.
func (e *Engine) Stats(ctx context.Context, lane string) (LaneStats, error) {
	now := strconv.FormatInt(e.nowMs(), 10)
	type shardCmds struct {
		ready, later *redis.IntCmd
		oldest       *redis.ZSliceCmd
	}
	cmds := make([]shardCmds, e.opt.Shards)
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s := range cmds {
			r := e.ks.ready(s, lane)
			cmds[s] = shardCmds{
				ready:  p.ZCount(ctx, r, "-inf", now),
				later:  p.ZCount(ctx, r, "("+now, "+inf"),
				oldest: p.ZRangeWithScores(ctx, r, 0, 0),
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return LaneStats{}, fmt.Errorf("queue: stats %s: %w", lane, err)
	}
	leased, err := e.LeasedKeys(ctx, lane)
	if err != nil {
		return LaneStats{}, err
	}
	st := LaneStats{Lane: lane, Leased: int64(len(leased))}
	var later int64
	for _, c := range cmds {
		st.Ready += c.ready.Val()
		later += c.later.Val()
		if z := c.oldest.Val(); len(z) == 1 && c.ready.Val() > 0 {
			at := time.UnixMilli(int64(z[0].Score))
			if st.OldestReady.IsZero() || at.Before(st.OldestReady) {
				st.OldestReady = at
			}
		}
	}
	st.Delayed = max(0, later-st.Leased)
	return st, nil
}

// LiveLeases counts the live leases of a lane's keys that have work.
func (e *Engine) LiveLeases(ctx context.Context, lane string) (int64, error) {
	ls, err := e.LeasedKeys(ctx, lane)
	return int64(len(ls)), err
}

// ReadyKeys returns up to n keys of lane that are claimable now, oldest first.
func (e *Engine) ReadyKeys(ctx context.Context, lane string, n int) ([]ReadyKey, error) {
	keys, _, err := e.readyCandidates(ctx, lane, e.nowMs(), n)
	return keys, err
}

// LeaseInfo describes one live lease.
type LeaseInfo struct {
	Key        string
	Lane       string
	Token      int64
	Invocation string
	Deadline   time.Time
}

// LeasedKeys returns the live leases of lane's keys that have work (a key
// leased with an empty queue is not in the lane's index), soonest deadline
// first. A leased key's score in the ready index is its lease deadline, so
// it is among the keys scored after now; the lease hash tells it from a
// delayed key.
func (e *Engine) LeasedKeys(ctx context.Context, lane string) ([]LeaseInfo, error) {
	now := e.nowMs()
	keys, err := perShard(ctx, e, "list leases", func(p redis.Pipeliner, s int) *redis.StringSliceCmd {
		return p.ZRangeByScore(ctx, e.ks.ready(s, lane), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now, 10), Max: "+inf"})
	})
	if err != nil {
		return nil, err
	}
	vals, err := perShard(ctx, e, "list leases", func(p redis.Pipeliner, s int) *redis.SliceCmd {
		if len(keys[s].Val()) == 0 {
			return redis.NewSliceCmd(ctx)
		}
		return p.HMGet(ctx, e.ks.lease(s), keys[s].Val()...)
	})
	if err != nil {
		return nil, err
	}
	var out []LeaseInfo
	for s := range keys {
		for i, k := range keys[s].Val() {
			raw, _ := vals[s].Val()[i].(string)
			tok, dl, inv, ok := parseLease(raw)
			if !ok || dl <= now {
				continue // delayed, or yielded between the two reads
			}
			out = append(out, LeaseInfo{Key: k, Lane: lane, Token: tok, Invocation: inv, Deadline: time.UnixMilli(dl)})
		}
	}
	slices.SortFunc(out, func(a, b LeaseInfo) int { return a.Deadline.Compare(b.Deadline) })
	return out, nil
}

func parseLease(v string) (token, deadline int64, inv string, ok bool) {
	f := strings.SplitN(v, "|", 3)
	if len(f) != 3 {
		return 0, 0, "", false
	}
	t, err1 := strconv.ParseInt(f[0], 10, 64)
	d, err2 := strconv.ParseInt(f[1], 10, 64)
	return t, d, f[2], err1 == nil && err2 == nil
}

// KeyInfo is what an operator sees of one key.
type KeyInfo struct {
	Key  string
	Lane string
	// Depth is the queue length; OldestAge the age of its head item.
	Depth     int64
	OldestAge time.Duration
	// Attempts and LastError describe the head item's failures.
	Attempts  int
	LastError string
	Paused    bool
	// Dead counts the key's dead letters.
	Dead int64
	// Lease is the live lease, if any.
	Lease *LeaseInfo
}

// Inspect returns the state of one key.
func (e *Engine) Inspect(ctx context.Context, key string) (KeyInfo, error) {
	if _, _, err := SplitKey(key); err != nil {
		return KeyInfo{}, err
	}
	s := e.ks.shardOf(key)
	var depth, dead *redis.IntCmd
	var head, lease *redis.StringCmd
	var meta *redis.MapStringStringCmd
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		depth = p.LLen(ctx, e.ks.queue(s, key))
		head = p.LIndex(ctx, e.ks.queue(s, key), 0)
		meta = p.HGetAll(ctx, e.ks.meta(s, key))
		dead = p.LLen(ctx, e.ks.dlq(s, key))
		lease = p.HGet(ctx, e.ks.lease(s), key)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return KeyInfo{}, fmt.Errorf("queue: inspect %s: %w", key, err)
	}
	now := e.opt.Clock.Now()
	m := meta.Val()
	info := KeyInfo{Key: key, Lane: m["lane"], Depth: depth.Val(), LastError: m["err"], Paused: m["paused"] == "1", Dead: dead.Val()}
	info.Attempts, _ = strconv.Atoi(m["attempts"])
	if h := head.Val(); h != "" {
		if it, err := decodeItem([]byte(h), key); err == nil {
			info.OldestAge = now.Sub(it.ReceivedAt)
		}
	}
	if tok, dl, inv, ok := parseLease(lease.Val()); ok && dl > now.UnixMilli() {
		info.Lease = &LeaseInfo{Key: key, Lane: info.Lane, Token: tok, Invocation: inv, Deadline: time.UnixMilli(dl)}
	}
	return info, nil
}

// KeyLoad is a key with work, for the deepest and oldest listings.
type KeyLoad struct {
	Key       string
	Lane      string
	Depth     int64
	OldestAge time.Duration
	Paused    bool
}

// Order selects how Top sorts keys.
type Order int

const (
	// ByDepth sorts deepest queue first.
	ByDepth Order = iota
	// ByAge sorts oldest head item first.
	ByAge
)

// topChunk bounds the keys read in one pipeline by Top.
const topChunk = 256

// Top returns the n deepest (ByDepth) or oldest (ByAge) keys with work over
// every lane in Options.Lanes, paused keys included. It reads every key with
// work, 256 at a time; it is an operator's tool, not a hot path.
func (e *Engine) Top(ctx context.Context, by Order, n int) ([]KeyLoad, error) {
	type ref struct {
		key, lane string
		shard     int
		paused    bool
	}
	var refs []ref
	for _, lane := range e.opt.Lanes {
		cmds, err := perShard(ctx, e, "top", func(p redis.Pipeliner, s int) *redis.StringSliceCmd {
			return p.ZRange(ctx, e.ks.ready(s, lane), 0, -1)
		})
		if err != nil {
			return nil, err
		}
		for s, c := range cmds {
			for _, k := range c.Val() {
				refs = append(refs, ref{key: k, lane: lane, shard: s})
			}
		}
	}
	paused, err := perShard(ctx, e, "top", func(p redis.Pipeliner, s int) *redis.StringSliceCmd {
		return p.ZRange(ctx, e.ks.paused(s), 0, -1)
	})
	if err != nil {
		return nil, err
	}
	for s, c := range paused {
		for _, k := range c.Val() {
			refs = append(refs, ref{key: k, shard: s, paused: true})
		}
	}
	now := e.opt.Clock.Now()
	var out []KeyLoad
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), topChunk)]
		refs = refs[len(chunk):]
		depths := make([]*redis.IntCmd, len(chunk))
		heads := make([]*redis.StringCmd, len(chunk))
		_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range chunk {
				depths[i] = p.LLen(ctx, e.ks.queue(r.shard, r.key))
				if by == ByAge {
					heads[i] = p.LIndex(ctx, e.ks.queue(r.shard, r.key), 0)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("queue: top: %w", err)
		}
		for i, r := range chunk {
			if depths[i].Val() == 0 {
				continue
			}
			kl := KeyLoad{Key: r.key, Lane: r.lane, Depth: depths[i].Val(), Paused: r.paused}
			if heads[i] != nil {
				if it, err := decodeItem([]byte(heads[i].Val()), r.key); err == nil {
					kl.OldestAge = now.Sub(it.ReceivedAt)
				}
			}
			out = append(out, kl)
		}
	}
	slices.SortFunc(out, func(a, b KeyLoad) int {
		if by == ByAge {
			return cmp.Or(cmp.Compare(b.OldestAge, a.OldestAge), strings.Compare(a.Key, b.Key))
		}
		return cmp.Or(cmp.Compare(b.Depth, a.Depth), strings.Compare(a.Key, b.Key))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// DeadKey is a key with dead letters.
type DeadKey struct {
	Key    string
	Count  int64
	LastAt time.Time
}

// DeadKeys returns up to n keys with dead letters, most recently dead first.
func (e *Engine) DeadKeys(ctx context.Context, n int) ([]DeadKey, error) {
	idx, err := perShard(ctx, e, "list dead keys", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRevRangeWithScores(ctx, e.ks.dlqIndex(s), 0, int64(n)-1)
	})
	if err != nil {
		return nil, err
	}
	var out []DeadKey
	var counts []*redis.IntCmd
	_, err = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s, c := range idx {
			for _, z := range c.Val() {
				k := z.Member.(string)
				out = append(out, DeadKey{Key: k, LastAt: time.UnixMilli(int64(z.Score))})
				counts = append(counts, p.LLen(ctx, e.ks.dlq(s, k)))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: list dead keys: %w", err)
	}
	for i := range out {
		out[i].Count = counts[i].Val()
	}
	slices.SortFunc(out, func(a, b DeadKey) int { return cmp.Or(b.LastAt.Compare(a.LastAt), strings.Compare(a.Key, b.Key)) })
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// DeadItems returns up to n of a key's dead letters from offset start,
// oldest first.
func (e *Engine) DeadItems(ctx context.Context, key string, start, n int) ([]*DeadItem, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	s := e.ks.shardOf(key)
	recs, err := e.rdb.LRange(ctx, e.ks.dlq(s, key), int64(start), int64(start+n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list dead items of %s: %w", key, err)
	}
	out := make([]*DeadItem, 0, len(recs))
	for _, r := range recs {
		d, err := decodeDead([]byte(r), key)
		if err != nil {
			return out, fmt.Errorf("queue: dead item of %s: %w", key, err)
		}
		out = append(out, d)
	}
	return out, nil
}
