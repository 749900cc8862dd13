package builtins

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/shared/handler"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const sinkSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// sink records requests and answers with the status and headers next() gives.
type sink struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
	next func() (int, http.Header)
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.body = append(s.body, b)
	next := s.next
	s.mu.Unlock()
	status, h := 200, http.Header{}
	if next != nil {
		status, h = next()
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func event() *handler.Event {
	body := []byte(`{"code":"post.create","data":{"customer_id":"c1"}}`)
	return &handler.Event{ID: "msg_1", Key: "c1:post.create", Tenant: "c1", Code: "post.create", Body: body, Attempt: 3, Token: 7}
}

func TestForwardDeliversSignedExactBody(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	f, err := NewForward(ForwardConfig{URL: srv.URL + "/hooks?token=s3cr3t", Secret: sinkSecret, Headers: map[string]string{"X-Env": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := event()
	if err := f.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r, body := s.reqs[0], s.body[0]
	if string(body) != string(ev.Body) || r.Method != http.MethodPost || r.URL.Query().Get("token") != "s3cr3t" {
		t.Fatalf("sink got %s %s %q", r.Method, r.URL, body)
	}
	if r.Header.Get("webhook-id") != "msg_1" || r.Header.Get("hookline-key") != "c1:post.create" ||
		r.Header.Get("hookline-attempt") != "3" || r.Header.Get("X-Env") != "test" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", r.Header)
	}
	v, _ := webhook.NewStandard([]string{sinkSecret}, time.Minute)
	if err := v.Verify(webhook.HTTPHeaders(r.Header), body, time.Now()); err != nil {
		t.Fatalf("the receiver cannot verify the forwarded signature: %v", err)
	}
}

// TestForwardAnswers maps every class of upstream answer to the retry it
// asks for.
func TestForwardAnswers(t *testing.T) {
	s := &sink{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	f, err := NewForward(ForwardConfig{URL: srv.URL + "/hooks?token=s3cr3t", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	type want int
	const (
		ok want = iota
		backoff
		retryAfter
		permanent
	)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		status int
		h      http.Header
		want   want
		delay  time.Duration
	}{
		{200, nil, ok, 0},
		{204, nil, ok, 0},
		{429, hdr("Retry-After", "7"), retryAfter, 7 * time.Second},
		{503, hdr("Retry-After", "2"), retryAfter, 2 * time.Second},
		{429, nil, backoff, 0},
		{503, nil, backoff, 0},
		{500, nil, backoff, 0},
		{502, nil, backoff, 0},
		{408, nil, backoff, 0},
		{425, nil, backoff, 0},
		{400, nil, permanent, 0},
		{401, nil, permanent, 0},
		{404, nil, permanent, 0},
		{410, nil, permanent, 0},
		{422, nil, permanent, 0},
		{301, nil, permanent, 0},
	}
	for _, c := range cases {
		s.next = func() (int, http.Header) { return c.status, c.h }
		err := f.Handle(context.Background(), event())
		var perm *handler.PermanentError
		var ra *handler.RetryAfterError
		got := backoff
		switch {
		case err == nil:
			got = ok
		case errors.As(err, &perm):
			got = permanent
		case errors.As(err, &ra):
			got = retryAfter
			if ra.Delay != c.delay {
				t.Errorf("%d: delay %v, want %v", c.status, ra.Delay, c.delay)
			}
		}
		if got != c.want {
			t.Errorf("HTTP %d: got %v (%v), want %v", c.status, got, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("HTTP %d: error leaks the URL's query: %v", c.status, err)
		}
	}
	// A timeout retries with backoff, and its error hides the query too.
	s.next = func() (int, http.Header) { time.Sleep(400 * time.Millisecond); return 200, nil }
	err = f.Handle(context.Background(), event())
	var perm *handler.PermanentError
	if err == nil || errors.As(err, &perm) || strings.Contains(err.Error(), "s3cr3t") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	if _, err := NewForward(ForwardConfig{URL: "ftp://x"}); err == nil {
		t.Fatal("a non-HTTP URL was accepted")
	}
	if _, err := NewForward(ForwardConfig{URL: srv.URL, Secret: "not-a-secret!"}); err == nil || strings.Contains(err.Error(), "not-a-secret") {
		t.Fatalf("bad secret: %v", err)
	}
}

// TestForwardPushesRateLimitOn429: forward does not wait for the rate limit
// (the drain reserves each call's slot before calling it), but a 429 with
// Retry-After pushes the route's shared bucket, per (tenant, URL), so every
// drain sharing it slows down.
func TestForwardPushesRateLimitOn429(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		clk := clock.NewFake(time.Unix(1_763_900_000, 0))
		lim, err := ratelimit.New(rdb, ratelimit.Options{Prefix: redistest.Prefix(t), Clock: clk, Margin: -1})
		if err != nil {
			t.Fatal(err)
		}
		s := &sink{}
		srv := httptest.NewServer(s)
		defer srv.Close()
		rate := ratelimit.Rate{N: 1, Per: 10 * time.Second}
		h, err := ForwardFactory(ForwardConfig{Limiter: lim, Clock: clk})(handler.Route{Handler: "forward", URL: srv.URL, Rate: rate})
		if err != nil {
			t.Fatal(err)
		}
		// Two calls in a row both go out: the handler itself never waits.
		for range 2 {
			if err := h.Handle(context.Background(), event()); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.reqs) != 2 {
			t.Fatalf("sink got %d calls, want 2", len(s.reqs))
		}
		s.next = func() (int, http.Header) { return 429, http.Header{"Retry-After": []string{"60"}} }
		var ra *handler.RetryAfterError
		if err := h.Handle(context.Background(), event()); !errors.As(err, &ra) || ra.Delay != time.Minute {
			t.Fatalf("429 with Retry-After: %v, want a retry after 1m", err)
		}
		// The tenant's bucket for the URL is pushed by the Retry-After;
		// another tenant's is not.
		res, err := lim.Reserve(context.Background(), "c1", srv.URL, rate, time.Second)
		if err != nil || res.OK || !res.At.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("c1's bucket after the 429: %+v %v, want the next slot in 1m", res, err)
		}
		if res, err := lim.Reserve(context.Background(), "c2", srv.URL, rate, time.Second); err != nil || !res.OK {
			t.Fatalf("c2's bucket after c1's 429: %+v %v, want a slot now", res, err)
		}
	})
}

// connCounter starts a server answering 204 and counts the connections
// opened to it.
func connCounter(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestForwardReusesConnections: 64 drains calling one host at once through
// the forward handler's pool open at most 64 connections, where net/http's
// default client (2 idle connections per host) dials on most calls.
func TestForwardReusesConnections(t *testing.T) {
	const drains, calls = 64, 20
	run := func(f *Forward) {
		var wg sync.WaitGroup
		for range drains {
			wg.Go(func() {
				for range calls {
					if err := f.Handle(context.Background(), event()); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}

	poolSrv, poolConns := connCounter(t)
	pooled, err := NewForward(ForwardConfig{URL: poolSrv.URL, MaxConnsPerHost: drains})
	if err != nil {
		t.Fatal(err)
	}
	run(pooled)

	baseSrv, baseConns := connCounter(t)
	base, err := NewForward(ForwardConfig{URL: baseSrv.URL, Client: &http.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	run(base)

	p, b := poolConns.Load(), baseConns.Load()
	t.Logf("%d drains x %d calls: %d new connections with the pool, %d with &http.Client{}", drains, calls, p, b)
	if p > drains || p >= b {
		t.Fatalf("pool opened %d connections, want at most %d and fewer than the default client's %d", p, drains, b)
	}
}

// TestForwardHandlersShareThePool: forward handlers built separately with
// the same pool settings share one transport, so connections outlive the
// handler that opened them; other settings get another transport.
func TestForwardHandlersShareThePool(t *testing.T) {
	srv, conns := connCounter(t)
	f1, err := NewForward(ForwardConfig{URL: srv.URL + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := NewForward(ForwardConfig{URL: srv.URL + "/b", Secret: sinkSecret})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, f := range []*Forward{f1, f2} {
			if err := f.Handle(context.Background(), event()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("6 sequential calls through two handlers opened %d connections, want 1", n)
	}
	tr, ok := f1.cfg.Client.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != 64 || tr.MaxConnsPerHost != 64 || tr.ResponseHeaderTimeout != 10*time.Second || tr.IdleConnTimeout != 90*time.Second || !tr.ForceAttemptHTTP2 {
		t.Fatalf("default pool transport %+v", f1.cfg.Client.Transport)
	}
	f3, err := NewForward(ForwardConfig{URL: srv.URL, MaxConnsPerHost: 8})
	if err != nil {
		t.Fatal(err)
	}
	if f3.cfg.Client.Transport == f1.cfg.Client.Transport {
		t.Fatal("a pool of 8 shares the transport of a pool of 64")
	}
}
