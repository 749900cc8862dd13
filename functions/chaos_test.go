package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/lambdatest"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The chaos run's shape: keys = tenants x codes, each with perKey webhooks.
const (
	chaosTenants = 10
	chaosPerKey  = 41
	// chaosFailPct is the share, in percent, of sink calls answered 5xx.
	chaosFailPct = 10
	// chaosKillEvery: every this many sink calls, a busy drain is killed,
	// until chaosKills have been.
	chaosKillEvery = 50
	chaosKills     = 25
	// chaosMinKills is what the run must reach to count as chaos.
	chaosMinKills = 20
	// chaosDrains is the drain pool; the lane's concurrency is below it, so
	// a dispatched drain rarely waits for an environment.
	chaosDrains      = 8
	chaosConcurrency = 6
	// chaosDeadline bounds the run of one backend after its set-up.
	chaosDeadline = 150 * time.Second
	// chaosStall: when no call has reached the sink for this long and some
	// webhooks are not delivered, they are lost. Retry backoff after a few
	// 5xx in a row and a killed drain's lease stay well below it.
	chaosStall = 30 * time.Second
)

var chaosCodes = []string{"order.paid", "order.shipped", "invoice.sent", "user.created", "user.deleted"}

// chaosCall is one call the chaos sink answered.
type chaosCall struct {
	key, id string
	status  int
}

// chaosSink answers a deterministic pseudo-random tenth of the calls with a
// 5xx and the rest with a 2xx, records every call with the answer it chose
// before sending it, and every chaosKillEvery-th call, while that call is
// held, SIGKILLs a drain environment in the middle of an invocation.
type chaosSink struct {
	drains *lambdatest.Pool

	mu    sync.Mutex
	calls []chaosCall
	seen  map[string]int  // calls so far per webhook id
	ok    map[string]bool // webhook ids answered 2xx
	last  time.Time       // when the last call arrived

	killMu sync.Mutex
	rng    *rand.Rand
	kills  int
}

// chaosStatus is the answer to the n-th call (from 0) for webhook id:
// mostly 200, 202 or 204, chaosFailPct percent 500, 502 or 503.
func chaosStatus(id string, n int) int {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s#%d", id, n)
	v := h.Sum64()
	if v%100 < chaosFailPct {
		return []int{500, 502, 503}[v/100%3]
	}
	return []int{200, 202, 204}[v/100%3]
}

func (s *chaosSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := chaosCall{key: r.Header.Get("hookline-key"), id: r.Header.Get("webhook-id")}
	s.mu.Lock()
	c.status = chaosStatus(c.id, s.seen[c.id])
	s.seen[c.id]++
	s.calls = append(s.calls, c)
	s.last = time.Now()
	if c.status < 300 {
		s.ok[c.id] = true
	}
	n := len(s.calls)
	s.mu.Unlock()
	if n%chaosKillEvery == 0 {
		s.killBusy()
	}
	w.WriteHeader(c.status)
}

// killBusy kills one drain environment, chosen at random among those in the
// middle of an invocation (there is one: the caller waiting for this call's
// answer), unless chaosKills have been killed.
func (s *chaosSink) killBusy() {
	s.killMu.Lock()
	defer s.killMu.Unlock()
	if s.kills >= chaosKills {
		return
	}
	fns := s.drains.Functions()
	for _, i := range s.rng.Perm(len(fns)) {
		if fns[i].KillBusy() {
			s.kills++
			return
		}
	}
}

// progress returns how many calls arrived, how many webhook ids got a 2xx,
// and when the last call arrived.
func (s *chaosSink) progress() (calls, delivered int, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls), len(s.ok), s.last
}

// snapshot returns the calls so far, in the order their answers were
// chosen.
func (s *chaosSink) snapshot() []chaosCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// TestChaosKillDrains proves G1, G2 and G4 under chaos, with the real
// binaries: while 2,050 signed webhooks on 50 keys go through ingest, busy
// drain environments are SIGKILLed (25 times) and a tenth of the sink's
// answers are 5xx, so that "delivered" means answered 2xx. Then every
// accepted webhook has been delivered (nothing lost); no call for a key's
// item reached the sink before the key's earlier items were delivered, so
// each key's order of first delivery is its send order; re-deliveries are
// counted. On standalone Redis and on the 3-node cluster.
//
// It looks only at what enters (ingest) and leaves (the sink) and at the
// drain environments it kills, not at the drain's event or the queue.
func TestChaosKillDrains(t *testing.T) {
	redistest.Each(t, testChaosKillDrains)
}

func testChaosKillDrains(t *testing.T, rdb redis.UniversalClient) {
	s := &chaosSink{seen: map[string]int{}, ok: map[string]bool{}, rng: rand.New(rand.NewPCG(1, 2))}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var routes strings.Builder
	for _, code := range chaosCodes {
		fmt.Fprintf(&routes, "  %s: {lane: quick, handler: forward, url: %s/hooks, max_attempts: 1000, timeout: 5s}\n", code, srv.URL)
	}
	// Short leases, so a killed drain's key is dispatched again after 2s;
	// max_attempts so high that 5xx answers are retried, never dead-lettered.
	cfg := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
lanes:
  quick: {concurrency: %d, quantum: 2s}
routes:
%s
scheduler: {poll: 50ms, margin: 1s}
drain: {batch: 10, lease_ttl: 2s, claim_ttl: 2s, margin: 1s}
`, redistest.Prefix(t), chaosConcurrency, routes.String())
	st := startStack(t, rdb, cfg, secret, chaosDrains)
	s.drains = st.drains
	begin := time.Now()
	s.mu.Lock()
	s.last = begin // for the stall check until the first call
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), chaosDeadline)
	defer cancel()

	// The webhooks, signed up front: per key, ids in send order.
	type webhook struct {
		id    string
		event []byte
	}
	keys := map[string][]webhook{}
	keyOf := map[string]string{} // webhook id -> key
	seqOf := map[string]int{}    // webhook id -> place in its key
	fixtures := []string{"ingest-http-v2.json", "ingest-rest-v1.json", "ingest-http-v1.json"}
	total := 0
	for tn := range chaosTenants {
		tenant := fmt.Sprintf("tenant%02d", tn)
		for _, code := range chaosCodes {
			key := tenant + ":" + code
			for seq := range chaosPerKey {
				id := fmt.Sprintf("chaos_%s_%s_%03d", tenant, strings.ReplaceAll(code, ".", "_"), seq)
				body := fmt.Sprintf(`{"code":%q,"data":{"customer_id":%q,"seq":%d}}`, code, tenant, seq)
				keys[key] = append(keys[key], webhook{id, apiEvent(t, fixtures[total%len(fixtures)], id, body)})
				keyOf[id], seqOf[id] = key, seq
				total++
			}
		}
	}

	// The scheduler runs back to back, as EventBridge would start it, until
	// told to stop.
	schedEvent, err := os.ReadFile(filepath.Join("..", "testdata", "events", "scheduler-schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	stopSched := make(chan struct{})
	schedDone := make(chan struct{})
	var schedRuns, dispatched int
	go func() {
		defer close(schedDone)
		for {
			select {
			case <-stopSched:
				return
			default:
			}
			res, err := st.scheduler.Invoke(ctx, "", schedEvent, 6*time.Second)
			if ctx.Err() != nil {
				return
			}
			if err != nil || res.Err != nil {
				t.Errorf("scheduler: %v %v", err, res.Err)
				return
			}
			var stats struct{ Dispatched int }
			_ = json.Unmarshal(res.Payload, &stats)
			schedRuns++
			dispatched += stats.Dispatched
		}
	}()
	stopScheduler := func() {
		select {
		case <-stopSched:
		default:
			close(stopSched)
		}
		<-schedDone
	}
	defer stopScheduler()

	// Send: one goroutine per key, each key's webhooks in order, all keys
	// at once through the ingest function. A key stops at its first refusal.
	var mu sync.Mutex
	sent := map[string][]string{} // key -> accepted ids in send order
	var wg sync.WaitGroup
	for key, hooks := range keys {
		wg.Go(func() {
			for _, h := range hooks {
				res, err := st.ingest.Invoke(ctx, "", h.event, 10*time.Second)
				var resp struct{ StatusCode int }
				if err == nil && res.Err == nil {
					_ = json.Unmarshal(res.Payload, &resp)
				}
				if err != nil || res.Err != nil || resp.StatusCode != http.StatusAccepted {
					t.Errorf("ingest %s: %v %v %s", h.id, err, res.Err, res.Payload)
					return
				}
				mu.Lock()
				sent[key] = append(sent[key], h.id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sendTime := time.Since(begin)
	if t.Failed() {
		t.FailNow()
	}

	// Wait until every webhook has been delivered, or the deadline, or no
	// call has reached the sink for chaosStall: then something was lost.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, delivered, last := s.progress()
		if delivered == total {
			break
		}
		stalled := time.Since(last) > chaosStall
		if ctx.Err() != nil || stalled {
			t.Errorf("after %v (%d sink calls, the last %v ago), %d of %d webhooks delivered",
				time.Since(begin).Round(time.Second), n, time.Since(last).Round(time.Second), delivered, total)
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	deliverTime := time.Since(begin)

	// Let the scheduler's run and every drain end, so nothing more arrives.
	stopScheduler()
	wctx, wcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer wcancel()
	if err := st.ep.Wait(wctx); err != nil {
		t.Error(err)
	}
	calls := s.snapshot()

	// G2: no call for an item before the items sent before it on its key
	// were delivered; then each key's first deliveries are in send order.
	delivered := map[string]bool{}
	next := map[string]int{} // key -> items delivered, in order
	first := map[string][]string{}
	misordered := map[string]bool{} // keys reported, to report each once
	var fails, redeliveries int
	redelivered := map[string]int{}
	for _, c := range calls {
		key, ok := keyOf[c.id]
		if !ok || c.key != key {
			t.Errorf("sink call for webhook %q with key %q: not a webhook sent on that key", c.id, c.key)
			continue
		}
		if seq := seqOf[c.id]; seq > next[key] && !misordered[key] {
			misordered[key] = true
			t.Errorf("key %s: webhook %s (item %d) called before item %d was delivered", key, c.id, seq, next[key])
		}
		switch {
		case c.status >= 300:
			fails++
		case delivered[c.id]:
			redeliveries++
			redelivered[c.id]++
		default:
			delivered[c.id] = true
			first[key] = append(first[key], c.id)
			next[key]++
		}
	}
	// G1: nothing lost, and G2 again: first deliveries in send order.
	for _, key := range slices.Sorted(maps.Keys(sent)) {
		want, got := sent[key], first[key]
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		switch {
		case i < len(got):
			t.Errorf("key %s: first delivery %d is %s, want %s (the send order)", key, i, got[i], want[i])
		case i < len(want):
			t.Errorf("key %s: %d of %d webhooks delivered; lost from %s on", key, len(got), len(want), want[i])
		}
	}

	// The kills: drain runs cut short by their process's death. Nothing
	// else may have failed a drain.
	var killedRuns, drainRuns int
	for _, r := range st.ep.Runs() {
		drainRuns++
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, lambdatest.ErrProcessExited):
			killedRuns++
		default:
			t.Errorf("drain run %s failed: %v", r.RequestID, r.Err)
		}
	}
	starts := 0
	for _, f := range st.drains.Functions() {
		starts += f.Starts()
	}
	s.killMu.Lock()
	kills := s.kills
	s.killMu.Unlock()
	if kills < chaosMinKills || killedRuns < chaosMinKills {
		t.Errorf("%d busy drains killed, %d drain runs cut short; want at least %d of each", kills, killedRuns, chaosMinKills)
	}

	for _, id := range slices.Sorted(maps.Keys(redelivered)) {
		t.Logf("re-delivered: %s (%s) %d more time(s)", id, keyOf[id], redelivered[id])
	}
	t.Logf("chaos: sent %d webhooks on %d keys (in %v); delivered %d (all by %v); sink calls %d: 5xx %d, re-deliveries %d; busy drains killed %d, drain runs cut short %d of %d, cold starts %d; scheduler runs %d dispatched %d; total %v",
		total, len(sent), sendTime.Round(time.Millisecond), len(delivered), deliverTime.Round(time.Millisecond),
		len(calls), fails, redeliveries, kills, killedRuns, drainRuns, starts-chaosDrains, schedRuns, dispatched, time.Since(begin).Round(time.Millisecond))
}
