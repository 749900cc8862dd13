// End-to-end tests of the three real Lambda binaries: ingest, scheduler and
// drain run as `bootstrap` processes under a fake of the Lambda Runtime API;
// the scheduler's real SDK Invoke calls reach a local Lambda endpoint that
// runs the drain binary; forward routes deliver to a local sink.
package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/lambdatest"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// delivery is one forwarded call the sink received.
type delivery struct {
	path, id, key string
	seq           int
	at            time.Time
}

// sink receives forwarded webhooks, holding /hooks calls 25ms so that
// parallel drains overlap, and records what arrived.
type sink struct {
	mu      sync.Mutex
	got     []delivery
	now     int
	maxConc int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data struct {
			Seq int `json:"seq"`
		} `json:"data"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	d := delivery{path: r.URL.Path, id: r.Header.Get("webhook-id"), key: r.Header.Get("hookline-key"), seq: body.Data.Seq, at: time.Now()}
	s.mu.Lock()
	s.got = append(s.got, d)
	s.now++
	s.maxConc = max(s.maxConc, s.now)
	s.mu.Unlock()
	if d.path == "/hooks" {
		time.Sleep(25 * time.Millisecond) // a slow receiver, so drains overlap
	}
	s.mu.Lock()
	s.now--
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *sink) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// apiEvent turns a testdata/events fixture into a signed API Gateway event
// for body; the signature header carries a wrong signature, a space and the
// right one, so it has commas and spaces in it.
func apiEvent(t *testing.T, fixture, id, body string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "events", fixture))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := webhook.SignStandard(secret, id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	ev["body"] = body
	for k, v := range map[string]string{
		"webhook-id": id, "webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
		"webhook-signature": "v1,d3Jvbmcgc2lnbmF0dXJlIGZvciB0aGUgdGVzdCEhIQ== " + sig,
		"content-length":    strconv.Itoa(len(body)),
	} {
		ev["headers"].(map[string]any)[k] = v
		if mv, ok := ev["multiValueHeaders"].(map[string]any); ok {
			mv[k] = []any{v}
		}
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func redisEnv(rdb redis.UniversalClient) map[string]string {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		addrs := c.Options().Addrs
		url := "redis://" + addrs[0]
		for _, a := range addrs[1:] {
			url += map[bool]string{true: "?", false: "&"}[!strings.Contains(url, "?")] + "addr=" + a
		}
		return map[string]string{"HOOKLINE_REDIS_URL": url, "HOOKLINE_REDIS_CLUSTER": "true"}
	}
	return map[string]string{"HOOKLINE_REDIS_URL": "redis://" + rdb.(*redis.Client).Options().Addr}
}

// TestEndToEnd proves, with the real binaries: every accepted webhook
// reaches the sink exactly once; per-key order holds; keys run in parallel;
// a route with rate 2/s shared by 3 keys of one tenant never exceeds 2 calls
// in any 1-second window at the sink; a duplicated drain event does nothing.
func TestEndToEnd(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := &sink{}
		srv := httptest.NewServer(s)
		defer srv.Close()
		cfg := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
lanes:
  quick: {concurrency: 8, quantum: 5s}
  slow:  {concurrency: 2, quantum: 10s}
routes:
  post.create: {lane: quick, handler: forward, url: %[2]s/hooks, max_attempts: 3}
  post.update: {lane: quick, handler: forward, url: %[2]s/hooks, max_attempts: 3}
  rated.a:     {lane: quick, handler: forward, url: %[2]s/rated, rate: 2/s}
  rated.b:     {lane: quick, handler: forward, url: %[2]s/rated, rate: 2/s}
  rated.c:     {lane: quick, handler: forward, url: %[2]s/rated, rate: 2/s}
  report.build: {lane: slow, handler: log}
scheduler: {poll: 50ms, margin: 1s}
drain: {batch: 10, margin: 1s, rate_margin: 150ms}
`, redistest.Prefix(t), srv.URL)
		st := startStack(t, rdb, cfg, "whsec_b2xkIHNlY3JldCByb3RhdGVkIG91dCBvZiB1c2U= "+secret, 8)
		ingest, scheduler, ep := st.ingest, st.scheduler, st.ep
		ctx := context.Background()

		// Ingest: 4 tenants x 2 codes x 5 items, and 3 rated keys of one
		// tenant x 4 items, through all three API Gateway event shapes.
		fixtures := []string{"ingest-http-v2.json", "ingest-rest-v1.json", "ingest-http-v1.json"}
		var sent []string
		post := func(tenant, code string, seq int) {
			id := fmt.Sprintf("msg_%s_%s_%02d", tenant, strings.ReplaceAll(code, ".", "_"), seq)
			body := fmt.Sprintf(`{"code":%q,"data":{"customer_id":%q,"seq":%d}}`, code, tenant, seq)
			fx := fixtures[len(sent)%len(fixtures)]
			res, err := ingest.Invoke(ctx, "", apiEvent(t, fx, id, body), 10*time.Second)
			if err != nil || res.Err != nil {
				t.Fatalf("ingest %s: %v %v", id, err, res.Err)
			}
			var resp struct{ StatusCode int }
			if err := json.Unmarshal(res.Payload, &resp); err != nil || resp.StatusCode != 202 {
				t.Fatalf("ingest %s via %s: %s", id, fx, res.Payload)
			}
			sent = append(sent, id)
		}
		for seq := range 5 {
			for _, tenant := range []string{"t1", "t2", "t3", "t4"} {
				post(tenant, "post.create", seq)
				post(tenant, "post.update", seq)
			}
		}
		for seq := range 4 {
			for _, code := range []string{"rated.a", "rated.b", "rated.c"} {
				post("ratedco", code, seq)
			}
		}
		ep.Duplicate(true) // the first drain event is delivered twice

		// Run the scheduler (as EventBridge would) until all has arrived.
		schedEvent, _ := os.ReadFile(filepath.Join("..", "testdata", "events", "scheduler-schedule.json"))
		for round := 0; len(s.deliveries()) < len(sent); round++ {
			if round == 4 {
				t.Fatalf("after 4 scheduler runs the sink has %d of %d webhooks", len(s.deliveries()), len(sent))
			}
			res, err := scheduler.Invoke(ctx, "", schedEvent, 12*time.Second)
			if err != nil || res.Err != nil {
				t.Fatalf("scheduler: %v %v", err, res.Err)
			}
			t.Logf("scheduler run %d: %s", round+1, res.Payload)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := ep.Wait(wctx); err != nil {
			t.Fatal(err)
		}

		got := s.deliveries()
		// Every accepted webhook arrived exactly once.
		count := map[string]int{}
		for _, d := range got {
			count[d.id]++
		}
		for _, id := range sent {
			if count[id] != 1 {
				t.Errorf("webhook %s arrived %d times", id, count[id])
			}
		}
		if len(got) != len(sent) {
			t.Errorf("sink got %d calls for %d webhooks", len(got), len(sent))
		}
		// Per-key order.
		last := map[string]int{}
		for _, d := range got {
			if prev, ok := last[d.key]; ok && d.seq != prev+1 {
				t.Errorf("key %s: item %d arrived after item %d", d.key, d.seq, prev)
			}
			last[d.key] = d.seq
		}
		// Keys ran in parallel.
		s.mu.Lock()
		maxConc := s.maxConc
		s.mu.Unlock()
		if maxConc < 2 {
			t.Errorf("at most %d calls at once at the sink: keys did not run in parallel", maxConc)
		}
		// The shared 2/s limit held at the sink.
		var rated []time.Time
		for _, d := range got {
			if d.path == "/rated" {
				rated = append(rated, d.at)
			}
		}
		sort.Slice(rated, func(i, j int) bool { return rated[i].Before(rated[j]) })
		minGap := time.Hour
		for i := 0; i+2 < len(rated); i++ {
			gap := rated[i+2].Sub(rated[i])
			minGap = min(minGap, gap)
			if gap < time.Second {
				t.Errorf("3 calls to the 2/s endpoint within %v", gap)
			}
		}
		// The duplicated drain event ran and did nothing.
		var dup []lambdatest.Run
		for _, c := range ep.Calls() {
			if len(c.RequestIDs) == 2 {
				for _, r := range ep.Runs() {
					if slices.Contains(c.RequestIDs, r.RequestID) {
						dup = append(dup, r)
					}
				}
			}
		}
		outcomes := []string{}
		for _, r := range dup {
			var res struct{ Outcome string }
			_ = json.Unmarshal(r.Response, &res)
			outcomes = append(outcomes, res.Outcome)
		}
		if len(dup) != 2 || (!slices.Contains(outcomes, "duplicate") && !slices.Contains(outcomes, "lease-lost")) {
			t.Errorf("duplicated drain event: runs %d, outcomes %v; want one of them to do nothing", len(dup), outcomes)
		}
		t.Logf("%d webhooks delivered once each; %d keys; max %d concurrent calls; min 3-call span at the 2/s endpoint %v; duplicate drain outcomes %v; %d drain invocations",
			len(got), len(last), maxConc, minGap, outcomes, len(ep.Runs()))
	})
}
