// Package redisstats counts the round trips a go-redis client makes, for
// `hookline dev`'s statistics and for benchmarks that compare them with the
// items handled.
//
// A [Counter] is a go-redis hook: add it to a client with AddHook and read
// [Counter.RoundTrips]. It counts one round trip per command sent alone and
// one per pipeline or transaction, whatever its length. The commands a client
// sends by itself when it opens a connection (HELLO, CLIENT SETINFO) count
// too, a few per connection; a script run that falls back from EVALSHA to
// EVAL counts two. On a cluster client a pipeline counts once even when it
// is split across nodes.
package redisstats

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Counter counts round trips. Its zero value is ready to use, and it is safe
// for concurrent use.
type Counter struct {
	trips atomic.Int64
}

var _ redis.Hook = (*Counter)(nil)

// RoundTrips returns the round trips counted so far.
func (c *Counter) RoundTrips() int64 { return c.trips.Load() }

// DialHook implements redis.Hook; dialling is not counted.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook: one round trip per command.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: one round trip per pipeline.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}
