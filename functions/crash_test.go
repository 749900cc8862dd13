package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
)

// TestG4KillMidBatch: a drain killed (SIGKILL) while its handler's call is in
// flight loses nothing. Its lease runs out, the scheduler dispatches the key
// again, and every webhook arrives, in order, the interrupted one at least
// once with the same webhook-id (the idempotency key).
func TestG4KillMidBatch(t *testing.T) {
	rdb := redistest.Standalone(t)

	var st *stack
	var mu sync.Mutex
	var got []string // webhook ids in arrival order
	killed := make(chan struct{})
	var once sync.Once
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		got = append(got, id)
		mu.Unlock()
		if id == "crash-2" {
			// The drain is waiting for this answer: kill it now, so the
			// answer below reaches no one.
			once.Do(func() {
				for _, f := range st.drains.Functions() {
					f.Kill()
				}
				close(killed)
			})
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()

	cfg := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
lanes:
  quick: {concurrency: 2, quantum: 5s}
routes:
  order.paid: {lane: quick, handler: forward, url: %s/orders}
scheduler: {poll: 50ms, margin: 1s}
drain: {batch: 10, lease_ttl: 2s, claim_ttl: 2s, margin: 1s}
`, redistest.Prefix(t), sink.URL)
	st = startStack(t, rdb, cfg, secret, 1)
	ingest, scheduler, ep := st.ingest, st.scheduler, st.ep
	ctx := context.Background()

	var sent []string
	for seq := range 6 {
		id := fmt.Sprintf("crash-%d", seq)
		body := fmt.Sprintf(`{"code":"order.paid","data":{"customer_id":"acme","seq":%d}}`, seq)
		res, err := ingest.Invoke(ctx, "", apiEvent(t, "ingest-http-v2.json", id, body), 10*time.Second)
		if err != nil || res.Err != nil {
			t.Fatalf("ingest %s: %v %v", id, err, res.Err)
		}
		sent = append(sent, id)
	}
	res, err := scheduler.Invoke(ctx, "", []byte(`{}`), 12*time.Second)
	if err != nil || res.Err != nil {
		t.Fatalf("scheduler: %v %v", err, res.Err)
	}
	select {
	case <-killed:
	default:
		t.Fatal("the drain was never killed: the test proved nothing")
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ep.Wait(wctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	// In order, nothing lost; crash-2 twice (before and after the crash).
	want := []string{"crash-0", "crash-1", "crash-2", "crash-2", "crash-3", "crash-4", "crash-5"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sink got %v, want %v", got, want)
	}
	var failed int
	for _, r := range ep.Runs() {
		if r.Err != nil {
			failed++
		}
	}
	var stats struct{ Dispatched int }
	_ = json.Unmarshal(res.Payload, &stats)
	if failed != 1 || stats.Dispatched < 2 {
		t.Fatalf("drain runs failed %d (want the 1 killed), scheduler dispatched %d (want a second dispatch after the lease ran out)", failed, stats.Dispatched)
	}
	t.Logf("killed mid-call; after the 2s lease ran out the key was dispatched again; sink got %v", got)
}
