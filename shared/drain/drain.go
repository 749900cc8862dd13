// Package drain works one key for one invocation: it activates the lease the
// scheduler claimed, hands the key's items to the route's handler in order,
// acks or fails each one, keeps the lease alive, and yields the key when its
// quantum or the invocation's time is used up, so other keys get their turn.
//
// The same code runs in the drain Lambda function and in `hookline dev`.
package drain

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/shared/clock"
	"github.com/hookline/hookline/shared/handler"
	"github.com/hookline/hookline/shared/queue"
)

// Route is what the drain needs of a route: its handler and failure policy.
type Route struct {
	Handler handler.Handler
	// MaxAttempts is the attempt count at which Policy applies. Default 8.
	MaxAttempts int
	// Policy applies when attempts are used up. Default queue.DeadLetter.
	Policy queue.Policy
}

// Options configure a Drainer. Zero values select the documented defaults.
type Options struct {
	// Routes resolves an event code to its route. Required. An item whose
	// code has no route is dead-lettered.
	Routes func(code string) (Route, bool)
	// Quantum is how long a drain works one key before yielding it, per
	// lane. Default 20s for a lane not listed.
	Quantum map[string]time.Duration
	// Batch is how many items one fetch reads. Default 10.
	Batch int
	// Margin is kept free before the invocation deadline for the final ack
	// and yield. Default 3s.
	Margin time.Duration
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Logger receives one line per handled item. Default slog.Default().
	Logger *slog.Logger
}

// Drainer runs drains. It is safe for concurrent use.
type Drainer struct {
	e   *queue.Engine
	opt Options
}

// New returns a Drainer over e.
func New(e *queue.Engine, opt Options) (*Drainer, error) {
	if opt.Routes == nil {
		return nil, errors.New("drain: Options.Routes is required")
	}
	opt.Batch = cmp.Or(opt.Batch, 10)
	opt.Margin = cmp.Or(opt.Margin, 3*time.Second)
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Drainer{e: e, opt: opt}, nil
}

// Outcome is how a drain ended.
type Outcome string

// Outcomes of a drain.
const (
	// Emptied: the queue is empty and the key released.
	Emptied Outcome = "emptied"
	// Yielded: the quantum or the invocation's time ran out with work left;
	// the key went to the back of the ready order.
	Yielded Outcome = "yielded"
	// Throttled: a rate limit allows the next call only later; the key
	// yielded until then.
	Throttled Outcome = "throttled"
	// Retrying: the head item failed and waits for its retry, its key too.
	Retrying Outcome = "retrying"
	// Parked: the head item used its attempts and the key is paused.
	Parked Outcome = "parked"
	// Paused: an operator paused the key.
	Paused Outcome = "paused"
	// LeaseLost: the lease ran out or was taken over; the drain stopped.
	LeaseLost Outcome = "lease-lost"
	// Duplicate: another invocation holds this lease (a duplicated or late
	// event); the drain did nothing.
	Duplicate Outcome = "duplicate"
)

// Result reports one drain.
type Result struct {
	Key     string  `json:"key"`
	Outcome Outcome `json:"outcome"`
	// Handled items succeeded; Failed items failed (retrying, parked or
	// dead-lettered); Dead items were dead-lettered.
	Handled int `json:"handled"`
	Failed  int `json:"failed"`
	Dead    int `json:"dead"`
}

// Run works the key of lease l for the invocation invocation until the
// queue is empty, the lane's quantum is used, or deadline minus the margin
// is reached (a zero deadline means none). A duplicate or late delivery of
// the same lease ends at once with Duplicate or LeaseLost and a nil error.
// An error means Redis failed; the lease then runs out by itself.
//
// The lease is bound to invocation plus a random nonce of this run, so even a
// second delivery carrying the same request id (Lambda may duplicate an
// asynchronous event with its request id) is refused while this run holds
// the key. A run that crashed leaves its lease to run out.
func (d *Drainer) Run(ctx context.Context, l queue.Lease, invocation string, deadline time.Time) (Result, error) {
	res := Result{Key: l.Key}
	if err := d.e.Activate(ctx, &l, invocation+"#"+nonce()); err != nil {
		switch {
		case errors.Is(err, queue.ErrLeaseActive):
			res.Outcome = Duplicate
			return res, nil
		case errors.Is(err, queue.ErrLeaseLost):
			res.Outcome = LeaseLost
			return res, nil
		}
		return res, err
	}
	now := d.opt.Clock.Now()
	stopAt := now.Add(d.quantum(l.Lane))
	workCtx := ctx
	if !deadline.IsZero() {
		stopAt = earliest(stopAt, deadline.Add(-d.opt.Margin))
		// The handlers' context ends half a margin before the deadline,
		// measured on the injected clock and applied on the real one.
		var cancel context.CancelFunc
		workCtx, cancel = context.WithTimeout(ctx, deadline.Add(-d.opt.Margin/2).Sub(now))
		defer cancel()
	}
	workCtx, stopHeartbeat := d.heartbeat(workCtx, l)
	outcome, notBefore, err := d.work(workCtx, &l, stopAt, &res)
	lost := stopHeartbeat()
	if err != nil || outcome == LeaseLost || lost {
		res.Outcome = LeaseLost
		if lost || errors.Is(err, queue.ErrLeaseLost) {
			return res, nil // another holder has the key now
		}
		return res, err
	}
	res.Outcome = outcome
	switch outcome {
	case Retrying, Parked:
		return res, nil // Fail ended the lease
	}
	if _, err := d.e.Yield(ctx, &l, notBefore); err != nil {
		if errors.Is(err, queue.ErrLeaseLost) {
			res.Outcome = LeaseLost
			return res, nil
		}
		return res, err
	}
	return res, nil
}

// nonce returns 8 random hex digits.
func nonce() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (d *Drainer) quantum(lane string) time.Duration {
	if q, ok := d.opt.Quantum[lane]; ok && q > 0 {
		return q
	}
	return 20 * time.Second
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// heartbeat extends the lease every third of its length until stopped. If the
// lease is lost it cancels the returned context. stop reports whether the
// lease was lost.
func (d *Drainer) heartbeat(ctx context.Context, l queue.Lease) (context.Context, func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	every := d.e.Options().LeaseTTL / 3
	var lost bool
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := d.e.Extend(ctx, &l); err != nil {
				if errors.Is(err, queue.ErrLeaseLost) {
					lost = true
					cancel()
					return
				}
				d.opt.Logger.WarnContext(ctx, "lease extend failed", "key", l.Key, "err", err)
			}
		}
	})
	return ctx, func() bool {
		close(done)
		wg.Wait()
		cancel()
		return lost
	}
}

// work handles items until the queue is empty, stopAt passes, or a failure
// ends the lease. It returns the outcome and, for Throttled, when to resume.
func (d *Drainer) work(ctx context.Context, l *queue.Lease, stopAt time.Time, res *Result) (Outcome, time.Time, error) {
	for {
		if !d.opt.Clock.Now().Before(stopAt) {
			return Yielded, time.Time{}, nil
		}
		batch, err := d.e.Fetch(ctx, l, d.opt.Batch)
		if err != nil {
			return LeaseLost, time.Time{}, err
		}
		if batch.Paused {
			return Paused, time.Time{}, nil
		}
		if len(batch.Items) == 0 {
			return Emptied, time.Time{}, nil
		}
		for i, it := range batch.Items {
			if i > 0 && !d.opt.Clock.Now().Before(stopAt) {
				return Yielded, time.Time{}, nil
			}
			attempt := 1
			if i == 0 {
				attempt = batch.Attempts + 1
			}
			out, notBefore, err := d.handle(ctx, l, it, attempt, res)
			if err != nil || out != "" {
				return out, notBefore, err
			}
		}
	}
}

// handle runs one item through its route and records the result. An empty
// outcome means: go on with the next item.
func (d *Drainer) handle(ctx context.Context, l *queue.Lease, it *queue.Item, attempt int, res *Result) (Outcome, time.Time, error) {
	start := d.opt.Clock.Now()
	route, ok := d.opt.Routes(it.Code)
	var herr error
	if !ok {
		route = Route{MaxAttempts: 1, Policy: queue.DeadLetter}
		herr = handler.Permanent(fmt.Errorf("no route for event code %q", it.Code))
	} else {
		herr = safeHandle(ctx, route.Handler, newEvent(it, l, attempt))
	}
	log := func(result string, args ...any) {
		d.opt.Logger.InfoContext(ctx, "item", append([]any{"key", l.Key, "id", it.ID, "attempt", attempt,
			"result", result, "ms", d.opt.Clock.Now().Sub(start).Milliseconds()}, args...)...)
	}
	if herr == nil {
		if _, err := d.e.Ack(ctx, l, it.ID); err != nil {
			return LeaseLost, time.Time{}, err
		}
		res.Handled++
		log("ok")
		return "", time.Time{}, nil
	}
	var throttled *handler.ThrottledError
	if errors.As(herr, &throttled) {
		log("throttled", "until", throttled.At)
		return Throttled, throttled.At, nil
	}
	f := queue.Failure{
		Reason:      herr.Error(),
		MaxAttempts: cmp.Or(route.MaxAttempts, 8),
		Policy:      cmp.Or(route.Policy, queue.DeadLetter),
	}
	var perm *handler.PermanentError
	f.Permanent = errors.As(herr, &perm)
	var ra *handler.RetryAfterError
	if errors.As(herr, &ra) {
		f.RetryAt = d.opt.Clock.Now().Add(ra.Delay)
	}
	fr, err := d.e.Fail(ctx, l, it.ID, f)
	if err != nil {
		return LeaseLost, time.Time{}, err
	}
	res.Failed++
	switch fr.Outcome {
	case queue.DeadLettered:
		res.Dead++
		log("dead-letter", "err", herr.Error())
		return "", time.Time{}, nil
	case queue.Parked:
		log("parked", "err", herr.Error())
		return Parked, time.Time{}, nil
	}
	log("retry", "err", herr.Error(), "ready_at", fr.ReadyAt)
	return Retrying, time.Time{}, nil
}

// safeHandle calls h, turning a panic into an error.
func safeHandle(ctx context.Context, h handler.Handler, ev *handler.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, firstLines(debug.Stack(), 12))
		}
	}()
	return h.Handle(ctx, ev)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// newEvent builds the handler's view of an item.
func newEvent(it *queue.Item, l *queue.Lease, attempt int) *handler.Event {
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(it.Body, &body) // ingest validated the body
	hdr := make(map[string]string, len(it.Headers))
	for _, h := range it.Headers {
		hdr[strings.ToLower(h.Name)] = h.Value
	}
	return &handler.Event{
		ID: it.ID, Key: it.Key(), Tenant: it.Tenant, Code: it.Code,
		Body: it.Body, Data: body.Data, Headers: hdr,
		ReceivedAt: it.ReceivedAt, Attempt: attempt, Token: l.Token,
	}
}
