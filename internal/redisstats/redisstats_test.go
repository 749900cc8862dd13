package redisstats_test

import (
	"context"
	"testing"

	"github.com/hookline/hookline/internal/redisstats"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestRoundTrips: a command alone counts one, a pipeline one whatever its
// length, a transaction one; each client has its own count.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		p := redistest.Prefix(t)
		// A client of its own: hooks stay on the client they are added to.
		var c redisstats.Counter
		var own redis.UniversalClient
		switch r := rdb.(type) {
		case *redis.Client:
			own = redis.NewClient(&redis.Options{Addr: r.Options().Addr})
		case *redis.ClusterClient:
			own = redis.NewClusterClient(&redis.ClusterOptions{Addrs: r.Options().Addrs})
		}
		t.Cleanup(func() { _ = own.Close() })
		own.AddHook(&c)
		// Opening a connection sends commands of its own (HELLO, CLIENT
		// SETINFO), counted too, and pipelines may use connections of their
		// own: one of each kind of call first opens what the rest uses.
		key := p + ":{list}"
		pipeline := func(tx bool) {
			t.Helper()
			fn := func(pipe redis.Pipeliner) error {
				for range 5 {
					pipe.RPush(ctx, key, "x")
				}
				pipe.LTrim(ctx, key, 0, 9)
				return nil
			}
			var err error
			if tx {
				_, err = own.TxPipelined(ctx, fn)
			} else {
				_, err = own.Pipelined(ctx, fn)
			}
			if err != nil {
				t.Fatalf("pipeline (transaction %v): %v", tx, err)
			}
		}
		if err := own.Set(ctx, p+":a", "1", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		pipeline(false)
		pipeline(true)
		base := c.RoundTrips()
		if base < 3 {
			t.Fatalf("after three calls: %d round trips, want at least 3", base)
		}
		if err := own.Set(ctx, p+":a", "2", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		if got := c.RoundTrips() - base; got != 1 {
			t.Fatalf("after one SET: %d round trips, want 1", got)
		}
		pipeline(false)
		if got := c.RoundTrips() - base; got != 2 {
			t.Fatalf("after a pipeline of 6: %d round trips, want 2", got)
		}
		pipeline(true)
		if got := c.RoundTrips() - base; got != 3 {
			t.Fatalf("after a transaction: %d round trips, want 3", got)
		}
		// Commands on another client are not counted.
		if err := rdb.Get(ctx, p+":a").Err(); err != nil {
			t.Fatalf("GET: %v", err)
		}
		if got := c.RoundTrips() - base; got != 3 {
			t.Fatalf("after a command on another client: %d round trips, want 3", got)
		}
	})
}

// TestZeroValue: a Counter that saw nothing reads 0.
func TestZeroValue(t *testing.T) {
	t.Parallel()
	var c redisstats.Counter
	if got := c.RoundTrips(); got != 0 {
		t.Fatalf("zero Counter: %d round trips", got)
	}
}
