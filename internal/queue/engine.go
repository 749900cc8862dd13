package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

// Errors returned by the engine.
var (
	// ErrLeaseLost means the caller's lease ran out or was taken over by a
	// newer token: nothing was changed and the caller must stop working the key.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrLeaseActive means another invocation already activated this lease
	// (a duplicate delivery of the same drain event).
	ErrLeaseActive = errors.New("queue: lease active in another invocation")
	// ErrHeadMismatch means the items named are not at the head of the queue;
	// nothing was changed.
	ErrHeadMismatch = errors.New("queue: head of queue is another item")
	// ErrLeased means an operator action was refused because a drain holds
	// the key's lease; try again when it has yielded, or pause the key first.
	ErrLeased = errors.New("queue: key is leased")
	// ErrInvalidKey reports a key that is not "<tenant>:<code>".
	ErrInvalidKey = errors.New("queue: invalid key")
	// ErrUnknownLane reports a lane not in Options.Lanes.
	ErrUnknownLane = errors.New("queue: unknown lane")
	// ErrUnknownKey means a key has nothing in Redis: no queued item, no
	// dead letter, no pause, no lease and no audit record.
	ErrUnknownKey = errors.New("queue: unknown key")

	// errLaneChanged: a key's lane changed between a read and a script.
	errLaneChanged = errors.New("queue: lane changed")
	// errIndexChanged: a shard's dead-letter index changed while counted.
	errIndexChanged = errors.New("queue: dead-letter index changed")
)

// codeErr maps the scripts' negative result codes to errors.
func codeErr(code int64) error {
	switch code {
	case -1:
		return ErrLeaseLost
	case -2:
		return ErrHeadMismatch
	case -3:
		return ErrLeaseActive
	case -4:
		return ErrLeased
	case -5:
		return errLaneChanged
	case -6:
		return errIndexChanged
	}
	if code < 0 {
		return fmt.Errorf("queue: unexpected script result %d", code)
	}
	return nil
}

// Defaults of Options, which New gives its zero fields. The configuration's
// defaults refer to them, so an engine built without one behaves as a
// default configuration.
const (
	PrefixDefault              = "hl"
	ShardsDefault              = 16
	LaneDefault                = "default"
	DedupWindowDefault         = 24 * time.Hour
	ClaimTTLDefault            = 60 * time.Second
	LeaseTTLDefault            = 30 * time.Second
	MaxBatchDefault            = 100
	BackoffBaseDefault         = time.Second
	BackoffCapDefault          = 15 * time.Minute
	DeadLetterMaxDefault       = 10_000
	DeadLetterRetentionDefault = 30 * 24 * time.Hour
)

// MaxShards is the most shards a deployment may have.
const MaxShards = 4096

// Options configure an Engine. The zero value of each field selects the
// default documented on it.
type Options struct {
	// Prefix starts every key name: 1..MaxPrefixLen of a-z, 0-9, '_' and
	// '-' (ValidPrefix). Default PrefixDefault.
	Prefix string
	// Shards is the number of shards keys are spread over, 1..MaxShards. It
	// is fixed for a deployment: changing it strands existing keys. Default
	// ShardsDefault.
	Shards int
	// Lanes are the lane names (ValidLane), used by the operator reads that
	// scan every lane. Default [LaneDefault].
	Lanes []string
	// DedupWindow is how long an item id is remembered per key to drop
	// duplicates. Default DedupWindowDefault; negative disables dedup.
	DedupWindow time.Duration
	// ClaimTTL is the lease a claim grants until its drain activates it; it
	// bounds how long a lost dispatch keeps a key. Default ClaimTTLDefault.
	ClaimTTL time.Duration
	// LeaseTTL is the lease Activate and Extend grant. Default
	// LeaseTTLDefault.
	LeaseTTL time.Duration
	// MaxBatch caps the items one Fetch returns. Default MaxBatchDefault.
	MaxBatch int
	// BackoffBase and BackoffCap shape retry delays: attempt n waits
	// min(cap, base*2^(n-1)), of which the upper half is jittered.
	// Defaults BackoffBaseDefault and BackoffCapDefault.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// DeadLetterMax caps the dead letters kept per key: when an item is
	// dead-lettered, the oldest records beyond it are dropped. Default
	// DeadLetterMaxDefault; negative keeps every one.
	DeadLetterMax int
	// DeadLetterRetention is how long a dead letter is kept: records dead
	// longer are dropped when their key buries another item. Default
	// DeadLetterRetentionDefault; negative keeps them forever.
	DeadLetterRetention time.Duration
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Jitter returns a number in [0,1) for backoff jitter. Default math/rand/v2.
	Jitter func() float64
}

func (o Options) withDefaults() Options {
	o.Prefix = cmp.Or(o.Prefix, PrefixDefault)
	o.Shards = cmp.Or(o.Shards, ShardsDefault)
	if len(o.Lanes) == 0 {
		o.Lanes = []string{LaneDefault}
	}
	o.DedupWindow = cmp.Or(o.DedupWindow, DedupWindowDefault)
	o.ClaimTTL = cmp.Or(o.ClaimTTL, ClaimTTLDefault)
	o.LeaseTTL = cmp.Or(o.LeaseTTL, LeaseTTLDefault)
	o.MaxBatch = cmp.Or(o.MaxBatch, MaxBatchDefault)
	o.BackoffBase = cmp.Or(o.BackoffBase, BackoffBaseDefault)
	o.BackoffCap = cmp.Or(o.BackoffCap, BackoffCapDefault)
	o.DeadLetterMax = cmp.Or(o.DeadLetterMax, DeadLetterMaxDefault)
	o.DeadLetterRetention = cmp.Or(o.DeadLetterRetention, DeadLetterRetentionDefault)
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	return o
}

func (o Options) validate() error {
	if !ValidPrefix(o.Prefix) {
		return fmt.Errorf("queue: Prefix %q: want 1..%d of a-z, 0-9, '_', '-'", o.Prefix, MaxPrefixLen)
	}
	if o.Shards < 1 || o.Shards > MaxShards {
		return fmt.Errorf("queue: Shards %d: must be 1..%d", o.Shards, MaxShards)
	}
	for _, l := range o.Lanes {
		if !ValidLane(l) {
			return fmt.Errorf("queue: lane %q: want 1..%d of a-z, 0-9, '_', '-'", l, MaxLaneLen)
		}
	}
	if o.ClaimTTL < time.Second || o.LeaseTTL < time.Second {
		return fmt.Errorf("queue: ClaimTTL and LeaseTTL must be at least 1s")
	}
	if o.MaxBatch < 1 {
		return fmt.Errorf("queue: MaxBatch %d: must be positive", o.MaxBatch)
	}
	if o.BackoffBase <= 0 || o.BackoffCap < o.BackoffBase {
		return fmt.Errorf("queue: BackoffBase must be positive and BackoffCap at least BackoffBase")
	}
	return nil
}

// Engine runs queue operations against Redis. It is safe for concurrent use.
type Engine struct {
	rdb   redis.UniversalClient
	opt   Options
	ks    keyspace
	calls atomic.Uint64
	heads sync.Map // lane -> *shardHeads
	// redriveBatch is how many items one redrive script call moves.
	redriveBatch int
}

// New returns an Engine over rdb, a *redis.Client or *redis.ClusterClient.
func New(rdb redis.UniversalClient, opt Options) (*Engine, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	return &Engine{rdb: rdb, opt: opt, ks: newKeyspace(opt.Prefix, opt.Shards), redriveBatch: redriveBatch}, nil
}

// Options returns the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.opt }

// shard returns the shard a key belongs to.
func (e *Engine) shard(key string) int { return e.ks.shardOf(key) }

func (e *Engine) nowMs() int64 { return e.opt.Clock.Now().UnixMilli() }

func (e *Engine) laneKnown(lane string) bool { return slices.Contains(e.opt.Lanes, lane) }

// Entry is one item to enqueue on a lane.
type Entry struct {
	Lane string
	Item *Item
}

// Enqueued tells what Enqueue did with one item.
type Enqueued struct {
	// ID and Key identify the item.
	ID, Key string
	// New is false when the item was a duplicate inside the dedup window and
	// was not stored.
	New bool
	// Ready is true when the item's key went from idle to claimable.
	Ready bool
}

// Enqueue stores one item at the tail of its key's queue on lane. An item
// without ID gets one from NewID; one without ReceivedAt gets now.
func (e *Engine) Enqueue(ctx context.Context, lane string, it *Item) (Enqueued, error) {
	res, err := e.EnqueueBatch(ctx, []Entry{{Lane: lane, Item: it}})
	if err != nil {
		return Enqueued{}, err
	}
	return res[0], nil
}

// maxEnqueueChunk caps the items of one enqueue script call.
const maxEnqueueChunk = 64

// enqueueCmd appends items to their keys' queues, skipping items whose id
// is in the key's dedup set inside its window, and indexes keys that were
// idle.
//
// KEYS[1] -> <p>:{NN}:lease
// then for item i (j = 1 + 5*(i-1)):
// KEYS[j+1] -> q:<key>   KEYS[j+2] -> m:<key>   KEYS[j+3] -> dd:<key>
// KEYS[j+4] -> ready:<lane>   KEYS[j+5] -> oldest:<lane>
// ARGV[1] -> now ms   ARGV[2] -> dedup window ms (0 = no dedup)
// ARGV[3] -> prune (1 = drop the expired ids of each dedup set touched)
// then for item i (a = 3 + 3*(i-1)):
// ARGV[a+1] -> key    ARGV[a+2] -> lane    ARGV[a+3] -> envelope
//
// Returns, per item, new (1 stored, 0 duplicate) and ready (1 if the key
// became claimable now), flattened.
//
// The dedup set of a key is a ZSET id -> end of its window (ms), so the
// window follows the caller's clock. Expired ids are dropped when the caller
// asks (one call in a few), and the whole set expires one window after the
// key's queue empties.
//
// A key with queued items is always indexed (ready, leased, delayed) or
// paused, and is in its lane's oldest-item index, so only an item that
// finds its queue empty does the indexing. A key that is leased with an
// empty queue is indexed at its lease deadline, so the running drain keeps
// it. A key whose recorded lane differs from the item's stays in its
// recorded lane until its queue empties.
var enqueueCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local out = {}
local n = (#KEYS - 1) / 5
for i = 1, n do
  local j = 1 + 5 * (i - 1)
  local a = 3 + 3 * (i - 1)
  local q, m, d, rd, od = KEYS[j+1], KEYS[j+2], KEYS[j+3], KEYS[j+4], KEYS[j+5]
  local key, lane, env = ARGV[a+1], ARGV[a+2], ARGV[a+3]
  local fresh = true
  if window > 0 then
    local id = item_id(env)
    local till = tostring(now + window)
    if redis.call('ZADD', d, 'NX', till, id) == 0 then
      if tonumber(redis.call('ZSCORE', d, id)) > now then
        fresh = false
      else
        redis.call('ZADD', d, 'XX', till, id)
      end
    end
    if ARGV[3] == '1' then redis.call('ZREMRANGEBYSCORE', d, '-inf', ARGV[1]) end
  end
  local ready = 0
  if fresh and redis.call('RPUSH', q, env) == 1 then
    if window > 0 then redis.call('PERSIST', d) end
    redis.call('HSET', m, 'lane', lane)
    redis.call('ZADD', od, item_at(env) or ARGV[1], key)
    if redis.call('HGET', m, 'paused') ~= '1' then
      local score = now
      local t, dl = lease_of(KEYS[1], key)
      if t and dl > now then
        score = dl
      else
        ready = 1
        if t then redis.call('HDEL', KEYS[1], key) end -- a holder that died
      end
      redis.call('ZADD', rd, score, key)
    end
  end
  out[#out+1] = fresh and 1 or 0
  out[#out+1] = ready
end
return out
`)

// enqueueArgs fills enqueueCmd's KEYS and ARGV: one shard's chunk of items.
type enqueueArgs struct {
	lease  string
	now    int64
	window int64
	prune  int
	items  []enqueueItem
}

// enqueueItem is one item of an enqueueCmd call: its keys and its values.
type enqueueItem struct {
	queue, meta, dedup, ready, oldest string
	key, lane                         string
	env                               []byte
}

func (a enqueueArgs) keys() []string {
	keys := make([]string, 0, 1+5*len(a.items))
	keys = append(keys, a.lease) // KEYS[1]
	for _, it := range a.items {
		keys = append(keys,
			it.queue,  // KEYS[j+1]
			it.meta,   // KEYS[j+2]
			it.dedup,  // KEYS[j+3]
			it.ready,  // KEYS[j+4]
			it.oldest, // KEYS[j+5]
		)
	}
	return keys
}

func (a enqueueArgs) argv() []any {
	argv := make([]any, 0, 3+3*len(a.items))
	argv = append(argv,
		a.now,    // ARGV[1]
		a.window, // ARGV[2]
		a.prune,  // ARGV[3]
	)
	for _, it := range a.items {
		argv = append(argv,
			it.key,  // ARGV[a+1]
			it.lane, // ARGV[a+2]
			it.env,  // ARGV[a+3]
		)
	}
	return argv
}

// EnqueueBatch stores items in one round trip per Redis node: one script
// call per shard (and per 64 items). The order of items of one key is kept.
// Results are in the order of entries. On error, some items may have been
// stored: enqueueing them again is safe within the dedup window.
func (e *Engine) EnqueueBatch(ctx context.Context, entries []Entry) ([]Enqueued, error) {
	now := e.opt.Clock.Now()
	window := int64(0)
	if e.opt.DedupWindow > 0 {
		window = e.opt.DedupWindow.Milliseconds()
	}
	res := make([]Enqueued, len(entries))
	var byShard map[int][]int // entries by shard, when there are several
	if len(entries) > 1 {
		byShard = make(map[int][]int)
	}
	var shardOrder []int
	for i, en := range entries {
		it := en.Item
		if it.ID == "" {
			it.ID = NewID(now)
		}
		if it.ReceivedAt.IsZero() {
			it.ReceivedAt = now
		}
		if err := it.validate(); err != nil {
			return nil, err
		}
		if !e.laneKnown(en.Lane) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownLane, en.Lane)
		}
		key := it.Key()
		res[i] = Enqueued{ID: it.ID, Key: key}
		s := e.ks.shardOf(key)
		if byShard == nil {
			shardOrder = append(shardOrder, s)
			continue
		}
		if _, ok := byShard[s]; !ok {
			shardOrder = append(shardOrder, s)
		}
		byShard[s] = append(byShard[s], i)
	}
	if byShard == nil {
		byShard = map[int][]int{shardOrder[0]: {0}}
	}
	var calls []scriptCall
	var owners [][]int
	for _, s := range shardOrder {
		idx := byShard[s]
		for len(idx) > 0 {
			chunk := idx[:min(len(idx), maxEnqueueChunk)]
			idx = idx[len(chunk):]
			a := enqueueArgs{lease: e.ks.lease(s), now: now.UnixMilli(), window: window, prune: e.pruneFlag(),
				items: make([]enqueueItem, 0, len(chunk))}
			for _, i := range chunk {
				lane, key := entries[i].Lane, res[i].Key
				a.items = append(a.items, enqueueItem{
					queue: e.ks.queue(s, key), meta: e.ks.meta(s, key), dedup: e.ks.dedup(s, key),
					ready: e.ks.ready(s, lane), oldest: e.ks.oldest(s, lane),
					key: key, lane: lane, env: entries[i].Item.encode(),
				})
			}
			calls = append(calls, scriptCall{enqueueCmd, a})
			owners = append(owners, chunk)
		}
	}
	var cmds []*redis.Cmd
	if len(calls) == 1 {
		cmds = []*redis.Cmd{e.run(ctx, calls[0].script, calls[0].args)}
	} else {
		var err error
		if cmds, err = e.pipeline(ctx, calls); err != nil {
			return nil, err
		}
	}
	for c, cmd := range cmds {
		flags, err := cmd.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("queue: enqueue: %w", err)
		}
		for k, i := range owners[c] {
			res[i].New = flags[2*k] == 1
			res[i].Ready = flags[2*k+1] == 1
		}
	}
	return res, nil
}

// Lease is the right to work one key, granted by Claim. The drain event
// (drain.Event) carries it to the drain; Activate, Extend and the calls that
// change the key keep Deadline current.
type Lease struct {
	// Key is the leased key, "<tenant>:<code>".
	Key string
	// Lane is the lane the key was claimed on.
	Lane string
	// Token is the fencing token: it grows with every claim in a shard, so a
	// newer holder of a key always has a larger token.
	Token int64
	// Invocation is the id Activate bound the lease to.
	Invocation string
	// Deadline is when the lease runs out unless extended.
	Deadline time.Time
	// Slot is the lane slot the scheduler took for the drain it dispatched
	// with this lease ("" when none): the drain holds it for its whole
	// invocation and may work further keys of the lane in it.
	Slot string
}

// Claim leases up to n keys of lane that are ready now, oldest ready-at
// first across all shards, skipping paused keys and keys whose lease is
// live. Each lease gets a fresh fencing token and a deadline ClaimTTL away.
// Two concurrent claimers never receive the same key. While an operator has
// paused the lane (PauseLane), Claim leases nothing.
func (e *Engine) Claim(ctx context.Context, lane string, n int) ([]Lease, error) {
	ls, _, err := e.ClaimWithNext(ctx, lane, n)
	return ls, err
}

// ClaimWithNext is Claim that also returns the earliest ready-at after now
// it saw (zero if none): when a key that waits (a retry, a rate limit, a
// live lease) becomes ready, for a scheduler that sleeps until then.
func (e *Engine) ClaimWithNext(ctx context.Context, lane string, n int) ([]Lease, time.Time, error) {
	if !e.laneKnown(lane) {
		return nil, time.Time{}, fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	if n <= 0 {
		return nil, time.Time{}, nil
	}
	now := e.nowMs()
	cands, nextAt, err := e.readyCandidates(ctx, lane, now, n)
	if err != nil || len(cands) == 0 {
		return nil, nextAt, err
	}
	ls, err := e.claim(ctx, lane, now, cands)
	return ls, nextAt, err
}

// claimCmd leases the named keys of one shard and lane that are ready at now
// and not held by a live lease.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> lease   KEYS[3] -> seq
// KEYS[4] -> lanepaused
// ARGV[1] -> now ms   ARGV[2] -> lease ttl ms   ARGV[3] -> lane
// ARGV[4..] -> candidate keys
//
// Returns {key, token, key, token, ...} for the keys it leased: none while
// an operator has paused the lane.
var claimCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local dl = now + tonumber(ARGV[2])
local out = {}
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then return out end
for i = 4, #ARGV do
  local k = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], k)
  if s and tonumber(s) <= now then
    local t, ldl = lease_of(KEYS[2], k)
    if t and ldl > now then
      redis.call('ZADD', KEYS[1], ldl, k)
    else
      local tok = redis.call('INCR', KEYS[3])
      redis.call('HSET', KEYS[2], k, tok .. '|' .. dl .. '|')
      redis.call('ZADD', KEYS[1], dl, k)
      out[#out+1] = k
      out[#out+1] = tostring(tok)
    end
  end
end
return out
`)

// claimArgs fills claimCmd's KEYS and ARGV for one shard.
type claimArgs struct {
	ready, lease, seq, lanePaused string
	now, ttl                      int64
	lane                          string
	cands                         []any
}

func (a claimArgs) keys() []string {
	return []string{
		a.ready,      // KEYS[1]
		a.lease,      // KEYS[2]
		a.seq,        // KEYS[3]
		a.lanePaused, // KEYS[4]
	}
}

func (a claimArgs) argv() []any {
	argv := make([]any, 0, 3+len(a.cands))
	argv = append(argv,
		a.now,  // ARGV[1]
		a.ttl,  // ARGV[2]
		a.lane, // ARGV[3]
	)
	return append(argv, a.cands...) // ARGV[4..]
}

// claim leases the candidates that are still ready, in their order.
func (e *Engine) claim(ctx context.Context, lane string, now int64, cands []ReadyKey) ([]Lease, error) {
	rank := make(map[string]int, len(cands))
	byShard := make(map[int][]any)
	var shardOrder []int
	for i, c := range cands {
		rank[c.Key] = i
		if _, ok := byShard[c.shard]; !ok {
			shardOrder = append(shardOrder, c.shard)
		}
		byShard[c.shard] = append(byShard[c.shard], c.Key)
	}
	calls := make([]scriptCall, 0, len(shardOrder))
	for _, s := range shardOrder {
		calls = append(calls, scriptCall{claimCmd, claimArgs{
			ready: e.ks.ready(s, lane), lease: e.ks.lease(s), seq: e.ks.seq(s), lanePaused: e.ks.lanePaused(s),
			now: now, ttl: e.opt.ClaimTTL.Milliseconds(), lane: lane, cands: byShard[s],
		}})
	}
	cmds, err := e.pipeline(ctx, calls)
	if err != nil {
		return nil, err
	}
	deadline := time.UnixMilli(now + e.opt.ClaimTTL.Milliseconds())
	var leases []Lease
	for _, cmd := range cmds {
		vals, err := cmd.StringSlice()
		if err != nil {
			return leases, fmt.Errorf("queue: claim: %w", err)
		}
		for i := 0; i+1 < len(vals); i += 2 {
			tok, err := strconv.ParseInt(vals[i+1], 10, 64)
			if err != nil {
				return leases, fmt.Errorf("queue: claim: bad token: %w", err)
			}
			leases = append(leases, Lease{Key: vals[i], Lane: lane, Token: tok, Deadline: deadline})
		}
	}
	slices.SortFunc(leases, func(a, b Lease) int { return rank[a.Key] - rank[b.Key] })
	return leases, nil
}

// ReadyKey is a key waiting in a lane's ready index.
type ReadyKey struct {
	Key     string
	ReadyAt time.Time
	shard   int
}

// readyCandidates returns up to n keys of lane with ready-at <= now, oldest
// first, over all shards in one round trip per node, and the earliest
// ready-at after now it saw (zero if none).
func (e *Engine) readyCandidates(ctx context.Context, lane string, now int64, n int) ([]ReadyKey, time.Time, error) {
	cmds, err := perShard(ctx, e, "read ready index", func(p redis.Pipeliner, s int) *redis.ZSliceCmd {
		return p.ZRangeWithScores(ctx, e.ks.ready(s, lane), 0, int64(n))
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	var out []ReadyKey
	next := int64(math.MaxInt64)
	for s, cmd := range cmds {
		for _, z := range cmd.Val() {
			at := int64(z.Score)
			if at > now {
				next = min(next, at)
				break
			}
			out = append(out, ReadyKey{Key: z.Member.(string), ReadyAt: time.UnixMilli(at), shard: s})
		}
	}
	slices.SortFunc(out, func(a, b ReadyKey) int {
		return cmp.Or(a.ReadyAt.Compare(b.ReadyAt), strings.Compare(a.Key, b.Key))
	})
	if len(out) > n {
		out = out[:n]
	}
	var nextAt time.Time
	if next != math.MaxInt64 {
		nextAt = time.UnixMilli(next)
	}
	return out, nextAt, nil
}

// leased is what the scripts that check a lease are given: where the
// leased key lives (its shard and lane), the lease, and now.
type leased struct {
	ks  keyspace
	s   int
	l   *Lease
	now int64
}

// holding returns l's leased, at now.
func (e *Engine) holding(l *Lease) leased {
	return leased{ks: e.ks, s: e.ks.shardOf(l.Key), l: l, now: e.nowMs()}
}

// leaseArgv returns ARGV[1..4] of the lease-checking scripts (key, token,
// invocation id, now ms), with room for n more.
func (h leased) leaseArgv(n int) []any {
	return append(make([]any, 0, 4+n), h.l.Key, h.l.Token, h.l.Invocation, h.now)
}

// window is the dedup window in ms for the scripts (0 = no dedup).
func (e *Engine) window() int64 {
	if e.opt.DedupWindow > 0 {
		return e.opt.DedupWindow.Milliseconds()
	}
	return 0
}

// pruneFlag asks one enqueue call in pruneEvery to drop expired dedup ids.
func (e *Engine) pruneFlag() int {
	if e.calls.Add(1)%pruneEvery == 0 {
		return 1
	}
	return 0
}

// pruneEvery: one enqueue call in pruneEvery prunes the dedup sets it
// touches, so an expired id lingers for a few more items of its key at most.
const pruneEvery = 8

// Step is what one round trip of a drain does to its leased key, in this
// order: activate the lease, ack head items, read the next items.
type Step struct {
	// Activate binds an unbound lease (fresh from Claim) to the lease's
	// Invocation and renews it for LeaseTTL. A lease bound to another
	// invocation gives ErrLeaseActive.
	Activate bool
	// Ack names the items to remove from the head, head first: they must be
	// the first len(Ack) items or nothing changes (ErrHeadMismatch).
	Ack []string
	// ResetAttempts clears the head's failure count with the ack; set it
	// when the acked head had failed before.
	ResetAttempts bool
	// Fetch reads up to min(Fetch, MaxBatch) items from the head after the
	// ack (0: none).
	Fetch int
	// Depth asks for the queue length after the ack.
	Depth bool
	// Release ends the lease when the queue is found empty, sparing the
	// drain a Yield.
	Release bool
}

// stepCmd is a drain's one round trip per item: it optionally activates the
// lease (binds it to the invocation), acks the head items, and reads the
// next items, in one script.
//
// KEYS[1] -> lease   KEYS[2] -> q:<key>   KEYS[3] -> m:<key>
// KEYS[4] -> ready:<lane>   KEYS[5] -> dd:<key>   KEYS[6] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> activate ttl ms (0 = no activation)
// ARGV[6] -> 1 to reset the head attempts with the ack
// ARGV[7] -> items to read (0 = none)   ARGV[8] -> 1 to return the length
// ARGV[9] -> 1 to end the lease when the queue is found empty
// ARGV[10] -> dedup window ms   ARGV[11..] -> ids to ack, head first
//
// Returns {-1} if the lease is lost, {-3} if activation finds it bound to
// another invocation, {-2} if the head items are not the acked ids (nothing
// changed); else {deadline, depth or -1, head attempts, paused, envelope...}
// where deadline is the lease's (0 when it ended because the queue is
// empty). Attempts and paused are read only along with items.
//
// A step that reads items records the head's received-at in the
// oldest-item index; a step that only acks leaves it as it was, so between
// reads the index holds an older time than the head's (see
// docs/ENGINE.md, "The oldest-item index").
var stepCmd = newScript(leaseLua + `
local key = ARGV[1]
local now = tonumber(ARGV[4])
local t, dl, r = lease_of(KEYS[1], key)
if t == nil or t ~= ARGV[2] or dl <= now then return {-1} end
if r ~= ARGV[3] then
  if r ~= '' then return {ARGV[5] == '0' and -1 or -3} end
  if ARGV[5] ~= '0' then
    dl = now + tonumber(ARGV[5])
    redis.call('HSET', KEYS[1], key, t .. '|' .. dl .. '|' .. ARGV[3])
    redis.call('ZADD', KEYS[4], 'XX', dl, key)
  end
end
if #ARGV > 10 then
  local popped = {}
  for i = 11, #ARGV do
    local head = redis.call('LPOP', KEYS[2])
    if head then popped[#popped+1] = head end
    if not head or item_id(head) ~= ARGV[i] then
      for k = #popped, 1, -1 do redis.call('LPUSH', KEYS[2], popped[k]) end
      return {-2}
    end
  end
  if ARGV[6] == '1' then redis.call('HDEL', KEYS[3], 'attempts', 'err') end
end
local depth = -1
local want = tonumber(ARGV[7])
local items = {}
if want > 0 then items = redis.call('LRANGE', KEYS[2], 0, want - 1) end
if want > 0 and #items == 0 then
  depth = 0
elseif ARGV[8] == '1' then
  depth = redis.call('LLEN', KEYS[2])
end
if depth == 0 then
  emptied(KEYS[4], KEYS[3], KEYS[5], KEYS[6], key, ARGV[10])
  if ARGV[9] == '1' then
    redis.call('HDEL', KEYS[1], key)
    dl = 0
  end
end
local out = {dl, depth, 0, 0}
if #items > 0 then
  redis.call('ZADD', KEYS[6], item_at(items[1]) or ARGV[4], key)
  local mm = redis.call('HMGET', KEYS[3], 'attempts', 'paused')
  out[3] = tonumber(mm[1] or '0')
  out[4] = mm[2] == '1' and 1 or 0
  for i = 1, #items do out[#out+1] = items[i] end
end
return out
`)

// stepArgs fills stepCmd's KEYS and ARGV.
type stepArgs struct {
	leased
	activateTTL   int64
	resetAttempts bool
	fetch         int
	depth         bool
	release       bool
	window        int64
	ack           []string
}

func (a stepArgs) keys() []string {
	ks, s, key, lane := a.ks, a.s, a.l.Key, a.l.Lane
	return []string{
		ks.lease(s),        // KEYS[1]
		ks.queue(s, key),   // KEYS[2]
		ks.meta(s, key),    // KEYS[3]
		ks.ready(s, lane),  // KEYS[4]
		ks.dedup(s, key),   // KEYS[5]
		ks.oldest(s, lane), // KEYS[6]
	}
}

func (a stepArgs) argv() []any {
	argv := append(a.leaseArgv(6+len(a.ack)), // ARGV[1..4]
		a.activateTTL,         // ARGV[5]
		flag(a.resetAttempts), // ARGV[6]
		a.fetch,               // ARGV[7]
		flag(a.depth),         // ARGV[8]
		flag(a.release),       // ARGV[9]
		a.window,              // ARGV[10]
	)
	for _, id := range a.ack {
		argv = append(argv, id) // ARGV[11..]
	}
	return argv
}

// Step runs s on the leased key in one script call. A queue found empty
// (Batch.Depth 0) has left the ready index; with s.Release the lease has
// ended too (Batch.Released).
func (e *Engine) Step(ctx context.Context, l *Lease, st Step) (*Batch, error) {
	activate := int64(0)
	if st.Activate {
		if l.Invocation == "" {
			return nil, errors.New("queue: activate: empty invocation id")
		}
		activate = e.opt.LeaseTTL.Milliseconds()
	}
	fetch := 0
	if st.Fetch > 0 {
		fetch = min(st.Fetch, e.opt.MaxBatch)
	}
	vals, err := e.run(ctx, stepCmd, stepArgs{leased: e.holding(l), activateTTL: activate, resetAttempts: st.ResetAttempts,
		fetch: fetch, depth: st.Depth, release: st.Release, window: e.window(), ack: st.Ack}).Slice()
	if err != nil {
		return nil, fmt.Errorf("queue: step %s: %w", l.Key, err)
	}
	if code, _ := vals[0].(int64); code < 0 {
		return nil, codeErr(code)
	}
	b := &Batch{Depth: vals[1].(int64), Attempts: int(vals[2].(int64)), Paused: vals[3].(int64) == 1}
	if dl := vals[0].(int64); dl == 0 {
		b.Released = true
	} else {
		l.Deadline = time.UnixMilli(dl)
	}
	if len(vals) > 4 {
		b.Items = make([]*Item, 0, len(vals)-4)
	}
	for _, v := range vals[4:] {
		str, _ := v.(string)
		it, err := decodeItem([]byte(str), l.Key)
		if err != nil {
			return nil, fmt.Errorf("queue: fetch %s: %w", l.Key, err)
		}
		b.Items = append(b.Items, it)
	}
	return b, nil
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Activate binds the lease to invocation (a Lambda request id, say) and
// renews it for LeaseTTL. A second, different invocation gets
// ErrLeaseActive; the same invocation may activate again. A lease that ran
// out or was claimed anew gets ErrLeaseLost.
func (e *Engine) Activate(ctx context.Context, l *Lease, invocation string) error {
	if invocation == "" {
		return errors.New("queue: activate: empty invocation id")
	}
	prev := l.Invocation
	l.Invocation = invocation
	if _, err := e.Step(ctx, l, Step{Activate: true}); err != nil {
		l.Invocation = prev
		return err
	}
	return nil
}

// extendCmd renews a held lease.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> lease ttl ms
//
// Returns the new deadline, or -1 if the lease is lost.
var extendCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], now) then return -1 end
local dl = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. dl .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', dl, ARGV[1])
return dl
`)

// extendArgs fills extendCmd's KEYS and ARGV.
type extendArgs struct {
	leased
	ttl int64
}

func (a extendArgs) keys() []string {
	return []string{
		a.ks.lease(a.s),           // KEYS[1]
		a.ks.ready(a.s, a.l.Lane), // KEYS[2]
	}
}

func (a extendArgs) argv() []any {
	return append(a.leaseArgv(1), // ARGV[1..4]
		a.ttl, // ARGV[5]
	)
}

// Extend renews a held lease for LeaseTTL from now.
func (e *Engine) Extend(ctx context.Context, l *Lease) error {
	dl, err := e.run(ctx, extendCmd, extendArgs{leased: e.holding(l), ttl: e.opt.LeaseTTL.Milliseconds()}).Int64()
	if err != nil {
		return fmt.Errorf("queue: extend: %w", err)
	}
	if err := codeErr(dl); err != nil {
		return err
	}
	l.Deadline = time.UnixMilli(dl)
	return nil
}

// Batch is the head of a leased key's queue.
type Batch struct {
	// Items are the first items of the queue, oldest first, at most the
	// requested size and at most Options.MaxBatch.
	Items []*Item
	// Attempts is how many times the head item has failed so far.
	Attempts int
	// Paused is set when an operator paused the key: the holder should yield.
	Paused bool
	// Depth is the queue's length, or -1 when the step did not read it.
	Depth int64
	// Released is set when the step ended the lease on an empty queue.
	Released bool
}

// Fetch returns up to n items from the head of the leased key's queue
// without removing them, and the queue's length.
func (e *Engine) Fetch(ctx context.Context, l *Lease, n int) (*Batch, error) {
	return e.Step(ctx, l, Step{Fetch: max(n, 1), Depth: true})
}

// Ack removes the items with ids from the head of the leased key's queue;
// they must be its first len(ids) items, in order, or nothing is removed
// (ErrHeadMismatch). It returns the queue length left; at zero the key has
// left the ready index.
func (e *Engine) Ack(ctx context.Context, l *Lease, ids ...string) (int64, error) {
	if len(ids) == 0 {
		return 0, errors.New("queue: ack: no ids")
	}
	b, err := e.Step(ctx, l, Step{Ack: ids, ResetAttempts: true, Depth: true})
	if err != nil {
		return 0, err
	}
	return b.Depth, nil
}

// yieldCmd ends a lease. A key with work goes back to the ready index at
// max(now, not-before), the back of the ready order; an empty or paused key
// leaves the index.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> not-before ms (0 = now)   ARGV[6] -> lane
//
// Returns 1 if the key is ready again, 0 if it is empty, 2 if it is paused
// or indexed in another lane, -1 if the lease is lost.
var yieldCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], now) then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 0
end
if redis.call('HGET', KEYS[4], 'paused') == '1' or redis.call('HGET', KEYS[4], 'lane') ~= ARGV[6] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 2
end
local at = math.max(now, tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], at, ARGV[1])
return 1
`)

// yieldArgs fills yieldCmd's KEYS and ARGV.
type yieldArgs struct {
	leased
	notBefore int64
}

func (a yieldArgs) keys() []string {
	ks, s, key, lane := a.ks, a.s, a.l.Key, a.l.Lane
	return []string{
		ks.lease(s),        // KEYS[1]
		ks.ready(s, lane),  // KEYS[2]
		ks.queue(s, key),   // KEYS[3]
		ks.meta(s, key),    // KEYS[4]
		ks.oldest(s, lane), // KEYS[5]
	}
}

func (a yieldArgs) argv() []any {
	return append(a.leaseArgv(2), // ARGV[1..4]
		a.notBefore, // ARGV[5]
		a.l.Lane,    // ARGV[6]
	)
}

// Yield ends the lease. A key with work goes back to the ready index at
// notBefore or now, whichever is later (the back of the ready order); an
// empty or paused key leaves the index. It reports whether the key is ready
// again.
func (e *Engine) Yield(ctx context.Context, l *Lease, notBefore time.Time) (bool, error) {
	nb := int64(0)
	if !notBefore.IsZero() {
		nb = notBefore.UnixMilli()
	}
	code, err := e.run(ctx, yieldCmd, yieldArgs{leased: e.holding(l), notBefore: nb}).Int64()
	if err != nil {
		return false, fmt.Errorf("queue: yield: %w", err)
	}
	return code == 1, codeErr(code)
}

// Policy says what happens to an item that used its last attempt.
type Policy string

const (
	// DeadLetter moves the item to its key's dead-letter list; the key goes on
	// with the next item.
	DeadLetter Policy = "dead-letter"
	// Park pauses the key with the item kept at its head, for an operator to
	// fix and resume.
	Park Policy = "park"
)

// Failure describes a failed attempt at the head item.
type Failure struct {
	// Reason is stored as the key's last error and with a dead letter. Line
	// breaks are replaced and it is cut to 1 KiB.
	Reason string
	// MaxAttempts is the attempt count at which Policy applies. Default 1
	// when zero or negative.
	MaxAttempts int
	// Policy applies when attempts are used up. Default DeadLetter.
	Policy Policy
	// RetryAt, when set, replaces the backoff: the key is not ready before it.
	RetryAt time.Time
	// Permanent applies Policy now, whatever the attempt count.
	Permanent bool
}

// FailOutcome is what Fail did with the failed head item: the engine's
// outcome of a step, not a drain's (drain.Outcome says how a drain's turn
// at a key ended).
type FailOutcome int

const (
	// Retrying: the lease ended and the key is ready again at ReadyAt with
	// the item still at its head.
	Retrying FailOutcome = 1
	// DeadLettered: the item moved to the dead-letter list; the lease is still
	// held and the next item is the head.
	DeadLettered FailOutcome = 2
	// Parked: the key is paused with the item at its head; the lease ended.
	Parked FailOutcome = 3
)

// String returns the outcome's name.
func (o FailOutcome) String() string {
	switch o {
	case Retrying:
		return "retrying"
	case DeadLettered:
		return "dead-lettered"
	case Parked:
		return "parked"
	}
	return "FailOutcome(" + strconv.Itoa(int(o)) + ")"
}

// FailResult reports what Fail did.
type FailResult struct {
	Outcome  FailOutcome
	Attempts int
	ReadyAt  time.Time
}

// maxReason caps stored failure reasons.
const maxReason = 1024

func oneLine(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	return s
}

// failCmd records a failed attempt of the head item of a leased key.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// KEYS[7] -> paused   KEYS[8] -> dd:<key>   KEYS[9] -> dlqn   KEYS[10] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> item id   ARGV[6] -> reason (one line)
// ARGV[7] -> max attempts   ARGV[8] -> "dead-letter" or "park"
// ARGV[9] -> backoff base ms   ARGV[10] -> backoff cap ms
// ARGV[11] -> jitter in [0,1)   ARGV[12] -> retry-at ms (0 = backoff)
// ARGV[13] -> permanent (1 = exhaust now)   ARGV[14] -> lane
// ARGV[15] -> dedup window ms   ARGV[16] -> dead letters kept per key (0 = all)
// ARGV[17] -> dead-letter retention ms (0 = forever)
//
// Returns {outcome, attempts, ready-at ms}: outcome 1 = retry later (lease
// ended, key ready at ready-at), 2 = dead-lettered (lease kept, next item is
// the head), 3 = parked (key paused with the item at its head, lease ended;
// meta paused=1 and parked=1); {-1} if the lease is lost, {-2} if the head
// is another item.
var failCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
local key = ARGV[1]
if not held(KEYS[1], key, ARGV[2], ARGV[3], now) then return {-1} end
local head = redis.call('LINDEX', KEYS[3], 0)
if not head or item_id(head) ~= ARGV[5] then return {-2} end
local attempts = redis.call('HINCRBY', KEYS[4], 'attempts', 1)
redis.call('HSET', KEYS[4], 'err', ARGV[6])
if ARGV[13] == '1' or attempts >= tonumber(ARGV[7]) then
  if ARGV[8] == 'park' then
    redis.call('HSET', KEYS[4], 'paused', '1', 'parked', '1')
    redis.call('ZADD', KEYS[7], now, key)
    redis.call('ZREM', KEYS[2], key)
    redis.call('HDEL', KEYS[1], key)
    return {3, attempts, 0}
  end
  redis.call('LPOP', KEYS[3])
  bury(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[2], KEYS[8], KEYS[9], KEYS[10], key, head, now, attempts, ARGV[14], ARGV[6], ARGV[15], ARGV[16], ARGV[17])
  return {2, attempts, 0}
end
local at = tonumber(ARGV[12])
if at == 0 then
  local d = tonumber(ARGV[9]) * 2 ^ (attempts - 1)
  local cap = tonumber(ARGV[10])
  if d > cap then d = cap end
  at = now + math.floor(d / 2 + tonumber(ARGV[11]) * d / 2)
end
if at < now then at = now end
redis.call('HDEL', KEYS[1], key)
if redis.call('HGET', KEYS[4], 'lane') == ARGV[14] then
  redis.call('ZADD', KEYS[2], at, key)
else
  redis.call('ZREM', KEYS[2], key)
end
return {1, attempts, at}
`)

// failArgs fills failCmd's KEYS and ARGV.
type failArgs struct {
	leased
	id, reason              string
	maxAttempts             int
	policy                  Policy
	backoffBase, backoffCap int64
	jitter                  float64
	retryAt                 int64
	permanent               bool
	window                  int64
	deadCap                 int
	deadKeep                int64
}

func (a failArgs) keys() []string {
	ks, s, key, lane := a.ks, a.s, a.l.Key, a.l.Lane
	return []string{
		ks.lease(s),        // KEYS[1]
		ks.ready(s, lane),  // KEYS[2]
		ks.queue(s, key),   // KEYS[3]
		ks.meta(s, key),    // KEYS[4]
		ks.dlq(s, key),     // KEYS[5]
		ks.dlqIndex(s),     // KEYS[6]
		ks.paused(s),       // KEYS[7]
		ks.dedup(s, key),   // KEYS[8]
		ks.deadCount(s),    // KEYS[9]
		ks.oldest(s, lane), // KEYS[10]
	}
}

func (a failArgs) argv() []any {
	return append(a.leaseArgv(13), // ARGV[1..4]
		a.id,             // ARGV[5]
		a.reason,         // ARGV[6]
		a.maxAttempts,    // ARGV[7]
		string(a.policy), // ARGV[8]
		a.backoffBase,    // ARGV[9]
		a.backoffCap,     // ARGV[10]
		strconv.FormatFloat(a.jitter, 'f', 6, 64), // ARGV[11]
		a.retryAt,         // ARGV[12]
		flag(a.permanent), // ARGV[13]
		a.l.Lane,          // ARGV[14]
		a.window,          // ARGV[15]
		a.deadCap,         // ARGV[16]
		a.deadKeep,        // ARGV[17]
	)
}

// Fail records a failed attempt at the head item id of the leased key. The
// item stays at the head and the key waits (backoff or f.RetryAt) while other
// keys go on; at f.MaxAttempts, or at once when f.Permanent, f.Policy applies.
func (e *Engine) Fail(ctx context.Context, l *Lease, id string, f Failure) (FailResult, error) {
	policy := cmp.Or(f.Policy, DeadLetter)
	if policy != DeadLetter && policy != Park {
		return FailResult{}, fmt.Errorf("queue: fail: unknown policy %q", policy)
	}
	retryAt := int64(0)
	if !f.RetryAt.IsZero() {
		retryAt = f.RetryAt.UnixMilli()
	}
	vals, err := e.run(ctx, failCmd, failArgs{leased: e.holding(l), id: id, reason: oneLine(f.Reason),
		maxAttempts: max(f.MaxAttempts, 1), policy: policy,
		backoffBase: e.opt.BackoffBase.Milliseconds(), backoffCap: e.opt.BackoffCap.Milliseconds(),
		jitter: e.opt.Jitter(), retryAt: retryAt, permanent: f.Permanent, window: e.window(),
		deadCap: e.deadCap(), deadKeep: e.deadKeep()}).Int64Slice()
	if err != nil {
		return FailResult{}, fmt.Errorf("queue: fail: %w", err)
	}
	if err := codeErr(vals[0]); err != nil {
		return FailResult{}, err
	}
	r := FailResult{Outcome: FailOutcome(vals[0]), Attempts: int(vals[1])}
	if r.Outcome == Retrying {
		r.ReadyAt = time.UnixMilli(vals[2])
	}
	return r, nil
}

// SplitKey splits a key into tenant and code, validating both.
func SplitKey(key string) (tenant, code string, err error) {
	tenant, code, ok := strings.Cut(key, ":")
	if !ok || webhook.ValidateTenant(tenant) != nil || webhook.ValidateCode(code) != nil {
		return "", "", ErrInvalidKey
	}
	return tenant, code, nil
}

// Ping checks that Redis answers.
func (e *Engine) Ping(ctx context.Context) error {
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("queue: ping: %w", err)
	}
	return nil
}

// Reachable reports whether Redis accepts a connection. It dials the
// client's server (a cluster client's seed addresses, until one accepts)
// directly, bounded by ctx and outside the client's connection pool, and
// closes the connection at once. It is a cheap check before a real call, not
// a health check: a hung server's kernel still accepts connections. Unlike
// a call through the client, a refused dial here does not count against the
// pool, which after as many failed dials as it has connections stops dialing
// and probes by itself only once a second. Other client kinds are checked
// with PING.
func (e *Engine) Reachable(ctx context.Context) error {
	network, addrs := "tcp", []string(nil)
	switch c := e.rdb.(type) {
	case *redis.Client:
		o := c.Options()
		network, addrs = o.Network, []string{o.Addr}
	case *redis.ClusterClient:
		addrs = c.Options().Addrs
	}
	if len(addrs) == 0 {
		return e.Ping(ctx)
	}
	var d net.Dialer
	var errs []error
	for _, addr := range addrs {
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			_ = conn.Close() // nothing was sent
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("queue: redis not reachable: %w", errors.Join(errs...))
}
