package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/logbuf"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// attempts is a go-redis hook that counts what the client sends to Redis:
// connection attempts and commands.
type attempts struct{ dials, cmds atomic.Int64 }

func (a *attempts) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		a.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (a *attempts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (a *attempts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		a.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (a *attempts) take() int64 { return a.dials.Swap(0) + a.cmds.Swap(0) }

// answer is one ingest answer as a provider sees it.
type answer struct {
	id          string
	status      int
	retryAfter  string
	code        string
	start, done time.Time
}

func (a answer) took() time.Duration { return a.done.Sub(a.start) }

// maxAnswer is the bound on every answer, 503s included (issue 8, item 7).
const maxAnswer = time.Second

// TestG1IngestAnswersFastWhileRedisDown: with Redis stopped, and separately
// paused with SIGSTOP (it accepts connections and answers nothing), every
// webhook gets 503 with Retry-After within a second, while the Redis client
// built for the functions makes a bounded number of attempts however many
// webhooks arrive; once Redis is back, ingest accepts again within a second,
// and every acknowledged webhook is stored. Four providers post without
// pause throughout; each answer is timed.
func TestG1IngestAnswersFastWhileRedisDown(t *testing.T) {
	for _, mode := range []string{"stopped", "paused"} {
		t.Run(mode, func(t *testing.T) { outage(t, mode) })
	}
}

func outage(t *testing.T, mode string) {
	const (
		senders = 4
		pace    = 10 * time.Millisecond // between one provider's posts: 400 webhooks/s in all
		down    = 3 * time.Second       // longer than go-redis's own dial retries (1.7 s)
	)
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	cfg, err := config.Parse([]byte(`
tenant: /data/customer_id
lanes: {quick: {concurrency: 4, quantum: 5s}}
routes: {post.create: {lane: quick, handler: log}}
verify: none
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Redis.URL = "redis://" + srv.Addr()
	rdb, err := RedisClient(cfg.Redis, RedisAuth{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &attempts{}
	rdb.AddHook(hook)
	logs := &logbuf.Buffer{}
	a, err := NewWith(cfg, rdb, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ing, err := a.Ingest()
	if err != nil {
		t.Fatal(err)
	}
	post := func(id string) answer {
		body := `{"code":"post.create","data":{"customer_id":"c1","n":"` + id + `"}}`
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("webhook-id", id)
		w := httptest.NewRecorder()
		an := answer{id: id, start: time.Now()}
		ing.ServeHTTP(w, r)
		an.done = time.Now()
		an.status, an.retryAfter = w.Code, w.Header().Get("Retry-After")
		var e ingest.ErrorBody
		if w.Code >= 300 && json.Unmarshal(w.Body.Bytes(), &e) == nil {
			an.code = e.Error.Code
		}
		return an
	}
	if an := post(mode + "-before"); an.status != http.StatusAccepted {
		t.Fatalf("before the outage: %d", an.status)
	}

	// Providers post without pause from now until told to stop.
	var (
		mu      sync.Mutex
		answers []answer
		stop    = make(chan struct{})
		first   = make(chan struct{}) // closed at the first 2xx after the outage began
		once    sync.Once
		wg      sync.WaitGroup
	)
	outageBegan := time.Now()
	switch mode {
	case "stopped":
		srv.Stop(t)
	case "paused":
		srv.Pause(t)
	}
	hook.take()
	for s := range senders {
		wg.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				an := post(fmt.Sprintf("%s-%d-%d", mode, s, n))
				mu.Lock()
				answers = append(answers, an)
				mu.Unlock()
				if an.status < 300 {
					once.Do(func() { close(first) })
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// The outage lasts `down`.
	select {
	case <-first:
		t.Fatalf("a webhook was acknowledged while Redis was %s", mode)
	case <-time.After(down):
	}
	sentDuring := hook.take()
	backCalled := time.Now()
	switch mode {
	case "stopped":
		srv.Restart(t) // returns once the server answers PING
	case "paused":
		srv.Resume(t)
	}
	back := time.Now()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatalf("ingest did not accept within 10 s of Redis coming back")
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	all := slices.Clone(answers)
	mu.Unlock()
	var during []answer
	var worst, worstDuring time.Duration
	var accepted []string
	firstOK := time.Time{}
	for _, an := range all {
		worst = max(worst, an.took())
		switch {
		case an.status == http.StatusAccepted:
			accepted = append(accepted, an.id)
			if firstOK.IsZero() || an.done.Before(firstOK) {
				firstOK = an.done
			}
		case an.status == http.StatusServiceUnavailable && an.retryAfter == "5" && an.code == "unavailable":
		default:
			t.Errorf("answer %s: %d Retry-After=%q code=%q; want 503 with Retry-After and the error shape, or 202",
				an.id, an.status, an.retryAfter, an.code)
		}
		if an.took() > maxAnswer {
			t.Errorf("answer %s (%d) took %v, over %v", an.id, an.status, an.took(), maxAnswer)
		}
		if an.done.Before(backCalled) {
			during = append(during, an)
			worstDuring = max(worstDuring, an.took())
		}
	}
	accept := firstOK.Sub(back)
	t.Logf("Redis %s for %v: %d answers, all 503 + Retry-After, slowest %v; the Redis client made %d attempts (dials + commands) meanwhile",
		mode, backCalled.Sub(outageBegan).Round(time.Millisecond), len(during), worstDuring.Round(time.Millisecond), sentDuring)
	t.Logf("Redis back (%s took %v): first 202 after %v (%v after the call); slowest answer overall %v",
		map[string]string{"stopped": "Restart", "paused": "SIGCONT"}[mode], back.Sub(backCalled).Round(time.Millisecond),
		accept.Round(time.Millisecond), firstOK.Sub(backCalled).Round(time.Millisecond), worst.Round(time.Millisecond))
	if accept > maxAnswer {
		t.Errorf("ingest accepted %v after Redis came back, over %v", accept, maxAnswer)
	}
	// No retry storm: at the outage's start each provider's in-flight
	// request may spend its 800 ms on go-redis retries; after that, one
	// probe per 200 ms at most reaches the client.
	if limit := int64(senders*12 + 2*int(down/(200*time.Millisecond))); sentDuring > limit || int(sentDuring) > len(during)/2 {
		t.Errorf("the client made %d attempts for %d webhooks during the outage; want at most %d, and far fewer than webhooks", sentDuring, len(during), limit)
	}
	if l := logs.String(); !strings.Contains(l, "storage unreachable") || !strings.Contains(l, "storage reachable again") {
		t.Errorf("the log does not tell when ingest stopped and resumed calling Redis:\n%s", l)
	}

	// Every acknowledged webhook is stored (a 503 answered while Redis was
	// paused may be stored too: its command waited in the socket; the
	// provider's retry is then a duplicate, answered 200).
	ids := storedIDs(t, a)
	for _, id := range append(accepted, mode+"-before") {
		if !ids[id] {
			t.Errorf("webhook %s was acknowledged but is not stored", id)
		}
	}
}

// storedIDs drains the queue of c1:post.create and returns its item ids.
func storedIDs(t *testing.T, a *App) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := a.Engine.Claim(ctx, "quick", 1)
	if err != nil || len(ls) != 1 {
		t.Fatalf("claim: %v %v", ls, err)
	}
	l := &ls[0]
	if err := a.Engine.Activate(ctx, l, "check"); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for {
		b, err := a.Engine.Fetch(ctx, l, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Items) == 0 {
			return ids
		}
		acked := make([]string, len(b.Items))
		for i, it := range b.Items {
			ids[it.ID], acked[i] = true, it.ID
		}
		if _, err := a.Engine.Ack(ctx, l, acked...); err != nil {
			t.Fatal(err)
		}
	}
}
