package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestBacklogDrainInvocations: with a backlog queued before the scheduler
// runs, the real scheduler dispatches about one drain invocation per lane
// slot, not one per key: each drain takes the lane's next ready key itself.
// The target is at most 1.2 drain invocations per key with work.
func TestBacklogDrainInvocations(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := &sink{}
		srv := httptest.NewServer(s)
		defer srv.Close()
		cfg := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
lanes:
  quick: {concurrency: 4, quantum: 5s}
routes:
  post.create: {lane: quick, handler: forward, url: %[2]s/fast}
scheduler: {poll: 50ms, margin: 1s}
drain: {batch: 10, margin: 1s}
`, redistest.Prefix(t), srv.URL)
		st := startStack(t, rdb, cfg, secret, 4)
		ctx := context.Background()
		const keys, items = 24, 5
		sent := 0
		for seq := range items {
			for k := range keys {
				tenant := fmt.Sprintf("b%02d", k)
				id := fmt.Sprintf("msg_%s_%02d", tenant, seq)
				body := fmt.Sprintf(`{"code":"post.create","data":{"customer_id":%q,"seq":%d}}`, tenant, seq)
				res, err := st.ingest.Invoke(ctx, "", apiEvent(t, "ingest-http-v2.json", id, body), 10*time.Second)
				if err != nil || res.Err != nil {
					t.Fatalf("ingest %s: %v %v", id, err, res.Err)
				}
				var resp struct{ StatusCode int }
				if err := json.Unmarshal(res.Payload, &resp); err != nil || resp.StatusCode != 202 {
					t.Fatalf("ingest %s: %s", id, res.Payload)
				}
				sent++
			}
		}
		schedEvent, err := os.ReadFile(filepath.Join("..", "testdata", "events", "scheduler-schedule.json"))
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; len(s.deliveries()) < sent; round++ {
			if round == 3 {
				t.Fatalf("after 3 scheduler runs the sink has %d of %d webhooks", len(s.deliveries()), sent)
			}
			res, err := st.scheduler.Invoke(ctx, "", schedEvent, 8*time.Second)
			if err != nil || res.Err != nil {
				t.Fatalf("scheduler: %v %v", err, res.Err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := st.ep.Wait(wctx); err != nil {
			t.Fatal(err)
		}
		got := s.deliveries()
		last := map[string]int{}
		for _, d := range got {
			if prev, ok := last[d.key]; ok && d.seq != prev+1 {
				t.Errorf("key %s: item %d arrived after item %d", d.key, d.seq, prev)
			}
			last[d.key] = d.seq
		}
		if len(got) != sent || len(last) != keys {
			t.Fatalf("sink got %d calls on %d keys, want %d on %d", len(got), len(last), sent, keys)
		}
		runs := len(st.ep.Runs())
		perKey := float64(runs) / keys
		t.Logf("backlog of %d webhooks on %d keys drained by %d drain invocations: %.2f per key", sent, keys, runs, perKey)
		if perKey > 1.2 {
			t.Fatalf("%.2f drain invocations per key with work, want at most 1.2", perKey)
		}
	})
}
