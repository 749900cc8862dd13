package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A singleton lease lets one process at a time do a job (the scheduler
// dispatches drains). The others stand by: they retry AcquireSingleton, and
// wait between tries with WaitSingleton, which a release ends at once, so a
// lease given up on purpose passes on without a gap.

// AcquireSingleton takes or renews the singleton lease name for owner until
// now+ttl. It reports false, changing nothing, while another owner's lease is
// live. The scheduler uses it so that one scheduler dispatches at a time.
func (e *Engine) AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	ok, err := singletonCmd.Run(ctx, e.rdb, []string{e.ks.singleton(name)}, owner, e.nowMs(), ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("queue: singleton %s: %w", name, err)
	}
	return ok == 1, nil
}

// ReleaseSingleton gives up the singleton lease name if owner holds it, and
// then tells a standby waiting in WaitSingleton that the lease is free. It
// reports whether owner held the lease.
func (e *Engine) ReleaseSingleton(ctx context.Context, name, owner string) (bool, error) {
	n, err := unsingletonCmd.Run(ctx, e.rdb, []string{e.ks.singleton(name)}, owner).Int64()
	if err != nil {
		return false, fmt.Errorf("queue: release singleton %s: %w", name, err)
	}
	if n != 1 {
		return false, nil
	}
	// The signal is one list element at most, like Wake's. It is not part
	// of the script: the list is another slot in a cluster, and a lost
	// signal only makes the standby wait for its next try.
	key := e.ks.handoff(name)
	_, err = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, "1")
		p.LTrim(ctx, key, 0, 0)
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("queue: signal release of singleton %s: %w", name, err)
	}
	return true, nil
}

// WaitSingleton blocks until a holder of the singleton lease name releases
// it (ReleaseSingleton) or d passes, and reports whether a release ended the
// wait. d is at least 1 ms; beyond 1 s it is cut to whole seconds. Only one
// of several waiters sees a release; the others wait out d.
func (e *Engine) WaitSingleton(ctx context.Context, name string, d time.Duration) (bool, error) {
	key := e.ks.handoff(name)
	var err error
	if d < time.Second {
		// Under the client's read timeout (3 s by default).
		secs := strconv.FormatFloat(max(d, time.Millisecond).Seconds(), 'f', 3, 64)
		err = e.rdb.Do(ctx, "BLPOP", key, secs).Err()
	} else {
		// BLPop takes whole seconds and reads its answer for that long.
		err = e.rdb.BLPop(ctx, d.Truncate(time.Second), key).Err()
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("queue: wait for singleton %s: %w", name, err)
}
