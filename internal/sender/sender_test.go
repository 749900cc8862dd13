package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// testSecret is a Standard Webhooks secret for tests only.
const testSecret = "whsec_c2VuZGVyLXRlc3Qtc2VjcmV0LWtleQ=="

// received is one request as the test server saw it.
type received struct {
	id      string
	key     string // tenant:code, from the body
	tenant  string
	code    string
	seq     int
	sentAt  string
	ts      string // webhook-timestamp header
	body    []byte
	attempt int // 1 for the first request with this id
}

// reply is what the test server answers; a zero reply means 202.
type reply struct {
	status     int
	body       string
	retryAfter string
}

// receiver is an ingest endpoint for tests: it verifies the Standard
// Webhooks signature, parses the body with the tenant pointer and records
// every request.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	verify  *webhook.Standard // nil: signatures are not checked
	pointer string
	answer  func(received) reply  // nil: always 202
	before  func(r *http.Request) // optional, runs before answering

	mu       sync.Mutex
	got      []received
	attempts map[string]int
	inflight map[string]int
	overlap  []string // keys seen with two requests in flight
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	rc := &receiver{t: t, pointer: DefaultTenantPointer, attempts: map[string]int{}, inflight: map[string]int{}}
	if secret != "" {
		v, err := webhook.NewStandard([]string{secret}, 0)
		if err != nil {
			t.Fatalf("NewStandard: %v", err)
		}
		rc.verify = v
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("read body: %v", err)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("got %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if rc.verify != nil {
		if err := rc.verify.Verify(webhook.HTTPHeaders(r.Header), body, time.Now()); err != nil {
			writeJSON(w, http.StatusUnauthorized, `{"error":{"code":"`+webhook.ErrorCode(err)+`","message":"no"}}`)
			return
		}
	}
	p, err := webhook.Parse(body, rc.pointer)
	if err != nil {
		rc.t.Errorf("Parse(%s): %v", body, err)
		writeJSON(w, http.StatusBadRequest, `{"error":{"code":"bad_request","message":"no"}}`)
		return
	}
	var data struct {
		Seq    *int   `json:"seq"`
		SentAt string `json:"sent_at"`
	}
	if err := json.Unmarshal(p.Data, &data); err != nil || data.Seq == nil {
		rc.t.Errorf("data %s has no seq: %v", p.Data, err)
		return
	}
	rec := received{
		id: r.Header.Get(webhook.HeaderID), key: p.Tenant + ":" + p.Code, tenant: p.Tenant, code: p.Code,
		seq: *data.Seq, sentAt: data.SentAt, ts: r.Header.Get(webhook.HeaderTimestamp), body: body,
	}

	rc.mu.Lock()
	rc.attempts[rec.id]++
	rec.attempt = rc.attempts[rec.id]
	rc.inflight[rec.key]++
	if rc.inflight[rec.key] > 1 {
		rc.overlap = append(rc.overlap, rec.key)
	}
	rc.got = append(rc.got, rec)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inflight[rec.key]--
		rc.mu.Unlock()
	}()

	if rc.before != nil {
		rc.before(r)
	}
	var a reply
	if rc.answer != nil {
		a = rc.answer(rec)
	}
	if a.status == 0 {
		a.status, a.body = http.StatusAccepted, fmt.Sprintf(`{"id":%q,"key":%q}`, rec.id, rec.key)
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	writeJSON(w, a.status, a.body)
}

// requests returns a copy of what was received so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// options returns Options aimed at rc that record retry waits in delays
// instead of sleeping.
func (rc *receiver) options(delays *[]time.Duration) Options {
	var mu sync.Mutex
	return Options{
		URL:    rc.srv.URL + "/webhooks",
		Secret: testSecret,
		Run:    "run1",
		sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			if delays != nil {
				*delays = append(*delays, d)
			}
			return ctx.Err()
		},
	}
}

func mustSend(t *testing.T, opt Options) Report {
	t.Helper()
	rep, err := Send(context.Background(), opt)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if rep.Sent != rep.Accepted+rep.Duplicates+rep.Failed {
		t.Fatalf("report %+v does not add up", rep)
	}
	return rep
}

func TestSendIDsAndBodies(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	now := time.Now().Truncate(time.Second).Add(123456789 * time.Nanosecond)
	opt := rc.options(nil)
	opt.Tenants, opt.Codes, opt.Count = 2, []string{"post.create", "order.paid"}, 3
	opt.Clock = func() time.Time { return now }
	var progress []int
	opt.Progress = func(done, total int) {
		if total != 12 {
			t.Errorf("Progress total = %d, want 12", total)
		}
		progress = append(progress, done)
	}

	rep := mustSend(t, opt)
	if rep.Sent != 12 || rep.Accepted != 12 || rep.Failed != 0 || rep.Duplicates != 0 || len(rep.Errors) != 0 || rep.Run != "run1" {
		t.Fatalf("report = %+v, want 12 sent and accepted", rep)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(progress, want) {
		t.Fatalf("Progress calls %v, want %v", progress, want)
	}

	var ids []string
	for _, r := range rc.requests() {
		ids = append(ids, r.id)
		if want := fmt.Sprintf("run1-%s-%s-%06d", r.tenant, r.code, r.seq); r.id != want {
			t.Fatalf("id %q for body %s, want %q", r.id, r.body, want)
		}
		if r.attempt != 1 {
			t.Fatalf("id %q sent %d times", r.id, r.attempt)
		}
		if r.ts != strconv.FormatInt(now.Unix(), 10) {
			t.Fatalf("webhook-timestamp %q, want %d", r.ts, now.Unix())
		}
		if r.sentAt != now.UTC().Format(time.RFC3339Nano) {
			t.Fatalf("sent_at %q, want %q", r.sentAt, now.UTC().Format(time.RFC3339Nano))
		}
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		want := map[string]any{"code": r.code, "data": map[string]any{
			"customer_id": r.tenant, "seq": float64(r.seq), "sent_at": r.sentAt}}
		if !reflect.DeepEqual(doc, want) {
			t.Fatalf("body %s, want %v", r.body, want)
		}
	}
	var want []string
	for _, tenant := range []string{"tenant-1", "tenant-2"} {
		for _, code := range opt.Codes {
			for n := range 3 {
				want = append(want, fmt.Sprintf("run1-%s-%s-%06d", tenant, code, n))
			}
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("ids %q, want %q", ids, want)
	}
}

func TestSendDefaults(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "")
	rep := mustSend(t, Options{URL: rc.srv.URL})
	got := rc.requests()
	if rep.Accepted != 1 || len(got) != 1 {
		t.Fatalf("report %+v with %d requests, want 1 accepted", rep, len(got))
	}
	r := got[0]
	if r.tenant != "tenant-1" || r.code != DefaultCode || r.seq != 0 {
		t.Fatalf("got tenant %q code %q seq %d", r.tenant, r.code, r.seq)
	}
	if len(rep.Run) != 6 || strings.Trim(rep.Run, "0123456789abcdef") != "" || r.id != rep.Run+"-tenant-1-post.create-000000" {
		t.Fatalf("run %q, id %q", rep.Run, r.id)
	}
}

func TestSendUnsignedHasNoSignature(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "")
	rc.before = func(r *http.Request) {
		if sig := r.Header.Get(webhook.HeaderSignature); sig != "" {
			t.Errorf("unsigned webhook has %s %q", webhook.HeaderSignature, sig)
		}
	}
	opt := rc.options(nil)
	opt.Secret = ""
	if rep := mustSend(t, opt); rep.Accepted != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestSendPerKeyOrder(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	opt := rc.options(nil)
	opt.Tenants, opt.Codes, opt.Count, opt.Concurrency = 3, []string{"a.b", "c.d"}, 25, 4

	if rep := mustSend(t, opt); rep.Accepted != 150 {
		t.Fatalf("report %+v, want 150 accepted", rep)
	}
	next := map[string]int{}
	for _, r := range rc.requests() {
		if r.seq != next[r.key] {
			t.Fatalf("key %s: got seq %d, want %d", r.key, r.seq, next[r.key])
		}
		next[r.key]++
	}
	if len(next) != 6 {
		t.Fatalf("got %d keys, want 6", len(next))
	}
	if len(rc.overlap) != 0 {
		t.Fatalf("keys with two webhooks in flight: %q", rc.overlap)
	}
}

func TestSendRoundRobin(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	opt := rc.options(nil)
	opt.Tenants, opt.Codes, opt.Count, opt.Concurrency = 2, []string{"x", "y"}, 2, 1

	mustSend(t, opt)
	var got []string
	for _, r := range rc.requests() {
		got = append(got, r.key+"#"+strconv.Itoa(r.seq))
	}
	want := []string{
		"tenant-1:x#0", "tenant-1:y#0", "tenant-2:x#0", "tenant-2:y#0",
		"tenant-1:x#1", "tenant-1:y#1", "tenant-2:x#1", "tenant-2:y#1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("send order %q, want %q", got, want)
	}
}

func TestSendTenantPointer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pointer string
		want    string // the body with seq and sent_at removed from data
	}{
		{"/data/customer/id", `{"code":"c","data":{"customer":{"id":"tenant-1"}}}`},
		{"/data/a/b~1c/d~0e", `{"code":"c","data":{"a":{"b/c":{"d~e":"tenant-1"}}}}`},
		{"/tenant", `{"code":"c","data":{},"tenant":"tenant-1"}`},
		{"/", `{"":"tenant-1","code":"c","data":{}}`},
		{"/meta/org/0", `{"code":"c","data":{},"meta":{"org":{"0":"tenant-1"}}}`},
	} {
		t.Run(tc.pointer, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, testSecret)
			rc.pointer = tc.pointer
			opt := rc.options(nil)
			opt.TenantPointer, opt.Codes = tc.pointer, []string{"c"}
			if rep := mustSend(t, opt); rep.Accepted != 1 {
				t.Fatalf("report %+v", rep)
			}
			r := rc.requests()[0]
			if r.tenant != "tenant-1" {
				t.Fatalf("tenant at %s = %q", tc.pointer, r.tenant)
			}
			var doc map[string]any
			if err := json.Unmarshal(r.body, &doc); err != nil {
				t.Fatalf("body: %v", err)
			}
			data := doc["data"].(map[string]any)
			delete(data, "seq")
			delete(data, "sent_at")
			got, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("body %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSendOverlapsKeys(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	var (
		mu      sync.Mutex
		arrived int
		both    = make(chan struct{})
	)
	rc.answer = func(r received) reply {
		mu.Lock()
		arrived++
		if arrived == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			return reply{}
		case <-time.After(5 * time.Second): // well below the client's timeout
			return reply{status: http.StatusInternalServerError, body: `{"error":{"code":"no_overlap","message":"alone"}}`}
		}
	}
	opt := rc.options(nil)
	opt.Tenants, opt.Concurrency = 2, 2

	rep := mustSend(t, opt)
	if got := rc.requests(); rep.Accepted != 2 || len(got) != 2 || got[0].key == got[1].key {
		t.Fatalf("report %+v after %d requests: the two keys were not in flight together", rep, len(got))
	}
}

func TestSendRetries503(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	rc.answer = func(r received) reply {
		if r.tenant == "tenant-1" && r.seq == 1 && r.attempt <= 2 {
			return reply{status: http.StatusServiceUnavailable, retryAfter: "1",
				body: `{"error":{"code":"unavailable","message":"retry later"}}`}
		}
		return reply{}
	}
	var delays []time.Duration
	opt := rc.options(&delays)
	opt.Tenants, opt.Count = 2, 3

	rep := mustSend(t, opt)
	if rep.Sent != 6 || rep.Accepted != 6 || rep.Failed != 0 {
		t.Fatalf("report %+v, want 6 accepted", rep)
	}
	if want := []time.Duration{time.Second, time.Second}; !slices.Equal(delays, want) {
		t.Fatalf("retry waits %v, want %v", delays, want)
	}
	var order []string
	for _, r := range rc.requests() {
		if r.tenant == "tenant-1" {
			order = append(order, r.id)
		}
	}
	want := []string{
		"run1-tenant-1-post.create-000000",
		"run1-tenant-1-post.create-000001", "run1-tenant-1-post.create-000001", "run1-tenant-1-post.create-000001",
		"run1-tenant-1-post.create-000002",
	}
	if !slices.Equal(order, want) {
		t.Fatalf("tenant-1 requests %q, want %q", order, want)
	}
}

func TestSendRetryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retryAfter string
		want       []time.Duration
	}{
		{"3600", []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"", []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}},
	} {
		t.Run("Retry-After="+tc.retryAfter, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, testSecret)
			rc.answer = func(received) reply {
				return reply{status: http.StatusServiceUnavailable, retryAfter: tc.retryAfter,
					body: `{"error":{"code":"unavailable","message":"retry later"}}`}
			}
			var delays []time.Duration
			rep := mustSend(t, rc.options(&delays))
			if rep.Sent != 1 || rep.Failed != 1 || !equalCounts(rep.Errors, map[string]int{"503 unavailable": 1}) {
				t.Fatalf("report %+v, want one failure 503 unavailable", rep)
			}
			if n := len(rc.requests()); n != 1+MaxRetries {
				t.Fatalf("%d attempts, want %d", n, 1+MaxRetries)
			}
			if !slices.Equal(delays, tc.want) {
				t.Fatalf("retry waits %v, want %v", delays, tc.want)
			}
		})
	}
}

func TestSendNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var delays []time.Duration
	opt := Options{URL: url, Count: 2, sleep: func(_ context.Context, d time.Duration) error {
		delays = append(delays, d)
		return nil
	}}
	rep := mustSend(t, opt)
	if rep.Sent != 2 || rep.Failed != 2 || !equalCounts(rep.Errors, map[string]int{"network_error": 2}) {
		t.Fatalf("report %+v, want two network errors", rep)
	}
	if len(delays) != 2*MaxRetries {
		t.Fatalf("%d retries, want %d", len(delays), 2*MaxRetries)
	}
}

func TestSendDuplicates(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	rc.answer = func(r received) reply {
		if r.seq%2 == 1 {
			return reply{status: http.StatusOK, body: fmt.Sprintf(`{"id":%q,"key":%q,"duplicate":true}`, r.id, r.key)}
		}
		return reply{}
	}
	opt := rc.options(nil)
	opt.Count = 5
	rep := mustSend(t, opt)
	if rep.Sent != 5 || rep.Accepted != 3 || rep.Duplicates != 2 || rep.Failed != 0 {
		t.Fatalf("report %+v, want 3 accepted and 2 duplicates", rep)
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	rc.answer = func(r received) reply {
		switch {
		case r.code == "no.route":
			return reply{status: http.StatusUnprocessableEntity, body: `{"error":{"code":"unknown_code","message":"no route"}}`}
		case r.tenant == "tenant-2":
			return reply{status: http.StatusInternalServerError, body: "oops"}
		case r.seq == 1:
			return reply{status: http.StatusBadRequest, body: `{"error":{"code":"Evil \u001b[31m code","message":"x"}}`}
		}
		return reply{}
	}
	opt := rc.options(nil)
	opt.Tenants, opt.Codes, opt.Count = 2, []string{"ok", "no.route"}, 2

	rep := mustSend(t, opt)
	want := map[string]int{"422 unknown_code": 4, "500": 2, "400": 1}
	if rep.Sent != 8 || rep.Accepted != 1 || rep.Failed != 7 || !equalCounts(rep.Errors, want) {
		t.Fatalf("report %+v, want 1 accepted and failures %v", rep, want)
	}
}

func TestSendWrongSecret(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	other := "whsec_b3RoZXItc2VjcmV0LWtleS1mb3ItdGVzdHM="
	opt := rc.options(nil)
	opt.Secret = other
	rep := mustSend(t, opt)
	if rep.Failed != 1 || !equalCounts(rep.Errors, map[string]int{"401 signature_invalid": 1}) {
		t.Fatalf("report %+v, want one 401 signature_invalid", rep)
	}
	if s := fmt.Sprintf("%+v", rep); strings.Contains(s, other) || strings.Contains(s, strings.TrimPrefix(other, "whsec_")) {
		t.Fatalf("report %s contains the secret", s)
	}
}

func TestSendBadOptions(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, "")
	secret := "whsec_dGhpcyBpcyBub3Qg*YmFzZTY0"
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"negative count", func(o *Options) { o.Count = -1 }, "Count must be at least 1"},
		{"negative tenants", func(o *Options) { o.Tenants = -3 }, "Tenants must be at least 1"},
		{"negative concurrency", func(o *Options) { o.Concurrency = -1 }, "Concurrency must be at least 1"},
		{"huge total", func(o *Options) { o.Count, o.Tenants = 1<<40, 1<<40 }, "too large"},
		{"unparsable URL", func(o *Options) { o.URL = "http://user:pw@[::1" }, "URL must be"},
		{"relative URL", func(o *Options) { o.URL = "/webhooks" }, "URL must be"},
		{"ftp URL", func(o *Options) { o.URL = "ftp://pw@example.com/x" }, "URL must be"},
		{"no host", func(o *Options) { o.URL = "http:///webhooks" }, "URL must be"},
		{"secret not base64", func(o *Options) { o.Secret = secret }, "Secret: webhook: invalid secret"},
		{"secret empty key", func(o *Options) { o.Secret = "whsec_" }, "Secret: webhook: invalid secret"},
		{"pointer syntax", func(o *Options) { o.TenantPointer = "data/customer_id" }, "TenantPointer"},
		{"pointer escape", func(o *Options) { o.TenantPointer = "/data/~2" }, "TenantPointer"},
		{"pointer at code", func(o *Options) { o.TenantPointer = "/code" }, "TenantPointer"},
		{"pointer through code", func(o *Options) { o.TenantPointer = "/code/x" }, "TenantPointer"},
		{"pointer at data", func(o *Options) { o.TenantPointer = "/data" }, "TenantPointer"},
		{"pointer at seq", func(o *Options) { o.TenantPointer = "/data/seq" }, "TenantPointer"},
		{"pointer through sent_at", func(o *Options) { o.TenantPointer = "/data/sent_at/x" }, "TenantPointer"},
		{"code with colon", func(o *Options) { o.Codes = []string{"a:b"} }, "Codes[0]"},
		{"code with space", func(o *Options) { o.Codes = []string{"ok", "a b"} }, "Codes[1]"},
		{"empty code", func(o *Options) { o.Codes = []string{""} }, "Codes[0]"},
		{"code twice", func(o *Options) { o.Codes = []string{"a", "b", "a"} }, "Codes[2]: \"a\" appears twice"},
		{"run with colon", func(o *Options) { o.Run = "r:1" }, "Run"},
		{"id too long", func(o *Options) { o.Codes = []string{strings.Repeat("c", 120)} }, "longer than 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opt := Options{URL: rc.srv.URL, Run: "r1"}
			tc.edit(&opt)
			rep, err := Send(context.Background(), opt)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Send error %v, want ErrInvalidOptions mentioning %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "sender: invalid options: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if rep.Sent != 0 {
				t.Fatalf("report %+v after an options error", rep)
			}
			for _, s := range []string{secret, strings.TrimPrefix(secret, "whsec_"), "pw"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains %q", err, s)
				}
			}
		})
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("%d requests reached the server after options errors", n)
	}
}

func TestSendCancel(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, testSecret)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc.answer = func(r received) reply {
		if r.seq == 1 {
			cancel() // whatever this request gets back is not counted
		}
		return reply{}
	}
	opt := rc.options(nil)
	opt.Count = 5
	rep, err := Send(ctx, opt)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "sender: ") {
		t.Fatalf("Send error %v, want a wrapped context.Canceled", err)
	}
	if rep.Sent != 1 || rep.Accepted != 1 || rep.Failed != 0 {
		t.Fatalf("report %+v, want only the first webhook", rep)
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &runner{plan: &plan{Options: Options{Clock: func() time.Time { return now }}}}
	for _, tc := range []struct {
		retryAfter string
		attempt    int
		want       time.Duration
	}{
		{"", 0, 250 * time.Millisecond},
		{"", 2, time.Second},
		{"", 10, MaxRetryDelay},
		{"0", 3, 0},
		{"1", 0, time.Second},
		{" 4 ", 0, 4 * time.Second},
		{"5", 0, 5 * time.Second},
		{"6", 0, MaxRetryDelay},
		{"99999999999999999999999", 0, MaxRetryDelay},
		{"-1", 1, 500 * time.Millisecond},
		{"soon", 1, 500 * time.Millisecond},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 0, 3 * time.Second},
		{now.Add(time.Hour).Format(http.TimeFormat), 0, MaxRetryDelay},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, 0},
	} {
		if got := r.retryDelay(tc.retryAfter, tc.attempt); got != tc.want {
			t.Fatalf("retryDelay(%q, %d) = %v, want %v", tc.retryAfter, tc.attempt, got, tc.want)
		}
	}
}

// equalCounts reports whether two count maps are equal.
func equalCounts(got, want map[string]int) bool { return reflect.DeepEqual(got, want) }
