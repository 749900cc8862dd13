package autopipe_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/autopipe"
	"github.com/hookline/hookline/internal/redisstats"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// piped returns a client of its own on rdb's server(s) (hooks stay on the
// client they are added to) with a Hook of flushers flushers.
func piped(t *testing.T, rdb redis.UniversalClient, flushers int) (redis.UniversalClient, *autopipe.Hook) {
	t.Helper()
	var own redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.Client:
		own = redis.NewClient(&redis.Options{Addr: r.Options().Addr, ContextTimeoutEnabled: true})
	case *redis.ClusterClient:
		own = redis.NewClusterClient(&redis.ClusterOptions{Addrs: r.Options().Addrs, ContextTimeoutEnabled: true})
	}
	t.Cleanup(func() { _ = own.Close() })
	h := autopipe.Add(own, flushers)
	t.Cleanup(h.Close)
	return own, h
}

// echo returns its key's new counter value and ARGV[1]; it fails when
// ARGV[1] is "fail".
var echo = redis.NewScript(`
if ARGV[1] == 'fail' then return redis.error_reply('ERR asked to fail') end
local n = redis.call('INCR', KEYS[1])
return {n, ARGV[1]}
`)

// TestConcurrentCallsShareRoundTrips: 64 goroutines x 50 script calls each
// get their own reply (or their own error) in their own order, and the
// calls go in fewer round trips than calls.
func TestConcurrentCallsShareRoundTrips(t *testing.T) {
	t.Parallel()
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		p := redistest.Prefix(t)
		own, h := piped(t, rdb, 2)
		var trips redisstats.Counter
		own.AddHook(&trips)
		if err := echo.Load(ctx, own).Err(); err != nil {
			t.Fatal(err)
		}
		before := trips.RoundTrips()

		const workers, each = 64, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				key := fmt.Sprintf("%s:{w%d}", p, w)
				for i := range each {
					arg := fmt.Sprintf("%d-%d", w, i)
					if i%10 == 9 {
						arg = "fail"
					}
					v, err := echo.Run(ctx, own, []string{key}, arg).Slice()
					if arg == "fail" {
						if err == nil || err.Error() != "ERR asked to fail" {
							errs <- fmt.Errorf("%s: want its own error, got %v %v", key, v, err)
							return
						}
						continue
					}
					want := int64(i - i/10 + 1) // the failed calls do not count
					if err != nil || len(v) != 2 || v[0] != want || v[1] != arg {
						errs <- fmt.Errorf("%s call %d: got %v %v, want [%d %s]", key, i, v, err, want, arg)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		pipes, calls := h.Stats()
		rt := trips.RoundTrips() - before
		t.Logf("%d calls in %d pipelines (%.1f calls each); %d round trips counted", calls, pipes, float64(calls)/float64(max(pipes, 1)), rt)
		if calls != workers*each {
			t.Errorf("calls through the flushers = %d, want %d", calls, workers*each)
		}
		if rt >= workers*each {
			t.Errorf("round trips = %d for %d calls: nothing was shared", rt, workers*each)
		}
	})
}

// TestCallerLeavesAtItsDeadline: while Redis is busy in a slow script, a
// call with a 50 ms deadline returns its context's error in time, and a call
// without one, coalesced with it, still gets its reply.
func TestCallerLeavesAtItsDeadline(t *testing.T) {
	t.Parallel()
	rdb := redistest.Standalone(t)
	ctx := context.Background()
	p := redistest.Prefix(t)
	own, _ := piped(t, rdb, 1)
	if err := echo.Load(ctx, own).Err(); err != nil {
		t.Fatal(err)
	}

	// Another client keeps Redis busy for 400 ms.
	busy := redis.NewScript(`local t = redis.call('TIME'); local s = t[1]*1000000+t[2]
while true do local n = redis.call('TIME'); if n[1]*1000000+n[2] - s > 400000 then break end end
return 1`)
	slow := make(chan error, 1)
	go func() { slow <- busy.Run(ctx, rdb, []string{p + ":busy"}).Err() }()
	time.Sleep(50 * time.Millisecond)

	unbounded := make(chan error, 1)
	go func() { unbounded <- echo.Run(ctx, own, []string{p + ":a"}, "x").Err() }()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := echo.Run(short, own, []string{p + ":b"}, "y").Err()
	took := time.Since(start)
	t.Logf("the 50 ms call returned after %v: %v", took, err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if took > 250*time.Millisecond {
		t.Errorf("the 50 ms call returned after %v, long after its deadline", took)
	}
	if err := <-unbounded; err != nil {
		t.Errorf("the call without deadline: %v", err)
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

// TestOtherCommandsAndFallback: commands other than scripts go as before
// (a blocking BLPOP keeps its own timeout), a script missing from the cache
// falls back to EVAL through the flushers, and after Close calls go alone.
func TestOtherCommandsAndFallback(t *testing.T) {
	t.Parallel()
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		p := redistest.Prefix(t)
		own, h := piped(t, rdb, 2)
		key := p + ":{k}"
		if err := own.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := own.Get(ctx, key).Result(); err != nil || v != "v" {
			t.Fatalf("GET = %q %v", v, err)
		}
		start := time.Now()
		if err := own.BLPop(ctx, 200*time.Millisecond, p+":{k}empty").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("BLPOP = %v, want redis.Nil", err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("BLPOP returned after %v, before its timeout", d)
		}
		var err error
		switch c := own.(type) {
		case *redis.ClusterClient:
			err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() })
		default:
			err = own.ScriptFlush(ctx).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		if v, err := echo.Run(ctx, own, []string{p + ":{k}n"}, "z").Slice(); err != nil || v[1] != "z" {
			t.Fatalf("after SCRIPT FLUSH: %v %v", v, err)
		}
		_, calls := h.Stats()
		if calls != 2 { // EVALSHA met NOSCRIPT, then EVAL
			t.Errorf("calls through the flushers = %d, want 2 (EVALSHA, EVAL)", calls)
		}
		h.Close()
		if v, err := echo.Run(ctx, own, []string{p + ":{k}n"}, "after").Slice(); err != nil || v[1] != "after" {
			t.Fatalf("after Close: %v %v", v, err)
		}
		if _, calls := h.Stats(); calls != 2 {
			t.Errorf("after Close a call went through the flushers")
		}
	})
}
