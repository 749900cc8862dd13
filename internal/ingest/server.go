// Package ingest is hookline's front door: an http.Handler that verifies,
// parses, routes and stores webhooks, answering only after Redis has
// acknowledged the write, and the adapters that serve it behind API Gateway
// (HTTP API payload 2.0 and 1.0, REST API).
//
// HTTP contract:
//
//	POST /webhooks  {"code": ..., "data": {...}}
//	  202 {"id", "key"}                    stored
//	  200 {"id", "key", "duplicate": true} webhook-id seen inside the dedup window; nothing stored
//	  400 malformed JSON, missing code or data, tenant missing or invalid, invalid webhook-id
//	  401 signature missing or wrong, timestamp outside tolerance
//	  413 body over the limit
//	  415 not JSON
//	  422 unknown event code
//	  503 with Retry-After: Redis could not take the write (the provider retries)
//	GET /healthz  200 {"status": "ok"}, or 503 when Redis does not answer
//
// Every error body is {"error": {"code": "<machine code>", "message": "..."}}.
// Messages name what is wrong and never echo secrets or signatures.
//
// A request's Redis calls get Options.StorageTimeout (800 ms) together, so
// a 503 comes within a second even when Redis hangs. While Redis is
// unreachable (two failed calls in a row), webhooks are answered 503 at once
// without calling it, and one request at most every 200 ms probes it: the
// first that gets through closes the circuit again.
//
// Each webhook gets one log line: "webhook accepted" (id, key, lane,
// duplicate) or "webhook refused" (status, code, reason: the answer's
// message, the webhook-id header, source IP); never a body, a signature or
// a secret. With
// Options.Metrics it also gets one EMF line: Accepted and Duplicate (by
// Lane and Route), Refused (by ErrorCode, 503 included as "unavailable")
// and Latency, each also rolled up under the Stack alone.
package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/webhook"
)

// MaxBodyDefault is the default body limit: 256 KiB.
const MaxBodyDefault = 256 << 10

// Options configure a Server. Zero values select the documented defaults.
type Options struct {
	// Engine stores the webhooks. Required.
	Engine *queue.Engine
	// Verifier checks signatures. Required: use webhook.NoVerify{} to turn
	// verification off explicitly.
	Verifier webhook.Verifier
	// TenantPointer is the JSON pointer to the tenant id in the body. Required.
	TenantPointer string
	// Lane returns the lane of an event code, false for an unknown code.
	// Required.
	Lane func(code string) (string, bool)
	// MaxBody limits the request body. Default MaxBodyDefault.
	MaxBody int64
	// KeepHeaders returns the request headers stored with each item of an
	// event code (lower-case). Default none: only what the handlers need,
	// the id, the receipt time and the body, is stored.
	KeepHeaders func(code string) []string
	// RetryAfter is the Retry-After sent with 503. Default 5s.
	RetryAfter time.Duration
	// StorageTimeout bounds the Redis calls of one request (the enqueue and
	// the scheduler's wake-up together, or the health check); when it runs
	// out the request is answered 503. Default 800ms, so that answers come
	// within a second.
	StorageTimeout time.Duration
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Logger gets one line per webhook, accepted or refused. Default
	// slog.Default().
	Logger *slog.Logger
	// Metrics receives one EMF line per webhook. Nil: no metrics.
	Metrics *telemetry.Emitter
	// OnReady, if set, is called after a webhook made its key ready (the
	// key was idle), to wake the scheduler.
	OnReady func(ctx context.Context)
}

// Server is the ingest http.Handler.
type Server struct {
	opt Options
	brk *breaker
}

// New returns a Server.
func New(opt Options) (*Server, error) {
	switch {
	case opt.Engine == nil:
		return nil, errors.New("ingest: Options.Engine is required")
	case opt.Verifier == nil:
		return nil, errors.New("ingest: Options.Verifier is required (webhook.NoVerify{} turns verification off)")
	case opt.Lane == nil:
		return nil, errors.New("ingest: Options.Lane is required")
	}
	if err := webhook.ValidatePointer(opt.TenantPointer); err != nil || opt.TenantPointer == "" {
		return nil, fmt.Errorf("ingest: Options.TenantPointer %q must be a JSON pointer such as /data/customer_id", opt.TenantPointer)
	}
	opt.MaxBody = cmp.Or(opt.MaxBody, MaxBodyDefault)
	opt.RetryAfter = cmp.Or(opt.RetryAfter, 5*time.Second)
	opt.StorageTimeout = cmp.Or(opt.StorageTimeout, StorageTimeoutDefault)
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Server{opt: opt, brk: newBreaker()}, nil
}

// StorageTimeoutDefault is the default Options.StorageTimeout.
const StorageTimeoutDefault = 800 * time.Millisecond

// ServeHTTP serves the ingest endpoints. Routing is by exact path, so every
// answer, a wrong path or method included, has the JSON error shape
// (http.ServeMux would redirect a path such as //webhooks with an HTML body).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/webhooks":
		if r.Method == http.MethodPost {
			s.webhook(w, r)
			return
		}
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST for /webhooks")
	case "/healthz":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.healthz(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET for /healthz")
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: POST /webhooks or GET /healthz")
	}
}

// Accepted is the body of a 202 or duplicate 200 answer.
type Accepted struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// outcome is what became of one POST /webhooks.
type outcome struct {
	status int
	// code and msg describe a refusal.
	code, msg string
	// Of an accepted webhook.
	id, key, lane, route string
	duplicate, ready     bool
	// err is why storing failed (503); probe tells whether that call was
	// the breaker's probe. A 503 without err was shed by the open breaker.
	probe bool
	err   error
}

func refused(status int, code, msg string) outcome {
	return outcome{status: status, code: code, msg: msg}
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	start := s.opt.Clock.Now()
	o := s.receive(r)
	switch {
	case o.status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(int(s.opt.RetryAfter.Seconds())))
		writeError(w, o.status, o.code, o.msg)
	case o.code != "":
		writeError(w, o.status, o.code, o.msg)
	default:
		writeJSON(w, o.status, Accepted{ID: o.id, Key: o.key, Duplicate: o.duplicate})
	}
	s.record(r, o, s.opt.Clock.Now().Sub(start))
}

// receive verifies, parses, routes and stores one webhook.
func (s *Server) receive(r *http.Request) outcome {
	if !isJSON(r.Header.Get("Content-Type")) {
		return refused(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
	}
	limit := s.opt.MaxBody
	if r.ContentLength > limit {
		return refused(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body is over the %d-byte limit", limit))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return refused(http.StatusBadRequest, "unreadable_body", "the request body could not be read")
	}
	if int64(len(body)) > limit {
		return refused(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body is over the %d-byte limit", limit))
	}
	now := s.opt.Clock.Now()
	if err := s.opt.Verifier.Verify(webhook.HTTPHeaders(r.Header), body, now); err != nil {
		return refused(http.StatusUnauthorized, cmp.Or(webhook.ErrorCode(err), "signature_invalid"), err.Error())
	}
	p, err := webhook.Parse(body, s.opt.TenantPointer)
	if err != nil {
		return refused(http.StatusBadRequest, cmp.Or(webhook.ErrorCode(err), "bad_request"), err.Error())
	}
	lane, ok := s.opt.Lane(p.Code)
	if !ok {
		return refused(http.StatusUnprocessableEntity, "unknown_code", "no route for this event code")
	}
	id := strings.TrimSpace(r.Header.Get("webhook-id"))
	if id != "" && webhook.ValidateID(id) != nil {
		return refused(http.StatusBadRequest, "invalid_id", fmt.Sprintf("webhook-id must be 1..%d printable characters without space, ':', '{' or '}'", webhook.MaxIDLen))
	}
	it := &queue.Item{ID: id, ReceivedAt: now, Tenant: p.Tenant, Code: p.Code, Body: body, Headers: s.keep(p.Code, r.Header)}
	call, probe := s.brk.admit()
	if !call {
		// The breaker is open: answer at once, without calling Redis.
		return refused(http.StatusServiceUnavailable, "unavailable", "storage is unavailable; retry later")
	}
	// The enqueue and the scheduler's wake-up share the storage timeout.
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.StorageTimeout)
	defer cancel()
	res, err := s.enqueue(ctx, probe, lane, it)
	if errors.Is(err, queue.ErrInvalidHeader) {
		s.note(r, probe, neutral, nil)
		return refused(http.StatusBadRequest, "invalid_header", "a kept header holds a line break")
	}
	if err != nil {
		v := failed
		if r.Context().Err() != nil {
			v = neutral // the caller went away; that says nothing about Redis
		}
		s.note(r, probe, v, err)
		o := refused(http.StatusServiceUnavailable, "unavailable", "storage is unavailable; retry later")
		o.key, o.probe, o.err = it.Key(), probe, err
		return o
	}
	s.note(r, probe, succeeded, nil)
	o := outcome{status: http.StatusAccepted, id: res.ID, key: res.Key, lane: lane, route: p.Code, ready: res.Ready}
	if !res.New {
		o.status, o.duplicate = http.StatusOK, true
		return o
	}
	if res.Ready && s.opt.OnReady != nil {
		s.opt.OnReady(ctx) // within what is left of the storage timeout
	}
	return o
}

// record writes the log line and the EMF line of one webhook.
func (s *Server) record(r *http.Request, o outcome, took time.Duration) {
	ctx := r.Context()
	latency := telemetry.Metric{Name: "Latency", Unit: telemetry.Milliseconds, Value: float64(took.Microseconds()) / 1000, Sets: [][]string{{}}}
	if o.code == "" {
		s.opt.Logger.InfoContext(ctx, "webhook accepted", "id", o.id, "key", o.key, "lane", o.lane, "duplicate", o.duplicate)
		sets := [][]string{{"Lane", "Route"}, {}}
		_ = s.opt.Metrics.Emit(s.opt.Clock.Now(), map[string]string{"Lane": o.lane, "Route": o.route},
			telemetry.Metric{Name: "Accepted", Unit: telemetry.Count, Value: float64(flag(!o.duplicate)), Sets: sets},
			telemetry.Metric{Name: "Duplicate", Unit: telemetry.Count, Value: float64(flag(o.duplicate)), Sets: sets},
			latency)
		return
	}
	args := []any{"status", o.status, "code", o.code, "reason", o.msg,
		"id", logID(r.Header.Get("webhook-id")), "source_ip", sourceIP(r)}
	if o.err != nil {
		s.opt.Logger.ErrorContext(ctx, "webhook refused", append(args, "key", o.key, "probe", o.probe, "err", o.err)...)
	} else {
		s.opt.Logger.InfoContext(ctx, "webhook refused", args...)
	}
	_ = s.opt.Metrics.Emit(s.opt.Clock.Now(), map[string]string{"ErrorCode": o.code},
		telemetry.Metric{Name: "Refused", Unit: telemetry.Count, Value: 1, Sets: [][]string{{"ErrorCode"}, {}}},
		latency)
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// logID returns the webhook-id header for a log line: trimmed, at most
// MaxIDLen bytes, control characters replaced (it is the sender's text).
func logID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > webhook.MaxIDLen {
		v = v[:webhook.MaxIDLen] + "..."
	}
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return '?'
		}
		return c
	}, v)
}

// sourceIP returns the client address of r without its port: API Gateway's
// source IP behind the Lambda adapters, the peer's address otherwise.
func sourceIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// enqueue stores it. The breaker's probe dials Redis first: a refused dial
// answers it without counting against the client's pool.
func (s *Server) enqueue(ctx context.Context, probe bool, lane string, it *queue.Item) (queue.Enqueued, error) {
	if probe {
		if err := s.opt.Engine.Reachable(ctx); err != nil {
			return queue.Enqueued{}, err
		}
	}
	return s.opt.Engine.Enqueue(ctx, lane, it)
}

// note tells the breaker how a call went and logs when it opens or closes.
func (s *Server) note(r *http.Request, probe bool, v verdict, err error) {
	t := s.brk.record(probe, v)
	switch {
	case t.opened:
		s.opt.Logger.WarnContext(r.Context(), "storage unreachable: answering 503 without calling Redis until a probe gets through",
			"probe_every", breakerProbe, "err", err)
	case t.closed:
		s.opt.Logger.InfoContext(r.Context(), "storage reachable again", "down", t.down, "shed", t.shed)
	}
}

// keep copies the headers of h kept for code, in KeepHeaders order.
func (s *Server) keep(code string, h http.Header) []queue.Header {
	if s.opt.KeepHeaders == nil {
		return nil
	}
	var out []queue.Header
	for _, name := range s.opt.KeepHeaders(code) {
		if vs := h.Values(name); len(vs) > 0 {
			out = append(out, queue.Header{Name: name, Value: strings.Join(vs, ", ")})
		}
	}
	return out
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.StorageTimeout)
	defer cancel()
	if err := s.opt.Engine.Ping(ctx); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.opt.RetryAfter.Seconds())))
		writeError(w, http.StatusServiceUnavailable, "unavailable", "storage does not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// isJSON accepts application/json and any application/*+json type.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
