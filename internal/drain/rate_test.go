package drain

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

// withLimiter gives the drainer a limiter on the fixture's clock, without
// a margin, and the sleep bound maxWait (0: the default).
func withLimiter(t *testing.T, rdb redis.UniversalClient, maxWait time.Duration) func(*Options) {
	return func(o *Options) {
		lim, err := ratelimit.New(rdb, ratelimit.Options{Prefix: redistest.Prefix(t), Clock: o.Clock, Margin: -1})
		if err != nil {
			t.Fatal(err)
		}
		o.Limiter, o.MaxRateWait = lim, maxWait
	}
}

// yieldedUntil checks that the throttled key holds its head item with no
// attempt counted and is not claimable before at, then moves the clock to
// at.
func (f *fixture) yieldedUntil(key string, at time.Time) {
	f.t.Helper()
	if info, err := f.e.Inspect(f.ctx, key); err != nil || info.Attempts != 0 || info.Depth < 1 {
		f.t.Fatalf("throttled key %s: %+v %v, want its items and no attempt counted", key, info, err)
	}
	f.clk.Set(at.Add(-time.Millisecond))
	if ls, _ := f.e.Claim(f.ctx, "quick", 1); len(ls) != 0 {
		f.t.Fatalf("%s claimable before %s", key, at.Sub(start))
	}
	f.clk.Set(at)
}

// TestG6DrainRateLimitsAnyHandler: the drain reserves a route's rate-limit
// slot before calling its handler, whatever the handler: a call within
// MaxRateWait of its slot sleeps to it, one further away yields the key
// until half the bound before the slot, with no attempt used and the
// handler not called.
func TestG6DrainRateLimitsAnyHandler(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{Handler: ok(), Rate: ratelimit.Rate{N: 1, Per: 10 * time.Second}, Endpoint: "crm-sync"},
			withLimiter(t, rdb, time.Second))
		f.enqueue("acme:c", "1", "2")
		res := f.run(f.claim(), "a")
		if res.Outcome != Throttled || res.Handled != 1 || res.Failed != 0 {
			t.Fatalf("run %+v", res)
		}
		if got := f.seenIDs(); !slices.Equal(got, []string{"1@1"}) {
			t.Fatalf("handler calls %v, want only the first item's", got)
		}
		// The key is ready half the 1s bound before the slot at +10s.
		f.yieldedUntil("acme:c", start.Add(9500*time.Millisecond))
		if res := f.run(f.claim(), "b"); res.Outcome != Emptied || res.Handled != 1 {
			t.Fatalf("at the slot %+v", res)
		}
		// Another tenant has its own bucket.
		f.enqueue("other:c", "3")
		if res := f.run(f.claim(), "c"); res.Outcome != Emptied || res.Handled != 1 {
			t.Fatalf("another tenant %+v", res)
		}
	})
}

// TestDrainDefaultRateWait: by default a call sleeps at most 50ms for its
// rate-limit slot, and the handler sees the wait in Event.RateWait and the
// drain's result the longest one; a later slot yields the key until 25ms
// (half the bound) before it.
func TestDrainDefaultRateWait(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		for _, c := range []struct {
			per       time.Duration
			throttled bool
		}{{40 * time.Millisecond, false}, {100 * time.Millisecond, true}} {
			var waits []time.Duration
			f := setup(t, rdb, Route{Rate: ratelimit.Rate{N: 1, Per: c.per}, Endpoint: "e" + c.per.String(),
				Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
					waits = append(waits, ev.RateWait)
					return nil
				})}, withLimiter(t, rdb, 0))
			f.enqueue("acme:c", "1", "2")
			res := f.run(f.claim(), "a")
			if got := res.Outcome == Throttled; got != c.throttled {
				t.Fatalf("1/%s: %+v, want throttled %v", c.per, res, c.throttled)
			}
			if !c.throttled && (len(waits) != 2 || waits[0] != 0 || waits[1] <= 0 || waits[1] > c.per) {
				t.Fatalf("1/%s: RateWait %v, want 0 then the sleep for the slot (0 < wait <= %v)", c.per, waits, c.per)
			}
			if !c.throttled && res.RateWaitMaxMs != ms(waits[1]) {
				t.Fatalf("1/%s: result's longest rate-limit sleep %v ms, want the slept %v", c.per, res.RateWaitMaxMs, waits[1])
			}
			if c.throttled && res.RateWaitMaxMs != 0 {
				t.Fatalf("1/%s: result's longest rate-limit sleep %v ms, want 0 (it yielded instead)", c.per, res.RateWaitMaxMs)
			}
			if c.throttled {
				f.yieldedUntil("acme:c", start.Add(c.per-25*time.Millisecond))
				if res := f.run(f.claim(), "b"); res.Outcome != Emptied {
					t.Fatalf("1/%s: after the slot %+v", c.per, res)
				}
			}
		}
	})
}

// TestDrainRouteTimeout: the route's timeout is the deadline of each handler
// call, for any handler; a call that runs into it fails and is retried.
func TestDrainRouteTimeout(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{Timeout: 50 * time.Millisecond, MaxAttempts: 3, Handler: handler.HandlerFunc(func(ctx context.Context, _ *handler.Event) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("the route's timeout did not end the call")
			}
		})})
		f.enqueue("acme:c", "1")
		if res := f.run(f.claim(), "a"); res.Outcome != Retrying || res.Failed != 1 {
			t.Fatalf("run %+v", res)
		}
		info, _ := f.e.Inspect(f.ctx, "acme:c")
		if info.Attempts != 1 || !strings.Contains(info.LastError, context.DeadlineExceeded.Error()) {
			t.Fatalf("after the timeout: attempts %d, last error %q", info.Attempts, info.LastError)
		}
	})
}

// TestDrainRateWithoutLimiter: a route with a rate on a drainer without a
// limiter never calls its handler unlimited: the item fails and is retried.
func TestDrainRateWithoutLimiter(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{Handler: ok(), MaxAttempts: 2, Policy: queue.DeadLetter, Rate: ratelimit.Rate{N: 2, Per: time.Second}, Endpoint: "x"})
		f.enqueue("acme:c", "1")
		if res := f.run(f.claim(), "a"); res.Outcome != Retrying || len(f.seenIDs()) != 0 {
			t.Fatalf("run %+v, calls %v", res, f.seenIDs())
		}
	})
}
