package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds what makes drains work-conserving: lane slots (a lane's
// concurrency counted as running drains, not as leased keys), Next (a drain
// takes the lane's oldest ready key itself, in the slot it already holds),
// and the wake signal that tells the scheduler there is new work.

// acquireSlotsCmd takes lane slots: a slot is the right of one drain
// invocation to work the lane's keys, one after another, and a lane has as
// many as its concurrency. Slots that ran out (a drain that crashed) are
// dropped first.
//
// KEYS[1] -> <p>:slots:<lane>
// ARGV[1] -> now ms   ARGV[2] -> slot ttl ms   ARGV[3] -> lane concurrency
// ARGV[4..] -> slot ids wanted
//
// Returns how many slots were taken: the first that many ids of ARGV[4..].
var acquireSlotsCmd = newScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local dl = tostring(tonumber(ARGV[1]) + tonumber(ARGV[2]))
local n = 0
for i = 4, #ARGV do
  if n >= free then break end
  redis.call('ZADD', KEYS[1], dl, ARGV[i])
  n = n + 1
end
return n
`)

// acquireSlotsArgs fills acquireSlotsCmd's KEYS and ARGV.
type acquireSlotsArgs struct {
	slots       string
	now, ttl    int64
	concurrency int
	ids         []string
}

func (a acquireSlotsArgs) keys() []string {
	return []string{
		a.slots, // KEYS[1]
	}
}

func (a acquireSlotsArgs) argv() []any {
	argv := make([]any, 0, 3+len(a.ids))
	argv = append(argv,
		a.now,         // ARGV[1]
		a.ttl,         // ARGV[2]
		a.concurrency, // ARGV[3]
	)
	for _, id := range a.ids {
		argv = append(argv, id) // ARGV[4..]
	}
	return argv
}

// AcquireSlots takes up to len(ids) slots of lane, as many as keep the lane
// at most concurrency live slots, each valid for ClaimTTL (the time its
// drain has to start). It returns how many it took: ids[:n] are held.
func (e *Engine) AcquireSlots(ctx context.Context, lane string, concurrency int, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	n, err := e.run(ctx, acquireSlotsCmd, acquireSlotsArgs{slots: e.ks.slots(lane), now: e.nowMs(),
		ttl: e.opt.ClaimTTL.Milliseconds(), concurrency: concurrency, ids: ids}).Int()
	if err != nil {
		return 0, fmt.Errorf("queue: acquire slots of %s: %w", lane, err)
	}
	return n, nil
}

// renewSlotCmd renews a live slot.
//
// KEYS[1] -> <p>:slots:<lane>
// ARGV[1] -> slot id   ARGV[2] -> now ms   ARGV[3] -> slot ttl ms
//
// Returns 1 if renewed, 0 if the slot ran out or was released.
var renewSlotCmd = newScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tostring(tonumber(ARGV[2]) + tonumber(ARGV[3])), ARGV[1])
return 1
`)

// renewSlotArgs fills renewSlotCmd's KEYS and ARGV.
type renewSlotArgs struct {
	slots, id string
	now, ttl  int64
}

func (a renewSlotArgs) keys() []string {
	return []string{
		a.slots, // KEYS[1]
	}
}

func (a renewSlotArgs) argv() []any {
	return []any{
		a.id,  // ARGV[1]
		a.now, // ARGV[2]
		a.ttl, // ARGV[3]
	}
}

// RenewSlot renews a held slot for LeaseTTL. It reports false when the slot
// ran out or was released: its drain should take no further key.
func (e *Engine) RenewSlot(ctx context.Context, lane, id string) (bool, error) {
	n, err := e.run(ctx, renewSlotCmd, renewSlotArgs{slots: e.ks.slots(lane), id: id, now: e.nowMs(), ttl: e.opt.LeaseTTL.Milliseconds()}).Int()
	if err != nil {
		return false, fmt.Errorf("queue: renew slot: %w", err)
	}
	return n == 1, nil
}

// ReleaseSlot gives a slot back.
func (e *Engine) ReleaseSlot(ctx context.Context, lane, id string) error {
	if err := e.rdb.ZRem(ctx, e.ks.slots(lane), id).Err(); err != nil {
		return fmt.Errorf("queue: release slot: %w", err)
	}
	return nil
}

// LiveSlots counts the live slots of each lane, in one round trip.
func (e *Engine) LiveSlots(ctx context.Context, lanes ...string) (map[string]int64, error) {
	now := "(" + strconv.FormatInt(e.nowMs(), 10)
	cmds := make([]*redis.IntCmd, len(lanes))
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, lane := range lanes {
			cmds[i] = p.ZCount(ctx, e.ks.slots(lane), now, "+inf")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("queue: count slots: %w", err)
	}
	out := make(map[string]int64, len(lanes))
	for i, lane := range lanes {
		out[lane] = cmds[i].Val()
	}
	return out, nil
}

// Wake tells a waiting scheduler that there is new work (WaitWake returns).
// The signal is one list element at most, so wakes with nobody waiting do
// not pile up.
func (e *Engine) Wake(ctx context.Context) error {
	_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, e.ks.wake(), "1")
		p.LTrim(ctx, e.ks.wake(), 0, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: wake: %w", err)
	}
	return nil
}

// WaitWake blocks until Wake is called or d passes (at least 1 ms), and
// reports whether it was woken.
func (e *Engine) WaitWake(ctx context.Context, d time.Duration) (bool, error) {
	secs := strconv.FormatFloat(max(d, time.Millisecond).Seconds(), 'f', 3, 64)
	err := e.rdb.Do(ctx, "BLPOP", e.ks.wake(), secs).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("queue: wait for wake: %w", err)
}

// shardHeads caches, for one lane, the ready-at of each shard's oldest key
// (math.MaxInt64 when the shard has none), so a drain looking for its next
// key asks one shard instead of all of them. Claims only move a shard's
// head later, and the script that claims reports the new head, so a stale
// entry can only send a drain to a shard whose head is no longer the
// oldest; entries are re-read every headsTTL and whenever they show
// nothing ready.
type shardHeads struct {
	mu   sync.Mutex
	read time.Time // wall clock of the last full read
	next []int64
}

// headsTTL bounds how stale the cached shard heads may be.
const headsTTL = 100 * time.Millisecond

// Next leases the oldest ready key of lane for invocation (bound at once,
// as if activated), for a drain that is done with its key and still holds
// its lane slot. It reports false when no key of the lane is ready now, and
// while an operator has paused the lane (PauseLane).
func (e *Engine) Next(ctx context.Context, lane, invocation string) (Lease, bool, error) {
	if !e.laneKnown(lane) {
		return Lease{}, false, fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	if invocation == "" {
		return Lease{}, false, errors.New("queue: next: empty invocation id")
	}
	v, _ := e.heads.LoadOrStore(lane, &shardHeads{})
	h := v.(*shardHeads)
	refreshed := false
	for range 2 * e.opt.Shards {
		now := e.nowMs()
		h.mu.Lock()
		if h.next == nil || time.Since(h.read) > headsTTL {
			h.mu.Unlock()
			if err := e.readHeads(ctx, lane, h); err != nil {
				return Lease{}, false, err
			}
			refreshed = true
			continue
		}
		s := -1
		for i, at := range h.next {
			if at <= now && (s < 0 || at < h.next[s]) {
				s = i
			}
		}
		h.mu.Unlock()
		if s < 0 {
			if refreshed {
				return Lease{}, false, nil
			}
			if err := e.readHeads(ctx, lane, h); err != nil {
				return Lease{}, false, err
			}
			refreshed = true
			continue
		}
		l, ok, next, err := e.claimNext(ctx, lane, s, invocation, now)
		if errors.Is(err, errLanePaused) {
			return Lease{}, false, nil
		}
		if err != nil {
			return Lease{}, false, err
		}
		h.mu.Lock()
		h.next[s] = next
		h.mu.Unlock()
		if ok {
			return l, true, nil
		}
	}
	return Lease{}, false, nil
}

// readHeads reads the oldest ready-at of every shard of lane into h.
func (e *Engine) readHeads(ctx context.Context, lane string, h *shardHeads) error {
	cmds, err := perShard(ctx, e, "read ready heads", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, e.ks.ready(s, lane), 0, 0)
	})
	if err != nil {
		return err
	}
	next := make([]int64, len(cmds))
	for s, c := range cmds {
		next[s] = math.MaxInt64
		if z := c.Val(); len(z) == 1 {
			next[s] = int64(z[0].Score)
		}
	}
	h.mu.Lock()
	h.next, h.read = next, time.Now()
	h.mu.Unlock()
	return nil
}

// errLanePaused: claimNext found the lane paused by an operator.
var errLanePaused = errors.New("queue: lane paused")

// claimNextCmd leases the oldest key of one shard and lane that is ready at
// now, bound at once to the calling invocation: a work-conserving drain
// takes its next key with it. The key is chosen inside the script, so two
// drains asking at once get different keys.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> lease   KEYS[3] -> seq
// KEYS[4] -> lanepaused
// ARGV[1] -> now ms   ARGV[2] -> lease ttl ms   ARGV[3] -> invocation id
// ARGV[4] -> lane
//
// Returns {key, token, next} where key is "" when nothing is ready, and next
// is the ready-at of the shard's next ready key after the one taken (-1 when
// it has none ready at now); {"", "0", "-1", "paused"} while an operator has
// paused the lane.
var claimNextCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local dl = now + tonumber(ARGV[2])
local key, tok, nxt = '', '0', '-1'
if redis.call('HEXISTS', KEYS[4], ARGV[4]) == 1 then return {key, tok, nxt, 'paused'} end
for _ = 1, 8 do
  local z = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 2, 'WITHSCORES')
  if #z == 0 then break end
  local k = z[1]
  if #z == 4 then nxt = z[4] else nxt = '-1' end
  local t, ldl = lease_of(KEYS[2], k)
  if t and ldl > now then
    redis.call('ZADD', KEYS[1], ldl, k) -- a live lease: its deadline is its score
  else
    tok = tostring(redis.call('INCR', KEYS[3]))
    redis.call('HSET', KEYS[2], k, tok .. '|' .. dl .. '|' .. ARGV[3])
    redis.call('ZADD', KEYS[1], dl, k)
    key = k
    break
  end
end
return {key, tok, nxt}
`)

// claimNextArgs fills claimNextCmd's KEYS and ARGV.
type claimNextArgs struct {
	ready, lease, seq, lanePaused string
	now, ttl                      int64
	invocation, lane              string
}

func (a claimNextArgs) keys() []string {
	return []string{
		a.ready,      // KEYS[1]
		a.lease,      // KEYS[2]
		a.seq,        // KEYS[3]
		a.lanePaused, // KEYS[4]
	}
}

func (a claimNextArgs) argv() []any {
	return []any{
		a.now,        // ARGV[1]
		a.ttl,        // ARGV[2]
		a.invocation, // ARGV[3]
		a.lane,       // ARGV[4]
	}
}

// claimNext runs claimNextCmd on shard s. next is the shard's new head
// ready-at (math.MaxInt64 when empty). A paused lane gives errLanePaused.
func (e *Engine) claimNext(ctx context.Context, lane string, s int, invocation string, now int64) (Lease, bool, int64, error) {
	vals, err := e.run(ctx, claimNextCmd, claimNextArgs{
		ready: e.ks.ready(s, lane), lease: e.ks.lease(s), seq: e.ks.seq(s), lanePaused: e.ks.lanePaused(s),
		now: now, ttl: e.opt.LeaseTTL.Milliseconds(), invocation: invocation, lane: lane,
	}).StringSlice()
	if err != nil {
		return Lease{}, false, 0, fmt.Errorf("queue: claim next: %w", err)
	}
	if len(vals) == 4 && vals[3] == "paused" {
		return Lease{}, false, 0, errLanePaused
	}
	if len(vals) != 3 {
		return Lease{}, false, 0, fmt.Errorf("queue: claim next: unexpected reply %q", vals)
	}
	next := int64(math.MaxInt64)
	if f, err := strconv.ParseFloat(vals[2], 64); err == nil && f >= 0 {
		next = int64(f)
	}
	if vals[0] == "" {
		return Lease{}, false, next, nil
	}
	tok, err := strconv.ParseInt(vals[1], 10, 64)
	if err != nil {
		return Lease{}, false, 0, fmt.Errorf("queue: claim next: bad token: %w", err)
	}
	l := Lease{Key: vals[0], Lane: lane, Token: tok, Invocation: invocation,
		Deadline: time.UnixMilli(now + e.opt.LeaseTTL.Milliseconds())}
	return l, true, next, nil
}
