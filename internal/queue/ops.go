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

	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

// DeadItem is one dead-letter record.
type DeadItem struct {
	// Item is the dead item; Item.PriorAttempts counts the attempts it
	// used in earlier lives, before a redrive.
	Item   *Item
	DeadAt time.Time
	// Attempts is how often the item failed in the life that ended here.
	Attempts int
	// Lane is the lane the item died on.
	Lane   string
	Reason string
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
	leased, err := e.leasedKeys(ctx, lane)
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
	ls, err := e.leasedKeys(ctx, lane)
	return int64(len(ls)), err
}

// readyKeys returns up to n keys of lane that are claimable now, oldest first.
func (e *Engine) readyKeys(ctx context.Context, lane string, n int) ([]ReadyKey, error) {
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

// leasedKeys returns the live leases of lane's keys that have work (a key
// leased with an empty queue is not in the lane's index), soonest deadline
// first. A leased key's score in the ready index is its lease deadline, so
// it is among the keys scored after now; the lease hash tells it from a
// delayed key.
func (e *Engine) leasedKeys(ctx context.Context, lane string) ([]LeaseInfo, error) {
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

// Key states, as operators see them (KeyInfo.State, KeyLoad.State).
const (
	// StateReady: the key has work and may be claimed now.
	StateReady = "ready"
	// StateLeased: a drain holds (or was dispatched with) the key's lease.
	StateLeased = "leased"
	// StateDelayed: the key waits for a time (a rate-limit slot, a failed
	// dispatch's backoff) before it may be claimed.
	StateDelayed = "delayed"
	// StateRetrying: the key's head item failed and waits to be tried again.
	StateRetrying = "retrying"
	// StatePaused: an operator paused the key.
	StatePaused = "paused"
	// StateParked: the head item used its attempts under the park policy;
	// the key waits for an operator's resume.
	StateParked = "parked"
	// StateIdle: nothing is queued (the key may have dead letters).
	StateIdle = "idle"
)

// keyState names the state of a key.
func keyState(leased, paused, parked bool, depth int64, attempts int, readyAt, now int64) string {
	switch {
	case leased:
		return StateLeased
	case parked:
		return StateParked
	case paused:
		return StatePaused
	case depth == 0:
		return StateIdle
	case attempts > 0:
		return StateRetrying
	case readyAt > now:
		return StateDelayed
	}
	return StateReady
}

// KeyInfo is what an operator sees of one key.
type KeyInfo struct {
	Key  string
	Lane string
	// State is one of the State constants.
	State string
	// Depth is the queue length; OldestAge the age of its head item.
	Depth     int64
	OldestAge time.Duration
	// Head is the head item (its body included), nil when the queue is
	// empty.
	Head *Item
	// Attempts and LastError describe the head item's failures in its
	// current life (Head.PriorAttempts holds those before a redrive).
	Attempts  int
	LastError string
	// Paused is set for a paused or parked key; Parked for a parked one
	// (whose head item used its attempts under the park policy). PausedAt
	// is when it was paused or parked.
	Paused   bool
	Parked   bool
	PausedAt time.Time
	// ReadyAt is the key's time in its lane's ready index: when it may be
	// claimed (the next retry of a retrying key, the end of a delay), or
	// the lease deadline while leased. Zero when the key is not indexed.
	ReadyAt time.Time
	// LanePaused is set while an operator has paused the key's lane.
	LanePaused bool
	// Dead counts the key's dead letters.
	Dead int64
	// Lease is the live lease, if any.
	Lease *LeaseInfo
	// Audit holds the key's operator changes, newest first.
	Audit []AuditRecord
}

// Exists reports whether Redis holds anything of the key: an item, a dead
// letter, a pause, a lease or an audit record.
func (k KeyInfo) Exists() bool {
	return k.Depth > 0 || k.Dead > 0 || k.Paused || k.Lease != nil || len(k.Audit) > 0 || k.Lane != "" || k.Attempts > 0
}

// Inspect returns the state of one key. A key Redis holds nothing of is not
// an error: its KeyInfo reports !Exists().
func (e *Engine) Inspect(ctx context.Context, key string) (KeyInfo, error) {
	if _, _, err := SplitKey(key); err != nil {
		return KeyInfo{}, err
	}
	s := e.ks.shardOf(key)
	var depth, dead *redis.IntCmd
	var head, lease *redis.StringCmd
	var meta, lanes *redis.MapStringStringCmd
	var pausedAt *redis.FloatCmd
	var audit *redis.StringSliceCmd
	scores := make([]*redis.FloatCmd, len(e.opt.Lanes))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		depth = p.LLen(ctx, e.ks.queue(s, key))
		head = p.LIndex(ctx, e.ks.queue(s, key), 0)
		meta = p.HGetAll(ctx, e.ks.meta(s, key))
		dead = p.LLen(ctx, e.ks.dlq(s, key))
		lease = p.HGet(ctx, e.ks.lease(s), key)
		pausedAt = p.ZScore(ctx, e.ks.paused(s), key)
		audit = p.LRange(ctx, e.ks.audit(s, key), 0, -1)
		lanes = p.HGetAll(ctx, e.ks.lanePaused(s))
		for i, lane := range e.opt.Lanes {
			scores[i] = p.ZScore(ctx, e.ks.ready(s, lane), key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return KeyInfo{}, fmt.Errorf("queue: inspect %s: %w", key, err)
	}
	now := e.opt.Clock.Now()
	m := meta.Val()
	info := KeyInfo{Key: key, Lane: m["lane"], Depth: depth.Val(), LastError: m["err"],
		Paused: m["paused"] == "1", Parked: m["parked"] == "1", Dead: dead.Val(), Audit: parseAudits(audit.Val())}
	info.Attempts, _ = strconv.Atoi(m["attempts"])
	if pausedAt.Err() == nil {
		info.PausedAt = time.UnixMilli(int64(pausedAt.Val()))
	}
	if h := head.Val(); h != "" {
		if it, err := decodeItem([]byte(h), key); err == nil {
			info.Head = it
			info.OldestAge = now.Sub(it.ReceivedAt)
		}
	}
	for i, lane := range e.opt.Lanes {
		if scores[i].Err() == nil && (info.Lane == "" || info.Lane == lane) {
			info.ReadyAt = time.UnixMilli(int64(scores[i].Val()))
			info.Lane = lane
			break
		}
	}
	_, info.LanePaused = lanes.Val()[info.Lane]
	if tok, dl, inv, ok := parseLease(lease.Val()); ok && dl > now.UnixMilli() {
		info.Lease = &LeaseInfo{Key: key, Lane: info.Lane, Token: tok, Invocation: inv, Deadline: time.UnixMilli(dl)}
	}
	info.State = keyState(info.Lease != nil, info.Paused, info.Parked, info.Depth, info.Attempts, info.ReadyAt.UnixMilli(), now.UnixMilli())
	return info, nil
}

// Items returns up to n of a key's queued items from offset start, head
// first, bodies included.
func (e *Engine) Items(ctx context.Context, key string, start, n int) ([]*Item, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	envs, err := e.rdb.LRange(ctx, e.ks.queue(e.ks.shardOf(key), key), int64(start), int64(start+n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: list items of %s: %w", key, err)
	}
	out := make([]*Item, 0, len(envs))
	for _, env := range envs {
		it, err := decodeItem([]byte(env), key)
		if err != nil {
			return out, fmt.Errorf("queue: item of %s: %w", key, err)
		}
		out = append(out, it)
	}
	return out, nil
}

// KeyLoad is a key with work (or a paused key), for the deepest and oldest
// listings.
type KeyLoad struct {
	Key       string
	Lane      string
	Depth     int64
	OldestAge time.Duration
	// Paused is set for a paused or parked key.
	Paused bool
	// The fields below are filled in by Survey only.

	// State is one of the State constants.
	State string
	// Parked is set for a parked key.
	Parked bool
	// Attempts is how often the head item failed in its current life.
	Attempts int
	// ReadyAt is the key's ready-index time (zero when not indexed).
	ReadyAt time.Time
	// PausedAt is when a paused or parked key was paused.
	PausedAt time.Time
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

// DeadKeys returns up to n keys with dead letters (all when n <= 0), most
// recently dead first.
func (e *Engine) DeadKeys(ctx context.Context, n int) ([]DeadKey, error) {
	stop := int64(n) - 1
	if n <= 0 {
		stop = -1
	}
	idx, err := perShard(ctx, e, "list dead keys", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRevRangeWithScores(ctx, e.ks.dlqIndex(s), 0, stop)
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
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// DeadItems returns up to n of a key's dead letters from offset start
// (all from start when n <= 0), in the order they died (which is not their
// arrival order once a redriven item has died again; Redrive restores
// arrival order).
func (e *Engine) DeadItems(ctx context.Context, key string, start, n int) ([]*DeadItem, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	s := e.ks.shardOf(key)
	stop := int64(start + n - 1)
	if n <= 0 {
		stop = -1
	}
	recs, err := e.rdb.LRange(ctx, e.ks.dlq(s, key), int64(start), stop).Result()
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

// LaneStatus is what an operator sees of one lane: its keys by state, its
// items, the age of its oldest item and its dead letters.
type LaneStatus struct {
	Lane string
	// Items counts the queued items of the lane's keys (paused and parked
	// keys included).
	Items int64
	// Keys by state (see the State constants); a key is counted once.
	Ready, Leased, Delayed, Retrying, Paused, Parked int64
	// Slots counts the lane's live drain slots (its running drains).
	Slots int64
	// OldestAge is the age of the oldest item over every key of the lane
	// with work, whatever its state; zero when none.
	OldestAge time.Duration
	// Dead counts the dead letters of items that died on the lane.
	Dead int64
	// Pause is the operator's pause of the lane, nil when it runs.
	Pause *LanePause
}

// Survey is a reading of every key with work or paused, by lane.
type Survey struct {
	At    time.Time
	Lanes []LaneStatus
	// Keys are every key with work, and every paused or parked key, in
	// no particular order. A paused key with no work has no lane.
	Keys []KeyLoad
}

// surveyRef is a key found in an index.
type surveyRef struct {
	key, lane string
	shard     int
	score     int64
	paused    bool
}

// Survey reads every key with work (every lane's ready index) and every
// paused or parked key, classifies each by state, and counts them per lane
// with their items, the age of each lane's oldest item, its live slots and
// its dead letters. It reads every such key, 256 at a time: an operator's
// tool, O(keys with work), not a hot path.
func (e *Engine) Survey(ctx context.Context) (*Survey, error) {
	var refs []surveyRef
	seen := map[string]bool{}
	paused, err := perShard(ctx, e, "survey", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, e.ks.paused(s), 0, -1)
	})
	if err != nil {
		return nil, err
	}
	for s, c := range paused {
		for _, z := range c.Val() {
			k := z.Member.(string)
			seen[k] = true
			refs = append(refs, surveyRef{key: k, shard: s, score: int64(z.Score), paused: true})
		}
	}
	for _, lane := range e.opt.Lanes {
		cmds, err := perShard(ctx, e, "survey", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
			return p.ZRangeWithScores(ctx, e.ks.ready(s, lane), 0, -1)
		})
		if err != nil {
			return nil, err
		}
		for s, c := range cmds {
			for _, z := range c.Val() {
				k := z.Member.(string)
				if seen[k] {
					continue
				}
				seen[k] = true
				refs = append(refs, surveyRef{key: k, lane: lane, shard: s, score: int64(z.Score)})
			}
		}
	}
	now := e.opt.Clock.Now()
	sv := &Survey{At: now}
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), topChunk)]
		refs = refs[len(chunk):]
		loads, err := e.surveyChunk(ctx, chunk, now)
		if err != nil {
			return nil, err
		}
		sv.Keys = append(sv.Keys, loads...)
	}
	slots, err := e.LiveSlots(ctx, e.opt.Lanes...)
	if err != nil {
		return nil, err
	}
	dead, err := e.DeadLetterCounts(ctx)
	if err != nil {
		return nil, err
	}
	pauses, err := e.PausedLanes(ctx)
	if err != nil {
		return nil, err
	}
	byLane := map[string]*LaneStatus{}
	for _, lane := range e.opt.Lanes {
		sv.Lanes = append(sv.Lanes, LaneStatus{Lane: lane, Slots: slots[lane], Dead: dead[lane]})
	}
	for i := range sv.Lanes {
		byLane[sv.Lanes[i].Lane] = &sv.Lanes[i]
	}
	for _, p := range pauses {
		if ls := byLane[p.Lane]; ls != nil {
			ls.Pause = &p
		}
	}
	for _, k := range sv.Keys {
		ls := byLane[k.Lane]
		if ls == nil {
			continue
		}
		ls.Items += k.Depth
		if k.Depth > 0 {
			ls.OldestAge = max(ls.OldestAge, k.OldestAge)
		}
		switch k.State {
		case StateReady:
			ls.Ready++
		case StateLeased:
			ls.Leased++
		case StateDelayed:
			ls.Delayed++
		case StateRetrying:
			ls.Retrying++
		case StatePaused:
			ls.Paused++
		case StateParked:
			ls.Parked++
		}
	}
	return sv, nil
}

// surveyChunk reads and classifies one chunk of keys in one pipeline.
func (e *Engine) surveyChunk(ctx context.Context, chunk []surveyRef, now time.Time) ([]KeyLoad, error) {
	depths := make([]*redis.IntCmd, len(chunk))
	heads := make([]*redis.StringCmd, len(chunk))
	metas := make([]*redis.SliceCmd, len(chunk))
	leases := make([]*redis.StringCmd, len(chunk))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range chunk {
			depths[i] = p.LLen(ctx, e.ks.queue(r.shard, r.key))
			heads[i] = p.LIndex(ctx, e.ks.queue(r.shard, r.key), 0)
			metas[i] = p.HMGet(ctx, e.ks.meta(r.shard, r.key), "attempts", "parked", "lane")
			leases[i] = p.HGet(ctx, e.ks.lease(r.shard), r.key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: survey: %w", err)
	}
	out := make([]KeyLoad, 0, len(chunk))
	nowMs := now.UnixMilli()
	for i, r := range chunk {
		m := metas[i].Val()
		str := func(j int) string { v, _ := m[j].(string); return v }
		kl := KeyLoad{Key: r.key, Lane: cmp.Or(r.lane, str(2)), Depth: depths[i].Val(), Paused: r.paused, Parked: r.paused && str(1) == "1"}
		if !r.paused && kl.Depth == 0 {
			continue // emptied since the index was read
		}
		kl.Attempts, _ = strconv.Atoi(str(0))
		if r.paused {
			kl.PausedAt = time.UnixMilli(r.score)
		} else {
			kl.ReadyAt = time.UnixMilli(r.score)
		}
		if it, err := decodeItem([]byte(heads[i].Val()), r.key); err == nil {
			kl.OldestAge = now.Sub(it.ReceivedAt)
		}
		_, dl, _, ok := parseLease(leases[i].Val())
		leased := ok && dl > nowMs && !r.paused && kl.Depth > 0
		kl.State = keyState(leased, kl.Paused, kl.Parked, kl.Depth, kl.Attempts, r.score, nowMs)
		out = append(out, kl)
	}
	return out, nil
}

// PausedKey is a paused or parked key.
type PausedKey struct {
	Key  string
	Lane string
	// Parked is set when the key parked itself (its head item used its
	// attempts under the park policy), clear when an operator paused it.
	Parked bool
	Since  time.Time
	Depth  int64
	// Attempts and LastError describe the head item's failures.
	Attempts  int
	LastError string
	// By and Note come from the key's latest pause in its audit list
	// (empty for a parked key, or a pause older than the audit list).
	By, Note string
}

// PausedKeys returns every paused or parked key, longest paused first.
func (e *Engine) PausedKeys(ctx context.Context) ([]PausedKey, error) {
	idx, err := perShard(ctx, e, "list paused keys", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, e.ks.paused(s), 0, -1)
	})
	if err != nil {
		return nil, err
	}
	type ref struct {
		shard int
		z     redis.Z
	}
	var refs []ref
	for s, c := range idx {
		for _, z := range c.Val() {
			refs = append(refs, ref{s, z})
		}
	}
	var out []PausedKey
	for len(refs) > 0 {
		chunk := refs[:min(len(refs), topChunk)]
		refs = refs[len(chunk):]
		depths := make([]*redis.IntCmd, len(chunk))
		metas := make([]*redis.SliceCmd, len(chunk))
		audits := make([]*redis.StringSliceCmd, len(chunk))
		_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range chunk {
				k := r.z.Member.(string)
				depths[i] = p.LLen(ctx, e.ks.queue(r.shard, k))
				metas[i] = p.HMGet(ctx, e.ks.meta(r.shard, k), "lane", "parked", "attempts", "err")
				audits[i] = p.LRange(ctx, e.ks.audit(r.shard, k), 0, -1)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("queue: list paused keys: %w", err)
		}
		for i, r := range chunk {
			m := metas[i].Val()
			str := func(j int) string { v, _ := m[j].(string); return v }
			pk := PausedKey{Key: r.z.Member.(string), Lane: str(0), Parked: str(1) == "1", Since: time.UnixMilli(int64(r.z.Score)),
				Depth: depths[i].Val(), LastError: str(3)}
			pk.Attempts, _ = strconv.Atoi(str(2))
			for _, a := range parseAudits(audits[i].Val()) {
				if a.Action == "pause" {
					pk.By, pk.Note = a.By, a.Note
					break
				}
			}
			out = append(out, pk)
		}
	}
	slices.SortFunc(out, func(a, b PausedKey) int { return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Key, b.Key)) })
	return out, nil
}

// TenantKeys returns the keys of tenant that have work or are paused,
// sorted. It scans every lane's ready index and the paused index of every
// shard for the tenant's keys.
func (e *Engine) TenantKeys(ctx context.Context, tenant string) ([]string, error) {
	if err := webhook.ValidateTenant(tenant); err != nil {
		return nil, err
	}
	match := globEscape(tenant) + ":*"
	seen := map[string]bool{}
	for s := range e.opt.Shards {
		names := []string{e.ks.paused(s)}
		for _, lane := range e.opt.Lanes {
			names = append(names, e.ks.ready(s, lane))
		}
		for _, name := range names {
			it := e.rdb.ZScan(ctx, name, 0, match, 512).Iterator()
			for i := 0; it.Next(ctx); i++ {
				if i%2 == 0 { // members and scores alternate
					seen[it.Val()] = true
				}
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("queue: keys of tenant %s: %w", tenant, err)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// globEscape escapes the glob characters of a MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// HasData reports whether Redis holds anything under the engine's prefix:
// a shard's fencing counter, lease hash, paused, dead-letter or ready index,
// a lane pause, dead-letter counts, a lane's slots, the scheduler's
// singleton or the wake signal. A deployment that has ever claimed a key
// has its fencing counters, so false means a wrong prefix (or a deployment
// that has not taken a webhook yet).
func (e *Engine) HasData(ctx context.Context) (bool, error) {
	var names []string
	for s := range e.opt.Shards {
		names = append(names, e.ks.seq(s), e.ks.lease(s), e.ks.paused(s), e.ks.dlqIndex(s), e.ks.lanePaused(s), e.ks.deadCount(s))
		for _, lane := range e.opt.Lanes {
			names = append(names, e.ks.ready(s, lane))
		}
	}
	for _, lane := range e.opt.Lanes {
		names = append(names, e.ks.slots(lane))
	}
	names = append(names, e.ks.singleton("scheduler"), e.ks.wake())
	cmds := make([]*redis.IntCmd, len(names))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.Exists(ctx, n)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("queue: look for data: %w", err)
	}
	for _, c := range cmds {
		if c.Val() > 0 {
			return true, nil
		}
	}
	return false, nil
}
