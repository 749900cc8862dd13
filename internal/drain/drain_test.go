package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/logbuf"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var start = time.UnixMilli(1_763_900_000_000)

type fixture struct {
	t     *testing.T
	ctx   context.Context
	clk   *clock.Fake
	e     *queue.Engine
	d     *Drainer
	route Route

	mu   sync.Mutex
	seen []string // "id@attempt" in handling order
}

// setup returns a drainer whose only route ("c") calls fn, with a fake clock.
func setup(t *testing.T, rdb redis.UniversalClient, route Route, mod ...func(*Options)) *fixture {
	t.Helper()
	clk := clock.NewFake(start)
	e, err := queue.New(rdb, queue.Options{Prefix: redistest.Prefix(t), Lanes: []string{"quick", "slow"}, Clock: clk, Jitter: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), clk: clk, e: e, route: route}
	inner := route.Handler
	f.route.Handler = handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
		f.mu.Lock()
		f.seen = append(f.seen, fmt.Sprintf("%s@%d", ev.ID, ev.Attempt))
		f.mu.Unlock()
		return inner.Handle(ctx, ev)
	})
	opt := Options{
		Routes: func(code string) (Route, bool) { return f.route, code == "c" },
		Clock:  clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Batch:  4,
	}
	for _, m := range mod {
		m(&opt)
	}
	if f.d, err = New(e, opt); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) enqueue(key string, ids ...string) {
	f.t.Helper()
	tenant, code, _ := strings.Cut(key, ":")
	for _, id := range ids {
		it := &queue.Item{ID: id, Tenant: tenant, Code: code, Body: []byte(`{"code":"` + code + `","data":{"n":"` + id + `"}}`)}
		if _, err := f.e.Enqueue(f.ctx, "quick", it); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) claim() queue.Lease {
	f.t.Helper()
	ls, err := f.e.Claim(f.ctx, "quick", 1)
	if err != nil || len(ls) != 1 {
		f.t.Fatalf("claim: %v %v", ls, err)
	}
	return ls[0]
}

func (f *fixture) run(l queue.Lease, inv string) Result {
	f.t.Helper()
	res, err := f.d.Run(f.ctx, l, inv, time.Time{})
	if err != nil {
		f.t.Fatalf("run: %v", err)
	}
	return res
}

func (f *fixture) seenIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func ok() handler.Handler {
	return handler.HandlerFunc(func(context.Context, *handler.Event) error { return nil })
}

func TestDrainHandlesInOrderAndEmpties(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var data []string
		f := setup(t, rdb, Route{Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			data = append(data, string(ev.Data))
			if ev.Key != "acme:c" || ev.Tenant != "acme" || ev.Code != "c" || ev.Token == 0 {
				return handler.Permanent(fmt.Errorf("bad event %+v", ev))
			}
			return nil
		})})
		f.enqueue("acme:c", "1", "2", "3", "4", "5", "6", "7", "8", "9")
		res := f.run(f.claim(), "inv")
		if res.Outcome != Emptied || res.Handled != 9 || res.Failed != 0 {
			t.Fatalf("result %+v", res)
		}
		if got := f.seenIDs(); !slices.Equal(got, []string{"1@1", "2@1", "3@1", "4@1", "5@1", "6@1", "7@1", "8@1", "9@1"}) {
			t.Fatalf("order %v", got)
		}
		if data[0] != `{"n":"1"}` {
			t.Fatalf("Data = %s", data[0])
		}
		if ls, _ := f.e.Claim(f.ctx, "quick", 1); len(ls) != 0 {
			t.Fatalf("emptied key still claimable")
		}
	})
}

// TestG2RetryAfterInPlace: a RetryAfter failure keeps the item at the head,
// and its key waits exactly that long.
func TestG2RetryAfterInPlace(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{MaxAttempts: 5, Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			if ev.ID == "1" && ev.Attempt == 1 {
				return handler.RetryAfter(7*time.Second, errors.New("upstream busy"))
			}
			return nil
		})})
		f.enqueue("acme:c", "1", "2", "3")
		if res := f.run(f.claim(), "a"); res.Outcome != Retrying || res.Failed != 1 {
			t.Fatalf("first run %+v", res)
		}
		f.clk.Advance(7*time.Second - time.Millisecond)
		if ls, _ := f.e.Claim(f.ctx, "quick", 1); len(ls) != 0 {
			t.Fatal("key claimable before its Retry-After")
		}
		f.clk.Advance(time.Millisecond)
		if res := f.run(f.claim(), "b"); res.Outcome != Emptied || res.Handled != 3 {
			t.Fatalf("second run %+v", res)
		}
		if got := f.seenIDs(); !slices.Equal(got, []string{"1@1", "1@2", "2@1", "3@1"}) {
			t.Fatalf("handling order %v", got)
		}
	})
}

// TestDrainDeadLetterAtMaxAttempts: the item dead-letters at max attempts
// and the key goes on with the next item in the same drain.
func TestDrainDeadLetterAtMaxAttempts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{MaxAttempts: 2, Policy: queue.DeadLetter, Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			if ev.ID == "bad" {
				return errors.New("HTTP 500")
			}
			return nil
		})})
		f.enqueue("acme:c", "bad", "next")
		if res := f.run(f.claim(), "a"); res.Outcome != Retrying {
			t.Fatalf("run 1 %+v", res)
		}
		f.clk.Advance(time.Minute)
		res := f.run(f.claim(), "b")
		if res.Outcome != Emptied || res.Dead != 1 || res.Handled != 1 {
			t.Fatalf("run 2 %+v", res)
		}
		dead, err := f.e.DeadItems(f.ctx, "acme:c", 0, 10)
		if err != nil || len(dead) != 1 || dead[0].Item.ID != "bad" || dead[0].Attempts != 2 || dead[0].Reason != "HTTP 500" {
			t.Fatalf("dead letters %+v %v", dead, err)
		}
	})
}

func TestDrainPermanentAndNoRoute(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{MaxAttempts: 9, Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			if ev.ID == "p" {
				return handler.Permanent(errors.New("HTTP 404"))
			}
			return nil
		})})
		f.enqueue("acme:c", "p", "q")
		f.enqueue("acme:unrouted", "u")
		if res := f.run(f.claim(), "a"); res.Outcome != Emptied || res.Dead != 1 || res.Handled != 1 {
			t.Fatalf("run %+v", res)
		}
		if res := f.run(f.claim(), "b"); res.Outcome != Emptied || res.Dead != 1 {
			t.Fatalf("unrouted run %+v", res)
		}
		dead, _ := f.e.DeadItems(f.ctx, "acme:unrouted", 0, 10)
		if len(dead) != 1 || !strings.Contains(dead[0].Reason, "no route") {
			t.Fatalf("unrouted dead letter %+v", dead)
		}
	})
}

func TestDrainParkAtMaxAttempts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{MaxAttempts: 1, Policy: queue.Park, Handler: handler.HandlerFunc(func(context.Context, *handler.Event) error {
			return errors.New("ledger closed")
		})})
		f.enqueue("acme:c", "x", "y")
		if res := f.run(f.claim(), "a"); res.Outcome != Parked {
			t.Fatalf("run %+v", res)
		}
		info, err := f.e.Inspect(f.ctx, "acme:c")
		if err != nil || !info.Paused || info.Depth != 2 {
			t.Fatalf("inspect %+v %v", info, err)
		}
		f.clk.Advance(time.Hour)
		if ls, _ := f.e.Claim(f.ctx, "quick", 1); len(ls) != 0 {
			t.Fatal("parked key claimed")
		}
	})
}

func TestDrainPanicIsRetried(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb, Route{MaxAttempts: 3, Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			if ev.Attempt == 1 {
				panic("nil map")
			}
			return nil
		})})
		f.enqueue("acme:c", "x")
		if res := f.run(f.claim(), "a"); res.Outcome != Retrying {
			t.Fatalf("run %+v", res)
		}
		info, _ := f.e.Inspect(f.ctx, "acme:c")
		if info.Attempts != 1 || !strings.Contains(info.LastError, "handler panic: nil map") {
			t.Fatalf("inspect %+v", info)
		}
		f.clk.Advance(time.Minute)
		if res := f.run(f.claim(), "b"); res.Outcome != Emptied || res.Handled != 1 {
			t.Fatalf("retry %+v", res)
		}
	})
}

// TestG3DuplicateDrainEventDoesNothing: a second delivery of the same drain
// event, while the first runs or after it finished, calls no handler.
func TestG3DuplicateDrainEventDoesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		f := setup(t, rdb, Route{Handler: handler.HandlerFunc(func(context.Context, *handler.Event) error {
			once.Do(func() { close(entered); <-release })
			return nil
		})})
		f.enqueue("acme:c", "1", "2")
		l := f.claim()
		done := make(chan Result)
		go func() { done <- f.run(l, "first") }()
		<-entered
		if res := f.run(l, "second"); res.Outcome != Duplicate {
			t.Fatalf("duplicate while running: %+v", res)
		}
		// Lambda may duplicate an event with its request id: still refused.
		if res := f.run(l, "first"); res.Outcome != Duplicate {
			t.Fatalf("duplicate with the same request id while running: %+v", res)
		}
		close(release)
		if res := <-done; res.Outcome != Emptied || res.Handled != 2 {
			t.Fatalf("first: %+v", res)
		}
		if res := f.run(l, "late"); res.Outcome != LeaseLost {
			t.Fatalf("late delivery: %+v", res)
		}
		if got := f.seenIDs(); !slices.Equal(got, []string{"1@1", "2@1"}) {
			t.Fatalf("handler calls %v", got)
		}
	})
}

// TestG5DrainYieldsAfterQuantum: a drain stops at its lane's quantum and the
// key goes to the back of the ready order.
func TestG5DrainYieldsAfterQuantum(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var f *fixture
		f = setup(t, rdb, Route{Handler: handler.HandlerFunc(func(context.Context, *handler.Event) error {
			f.clk.Advance(300 * time.Millisecond)
			return nil
		})}, func(o *Options) { o.Quantum = map[string]time.Duration{"quick": time.Second} })
		f.enqueue("hot:c", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
		f.clk.Advance(time.Millisecond)
		f.enqueue("cold:c", "x")
		res := f.run(f.claim(), "a")
		if res.Outcome != Yielded || res.Handled != 4 {
			t.Fatalf("run %+v, want yielded after 4 items (4 x 300ms >= 1s)", res)
		}
		if l := f.claim(); l.Key != "cold:c" {
			t.Fatalf("after yield, claimed %s; want the cold key first", l.Key)
		}
		if l := f.claim(); l.Key != "hot:c" {
			t.Fatalf("then %s; want the hot key", l.Key)
		}
	})
}

// TestG6ThrottledYieldsWithoutAttempt: a rate-limit wait yields the key
// until the slot, without counting an attempt.
func TestG6ThrottledYieldsWithoutAttempt(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var f *fixture
		f = setup(t, rdb, Route{Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			if ev.ID == "2" && f.clk.Now().Before(start.Add(10*time.Second)) {
				return handler.Throttled(start.Add(10 * time.Second))
			}
			return nil
		})})
		f.enqueue("acme:c", "1", "2")
		res := f.run(f.claim(), "a")
		if res.Outcome != Throttled || res.Handled != 1 || res.Failed != 0 {
			t.Fatalf("run %+v", res)
		}
		info, _ := f.e.Inspect(f.ctx, "acme:c")
		if info.Attempts != 0 || info.Depth != 1 {
			t.Fatalf("throttling counted an attempt: %+v", info)
		}
		f.clk.Set(start.Add(10*time.Second - time.Millisecond))
		if ls, _ := f.e.Claim(f.ctx, "quick", 1); len(ls) != 0 {
			t.Fatal("claimable before the rate-limit slot")
		}
		f.clk.Set(start.Add(10 * time.Second))
		if res := f.run(f.claim(), "b"); res.Outcome != Emptied {
			t.Fatalf("after slot %+v", res)
		}
	})
}

// TestDrainStopsBeforeDeadline: the drain leaves the invocation's margin
// free and yields.
func TestDrainStopsBeforeDeadline(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var f *fixture
		f = setup(t, rdb, Route{Handler: handler.HandlerFunc(func(context.Context, *handler.Event) error {
			f.clk.Advance(time.Second)
			return nil
		})}, func(o *Options) { o.Margin = 3 * time.Second })
		f.enqueue("acme:c", "1", "2", "3", "4", "5", "6", "7", "8")
		res, err := f.d.Run(f.ctx, f.claim(), "a", start.Add(5*time.Second))
		if err != nil || res.Outcome != Yielded || res.Handled != 2 {
			t.Fatalf("run %+v %v; want 2 items handled before deadline-3s", res, err)
		}
	})
}

// TestDrainRedisFailureIsErrorNotLeaseLost: Redis stopped, or hung past the
// client's read timeout, during the step that acks a handled item ends the
// drain with the Error outcome and the error, never LeaseLost (the lease's
// token did not lose). Nothing is lost: the unacked item stays queued, and
// once the lease ran out the key's next drain handles it and the items
// behind it, in order.
func TestDrainRedisFailureIsErrorNotLeaseLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// fail makes Redis fail the ack of item 2; heal brings it back.
		fail, heal func(*redistest.Server, testing.TB)
		// again: item 2 must be handled a second time (its ack never ran).
		again bool
	}{
		// Stopped: the ack cannot reach Redis (AOF keeps the queue across
		// the restart).
		{"stopped", []string{"--appendonly", "yes"}, (*redistest.Server).Stop, (*redistest.Server).Restart, true},
		// Hung: the ack times out. Redis may still run it once resumed, so
		// item 2 is handled once or twice.
		{"timeout", nil, (*redistest.Server).Pause, (*redistest.Server).Resume, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t, tc.args...)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 300 * time.Millisecond,
				ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
			t.Cleanup(func() { _ = rdb.Close() })
			var logs logbuf.Buffer
			var once sync.Once
			f := setup(t, rdb, Route{Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
				if ev.ID == "2" {
					once.Do(func() { tc.fail(srv, t) })
				}
				return nil
			})}, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			f.enqueue("acme:c", "1", "2", "3")

			res, err := f.d.Run(f.ctx, f.claim(), "a", time.Time{})
			if err == nil || errors.Is(err, queue.ErrLeaseLost) || res.Outcome != Error || res.Handled != 1 || res.Keys != 1 {
				t.Fatalf("run with Redis failing = %+v, %v; want outcome error with a Redis error after 1 item handled", res, err)
			}
			for _, want := range []string{"id=2 attempt=1 result=error", "drain stopped: redis step failed", "outcome=error"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("logs lack %q:\n%s", want, logs.String())
				}
			}

			tc.heal(srv, t)
			f.clk.Advance(time.Minute) // the lease runs out by itself
			if res := f.run(f.claim(), "b"); res.Outcome != Emptied || res.Handled < 1 {
				t.Fatalf("next drain %+v; want the rest handled", res)
			}
			seen := f.seenIDs()
			if tc.again && !slices.Equal(seen, []string{"1@1", "2@1", "2@1", "3@1"}) {
				t.Fatalf("handled %v; want item 2 handled again, then 3", seen)
			}
			if got := slices.Compact(slices.Clone(seen)); !slices.Equal(got, []string{"1@1", "2@1", "3@1"}) {
				t.Fatalf("handled %v; want every item, in order", seen)
			}
			info, err := f.e.Inspect(f.ctx, "acme:c")
			if err != nil || info.Depth != 0 || info.Dead != 0 {
				t.Fatalf("after the drains: %+v %v; want an empty queue and no dead letter", info, err)
			}
		})
	}
}

// TestDrainAdmitsEachItem: Options.Admit is asked before each item and its
// done func called after the item, before the next is asked (hookline dev
// holds items back with it while webhooks need the CPU).
func TestDrainAdmitsEachItem(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var mu sync.Mutex
		var trace []string
		f := setup(t, rdb, Route{Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			mu.Lock()
			trace = append(trace, "handle "+ev.ID)
			mu.Unlock()
			return nil
		})}, func(o *Options) {
			o.Admit = func(context.Context) func() {
				mu.Lock()
				trace = append(trace, "admit")
				mu.Unlock()
				return func() {
					mu.Lock()
					trace = append(trace, "done")
					mu.Unlock()
				}
			}
		})
		f.enqueue("acme:c", "1", "2", "3")
		if res := f.run(f.claim(), "a"); res.Outcome != Emptied || res.Handled != 3 {
			t.Fatalf("run %+v", res)
		}
		want := []string{"admit", "handle 1", "done", "admit", "handle 2", "done", "admit", "handle 3", "done"}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(trace, want) {
			t.Fatalf("trace %q, want %q", trace, want)
		}
	})
}
