package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

// TestG6CustomHandlerRateShared: a registered Go handler named by two routes
// (two event codes) with rate 2/s is limited like forward: the drain holds
// its calls for one tenant to 2 in any 1-second window over both routes,
// throttled keys yield instead of sleeping, and each key's items are still
// handled once each, in order. It runs the whole path: the configuration,
// the registry, the drainer and an in-process scheduler.
func TestG6CustomHandlerRateShared(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		// rate_margin absorbs a loaded machine's wake-up jitter, as in the
		// end-to-end test; the limit's own spacing is what is checked.
		cfg, err := config.Parse(fmt.Appendf(nil, `
prefix: %s
tenant: /data/customer_id
lanes: {quick: {concurrency: 4, quantum: 5s}}
routes:
  crm.a: {lane: quick, handler: crm-sync, rate: 2/s}
  crm.b: {lane: quick, handler: crm-sync, rate: 2/s}
drain: {rate_margin: 150ms}
scheduler: {poll: 50ms}
`, redistest.Prefix(t)), nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewWith(cfg, rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		type call struct {
			key, id string
			at      time.Time
		}
		var (
			mu    sync.Mutex
			calls []call
		)
		reg := handler.NewRegistry()
		reg.Register("crm-sync", handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{ev.Key, ev.ID, time.Now()})
			return nil
		}))
		const perKey = 4
		ctx := context.Background()
		for seq := range perKey {
			for _, code := range []string{"crm.a", "crm.b"} {
				it := &queue.Item{ID: fmt.Sprintf("%s-%d", code, seq), Tenant: "acme", Code: code,
					Body: fmt.Appendf(nil, `{"code":%q,"data":{"customer_id":"acme"}}`, code)}
				if _, err := a.Engine.Enqueue(ctx, "quick", it); err != nil {
					t.Fatal(err)
				}
			}
		}

		var sched *schedule.Scheduler
		a.WakeLocally(func() { sched.Notify() })
		d, err := a.Drainer(reg)
		if err != nil {
			t.Fatal(err)
		}
		async := drain.NewAsync(d)
		var throttled atomic.Int64
		async.OnResult = func(res drain.Result, err error) {
			if err != nil {
				t.Errorf("drain %s: %v", res.Key, err)
			}
			if res.Outcome == drain.Throttled {
				throttled.Add(1)
			}
		}
		if sched, err = a.Scheduler(async, "test", nil); err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = sched.Run(runCtx, time.Time{})
		}()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			n := len(calls)
			mu.Unlock()
			if n >= 2*perKey {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30s %d of %d items were handled", n, 2*perKey)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		async.Stop()
		async.Wait()

		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 2*perKey {
			t.Fatalf("%d calls for %d items", len(calls), 2*perKey)
		}
		for i := 0; i+2 < len(calls); i++ {
			if gap := calls[i+2].at.Sub(calls[i].at); gap < time.Second {
				t.Errorf("calls %d..%d (%s, %s, %s) within %v: more than 2 in a second", i, i+2, calls[i].id, calls[i+1].id, calls[i+2].id, gap)
			}
		}
		for _, code := range []string{"crm.a", "crm.b"} {
			var got, want []string
			for _, c := range calls {
				if c.key == "acme:"+code {
					got = append(got, c.id)
				}
			}
			for seq := range perKey {
				want = append(want, fmt.Sprintf("%s-%d", code, seq))
			}
			if !slices.Equal(got, want) {
				t.Errorf("key acme:%s handled %v, want %v", code, got, want)
			}
		}
		if throttled.Load() == 0 {
			t.Error("no drain was throttled: the test did not reach the limit")
		}
		var ids []string
		for _, c := range calls {
			ids = append(ids, c.id+"@"+c.at.Format("05.000"))
		}
		t.Logf("calls: %s", strings.Join(ids, " "))
	})
}
