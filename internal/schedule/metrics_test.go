package schedule

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/redis/go-redis/v9"
)

// TestMetricsTellTheTruth: with work held by a parked, a leased, a
// throttled and a retrying key and nothing ready, OldestReadyAge is 0 but
// OldestItemAge is the parked item's age; every lane gauge is there, per
// Lane and rolled up under the Stack, and dead letters count per lane and
// in total.
func TestMetricsTellTheTruth(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		ctx := context.Background()
		clk := clock.NewFake(time.UnixMilli(1_763_900_000_000))
		e, err := queue.New(rdb, queue.Options{Prefix: redistest.Prefix(t), Lanes: []string{"quick", "slow"}, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		enqueue := func(key string, ids ...string) {
			tenant, code, _ := strings.Cut(key, ":")
			for _, id := range ids {
				if _, err := e.Enqueue(ctx, "quick", &queue.Item{ID: id, Tenant: tenant, Code: code, Body: []byte(`{}`)}); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(time.Second)
		}
		take := func() *queue.Lease {
			ls, err := e.Claim(ctx, "quick", 1)
			if err != nil || len(ls) != 1 {
				t.Fatalf("claim %v %v", ls, err)
			}
			if err := e.Activate(ctx, &ls[0], "inv"); err != nil {
				t.Fatal(err)
			}
			return &ls[0]
		}
		enqueue("t1:parked", "a", "b")
		enqueue("t1:leased", "c")
		enqueue("t1:throttled", "d")
		enqueue("t1:retrying", "e")
		enqueue("t1:gone", "f")
		if _, err := e.Fail(ctx, take(), "a", queue.Failure{Reason: "x", Permanent: true, Policy: queue.Park}); err != nil {
			t.Fatal(err)
		}
		take()
		if _, err := e.Yield(ctx, take(), clk.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Fail(ctx, take(), "e", queue.Failure{Reason: "x", MaxAttempts: 3}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Fail(ctx, take(), "f", queue.Failure{Reason: "x", Permanent: true}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(500 * time.Millisecond)

		var buf bytes.Buffer
		s, err := New(e, InvokerFunc(func(context.Context, queue.Lease) error { return nil }), Options{
			Lanes: map[string]int{"quick": 4, "slow": 2}, Clock: clk, Logger: quiet,
			Metrics: telemetry.New(&buf, telemetry.Options{Dimensions: map[string]string{"Stack": "st"}}),
			RouteLane: func(code string) (string, bool) {
				if code == "gone" {
					return "", false
				}
				return "quick", true
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.emitMetrics(ctx)
		byLane := map[string]*telemetry.Line{}
		for _, raw := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			l, err := telemetry.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			for name := range l.Dims {
				if name != "Stack" && name != "Lane" {
					t.Fatalf("dimension %s in %s", name, raw)
				}
			}
			byLane[l.Dims["Lane"]] = l
		}
		q := byLane["quick"]
		if q == nil || byLane["slow"] == nil || byLane["unrouted"] == nil || byLane[""] == nil {
			t.Fatalf("lines by lane %v:\n%s", byLane, buf.String())
		}
		want := map[string]float64{
			"ReadyKeys": 0, "LeasedKeys": 1, "DelayedKeys": 2, "RetryingKeys": 1, "PausedKeys": 0, "ParkedKeys": 1,
			"QueuedItems": 5, "LiveSlots": 0, "Concurrency": 4, "OldestReadyAge": 0, "OldestItemAge": 5500, "DeadLetters": 0,
		}
		for name, v := range want {
			m, ok := q.Metric(name)
			if !ok || m.Values[0] != v {
				t.Errorf("quick %s = %v, want %v", name, m.Values, v)
			}
			if name != "DeadLetters" && len(m.Sets) != 2 {
				t.Errorf("%s sets %v, want per lane and per stack", name, m.Sets)
			}
		}
		if m, _ := byLane["unrouted"].Metric("DeadLetters"); m.Values[0] != 1 {
			t.Errorf("unrouted dead letters %v", m.Values)
		}
		if m, _ := byLane[""].Metric("DeadLetters"); m.Values[0] != 1 || len(m.Sets) != 1 || len(m.Sets[0]) != 1 {
			t.Errorf("total dead letters %+v", m)
		}
	})
}
