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

	"github.com/hookline/hookline/shared/clock"
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
	return &Engine{rdb: rdb, opt: opt, ks: keyspace{prefix: opt.Prefix, shards: opt.Shards}, redriveBatch: redriveBatch}, nil
}

// Options returns the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.opt }

// Shard returns the shard a key belongs to.
func (e *Engine) Shard(key string) int { return e.ks.shardOf(key) }

// LoadScripts loads every script into the script cache of every node, so
// pipelines can call them by SHA. Operations do not need it: a pipelined call
// that meets NOSCRIPT runs again with the script's source (see pipeline).
func (e *Engine) LoadScripts(ctx context.Context) error {
	for _, s := range scripts {
		if err := s.Load(ctx, e.rdb).Err(); err != nil {
			return fmt.Errorf("queue: load scripts: %w", err)
		}
	}
	return nil
}

func (e *Engine) nowMs() int64 { return e.opt.Clock.Now().UnixMilli() }

func (e *Engine) laneKnown(lane string) bool { return slices.Contains(e.opt.Lanes, lane) }

// scriptCall is one script invocation inside a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// pipeline runs calls in one round trip per node, by SHA (EVALSHA). Calls a
// node refused with NOSCRIPT, which did not run, are sent again with their
// script's source (EVAL) in a second pipeline; then the scripts that were
// missing are loaded for next time, best effort. EVAL rather than SCRIPT
// LOAD and EVALSHA again, because a proxy such as ElastiCache Serverless's
// may not send SCRIPT LOAD to the backend that answered NOSCRIPT. The
// returned commands carry each call's result or error; the error is the
// first a call met (a nil reply is not one).
func (e *Engine) pipeline(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	run := func(idx []int, eval bool) {
		_, _ = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				c := calls[i]
				if eval {
					cmds[i] = c.script.Eval(ctx, p, c.keys, c.args...)
				} else {
					cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
				}
			}
			return nil
		}) // each command carries its own error, checked below
	}
	all := make([]int, len(calls))
	for i := range all {
		all[i] = i
	}
	run(all, false)
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		run(again, true)
		loaded := make(map[*redis.Script]bool)
		for _, i := range again {
			if s := calls[i].script; !loaded[s] {
				loaded[s] = true
				_ = s.Load(ctx, e.rdb).Err() // best effort: EVAL above did the work
			}
		}
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return cmds, fmt.Errorf("queue: pipeline: %w", err)
		}
	}
	return cmds, nil
}

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
	byShard := make(map[int][]int)
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
		if _, ok := byShard[s]; !ok {
			shardOrder = append(shardOrder, s)
		}
		byShard[s] = append(byShard[s], i)
	}
	var calls []scriptCall
	var owners [][]int
	for _, s := range shardOrder {
		idx := byShard[s]
		for len(idx) > 0 {
			chunk := idx[:min(len(idx), maxEnqueueChunk)]
			idx = idx[len(chunk):]
			keys := make([]string, 0, 1+5*len(chunk))
			args := make([]any, 0, 3+3*len(chunk))
			keys = append(keys, e.ks.lease(s))
			args = append(args, now.UnixMilli(), window, e.pruneFlag())
			for _, i := range chunk {
				it, lane, key := entries[i].Item, entries[i].Lane, res[i].Key
				keys = append(keys, e.ks.queue(s, key), e.ks.meta(s, key), e.ks.dedup(s, key), e.ks.ready(s, lane), e.ks.oldest(s, lane))
				args = append(args, key, lane, it.encode())
			}
			calls = append(calls, scriptCall{enqueueCmd, keys, args})
			owners = append(owners, chunk)
		}
	}
	var cmds []*redis.Cmd
	if len(calls) == 1 {
		cmds = []*redis.Cmd{calls[0].script.Run(ctx, e.rdb, calls[0].keys, calls[0].args...)}
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

// Lease is the right to work one key, granted by Claim. Its fields travel in
// the drain event; Activate, Extend and the calls that change the key keep
// Deadline current.
type Lease struct {
	// Key is the leased key, "<tenant>:<code>".
	Key string `json:"key"`
	// Lane is the lane the key was claimed on.
	Lane string `json:"lane"`
	// Token is the fencing token: it grows with every claim in a shard, so a
	// newer holder of a key always has a larger token.
	Token int64 `json:"token"`
	// Invocation is the id Activate bound the lease to.
	Invocation string `json:"invocation,omitempty"`
	// Deadline is when the lease runs out unless extended.
	Deadline time.Time `json:"deadline"`
	// Slot is the lane slot the scheduler took for the drain it dispatched
	// with this lease ("" when none): the drain holds it for its whole
	// invocation and may work further keys of the lane in it.
	Slot string `json:"slot,omitempty"`
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
		args := append([]any{now, e.opt.ClaimTTL.Milliseconds(), lane}, byShard[s]...)
		calls = append(calls, scriptCall{claimCmd, []string{e.ks.ready(s, lane), e.ks.lease(s), e.ks.seq(s), e.ks.lanePaused(s)}, args})
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

// leaseArgs are ARGV[1..4] of the lease-checking scripts.
func (e *Engine) leaseArgs(l *Lease, now int64) []any {
	return []any{l.Key, l.Token, l.Invocation, now}
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

// Step runs s on the leased key in one script call. A queue found empty
// (Batch.Depth 0) has left the ready index; with s.Release the lease has
// ended too (Batch.Released).
func (e *Engine) Step(ctx context.Context, l *Lease, st Step) (*Batch, error) {
	s := e.ks.shardOf(l.Key)
	keys := []string{e.ks.lease(s), e.ks.queue(s, l.Key), e.ks.meta(s, l.Key), e.ks.ready(s, l.Lane), e.ks.dedup(s, l.Key), e.ks.oldest(s, l.Lane)}
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
	args := make([]any, 0, 10+len(st.Ack))
	args = append(args, e.leaseArgs(l, e.nowMs())...)
	args = append(args, activate, flag(st.ResetAttempts), fetch, flag(st.Depth), flag(st.Release), e.window())
	for _, id := range st.Ack {
		args = append(args, id)
	}
	vals, err := stepCmd.Run(ctx, e.rdb, keys, args...).Slice()
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

// Extend renews a held lease for LeaseTTL from now.
func (e *Engine) Extend(ctx context.Context, l *Lease) error {
	s := e.ks.shardOf(l.Key)
	now := e.nowMs()
	keys := []string{e.ks.lease(s), e.ks.ready(s, l.Lane)}
	args := append(e.leaseArgs(l, now), e.opt.LeaseTTL.Milliseconds())
	dl, err := extendCmd.Run(ctx, e.rdb, keys, args...).Int64()
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

// Yield ends the lease. A key with work goes back to the ready index at
// notBefore or now, whichever is later (the back of the ready order); an
// empty or paused key leaves the index. It reports whether the key is ready
// again.
func (e *Engine) Yield(ctx context.Context, l *Lease, notBefore time.Time) (bool, error) {
	s := e.ks.shardOf(l.Key)
	keys := []string{e.ks.lease(s), e.ks.ready(s, l.Lane), e.ks.queue(s, l.Key), e.ks.meta(s, l.Key), e.ks.oldest(s, l.Lane)}
	nb := int64(0)
	if !notBefore.IsZero() {
		nb = notBefore.UnixMilli()
	}
	args := append(e.leaseArgs(l, e.nowMs()), nb, l.Lane)
	code, err := yieldCmd.Run(ctx, e.rdb, keys, args...).Int64()
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

// Outcome is what Fail did.
type Outcome int

const (
	// Retrying: the lease ended and the key is ready again at ReadyAt with
	// the item still at its head.
	Retrying Outcome = 1
	// DeadLettered: the item moved to the dead-letter list; the lease is still
	// held and the next item is the head.
	DeadLettered Outcome = 2
	// Parked: the key is paused with the item at its head; the lease ended.
	Parked Outcome = 3
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Retrying:
		return "retrying"
	case DeadLettered:
		return "dead-lettered"
	case Parked:
		return "parked"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// FailResult reports what Fail did.
type FailResult struct {
	Outcome  Outcome
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

// Fail records a failed attempt at the head item id of the leased key. The
// item stays at the head and the key waits (backoff or f.RetryAt) while other
// keys go on; at f.MaxAttempts, or at once when f.Permanent, f.Policy applies.
func (e *Engine) Fail(ctx context.Context, l *Lease, id string, f Failure) (FailResult, error) {
	s := e.ks.shardOf(l.Key)
	keys := []string{
		e.ks.lease(s), e.ks.ready(s, l.Lane), e.ks.queue(s, l.Key),
		e.ks.meta(s, l.Key), e.ks.dlq(s, l.Key), e.ks.dlqIndex(s), e.ks.paused(s), e.ks.dedup(s, l.Key),
		e.ks.deadCount(s),
		e.ks.oldest(s, l.Lane),
	}
	policy := cmp.Or(f.Policy, DeadLetter)
	if policy != DeadLetter && policy != Park {
		return FailResult{}, fmt.Errorf("queue: fail: unknown policy %q", policy)
	}
	retryAt := int64(0)
	if !f.RetryAt.IsZero() {
		retryAt = f.RetryAt.UnixMilli()
	}
	permanent := 0
	if f.Permanent {
		permanent = 1
	}
	args := append(e.leaseArgs(l, e.nowMs()), id, oneLine(f.Reason), max(f.MaxAttempts, 1), string(policy),
		e.opt.BackoffBase.Milliseconds(), e.opt.BackoffCap.Milliseconds(),
		strconv.FormatFloat(e.opt.Jitter(), 'f', 6, 64), retryAt, permanent, l.Lane, e.window(),
		e.deadCap(), e.deadKeep())
	vals, err := failCmd.Run(ctx, e.rdb, keys, args...).Int64Slice()
	if err != nil {
		return FailResult{}, fmt.Errorf("queue: fail: %w", err)
	}
	if err := codeErr(vals[0]); err != nil {
		return FailResult{}, err
	}
	r := FailResult{Outcome: Outcome(vals[0]), Attempts: int(vals[1])}
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
