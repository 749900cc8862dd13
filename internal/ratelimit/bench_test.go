package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
)

// BenchmarkReserve: one Reserve (one script call: GET + SET) beside one raw
// INCR, interleaved on the standalone server so both are measured under the
// same load. Every Reserve takes a slot (maxWait is large), so each writes.
func BenchmarkReserve(b *testing.B) {
	rdb := redistest.Standalone(b)
	ctx := context.Background()
	prefix := redistest.Prefix(b)
	l, err := New(rdb, Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	rate := Rate{N: 1000, Per: time.Second}
	// Warm up: load the script and open the connection.
	if _, err := l.Reserve(ctx, "cred", "POST /v1/x", rate, 24*time.Hour); err != nil {
		b.Fatal(err)
	}
	rawKey := prefix + ":raw"
	var engine, raw time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		r, err := l.Reserve(ctx, "cred", "POST /v1/x", rate, 24*time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK {
			b.Fatal("Reserve refused a slot within maxWait")
		}
		t1 := time.Now()
		if err := rdb.Incr(ctx, rawKey).Err(); err != nil {
			b.Fatal(err)
		}
		engine += t1.Sub(t0)
		raw += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(engine.Nanoseconds())/n, "engine-ns/op")
	b.ReportMetric(float64(raw.Nanoseconds())/n, "incr-ns/op")
	b.ReportMetric(float64(engine)/float64(raw), "ratio")
}
