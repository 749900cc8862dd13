package drain

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

// tripCounter is a go-redis hook counting client round trips: one per
// command sent alone, one per pipeline.
type tripCounter struct{ n atomic.Int64 }

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// serverCommands reads INFO stats total_commands_processed: every command
// the server ran, those inside scripts included.
func serverCommands(b *testing.B, rdb *redis.Client) int64 {
	return redistest.InfoInt(b, rdb, "stats", "total_commands_processed")
}

// BenchmarkBacklogDrain measures the processing path on a backlog: b.N
// items over 1,000 keys are queued one Enqueue call each (as ingest does),
// then 8 work-conserving drains (one lane slot each, as the scheduler
// dispatches them) work them with a no-op handler. It reports, per handled
// item, the Redis commands the server ran (INFO, script commands included)
// and the client round trips, for ingest and drain, beside a raw RPUSH +
// LPOP pipeline doing the same in the same run (2 commands, 2 round trips).
// Run it with -benchtime 20000x.
func BenchmarkBacklogDrain(b *testing.B) {
	base := redistest.Standalone(b)
	ctx := context.Background()
	trips := &tripCounter{}
	rdb := redis.NewClient(&redis.Options{Addr: base.Options().Addr, PoolSize: 32})
	rdb.AddHook(trips)
	defer rdb.Close()
	prefix := redistest.Prefix(b) + "-" + strconv.Itoa(b.N)
	e, err := queue.New(rdb, queue.Options{Prefix: prefix, Lanes: []string{"quick"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.LoadScripts(ctx); err != nil {
		b.Fatal(err)
	}
	const keys, drains = 1000, 8
	n := b.N
	body := []byte(`{"code":"post.create","data":{"customer_id":"c","n":"` + strings.Repeat("x", 150) + `"}}`)
	var handled atomic.Int64
	d, err := New(e, Options{
		Routes: func(string) (Route, bool) {
			return Route{Handler: handler.HandlerFunc(func(context.Context, *handler.Event) error { handled.Add(1); return nil })}, true
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()

	// Raw baseline: RPUSH each item, then LPOP each, one round trip each.
	rawKey := func(i int) string { return fmt.Sprintf("%s:raw:{%d}", prefix, i%keys) }
	c0, t0 := serverCommands(b, base), trips.n.Load()
	for i := range n {
		if err := rdb.RPush(ctx, rawKey(i), body).Err(); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		if err := rdb.LPop(ctx, rawKey(i)).Err(); err != nil {
			b.Fatal(err)
		}
	}
	rawCmds := float64(serverCommands(b, base)-c0-1) / float64(n)
	rawTrips := float64(trips.n.Load()-t0) / float64(n)

	// Ingest: one Enqueue per webhook.
	c0, t0 = serverCommands(b, base), trips.n.Load()
	start := time.Now()
	for i := range n {
		t := "t" + strconv.Itoa(i%keys)
		if _, err := e.Enqueue(ctx, "quick", &queue.Item{ID: fmt.Sprintf("evt%08d", i), Tenant: t, Code: "post.create", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	enqDur := time.Since(start)
	enqCmds := float64(serverCommands(b, base)-c0-1) / float64(n)
	enqTrips := float64(trips.n.Load()-t0) / float64(n)

	// Drain: what the scheduler does for each slot (claim a key, take a
	// slot), then the work-conserving drains.
	c0, t0 = serverCommands(b, base), trips.n.Load()
	start = time.Now()
	ls, err := e.Claim(ctx, "quick", drains)
	if err != nil || len(ls) != min(drains, n) {
		b.Fatalf("claim: %d %v", len(ls), err)
	}
	var wg sync.WaitGroup
	var keysWorked atomic.Int64
	for i := range ls {
		ls[i].Slot = "slot-" + strconv.Itoa(i)
		if got, err := e.AcquireSlots(ctx, "quick", drains, []string{ls[i].Slot}); err != nil || got != 1 {
			b.Fatalf("slot: %d %v", got, err)
		}
		wg.Go(func() {
			res, err := d.Run(ctx, ls[i], "bench-"+strconv.Itoa(i), time.Time{})
			if err != nil {
				b.Error(err)
			}
			keysWorked.Add(int64(res.Keys))
		})
	}
	wg.Wait()
	drainDur := time.Since(start)
	drainCmds := float64(serverCommands(b, base)-c0-1) / float64(n)
	drainTrips := float64(trips.n.Load()-t0) / float64(n)
	b.StopTimer()
	if handled.Load() != int64(n) {
		b.Fatalf("handled %d of %d", handled.Load(), n)
	}
	b.ReportMetric(enqCmds+drainCmds, "cmds/item")
	b.ReportMetric(enqTrips+drainTrips, "trips/item")
	b.ReportMetric(drainTrips, "drain-trips/item")
	b.ReportMetric(rawCmds, "raw-cmds/item")
	b.ReportMetric((enqCmds+drainCmds)/rawCmds, "cmds-ratio")
	b.ReportMetric((enqTrips+drainTrips)/rawTrips, "trips-ratio")
	b.ReportMetric(float64(n)/drainDur.Seconds(), "drained/s")
	b.Logf("%d items, %d keys, %d drains: ingest %.2f cmds %.2f trips/item (%.0f/s); drain %.2f cmds %.2f trips/item (%.0f/s); %d keys worked in %d invocations; raw RPUSH+LPOP %.2f cmds %.2f trips/item",
		n, keys, drains, enqCmds, enqTrips, float64(n)/enqDur.Seconds(), drainCmds, drainTrips, float64(n)/drainDur.Seconds(),
		keysWorked.Load(), len(ls), rawCmds, rawTrips)
}
