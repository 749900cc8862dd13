package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// lanes of the test routes: codes starting with "slow" go to the slow lane.
func laneOf(code string) string {
	if strings.HasPrefix(code, "slow") {
		return "slow"
	}
	return "quick"
}

// gauge tracks the handlers running per lane and the most seen at once.
type gauge struct {
	mu       sync.Mutex
	now, max map[string]int
	done     map[string]int
}

func newGauge() *gauge {
	return &gauge{now: map[string]int{}, max: map[string]int{}, done: map[string]int{}}
}

func (g *gauge) enter(lane string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now[lane]++
	g.max[lane] = max(g.max[lane], g.now[lane])
}

func (g *gauge) leave(lane string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now[lane]--
	g.done[lane]++
}

func (g *gauge) read(lane string) (max, done int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.max[lane], g.done[lane]
}

type rig struct {
	t     *testing.T
	ctx   context.Context
	e     *queue.Engine
	async *drain.Async
	g     *gauge
}

// newRig builds an engine, and a drainer whose handler holds each item for
// hold[lane] (real time) while the gauge counts it.
func newRig(t *testing.T, rdb redis.UniversalClient, hold map[string]time.Duration) *rig {
	t.Helper()
	e, err := queue.New(rdb, queue.Options{Prefix: redistest.Prefix(t), Lanes: []string{"quick", "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	g := newGauge()
	h := handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
		lane := laneOf(ev.Code)
		g.enter(lane)
		defer g.leave(lane)
		time.Sleep(hold[lane]) // simulated work, not a wait for a condition
		return nil
	})
	d, err := drain.New(e, drain.Options{
		Routes: func(string) (drain.Route, bool) { return drain.Route{Handler: h}, true },
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, ctx: context.Background(), e: e, async: drain.NewAsync(d), g: g}
}

func (r *rig) enqueue(keys int, code string, items int) {
	r.t.Helper()
	var entries []queue.Entry
	for k := range keys {
		for i := range items {
			entries = append(entries, queue.Entry{Lane: laneOf(code), Item: &queue.Item{
				ID: fmt.Sprintf("i%d", i), Tenant: fmt.Sprintf("t%03d", k), Code: code, Body: []byte(`{"code":"x","data":{}}`)}})
		}
	}
	if _, err := r.e.EnqueueBatch(r.ctx, entries); err != nil {
		r.t.Fatal(err)
	}
}

// runUntil runs the scheduler until cond holds (checked every 5ms, for at
// most 60s), then stops it and waits for the drains.
func (r *rig) runUntil(s *Scheduler, cond func() bool) Stats {
	r.t.Helper()
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var st Stats
	var err error
	done := make(chan struct{})
	go func() { st, err = s.Run(ctx, time.Time{}); close(done) }()
	limit := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(limit) {
			r.t.Fatal("condition not reached in 60s")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	cancel()
	<-done
	r.async.Wait()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// TestG7LaneCapNeverExceeded: concurrent drains per lane never exceed the
// lane's concurrency, and keys do run in parallel up to it.
func TestG7LaneCapNeverExceeded(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, map[string]time.Duration{"quick": 15 * time.Millisecond, "slow": 15 * time.Millisecond})
		r.enqueue(24, "order.sync", 2)
		r.enqueue(6, "slow.export", 2)
		s, err := New(r.e, r.async, Options{Lanes: map[string]int{"quick": 3, "slow": 1}, Poll: 5 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		st := r.runUntil(s, func() bool {
			_, q := r.g.read("quick")
			_, sl := r.g.read("slow")
			return q == 48 && sl == 12
		})
		qmax, _ := r.g.read("quick")
		smax, _ := r.g.read("slow")
		if qmax > 3 || smax > 1 {
			t.Fatalf("concurrency exceeded: quick %d (cap 3), slow %d (cap 1)", qmax, smax)
		}
		if qmax < 2 {
			t.Fatalf("quick lane never ran keys in parallel (max %d)", qmax)
		}
		// Drains are work-conserving: each takes the lane's next ready key
		// in its slot, so the 30 keys need about one dispatch per slot, not
		// one per key.
		if !st.Leader || st.Dispatched < 2 || st.Dispatched > 8 {
			t.Fatalf("stats %+v: want 2..8 dispatches for 30 keys on 4 slots", st)
		}
	})
}

// TestG7SlowBacklogDoesNotDelayQuick: with the slow lane full of work, quick
// keys enqueued after it are all done while the slow backlog is still there.
func TestG7SlowBacklogDoesNotDelayQuick(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, map[string]time.Duration{"quick": time.Millisecond, "slow": 40 * time.Millisecond})
		r.enqueue(40, "slow.report", 1)
		r.enqueue(10, "post.create", 3)
		s, err := New(r.e, r.async, Options{Lanes: map[string]int{"quick": 2, "slow": 2}, Poll: 5 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		var slowAtQuickDone int
		r.runUntil(s, func() bool {
			_, q := r.g.read("quick")
			if q == 30 {
				_, slowAtQuickDone = r.g.read("slow")
				return true
			}
			return false
		})
		if slowAtQuickDone >= 40 {
			t.Fatalf("quick lane finished only after the whole slow backlog (%d slow done)", slowAtQuickDone)
		}
		t.Logf("quick lane done (30 items) while the slow lane had done %d of 40", slowAtQuickDone)
	})
}

// TestG3SecondSchedulerStandsBy: two schedulers never lead at once. The
// second stands by until its own stop time, dispatching nothing, and takes
// over when the first stops.
func TestG3SecondSchedulerStandsBy(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, nil)
		r.enqueue(1, "order.sync", 1)
		leading := make(chan struct{})
		var once sync.Once
		a, _ := New(r.e, InvokerFunc(func(ctx context.Context, l queue.Lease) error {
			once.Do(func() { close(leading) }) // a holds the lease and has dispatched
			return r.async.Invoke(ctx, l)
		}), Options{Lanes: map[string]int{"quick": 1}, Poll: 5 * time.Millisecond, Logger: quiet})
		var claimsB atomic.Int64
		b, _ := New(r.e, InvokerFunc(func(context.Context, queue.Lease) error { claimsB.Add(1); return nil }),
			Options{Lanes: map[string]int{"quick": 1}, Poll: 20 * time.Millisecond, Margin: 100 * time.Millisecond, Logger: quiet})
		ctx, cancel := context.WithCancel(r.ctx)
		done := make(chan Stats)
		go func() {
			st, _ := a.Run(ctx, time.Time{})
			done <- st
		}()
		<-leading
		begin := time.Now()
		r.enqueue(3, "post.create", 1) // work for a, never for b
		st, err := b.Run(r.ctx, time.Now().Add(600*time.Millisecond))
		if err != nil || st.Leader || st.Polls != 0 || claimsB.Load() != 0 {
			t.Fatalf("second scheduler: %+v %v; want it to stand by and dispatch nothing", st, err)
		}
		if d := time.Since(begin); d < 400*time.Millisecond {
			t.Fatalf("second scheduler returned after %v; want it to stand by until its stop time (500ms)", d)
		}
		cancel()
		if st := <-done; !st.Leader {
			t.Fatalf("first scheduler was not leader: %+v", st)
		}
		r.async.Wait()
		// After the first one stops, the next scheduler takes over at once.
		r.enqueue(3, "post.update", 1)
		ctx2, cancel2 := context.WithTimeout(r.ctx, 100*time.Millisecond)
		defer cancel2()
		if st, _ := b.Run(ctx2, time.Time{}); !st.Leader || claimsB.Load() == 0 {
			t.Fatalf("lease not handed over when the first scheduler stopped: %+v", st)
		}
	})
}

// TestStandbyTakesOverWhenTheLeaderStops: a leader that reaches its stop
// time releases the lease, and the scheduler standing by leads at once, not
// at its next try (its poll is 3s).
func TestStandbyTakesOverWhenTheLeaderStops(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, nil)
		// A quick key is ready from the start; a dispatches only the slow
		// lane, so the key waits for b, which claims it in its first poll.
		r.enqueue(1, "order.sync", 1)
		r.enqueue(1, "slow.export", 1)
		firstB := make(chan time.Time, 1)
		b, _ := New(r.e, InvokerFunc(func(context.Context, queue.Lease) error {
			select {
			case firstB <- time.Now():
			default:
			}
			return nil
		}), Options{Lanes: map[string]int{"quick": 1}, Poll: 3 * time.Second, Margin: time.Millisecond, Logger: quiet})
		aLeads := make(chan struct{})
		var once sync.Once
		a, _ := New(r.e, InvokerFunc(func(context.Context, queue.Lease) error {
			once.Do(func() { close(aLeads) })
			return nil
		}), Options{Lanes: map[string]int{"slow": 1}, Poll: 10 * time.Millisecond, Margin: time.Millisecond, Logger: quiet})
		aDone := make(chan time.Time, 1)
		go func() {
			_, _ = a.Run(r.ctx, time.Now().Add(700*time.Millisecond))
			aDone <- time.Now()
		}()
		<-aLeads
		bCtx, bCancel := context.WithCancel(r.ctx)
		defer bCancel()
		bDone := make(chan Stats, 1)
		go func() {
			st, _ := b.Run(bCtx, time.Now().Add(20*time.Second))
			bDone <- st
		}()
		var stopped, led time.Time
		select {
		case stopped = <-aDone:
		case <-time.After(10 * time.Second):
			t.Fatal("a did not stop")
		}
		select {
		case led = <-firstB:
		case <-time.After(10 * time.Second):
			t.Fatal("b never led")
		}
		bCancel()
		if st := <-bDone; !st.Leader {
			t.Fatalf("b: %+v", st)
		}
		gap := led.Sub(stopped)
		t.Logf("a stopped leading; b dispatched %v later", gap)
		if gap > 500*time.Millisecond {
			t.Fatalf("b dispatched %v after a stopped; want it at once (its poll is 3s)", gap)
		}
	})
}

// TestStandbyTakesOverFromADeadLeader: a leader that died holding the lease
// is replaced within a poll of the lease running out, never before.
func TestStandbyTakesOverFromADeadLeader(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, nil)
		r.enqueue(1, "order.sync", 1)
		const ttl, poll = 400 * time.Millisecond, 50 * time.Millisecond
		died := time.Now()
		if ok, err := r.e.AcquireSingleton(r.ctx, "scheduler", "dead", ttl); err != nil || !ok {
			t.Fatalf("lease for the dead leader: %v %v", ok, err)
		}
		first := make(chan time.Time, 1)
		b, _ := New(r.e, InvokerFunc(func(context.Context, queue.Lease) error {
			select {
			case first <- time.Now():
			default:
			}
			return nil
		}), Options{Lanes: map[string]int{"quick": 1}, Poll: poll, SingletonTTL: ttl, Logger: quiet})
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		defer cancel()
		done := make(chan Stats, 1)
		go func() {
			st, _ := b.Run(ctx, time.Time{})
			done <- st
		}()
		var led time.Time
		select {
		case led = <-first:
		case <-ctx.Done():
			t.Fatal("b never led")
		}
		cancel()
		if st := <-done; !st.Leader {
			t.Fatalf("b: %+v", st)
		}
		gap := led.Sub(died)
		t.Logf("dead leader's lease %v; b dispatched %v after it was taken", ttl, gap)
		if gap < ttl {
			t.Fatalf("b dispatched %v after the dead leader's lease was taken, before it ran out (%v)", gap, ttl)
		}
		if limit := ttl + 2*poll + 200*time.Millisecond; gap > limit {
			t.Fatalf("b dispatched %v after the dead leader's lease was taken; want within %v", gap, limit)
		}
	})
}

// TestLeaderKeepsTheLeaseAcrossARedisRestart: Redis with AOF restarts (killed
// and started again) under a leader and a standby. The lease comes back
// with the leader's name; the leader keeps trying to renew it while Redis is
// down and goes on dispatching, and the standby never leads.
func TestLeaderKeepsTheLeaseAcrossARedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	r := newRig(t, srv.Client(t), nil)
	var mu sync.Mutex
	got := map[string][]string{} // scheduler -> keys it dispatched
	inv := func(name string) Invoker {
		return InvokerFunc(func(_ context.Context, l queue.Lease) error {
			mu.Lock()
			defer mu.Unlock()
			got[name] = append(got[name], l.Key)
			return nil
		})
	}
	dispatched := func(name string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got[name])
	}
	opt := Options{Lanes: map[string]int{"quick": 100}, Poll: 20 * time.Millisecond, SingletonTTL: 5 * time.Second, Logger: quiet}
	a, _ := New(r.e, inv("a"), opt)
	b, _ := New(r.e, inv("b"), opt)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	aDone, bDone := make(chan Stats, 1), make(chan Stats, 1)
	go func() { st, _ := a.Run(ctx, time.Time{}); aDone <- st }()
	r.enqueue(1, "order.sync", 1)
	waitFor(t, 10*time.Second, func() bool { return len(dispatched("a")) == 1 })
	go func() { st, _ := b.Run(ctx, time.Time{}); bDone <- st }()

	srv.Kill(t)
	srv.Restart(t)
	restarted := time.Now()
	// Enqueue through a fresh try each time: the rig's client reconnects.
	waitFor(t, 10*time.Second, func() bool {
		_, err := r.e.EnqueueBatch(r.ctx, []queue.Entry{{Lane: "quick", Item: &queue.Item{
			ID: "after", Tenant: "t900", Code: "order.sync", Body: []byte(`{}`)}}})
		return err == nil
	})
	waitFor(t, 10*time.Second, func() bool { return len(dispatched("a")) == 2 })
	t.Logf("the leader dispatched again %v after Redis was back", time.Since(restarted))
	cancel()
	if st := <-aDone; !st.Leader {
		t.Fatalf("a: %+v", st)
	}
	if st := <-bDone; st.Leader || len(dispatched("b")) != 0 {
		t.Fatalf("the standby led (%+v, dispatched %v) while the leader was alive", st, dispatched("b"))
	}
}

// waitFor polls cond every 5ms until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached in %v", limit)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// TestInvokeFailureReleasesKeyWithBackoff: a failed Invoke makes the key
// ready again after the backoff, and it is then dispatched.
func TestInvokeFailureReleasesKeyWithBackoff(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		r := newRig(t, rdb, nil)
		r.enqueue(1, "order.sync", 1)
		var calls atomic.Int64
		var firstFail, retried time.Time
		inv := InvokerFunc(func(ctx context.Context, l queue.Lease) error {
			if calls.Add(1) == 1 {
				firstFail = time.Now()
				return errors.New("TooManyRequestsException")
			}
			retried = time.Now()
			return r.async.Invoke(ctx, l)
		})
		s, _ := New(r.e, inv, Options{Lanes: map[string]int{"quick": 4}, Poll: 5 * time.Millisecond, ReleaseBackoff: 300 * time.Millisecond, Logger: quiet})
		st := r.runUntil(s, func() bool { _, q := r.g.read("quick"); return q == 1 })
		if st.InvokeErrors != 1 || st.Dispatched != 1 || calls.Load() != 2 {
			t.Fatalf("stats %+v, calls %d", st, calls.Load())
		}
		if gap := retried.Sub(firstFail); gap < 300*time.Millisecond {
			t.Fatalf("re-dispatched %v after the failure; want at least the 300ms backoff", gap)
		}
	})
}
