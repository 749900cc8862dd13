// Package sender posts sample webhooks, signed the Standard Webhooks way, to a
// hookline ingest endpoint, so that a deployment can be tried out and the
// fairness across keys and the order within a key can be watched. `hookline
// send` is its command-line front end.
//
// A key is a (tenant, event code) pair. Each key gets Options.Count webhooks
// numbered 0 to Count-1, with the webhook-id
//
//	<run>-<tenant>-<code>-<seq, 6 digits>
//
// and the body
//
//	{"code": "<code>", "data": {"customer_id": "<tenant>", "seq": <seq>, "sent_at": "<RFC 3339>"}}
//
// (the tenant goes wherever Options.TenantPointer says). Keys take turns
// round-robin, up to Options.Concurrency of them in flight at once, and a
// key's next webhook is sent only after the previous one got its final
// answer, so the receiver sees each key's webhooks in send order.
//
// A 503 answer or a network error is retried with the same webhook-id (and a
// fresh signature), waiting as long as Retry-After says, at most
// MaxRetryDelay, up to MaxRetries times. Any other answer is final: 202 counts
// as accepted, 200 with "duplicate": true as a duplicate, and every other
// status as failed under its status and the error code of its body.
package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// Report is the outcome of Send.
type Report struct {
	// Sent is the number of webhooks with a final outcome: Accepted +
	// Duplicates + Failed. Webhooks cut short by a cancelled context are
	// not counted.
	Sent int
	// Accepted counts 2xx answers other than duplicates.
	Accepted int
	// Duplicates counts 200 answers with "duplicate": true.
	Duplicates int
	// Failed counts webhooks refused, or still unanswered or answered 503
	// after MaxRetries retries.
	Failed int
	// Errors counts the failures by cause: "<status> <error code>" such as
	// "422 unknown_code", "<status>" alone if the body has no error code,
	// or "network_error" or "timeout" for requests without an answer. It is
	// never nil.
	Errors map[string]int
	// Elapsed is the wall time of the run by Options.Clock.
	Elapsed time.Duration
	// Run is the run id used in the webhook ids.
	Run string
}

// Send posts Tenants × len(Codes) × Count webhooks to opt.URL and reports
// what became of them. It returns an error wrapping ErrInvalidOptions, and
// sends nothing, if opt is invalid. Refused and undeliverable webhooks are
// counted in the Report, not returned as errors. If ctx is cancelled, Send
// stops, waits for the requests in flight to end, and returns the partial
// Report with an error wrapping ctx.Err().
func Send(ctx context.Context, opt Options) (Report, error) {
	p, err := newPlan(opt)
	if err != nil {
		return Report{}, err
	}
	return p.run(ctx)
}

// runner sends the webhooks of one plan and collects the report.
type runner struct {
	*plan
	total int

	mu  sync.Mutex // guards rep
	rep Report
}

// run sends every webhook of p.
func (p *plan) run(ctx context.Context) (Report, error) {
	r := &runner{plan: p, total: len(p.keys) * p.Count}
	r.rep = Report{Errors: map[string]int{}, Run: p.Run}
	start := p.Clock()

	// ready holds the keys whose next webhook may go out, in turn order. A
	// key is in it at most once, so sends never block.
	ready := make(chan *key, len(p.keys))
	for _, k := range p.keys {
		ready <- k
	}
	pending := len(p.keys) // keys with webhooks left; guarded by pendingMu
	var pendingMu sync.Mutex

	var wg sync.WaitGroup
	for range min(p.Concurrency, len(p.keys)) {
		wg.Go(func() {
			for {
				var k *key
				select {
				case <-ctx.Done():
					return
				case next, ok := <-ready:
					if !ok {
						return
					}
					k = next
				}
				if !r.sendNext(ctx, k) {
					return
				}
				k.next++
				if k.next < p.Count {
					ready <- k
					continue
				}
				pendingMu.Lock()
				pending--
				if pending == 0 {
					close(ready)
				}
				pendingMu.Unlock()
			}
		})
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Elapsed = p.Clock().Sub(start)
	if err := ctx.Err(); err != nil && r.rep.Sent < r.total {
		return r.rep, fmt.Errorf("sender: stopped after %d of %d webhooks: %w", r.rep.Sent, r.total, err)
	}
	return r.rep, nil
}

// answer is what one request got back.
type answer struct {
	status     int
	duplicate  bool
	code       string // error code of the body, if any
	retryAfter string
	err        error // no answer
}

// outcomes of a webhook.
const (
	accepted = iota
	duplicate
	failed
)

// sendNext sends the next webhook of k, retrying as the package comment
// says, and records its outcome. It reports false, recording nothing, if ctx
// ended first.
func (r *runner) sendNext(ctx context.Context, k *key) bool {
	id := webhookID(r.Run, k.tenant, k.code, k.next)
	body, err := r.body(k, r.Clock())
	if err != nil {
		// Unreachable: newPlan built a body of the same shape.
		r.record(failed, "sender_error")
		return true
	}
	for attempt := 0; ; attempt++ {
		a := r.post(ctx, id, body)
		if ctx.Err() != nil {
			return false
		}
		retryable := a.err != nil || a.status == http.StatusServiceUnavailable
		if retryable && attempt < MaxRetries {
			if r.sleep(ctx, r.retryDelay(a.retryAfter, attempt)) != nil {
				return false
			}
			continue
		}
		switch {
		case a.err != nil:
			var ne net.Error
			if errors.As(a.err, &ne) && ne.Timeout() {
				r.record(failed, "timeout")
			} else {
				r.record(failed, "network_error")
			}
		case a.status >= 200 && a.status < 300 && a.duplicate:
			r.record(duplicate, "")
		case a.status >= 200 && a.status < 300:
			r.record(accepted, "")
		case a.code != "":
			r.record(failed, strconv.Itoa(a.status)+" "+a.code)
		default:
			r.record(failed, strconv.Itoa(a.status))
		}
		return true
	}
}

// record counts one final outcome and reports progress.
func (r *runner) record(outcome int, cause string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Sent++
	switch outcome {
	case accepted:
		r.rep.Accepted++
	case duplicate:
		r.rep.Duplicates++
	default:
		r.rep.Failed++
		r.rep.Errors[cause]++
	}
	if r.Progress != nil {
		r.Progress(r.rep.Sent, r.total)
	}
}

// maxAnswer bounds how much of an answer body is read.
const maxAnswer = 64 << 10

// post makes one attempt at delivering a webhook, signed at the current time.
func (r *runner) post(ctx context.Context, id string, body []byte) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return answer{err: fmt.Errorf("sender: new request: %w", err)}
	}
	now := r.Clock()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookline-send")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if r.Secret != "" {
		sig, err := webhook.SignStandard(r.Secret, id, now, body)
		if err != nil {
			return answer{err: fmt.Errorf("sender: sign: %w", err)}
		}
		req.Header.Set(webhook.HeaderSignature, sig)
	}

	resp, err := r.Client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer)) // a short body just has no code
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))

	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	var parsed struct {
		Duplicate bool `json:"duplicate"`
		Error     struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &parsed) == nil {
		a.duplicate = parsed.Duplicate
		if safeCode(parsed.Error.Code) {
			a.code = parsed.Error.Code
		}
	}
	return a
}

// safeCode reports whether an error code from an answer is short and plain
// enough to be counted and printed: 1 to 64 of [a-z0-9_.-].
func safeCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == ""
}

// retryDelay returns the wait before retry number attempt+1: the Retry-After
// value (delay seconds or an HTTP date) if there is a usable one, else
// firstBackoff doubled attempt times; at most MaxRetryDelay either way.
func (r *runner) retryDelay(retryAfter string, attempt int) time.Duration {
	d := firstBackoff << attempt
	if s := strings.TrimSpace(retryAfter); s != "" {
		if secs, err := strconv.ParseUint(s, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
			d = MaxRetryDelay
			if err == nil && secs < uint64(MaxRetryDelay/time.Second) {
				d = time.Duration(secs) * time.Second
			}
		} else if t, err := http.ParseTime(s); err == nil {
			d = t.Sub(r.Clock())
		}
	}
	return min(max(d, 0), MaxRetryDelay)
}
