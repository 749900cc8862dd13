package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// bodySize is the size of every webhook body the suite sends.
const bodySize = 200

// tenantPointer is where the tenant goes in the body, and what the generated
// configurations say.
const tenantPointer = "/data/customer_id"

// keySpec is one key: a tenant and an event code.
type keySpec struct{ tenant, code string }

// name is the key as hookline writes it.
func (k keySpec) name() string { return k.tenant + ":" + k.code }

// workload is a set of webhooks to send: counts[i] webhooks for keys[i].
// Webhook ids are "<run>-<key index>-<seq>", unique across runs.
type workload struct {
	run    string
	keys   []keySpec
	counts []int
	// ordered sends each key's webhooks one after the other, the next only
	// after the previous one's answer, so that the send order per key is
	// the order the receiver got them in. Otherwise webhooks go out in
	// order but overlap, up to the concurrency.
	ordered bool
	// interval, when set, sends one webhook at a time, one every interval,
	// going round the keys.
	interval time.Duration
}

// newWorkload returns an ordered workload of n webhooks spread evenly over
// nkeys keys of one code, tenants "<prefix>00001" and on.
func newWorkload(prefix, code string, nkeys, n int) *workload {
	w := &workload{run: newRun(), ordered: true}
	nkeys = max(nkeys, 1)
	for i := range nkeys {
		w.keys = append(w.keys, keySpec{tenant: fmt.Sprintf("%s%05d", prefix, i+1), code: code})
		c := n / nkeys
		if i < n%nkeys {
			c++
		}
		w.counts = append(w.counts, c)
	}
	return w
}

// total is the number of webhooks.
func (w *workload) total() int {
	n := 0
	for _, c := range w.counts {
		n += c
	}
	return n
}

// id returns the webhook-id of the seq-th webhook of key k.
func (w *workload) id(k, seq int) string {
	return w.run + "-" + strconv.Itoa(k) + "-" + strconv.Itoa(seq)
}

// parseID returns the key index and sequence number of an id of this
// workload.
func (w *workload) parseID(id string) (k, seq int, ok bool) {
	rest, ok := strings.CutPrefix(id, w.run+"-")
	if !ok {
		return 0, 0, false
	}
	ks, ss, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	k, err1 := strconv.Atoi(ks)
	seq, err2 := strconv.Atoi(ss)
	if err1 != nil || err2 != nil || k < 0 || k >= len(w.keys) || seq < 0 || seq >= w.counts[k] {
		return 0, 0, false
	}
	return k, seq, true
}

// body returns the bodySize-byte JSON body of the seq-th webhook of key k.
func (w *workload) body(k, seq int) []byte {
	key := w.keys[k]
	head := fmt.Sprintf(`{"code":%q,"data":{"customer_id":%q,"seq":%d,"pad":"`, key.code, key.tenant, seq)
	const tail = `"}}`
	pad := max(bodySize-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// newRun returns a random run id.
func newRun() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSecret returns a random Standard Webhooks secret.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// sendRec is what became of one webhook.
type sendRec struct {
	start  time.Time // first attempt
	done   time.Time // final answer
	status int       // final status; 0 if there was no answer
}

// accepted reports a 2xx answer.
func (r sendRec) accepted() bool { return r.status >= 200 && r.status < 300 }

// sendResult is the outcome of sending a workload.
type sendResult struct {
	w          *workload
	recs       [][]sendRec // per key, per seq
	start, end time.Time
	accepted   int
	failed     int
	failures   map[string]int // by status, or "network"
}

// latencies returns the accept latency of every accepted webhook.
func (r *sendResult) latencies() []time.Duration {
	var out []time.Duration
	for _, recs := range r.recs {
		for _, rec := range recs {
			if rec.accepted() {
				out = append(out, rec.done.Sub(rec.start))
			}
		}
	}
	return out
}

// acceptedPerSec is the accepted webhooks over the send time.
func (r *sendResult) acceptedPerSec() float64 {
	return perSec(r.accepted, r.end.Sub(r.start))
}

// acceptedIDs returns the ids of the accepted webhooks.
func (r *sendResult) acceptedIDs() []string {
	var out []string
	for k, recs := range r.recs {
		for seq, rec := range recs {
			if rec.accepted() {
				out = append(out, r.w.id(k, seq))
			}
		}
	}
	return out
}

// failureText sums up the failures, "" if none.
func (r *sendResult) failureText() string {
	if r.failed == 0 {
		return ""
	}
	var parts []string
	for cause, n := range r.failures {
		parts = append(parts, fmt.Sprintf("%s: %d", cause, n))
	}
	return fmt.Sprintf("%d failed (%s)", r.failed, strings.Join(parts, ", "))
}

// sender posts signed webhooks to an ingest endpoint.
type sender struct {
	url    string
	secret string
	client *http.Client
	conc   int
}

// newSender returns a sender with conc requests in flight at most.
func newSender(url, secret string, conc int) *sender {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conc + 8
	t.MaxIdleConnsPerHost = conc + 8
	return &sender{url: url, secret: secret, conc: max(conc, 1), client: &http.Client{Timeout: 30 * time.Second, Transport: t}}
}

// close drops the sender's idle connections.
func (s *sender) close() { s.client.CloseIdleConnections() }

// send sends every webhook of w and returns what became of each. It stops
// early, with the partial result and an error, when ctx ends.
func (s *sender) send(ctx context.Context, w *workload) (*sendResult, error) {
	res := &sendResult{w: w, recs: make([][]sendRec, len(w.keys)), failures: map[string]int{}}
	for k, c := range w.counts {
		res.recs[k] = make([]sendRec, c)
	}
	var mu sync.Mutex // guards the counters of res
	one := func(k, seq int) {
		rec := s.post(ctx, w, k, seq)
		mu.Lock()
		res.recs[k][seq] = rec
		switch {
		case rec.accepted():
			res.accepted++
		case ctx.Err() == nil:
			res.failed++
			cause := "network"
			if rec.status != 0 {
				cause = strconv.Itoa(rec.status)
			}
			res.failures[cause]++
		}
		mu.Unlock()
	}
	res.start = time.Now()
	switch {
	case w.interval > 0:
		s.sendPaced(ctx, w, one)
	case w.ordered:
		s.sendOrdered(ctx, w, one)
	default:
		s.sendOverlapped(ctx, w, one)
	}
	res.end = time.Now()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("sending: %w", err)
	}
	return res, nil
}

// sendPaced sends one webhook every w.interval, round the keys.
func (s *sender) sendPaced(ctx context.Context, w *workload, one func(k, seq int)) {
	start := time.Now()
	i := 0
	for seq := 0; ; seq++ {
		sent := false
		for k := range w.keys {
			if seq >= w.counts[k] {
				continue
			}
			sent = true
			if d := time.Until(start.Add(time.Duration(i) * w.interval)); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			if ctx.Err() != nil {
				return
			}
			one(k, seq)
			i++
		}
		if !sent {
			return
		}
	}
}

// sendOrdered sends the keys round-robin, conc of them at once, each key's
// next webhook only after the previous one's answer.
func (s *sender) sendOrdered(ctx context.Context, w *workload, one func(k, seq int)) {
	ready := make(chan int, len(w.keys))
	next := make([]int, len(w.keys))
	pending := 0
	for k, c := range w.counts {
		if c > 0 {
			ready <- k
			pending++
		}
	}
	if pending == 0 {
		return
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range min(s.conc, pending) {
		wg.Go(func() {
			for {
				var k int
				select {
				case <-ctx.Done():
					return
				case kk, ok := <-ready:
					if !ok {
						return
					}
					k = kk
				}
				one(k, next[k])
				next[k]++
				if next[k] < w.counts[k] {
					ready <- k
					continue
				}
				mu.Lock()
				pending--
				if pending == 0 {
					close(ready)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// sendOverlapped sends the webhooks in order, key after key, conc at once.
func (s *sender) sendOverlapped(ctx context.Context, w *workload, one func(k, seq int)) {
	type job struct{ k, seq int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range s.conc {
		wg.Go(func() {
			for j := range jobs {
				one(j.k, j.seq)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)
	for k, c := range w.counts {
		for seq := range c {
			select {
			case <-ctx.Done():
				return
			case jobs <- job{k, seq}:
			}
		}
	}
}

// maxAttempts bounds the tries of one webhook: a 503 or a network error is
// retried with the same id, after a backoff.
const maxAttempts = 6

// post delivers one webhook, signed at the time of each attempt.
func (s *sender) post(ctx context.Context, w *workload, k, seq int) sendRec {
	id := w.id(k, seq)
	body := w.body(k, seq)
	rec := sendRec{start: time.Now()}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		status, err := s.attempt(ctx, id, body)
		rec.done, rec.status = time.Now(), status
		retry := err != nil || status == http.StatusServiceUnavailable
		if !retry || attempt == maxAttempts || ctx.Err() != nil {
			return rec
		}
		select {
		case <-ctx.Done():
			return rec
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// attempt makes one request and returns its status.
func (s *sender) attempt(ctx context.Context, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	now := time.Now()
	sig, err := webhook.SignStandard(s.secret, id, now, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderID, id)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// errStalled is returned by waitUntil when nothing progressed for too long.
var errStalled = errors.New("no progress")

// waitUntil polls progress every interval until it returns done, ctx ends,
// or the progress count stays the same for stall. It returns the time of the
// poll that saw done.
func waitUntil(ctx context.Context, interval, stall time.Duration, progress func() (n int64, done bool)) (time.Time, error) {
	last, lastChange := int64(-1), time.Now()
	for {
		n, done := progress()
		now := time.Now()
		if done {
			return now, nil
		}
		if n != last {
			last, lastChange = n, now
		}
		switch {
		case ctx.Err() != nil:
			return now, fmt.Errorf("stopped at %d: %w", n, ctx.Err())
		case now.Sub(lastChange) > stall:
			return now, fmt.Errorf("%w for %s, stuck at %d", errStalled, stall, n)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// perSec returns n per second of d.
func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
