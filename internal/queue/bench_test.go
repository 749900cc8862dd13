package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// benchBody is a typical small webhook body (about 400 bytes).
var benchBody = []byte(`{"code":"post.create","data":{"customer_id":"cust_0042","post":{"id":"p_918273","title":"` +
	strings.Repeat("lorem ipsum ", 25) + `","tags":["a","b","c"]}}}`)

// eachBackend runs fn as sub-benchmarks against the shared standalone server
// and the shared cluster.
func eachBackend(b *testing.B, fn func(b *testing.B, rdb redis.UniversalClient)) {
	b.Run("standalone", func(b *testing.B) { fn(b, redistest.Standalone(b)) })
	b.Run("cluster", func(b *testing.B) { fn(b, redistest.Cluster(b)) })
}

// stopwatch accumulates the time of two interleaved operations, so both are
// measured under the same machine load, and reports each and their ratio.
type stopwatch struct{ engine, raw time.Duration }

func (s *stopwatch) report(b *testing.B, rawName string) {
	n := float64(b.N)
	b.ReportMetric(float64(s.engine.Nanoseconds())/n, "engine-ns/op")
	b.ReportMetric(float64(s.raw.Nanoseconds())/n, rawName+"-ns/op")
	b.ReportMetric(float64(s.engine)/float64(s.raw), "ratio")
}

// benchEngine returns an engine with its scripts loaded, on a prefix of its own.
func benchEngine(b *testing.B, rdb redis.UniversalClient) (context.Context, *Engine, string) {
	ctx := context.Background()
	prefix := redistest.Prefix(b)
	e, err := New(rdb, Options{Prefix: prefix, Lanes: []string{"quick"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.LoadScripts(ctx); err != nil {
		b.Fatal(err)
	}
	return ctx, e, prefix
}

// benchItem returns the i-th benchmark item, spread over 64 keys.
func benchItem(i int) (string, *Item) {
	key := fmt.Sprintf("cust%02d:post.create", i%64)
	return key, &Item{ID: fmt.Sprintf("evt%09d", i), Tenant: key[:6], Code: "post.create", Body: benchBody}
}

// BenchmarkEnqueue: one Enqueue (dedup + push + index, one script call)
// beside one raw RPUSH of the same envelope, over 64 keys.
func BenchmarkEnqueue(b *testing.B) {
	eachBackend(b, func(b *testing.B, rdb redis.UniversalClient) {
		ctx, e, prefix := benchEngine(b, rdb)
		var sw stopwatch
		b.ResetTimer()
		for i := range b.N {
			key, it := benchItem(i)
			t0 := time.Now()
			if _, err := e.Enqueue(ctx, "quick", it); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := rdb.RPush(ctx, prefix+":raw:{"+key+"}", it.encode()).Err(); err != nil {
				b.Fatal(err)
			}
			sw.engine += t1.Sub(t0)
			sw.raw += time.Since(t1)
		}
		sw.report(b, "rpush")
	})
}

// BenchmarkCycle: one claim -> activate -> fetch -> ack -> yield cycle that
// hands out and completes one item (five script calls) beside one raw LPOP
// taking one item. Refilling the queues is not timed.
func BenchmarkCycle(b *testing.B) {
	eachBackend(b, func(b *testing.B, rdb redis.UniversalClient) {
		ctx, e, prefix := benchEngine(b, rdb)
		var sw stopwatch
		b.ResetTimer()
		for i := range b.N {
			key, it := benchItem(i)
			b.StopTimer()
			if _, err := e.Enqueue(ctx, "quick", it); err != nil {
				b.Fatal(err)
			}
			rawKey := prefix + ":raw:{" + key + "}"
			if err := rdb.RPush(ctx, rawKey, it.encode()).Err(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0 := time.Now()
			ls, err := e.Claim(ctx, "quick", 1)
			if err != nil || len(ls) != 1 {
				b.Fatalf("claim: %v %v", ls, err)
			}
			l := &ls[0]
			if err := e.Activate(ctx, l, "bench"); err != nil {
				b.Fatal(err)
			}
			batch, err := e.Fetch(ctx, l, 10)
			if err != nil || len(batch.Items) != 1 {
				b.Fatalf("fetch: %v", err)
			}
			if _, err := e.Ack(ctx, l, batch.Items[0].ID); err != nil {
				b.Fatal(err)
			}
			if _, err := e.Yield(ctx, l, time.Time{}); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := rdb.LPop(ctx, rawKey).Err(); err != nil {
				b.Fatal(err)
			}
			sw.engine += t1.Sub(t0)
			sw.raw += time.Since(t1)
		}
		sw.report(b, "lpop")
	})
}

// usedMemory reads INFO memory used_memory of a standalone server.
func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	return redistest.InfoInt(b, rdb, "memory", "used_memory")
}

// BenchmarkBytesPerItem: Redis memory per queued item beyond its 200-byte
// body (INFO used_memory delta / items - 200), for 20 items on each of
// 1,000 keys with generated ids, with the dedup window and without, beside
// a raw RPUSH of the bare body to the same keys in the same run. Run it
// with -benchtime 1x; it always queues 20,000 items.
func BenchmarkBytesPerItem(b *testing.B) {
	rdb := redistest.Standalone(b)
	ctx := context.Background()
	const keys, perKey, bodyLen = 1000, 20, 200
	body := []byte(`{"code":"post.create","data":{"customer_id":"c","x":"` + strings.Repeat("y", bodyLen-56) + `"}}`)
	if len(body) != bodyLen {
		b.Fatalf("body is %d bytes", len(body))
	}
	n := keys * perKey
	measure := func(fill func(i int)) float64 {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before := usedMemory(b, rdb)
		for i := range n {
			fill(i)
		}
		return float64(usedMemory(b, rdb)-before)/float64(n) - bodyLen
	}
	for range b.N {
		raw := measure(func(i int) {
			if err := rdb.RPush(ctx, fmt.Sprintf("hl:{%02d}:q:t%04d:post.create", i%16, i%keys), body).Err(); err != nil {
				b.Fatal(err)
			}
		})
		engine := func(window time.Duration) float64 {
			e, err := New(rdb, Options{Lanes: []string{"quick"}, DedupWindow: window})
			if err != nil {
				b.Fatal(err)
			}
			return measure(func(i int) {
				it := &Item{Tenant: fmt.Sprintf("t%04d", i%keys), Code: "post.create", Body: body}
				if _, err := e.Enqueue(ctx, "quick", it); err != nil {
					b.Fatal(err)
				}
			})
		}
		withDedup, noDedup := engine(24*time.Hour), engine(-1)
		b.ReportMetric(withDedup, "B/item")
		b.ReportMetric(noDedup, "B/item-nodedup")
		b.ReportMetric(raw, "raw-B/item")
		b.Logf("bytes per queued item beyond a %d-byte body (%d items, %d keys): %.0f with the 24h dedup window, %.0f without; raw RPUSH of the body %.0f",
			bodyLen, n, keys, withDedup, noDedup, raw)
	}
}
