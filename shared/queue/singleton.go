package queue

import (
	"context"
	"fmt"
	"time"
)

// AcquireSingleton takes or renews the singleton lease name for owner until
// now+ttl. It reports false, changing nothing, while another owner's lease is
// live. The scheduler uses it so that a second scheduler exits at once.
func (e *Engine) AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	ok, err := singletonCmd.Run(ctx, e.rdb, []string{e.ks.singleton(name)}, owner, e.nowMs(), ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("queue: singleton %s: %w", name, err)
	}
	return ok == 1, nil
}

// ReleaseSingleton gives up the singleton lease name if owner holds it.
func (e *Engine) ReleaseSingleton(ctx context.Context, name, owner string) error {
	if err := unsingletonCmd.Run(ctx, e.rdb, []string{e.ks.singleton(name)}, owner).Err(); err != nil {
		return fmt.Errorf("queue: release singleton %s: %w", name, err)
	}
	return nil
}
