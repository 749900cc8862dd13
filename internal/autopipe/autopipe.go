// Package autopipe sends the script calls that the goroutines of one process
// make at the same moment to Redis together, as one pipeline.
//
// hookline's hot path is one script call per webhook accepted and about one
// per item handled. In one process that serves many webhooks and runs many
// drains at once (`hookline dev`), each call alone costs a write and a read
// system call on both sides of the socket, and those, not the scripts, are
// most of Redis's and the process's work. A [Hook] on the client takes each
// EVALSHA or EVAL a goroutine sends and hands it to a few flushers; a flusher
// sends whatever calls are waiting when it is free, in one pipeline, and
// hands each caller its own reply. A call that finds a flusher idle goes at
// once, so a lone call waits for nothing; under load, calls share round
// trips instead of queueing for connections.
//
// Nothing else changes for the caller: each call still gets its own reply or
// error, calls of one goroutine stay in its order (it waits for each reply),
// and a caller whose context ends stops waiting at once (its call is then
// not sent if it has not been yet; if it has, its outcome is unknown, as
// after any timeout). A pipeline runs under the latest deadline of its
// calls, or under the client's own timeouts if one has none. Commands other than scripts, blocking commands among
// them, pass through untouched, and so do pipelines.
package autopipe

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxBatchDefault is how many calls one pipeline carries at most.
const MaxBatchDefault = 128

// FlushersDefault is how many pipelines may be in flight at once.
const FlushersDefault = 2

// Hook is a go-redis hook that coalesces script calls; see the package
// comment. Add it with [Add].
type Hook struct {
	rdb      redis.UniversalClient
	calls    chan *call
	maxBatch int
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	batches  atomic.Int64
	sent     atomic.Int64
}

var _ redis.Hook = (*Hook)(nil)

// call states: a flusher and the caller race to move a call out of waiting.
const (
	waiting int32 = iota
	abandoned
	claimed
)

// call is one script call waiting for a flusher. The flusher never touches
// the caller's command: it reads args and writes val and err, and the caller
// copies them into its command after done, so a caller may leave at its
// deadline whatever the flusher is doing.
type call struct {
	ctx   context.Context
	args  []any
	state atomic.Int32
	done  chan struct{}
	val   any
	err   error
}

// Add installs a Hook on rdb with flushers pipelines in flight at most and
// returns it. Add it before any other hook whose ProcessHook should see the
// pipelines rather than the single calls (redisstats counts round trips
// that way). Close stops the flushers; calls made after Close go alone.
func Add(rdb redis.UniversalClient, flushers int) *Hook {
	if flushers < 1 {
		flushers = FlushersDefault
	}
	h := &Hook{
		rdb:      rdb,
		calls:    make(chan *call, 4*MaxBatchDefault),
		maxBatch: MaxBatchDefault,
		stop:     make(chan struct{}),
	}
	for range flushers {
		h.wg.Go(h.flush)
	}
	rdb.AddHook(h)
	return h
}

// Close stops the flushers after the pipelines in flight.
func (h *Hook) Close() {
	h.once.Do(func() { close(h.stop) })
	h.wg.Wait()
}

// Stats returns the pipelines sent and the calls they carried.
func (h *Hook) Stats() (pipelines, calls int64) { return h.batches.Load(), h.sent.Load() }

// DialHook implements redis.Hook.
func (h *Hook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook: pipelines go as they are.
func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: a script call waits for a flusher.
func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		cmd, ok := c.(*redis.Cmd)
		if !ok || !isScript(c.Name()) {
			return next(ctx, c)
		}
		select {
		case <-h.stop:
			return next(ctx, c)
		default:
		}
		cl := &call{ctx: ctx, args: cmd.Args(), done: make(chan struct{})}
		select {
		case h.calls <- cl:
		case <-ctx.Done():
			cmd.SetErr(ctx.Err())
			return ctx.Err()
		}
		select {
		case <-cl.done:
			cmd.SetVal(cl.val)
			cmd.SetErr(cl.err)
			return cl.err
		case <-ctx.Done():
			// Not sent yet: it never will be. Sent: its outcome is unknown,
			// as after any timeout.
			cl.state.CompareAndSwap(waiting, abandoned)
			cmd.SetErr(ctx.Err())
			return ctx.Err()
		}
	}
}

func isScript(name string) bool {
	switch strings.ToLower(name) {
	case "evalsha", "eval", "evalsha_ro", "eval_ro":
		return true
	}
	return false
}

// flush sends the waiting calls, up to maxBatch, in one pipeline, until
// Close. Calls still queued at Close are sent before it returns.
func (h *Hook) flush() {
	batch := make([]*call, 0, h.maxBatch)
	for {
		var first *call
		select {
		case first = <-h.calls:
		case <-h.stop:
			for {
				select {
				case first = <-h.calls:
					h.send(append(batch[:0], first))
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < h.maxBatch {
			select {
			case c := <-h.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		h.send(batch)
	}
}

// send runs one pipeline of the calls whose callers still wait, under the
// latest of their deadlines (none if one has none: the client's own
// timeouts apply), and hands each its reply.
func (h *Hook) send(batch []*call) {
	live := batch[:0]
	var deadline time.Time
	unbounded := false
	for _, c := range batch {
		if !c.state.CompareAndSwap(waiting, claimed) {
			continue // its caller gave up before it was sent
		}
		live = append(live, c)
		if d, ok := c.ctx.Deadline(); !ok {
			unbounded = true
		} else if d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background()
	if !unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	inner := make([]*redis.Cmd, len(live))
	_, _ = h.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range live {
			inner[i] = redis.NewCmd(ctx, c.args...)
			_ = p.Process(ctx, inner[i])
		}
		return nil
	}) // each command carries its own error
	h.batches.Add(1)
	h.sent.Add(int64(len(live)))
	for i, c := range live {
		c.val, c.err = inner[i].Val(), inner[i].Err()
		close(c.done)
	}
}
