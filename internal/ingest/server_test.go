package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// testSecret is a Standard Webhooks secret used only by these tests.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var now = time.Unix(1_763_900_000, 0)

type rig struct {
	t   testing.TB
	e   *queue.Engine
	srv *Server
}

func newRig(t testing.TB, rdb redis.UniversalClient) *rig {
	t.Helper()
	clk := clock.NewFake(now)
	e, err := queue.New(rdb, queue.Options{Prefix: redistest.Prefix(t), Lanes: []string{"quick", "slow"}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	v, err := webhook.NewStandard([]string{testSecret}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{
		Engine: e, Verifier: v, TenantPointer: "/data/customer_id", MaxBody: 1024, Clock: clk,
		Lane: func(code string) (string, bool) {
			switch code {
			case "post.create":
				return "quick", true
			case "report.build":
				return "slow", true
			}
			return "", false
		},
		KeepHeaders: func(code string) []string {
			if code == "post.create" {
				return []string{"webhook-id"}
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, e: e, srv: srv}
}

// request builds a signed POST /webhooks.
func signed(t *testing.T, id, body string, ts time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sig, err := webhook.SignStandard(testSecret, id, ts, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
	return r
}

type answer struct {
	status int
	header http.Header
	ok     Accepted
	err    ErrorBody
}

func (g *rig) do(r *http.Request) answer {
	g.t.Helper()
	w := httptest.NewRecorder()
	g.srv.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header()}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		g.t.Fatalf("answer %d has Content-Type %q, want application/json", w.Code, ct)
	}
	raw := w.Body.Bytes()
	if w.Code < 300 {
		if err := json.Unmarshal(raw, &a.ok); err != nil {
			g.t.Fatalf("2xx body %q: %v", raw, err)
		}
	} else if err := json.Unmarshal(raw, &a.err); err != nil || a.err.Error.Code == "" || a.err.Error.Message == "" {
		g.t.Fatalf("error body %q is not {error:{code,message}}: %v", raw, err)
	}
	return a
}

func (g *rig) depth(key string) int64 {
	g.t.Helper()
	info, err := g.e.Inspect(context.Background(), key)
	if err != nil {
		g.t.Fatal(err)
	}
	return info.Depth
}

const goodBody = `{"code":"post.create","data":{"customer_id":"cust_42","title":"hi, there"}}`

// TestIngestAnswers covers every answer of the HTTP contract and checks that
// refused requests store nothing.
func TestIngestAnswers(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		g := newRig(t, rdb)

		a := g.do(signed(t, "msg_1", goodBody, now))
		if a.status != http.StatusAccepted || a.ok.ID != "msg_1" || a.ok.Key != "cust_42:post.create" || a.ok.Duplicate {
			t.Fatalf("first post: %d %+v", a.status, a.ok)
		}
		if d := g.depth("cust_42:post.create"); d != 1 {
			t.Fatalf("202 answered but depth %d", d)
		}
		a = g.do(signed(t, "msg_1", goodBody, now.Add(time.Minute)))
		if a.status != http.StatusOK || !a.ok.Duplicate || a.ok.ID != "msg_1" {
			t.Fatalf("duplicate: %d %+v", a.status, a.ok)
		}
		if d := g.depth("cust_42:post.create"); d != 1 {
			t.Fatalf("duplicate stored: depth %d", d)
		}

		unsigned := func(body, ct string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			return r
		}
		wrongSig := signed(t, "msg_x", goodBody, now)
		wrongSig.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		tampered := signed(t, "msg_x", goodBody, now)
		tampered.Body = io.NopCloser(strings.NewReader(strings.Replace(goodBody, "hi", "ho", 1)))
		badID := signed(t, "a b", goodBody, now)
		cases := []struct {
			name   string
			r      *http.Request
			status int
			code   string
		}{
			{"not json", unsigned(goodBody, "text/plain"), 415, "unsupported_media_type"},
			{"no content type", unsigned(goodBody, ""), 415, "unsupported_media_type"},
			{"too large", signed(t, "msg_big", `{"code":"post.create","data":{"customer_id":"c","pad":"`+strings.Repeat("x", 1100)+`"}}`, now), 413, "body_too_large"},
			{"no signature", unsigned(goodBody, "application/json"), 401, "signature_missing"},
			{"wrong signature", wrongSig, 401, "signature_invalid"},
			{"tampered body", tampered, 401, "signature_invalid"},
			{"old timestamp", signed(t, "msg_old", goodBody, now.Add(-6*time.Minute)), 401, "timestamp_invalid"},
			{"future timestamp", signed(t, "msg_new", goodBody, now.Add(6*time.Minute)), 401, "timestamp_invalid"},
			{"malformed json", signed(t, "m1", `{"code":`, now), 400, "malformed_json"},
			{"missing code", signed(t, "m2", `{"data":{"customer_id":"c"}}`, now), 400, "missing_code"},
			{"missing data", signed(t, "m3", `{"code":"post.create"}`, now), 400, "missing_data"},
			{"tenant missing", signed(t, "m4", `{"code":"post.create","data":{}}`, now), 400, "missing_tenant"},
			{"tenant invalid", signed(t, "m5", `{"code":"post.create","data":{"customer_id":"a:b"}}`, now), 400, "invalid_tenant"},
			{"bad webhook-id", badID, 400, "invalid_id"},
			{"unknown code", signed(t, "m6", `{"code":"nope","data":{"customer_id":"c"}}`, now), 422, "unknown_code"},
			{"wrong method", httptest.NewRequest(http.MethodGet, "/webhooks", nil), 405, "method_not_allowed"},
			{"unknown path", httptest.NewRequest(http.MethodPost, "/hooks", nil), 404, "not_found"},
		}
		for _, c := range cases {
			a := g.do(c.r)
			if a.status != c.status || a.err.Error.Code != c.code {
				t.Errorf("%s: %d %q (%s), want %d %q", c.name, a.status, a.err.Error.Code, a.err.Error.Message, c.status, c.code)
			}
			if strings.Contains(a.err.Error.Message, testSecret) || strings.Contains(a.err.Error.Message, "AAAAAAAA") {
				t.Errorf("%s: message leaks a secret or signature: %s", c.name, a.err.Error.Message)
			}
		}
		// Nothing but the first webhook was stored.
		st, _ := g.e.Stats(context.Background(), "quick")
		if st.Ready != 1 || g.depth("cust_42:post.create") != 1 || g.depth("c:post.create") != 0 {
			t.Fatalf("refused requests stored something: %+v", st)
		}
		// A webhook without webhook-id gets a generated id when
		// verification is off.
		g.srv.opt.Verifier = webhook.NoVerify{}
		a = g.do(unsigned(`{"code":"report.build","data":{"customer_id":7}}`, "application/json; charset=utf-8"))
		if a.status != http.StatusAccepted || len(a.ok.ID) != 26 || a.ok.Key != "7:report.build" {
			t.Fatalf("unsigned with verify none: %d %+v", a.status, a.ok)
		}
		if a := g.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)); a.status != 200 {
			t.Fatalf("healthz %d", a.status)
		}
	})
}

// TestG1RedisDownAnswers503: while Redis cannot take the write, ingest
// answers 503 with Retry-After so the provider retries; once it is back,
// the retried webhook is stored and acknowledged.
func TestG1RedisDownAnswers503(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	g := newRig(t, srv.Client(t))
	if a := g.do(signed(t, "before", goodBody, now)); a.status != http.StatusAccepted {
		t.Fatalf("before the outage: %d", a.status)
	}
	srv.Kill(t)
	a := g.do(signed(t, "during", goodBody, now))
	if a.status != http.StatusServiceUnavailable || a.err.Error.Code != "unavailable" || a.header.Get("Retry-After") != "5" {
		t.Fatalf("with Redis down: %d %+v Retry-After=%q", a.status, a.err, a.header.Get("Retry-After"))
	}
	if a := g.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)); a.status != http.StatusServiceUnavailable {
		t.Fatalf("healthz with Redis down: %d", a.status)
	}
	srv.Restart(t)
	if a := g.do(signed(t, "during", goodBody, now)); a.status != http.StatusAccepted {
		t.Fatalf("retry after restart: %d %+v", a.status, a.err)
	}
	// Both acknowledged webhooks are there, in order.
	ls, err := g.e.Claim(context.Background(), "quick", 1)
	if err != nil || len(ls) != 1 {
		t.Fatalf("claim: %v %v", ls, err)
	}
	if err := g.e.Activate(context.Background(), &ls[0], "inv"); err != nil {
		t.Fatal(err)
	}
	b, err := g.e.Fetch(context.Background(), &ls[0], 10)
	if err != nil || len(b.Items) != 2 || b.Items[0].ID != "before" || b.Items[1].ID != "during" {
		t.Fatalf("after restart the queue holds %+v (%v)", b, err)
	}
	if !bytes.Equal(b.Items[0].Body, []byte(goodBody)) || b.Items[0].Header("webhook-id") != "before" {
		t.Fatalf("stored item differs from the request: %q %+v", b.Items[0].Body, b.Items[0].Headers)
	}
}
