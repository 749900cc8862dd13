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

// singletonCmd takes or renews a singleton lease (one scheduler at a time).
//
// KEYS[1] -> <p>:singleton:<name>
// ARGV[1] -> owner   ARGV[2] -> now ms   ARGV[3] -> ttl ms
//
// Returns 1 if owner holds the lease until now+ttl, 0 if another owner's
// lease is live. The PX expiry only cleans up; liveness follows ARGV now.
var singletonCmd = newScript(`
local v = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[2])
if v then
  local o, dl = string.match(v, '^(.*)|(%d+)$')
  if o ~= ARGV[1] and dl and tonumber(dl) > now then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. (now + tonumber(ARGV[3])), 'PX', ARGV[3])
return 1
`)

// singletonArgs fills singletonCmd's KEYS and ARGV.
type singletonArgs struct {
	key, owner string
	now, ttl   int64
}

func (a singletonArgs) keys() []string {
	return []string{
		a.key, // KEYS[1]
	}
}

func (a singletonArgs) argv() []any {
	return []any{
		a.owner, // ARGV[1]
		a.now,   // ARGV[2]
		a.ttl,   // ARGV[3]
	}
}

// AcquireSingleton takes or renews the singleton lease name for owner until
// now+ttl. It reports false, changing nothing, while another owner's lease is
// live. The scheduler uses it so that one scheduler dispatches at a time.
func (e *Engine) AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	ok, err := e.run(ctx, singletonCmd, singletonArgs{key: e.ks.singleton(name), owner: owner, now: e.nowMs(), ttl: ttl.Milliseconds()}).Int64()
	if err != nil {
		return false, fmt.Errorf("queue: singleton %s: %w", name, err)
	}
	return ok == 1, nil
}

// unsingletonCmd gives up a singleton lease if owner holds it.
//
// KEYS[1] -> <p>:singleton:<name>
// ARGV[1] -> owner
//
// Returns 1 if released, 0 if owner did not hold it.
var unsingletonCmd = newScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)|%d+$') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// unsingletonArgs fills unsingletonCmd's KEYS and ARGV.
type unsingletonArgs struct{ key, owner string }

func (a unsingletonArgs) keys() []string {
	return []string{
		a.key, // KEYS[1]
	}
}

func (a unsingletonArgs) argv() []any {
	return []any{
		a.owner, // ARGV[1]
	}
}

// ReleaseSingleton gives up the singleton lease name if owner holds it, and
// then tells a standby waiting in WaitSingleton that the lease is free. It
// reports whether owner held the lease.
func (e *Engine) ReleaseSingleton(ctx context.Context, name, owner string) (bool, error) {
	n, err := e.run(ctx, unsingletonCmd, unsingletonArgs{key: e.ks.singleton(name), owner: owner}).Int64()
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
