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
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/handler"
	"github.com/hookline/hookline/shared/webhook"
)

// Defaults of Route and Options, which New and the drain give their zero
// fields. The configuration's defaults refer to them.
const (
	MaxAttemptsDefault = 8
	PolicyDefault      = queue.DeadLetter
	QuantumDefault     = 20 * time.Second
	BatchDefault       = 10
	MarginDefault      = 3 * time.Second
	MaxRateWaitDefault = 50 * time.Millisecond
	// TimeoutDefault bounds a handler call whose route sets no timeout.
	TimeoutDefault = 10 * time.Second
)

// Route is what the drain needs of a route: its handler, the limits the
// drain applies around each call, and its failure policy.
type Route struct {
	Handler handler.Handler
	// MaxAttempts is the attempt count at which Policy applies. Default
	// MaxAttemptsDefault.
	MaxAttempts int
	// Policy applies when attempts are used up. Default PolicyDefault.
	Policy queue.Policy
	// Rate, when N > 0, limits the calls of the route's handler per
	// (tenant, Endpoint) through Options.Limiter, shared by every drain and
	// route with the same pair: before each call the drain reserves a slot
	// and sleeps until it, or, when the slot is further than
	// Options.MaxRateWait away, yields the key until then (Throttled).
	Rate ratelimit.Rate
	// Endpoint names the rate limit's bucket with the tenant (see
	// handler.Route.Endpoint). Required with Rate.
	Endpoint string
	// Timeout, when > 0, bounds one handler call: its context is cancelled
	// when it runs out. The rate-limit wait is not part of it. Default none.
	Timeout time.Duration
}

// Options configure a Drainer. Zero values select the documented defaults.
type Options struct {
	// Routes resolves an event code to its route. Required. An item whose
	// code has no route is dead-lettered.
	Routes func(code string) (Route, bool)
	// Quantum is how long a drain works one key before yielding it, per
	// lane. Default QuantumDefault for a lane not listed.
	Quantum map[string]time.Duration
	// Batch is how many items one fetch reads. Default BatchDefault.
	Batch int
	// Margin is kept free before the invocation deadline for the final ack
	// and yield. Default MarginDefault.
	Margin time.Duration
	// Limiter spaces the calls of routes with a Rate. Required when a
	// route has one: without it, their items fail and are retried.
	Limiter *ratelimit.Limiter
	// MaxRateWait is the longest a drain sleeps for a rate-limit slot; a
	// slot further away yields the key until it, so a billed function does
	// not sleep. Default MaxRateWaitDefault.
	MaxRateWait time.Duration
	// Admit, when set, is called before each item is handled; the func it
	// returns is called when the item is done (acked, failed or yielded).
	// `hookline dev` holds items back with it while webhooks need the CPU
	// (internal/priority). Default none: items are never held.
	Admit func(context.Context) func()
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Logger receives one line per handled item. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives one EMF line per key worked (more for a key with
	// over 100 items in one turn): its items' outcomes, handler durations,
	// rate-limit waits and lags, with dimensions Lane and Route. Nil: no
	// metrics.
	Metrics *telemetry.Emitter
	// Wake, if set, is called when a drain stops taking keys for lack of
	// time while its lane may still have ready keys, so the scheduler can
	// dispatch a fresh drain (Engine.Wake, or the in-process scheduler's
	// Notify).
	Wake func(ctx context.Context)
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
	opt.Batch = cmp.Or(opt.Batch, BatchDefault)
	opt.Margin = cmp.Or(opt.Margin, MarginDefault)
	opt.MaxRateWait = cmp.Or(opt.MaxRateWait, MaxRateWaitDefault)
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Drainer{e: e, opt: opt}, nil
}

// Outcome is how a drain's turn at a key ended. It is the drain's own
// outcome, apart from the engine's (queue.FailOutcome says what a failed
// attempt did to the head item).
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
	// LeaseLost: the lease ran out or was taken over (its fencing token
	// lost); the drain stopped.
	LeaseLost Outcome = "lease-lost"
	// Error: Redis failed a step (an error, a timeout, a connection that
	// broke) or the invocation's time ran out during one; the drain stopped
	// and Run returns the error. Nothing is lost: an item not acked stays at
	// the head of its queue, and the key's lease runs out by itself, so the
	// key is dispatched again.
	Error Outcome = "error"
	// Duplicate: another invocation holds this lease (a duplicated or late
	// event); the drain did nothing.
	Duplicate Outcome = "duplicate"
)

// Result reports one drain.
type Result struct {
	// Key and Outcome are those of the key the drain was dispatched with.
	Key     string  `json:"key"`
	Outcome Outcome `json:"outcome"`
	// Keys counts the keys worked: the dispatched one and those the drain
	// took next in its lane slot.
	Keys int `json:"keys"`
	// Handled items succeeded; Failed items failed (retrying, parked or
	// dead-lettered); Dead items were dead-lettered. Over all keys.
	Handled int `json:"handled"`
	Failed  int `json:"failed"`
	Dead    int `json:"dead"`
	// RateWaitMaxMs is the longest the drain slept for a rate-limit slot
	// before one call, in milliseconds (Options.MaxRateWait bounds what it
	// chooses to sleep; a later slot yields the key instead).
	RateWaitMaxMs float64 `json:"rate_wait_max_ms,omitempty"`
}

// minKeyTime: a drain takes a further key only with at least this much time
// left before its stop time.
const minKeyTime = time.Second

// Run works the key of lease l for the invocation invocation until the
// queue is empty, the lane's quantum is used, or deadline minus the margin
// is reached (a zero deadline means none). When l carries a lane slot, the
// drain is work-conserving: it then takes the lane's oldest ready key
// itself (Engine.Next) and works it the same way, one key after another in
// the same slot, until no key of the lane is ready or its time runs out,
// and then gives the slot back.
//
// A duplicate or late delivery of the same lease ends at once with
// Duplicate or LeaseLost and a nil error, and leaves the slot alone. An
// error comes with the outcome Error: Redis failed a step (a lost lease is
// never reported as one); the leases then run out by themselves and no item
// is lost.
//
// The lease is bound to invocation plus a random nonce of this run, so even a
// second delivery carrying the same request id (Lambda may duplicate an
// asynchronous event with its request id) is refused while this run holds
// the key. A run that crashed leaves its lease to run out.
func (d *Drainer) Run(ctx context.Context, l queue.Lease, invocation string, deadline time.Time) (Result, error) {
	return d.run(ctx, l, invocation, deadline, nil)
}

func (d *Drainer) run(ctx context.Context, l queue.Lease, invocation string, deadline time.Time, quit <-chan struct{}) (Result, error) {
	res := Result{Key: l.Key}
	l.Invocation = invocation + "#" + nonce()
	now := d.opt.Clock.Now()
	workCtx := ctx
	stopAll := time.Time{}
	if !deadline.IsZero() {
		stopAll = deadline.Add(-d.opt.Margin)
		// The handlers' context ends half a margin before the deadline,
		// measured on the injected clock and applied on the real one.
		var cancel context.CancelFunc
		workCtx, cancel = context.WithTimeout(ctx, deadline.Add(-d.opt.Margin/2).Sub(now))
		defer cancel()
	}
	hb := d.startHeartbeat(workCtx, l.Lane, l.Slot)
	defer hb.stop()

	first := true
	var err error
	for {
		r := d.workKey(workCtx, hb, l, first, stopAll, quit, &res)
		err = r.err
		if first {
			res.Outcome = r.out
			if r.out == Duplicate || (r.out == LeaseLost && res.Keys == 0) {
				return res, nil // not ours: leave the slot to its holder
			}
			first = false
		}
		if err != nil || l.Slot == "" {
			break
		}
		if hb.slotLost() || stopping(quit) || (!stopAll.IsZero() && d.opt.Clock.Now().Add(minKeyTime).After(stopAll)) {
			d.wake(ctx) // work may be left for a fresh drain
			break
		}
		next, ok, nerr := d.e.Next(workCtx, l.Lane, l.Invocation)
		if nerr != nil {
			err = nerr
			break
		}
		if !ok {
			break
		}
		next.Slot = l.Slot
		l = next
	}
	hb.stop()
	if l.Slot != "" && !hb.slotLost() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if rerr := d.e.ReleaseSlot(rctx, l.Lane, l.Slot); rerr != nil {
			d.opt.Logger.WarnContext(ctx, "slot release failed; it runs out by itself", "lane", l.Lane, "err", rerr)
		}
		cancel()
	}
	return res, err
}

func stopping(quit <-chan struct{}) bool {
	select {
	case <-quit:
		return true
	default:
		return false
	}
}

func (d *Drainer) wake(ctx context.Context) {
	if d.opt.Wake != nil {
		d.opt.Wake(context.WithoutCancel(ctx))
	}
}

// result is what handling an item, or working a key, came to.
type result struct {
	// out is how the key's turn ended; after an item, "" means: go on with
	// the next one.
	out Outcome
	// notBefore is when a Throttled key may be worked again.
	notBefore time.Time
	// next is the batch read by the step that acked the item (handle).
	next *queue.Batch
	// err is the failure of an Error outcome, nil for every other.
	err error
}

// failed maps an engine error to the result it means: another invocation
// holds the lease (Duplicate), the lease's token lost (LeaseLost: it ran
// out or was claimed anew, so the key's queue changed under it), or Redis
// failed (Error, with the error).
func failed(err error) result {
	switch {
	case errors.Is(err, queue.ErrLeaseActive):
		return result{out: Duplicate}
	case errors.Is(err, queue.ErrLeaseLost), errors.Is(err, queue.ErrHeadMismatch):
		return result{out: LeaseLost}
	}
	return result{out: Error, err: err}
}

// workKey works one leased key until its queue is empty, its quantum or the
// invocation's time is used, or a failure ends the lease, and leaves the key
// released (emptied, yielded, retrying, parked) or lost. The first key of a
// run is activated by its first step; keys from Next are bound already.
func (d *Drainer) workKey(ctx context.Context, hb *heartbeat, l queue.Lease, activate bool, stopAll time.Time, quit <-chan struct{}, res *Result) result {
	stopAt := d.opt.Clock.Now().Add(d.quantum(l.Lane))
	if !stopAll.IsZero() {
		stopAt = earliest(stopAt, stopAll)
	}
	keyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	hb.set(&l, cancel)
	defer hb.set(nil, nil)
	m := d.keyMetrics(l)
	defer func() { _ = m.flush(d.opt.Clock.Now()) }()

	b, err := d.e.Step(keyCtx, &l, queue.Step{Activate: activate, Fetch: d.opt.Batch, Release: true})
	if err != nil {
		return d.stopped(ctx, l, failed(err))
	}
	res.Keys++
	r := d.work(keyCtx, &l, b, stopAt, quit, res, m)
	if hb.leaseLost() {
		return result{out: LeaseLost} // another holder has the key now
	}
	switch r.out {
	case Yielded, Throttled, Paused:
		if _, err := d.e.Yield(context.WithoutCancel(keyCtx), &l, r.notBefore); err != nil {
			return d.stopped(ctx, l, failed(err))
		}
	}
	return d.stopped(ctx, l, r) // Emptied: the last step released the lease; Retrying, Parked: Fail did
}

// stopped returns r, logging an Error outcome: the key is left to its
// lease, which runs out by itself.
func (d *Drainer) stopped(ctx context.Context, l queue.Lease, r result) result {
	if r.out == Error {
		d.opt.Logger.WarnContext(ctx, "drain stopped: redis step failed; the key's lease runs out and it is dispatched again",
			"key", l.Key, "outcome", r.out, "err", r.err)
	}
	return r
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
	return QuantumDefault
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// heartbeat extends the lease of the key being worked every third of the
// lease's length, and renews the drain's lane slot. A lost lease cancels
// that key's context; a lost slot stops the drain from taking further keys.
type heartbeat struct {
	mu       sync.Mutex
	cur      *queue.Lease // a copy; nil between keys
	cancel   context.CancelFunc
	lost     bool // the current key's lease
	slotGone bool
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

func (d *Drainer) startHeartbeat(ctx context.Context, lane, slot string) *heartbeat {
	hb := &heartbeat{done: make(chan struct{})}
	every := d.e.Options().LeaseTTL / 3
	hb.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hb.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if slot != "" {
				if ok, err := d.e.RenewSlot(ctx, lane, slot); err == nil && !ok {
					hb.mu.Lock()
					hb.slotGone = true
					hb.mu.Unlock()
				}
			}
			hb.mu.Lock()
			var l queue.Lease
			if hb.cur != nil {
				l = *hb.cur
			}
			hb.mu.Unlock()
			if l.Key == "" {
				continue
			}
			if err := d.e.Extend(ctx, &l); err != nil {
				if !errors.Is(err, queue.ErrLeaseLost) {
					d.opt.Logger.WarnContext(ctx, "lease extend failed", "key", l.Key, "err", err)
					continue
				}
				hb.mu.Lock()
				if hb.cur != nil && hb.cur.Key == l.Key && hb.cur.Token == l.Token {
					hb.lost = true
					hb.cancel()
				}
				hb.mu.Unlock()
			}
		}
	})
	return hb
}

// set names the key being worked (a copy of its lease) and the cancel of its
// context; nil between keys.
func (hb *heartbeat) set(l *queue.Lease, cancel context.CancelFunc) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.lost = false
	hb.cancel = cancel
	hb.cur = nil
	if l != nil {
		c := *l
		hb.cur = &c
	}
}

func (hb *heartbeat) leaseLost() bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.lost
}

func (hb *heartbeat) slotLost() bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.slotGone
}

func (hb *heartbeat) stop() {
	hb.once.Do(func() {
		close(hb.done)
		hb.wg.Wait()
	})
}

// work handles the items of batch b and those after it until the queue is
// empty, stopAt passes, or a failure ends the lease. Each handled item costs
// one step: its ack, with the next batch read along when the one in hand is
// used up. Its result's notBefore says, for Throttled, when to resume.
func (d *Drainer) work(ctx context.Context, l *queue.Lease, b *queue.Batch, stopAt time.Time, quit <-chan struct{}, res *Result, m *keyMetrics) result {
	for {
		if b.Released {
			return result{out: Emptied}
		}
		if b.Paused {
			return result{out: Paused}
		}
		if len(b.Items) == 0 {
			// Nothing read but the queue is not empty (Fetch was not asked):
			// read the head.
			var err error
			if b, err = d.e.Step(ctx, l, queue.Step{Fetch: d.opt.Batch, Release: true}); err != nil {
				return failed(err)
			}
			if len(b.Items) == 0 && !b.Released {
				return failed(queue.ErrHeadMismatch)
			}
			continue
		}
		items, attempts := b.Items, b.Attempts
		b = &queue.Batch{Depth: -1}
		for i, it := range items {
			if !d.opt.Clock.Now().Before(stopAt) || stopping(quit) {
				return result{out: Yielded}
			}
			attempt := 1
			if i == 0 {
				attempt = attempts + 1
			}
			last := i == len(items)-1
			done := d.admit(ctx)
			r := d.handle(ctx, l, it, attempt, last, res, m)
			done()
			if r.out != "" {
				return r
			}
			if r.next != nil {
				b = r.next // the ack of the last item in hand read the next batch
			}
		}
	}
}

// admit waits for Options.Admit, if set, and returns the func that ends
// the item.
func (d *Drainer) admit(ctx context.Context) func() {
	if d.opt.Admit == nil {
		return func() {}
	}
	return d.opt.Admit(ctx)
}

// handle runs one item through its route and records the result. An empty
// outcome means: go on with the next item. When last is set (the item is
// the last one in hand), the step that acks it also reads the next batch,
// returned as next; after a dead letter next is nil and the caller reads.
// A step that fails after the handler ran leaves the item at the head: it
// is logged with result "error" and handled again by the key's next drain.
//
// Its log line gives the handler's time without its rate-limit wait (ms)
// and the wait apart (rate_wait_ms).
func (d *Drainer) handle(ctx context.Context, l *queue.Lease, it *queue.Item, attempt int, last bool, res *Result, m *keyMetrics) result {
	start := d.opt.Clock.Now()
	route, ok := d.opt.Routes(it.Code)
	var herr error
	var wait, took time.Duration
	if !ok {
		route = Route{MaxAttempts: 1, Policy: queue.DeadLetter}
		herr = handler.Permanent(fmt.Errorf("no route for event code %q", it.Code))
	} else {
		if wait, herr = d.reserve(ctx, route, it.Tenant); herr == nil {
			res.RateWaitMaxMs = max(res.RateWaitMaxMs, ms(wait))
			ev := newEvent(it, l, attempt)
			ev.RateWait = wait
			herr = callHandler(ctx, route, ev)
			wait = max(ev.RateWait, 0)
		}
		took = max(d.opt.Clock.Now().Sub(start)-wait, 0)
	}
	log := func(result string, args ...any) {
		d.opt.Logger.InfoContext(ctx, "item", append([]any{"key", l.Key, "id", it.ID, "attempt", attempt,
			"result", result, "ms", took.Milliseconds(), "rate_wait_ms", wait.Milliseconds()}, args...)...)
	}
	// stepFailed reports a step that did not record the handler's result.
	stepFailed := func(err error) result {
		r := failed(err)
		if r.out == Error {
			log("error", "err", err.Error())
		}
		return r
	}
	var throttled *handler.ThrottledError
	m.item(ok && !errors.As(herr, &throttled), took, wait)
	if herr == nil {
		st := queue.Step{Ack: []string{it.ID}, ResetAttempts: attempt > 1}
		if last {
			st.Fetch, st.Release = d.opt.Batch, true
		}
		next, err := d.e.Step(context.WithoutCancel(ctx), l, st)
		if err != nil {
			return stepFailed(err)
		}
		res.Handled++
		m.count(mHandled)
		m.observe(mLag, start.Sub(it.ReceivedAt))
		log("ok")
		if !last {
			next = nil
		}
		return result{next: next}
	}
	if throttled != nil {
		m.count(mThrottled)
		log("throttled", "until", throttled.At)
		return result{out: Throttled, notBefore: throttled.At}
	}
	f := queue.Failure{
		Reason:      herr.Error(),
		MaxAttempts: cmp.Or(route.MaxAttempts, MaxAttemptsDefault),
		Policy:      cmp.Or(route.Policy, PolicyDefault),
	}
	var perm *handler.PermanentError
	f.Permanent = errors.As(herr, &perm)
	var ra *handler.RetryAfterError
	if errors.As(herr, &ra) {
		f.RetryAt = d.opt.Clock.Now().Add(ra.Delay)
	}
	fr, err := d.e.Fail(context.WithoutCancel(ctx), l, it.ID, f)
	if err != nil {
		return stepFailed(err)
	}
	res.Failed++
	switch fr.Outcome {
	case queue.DeadLettered:
		res.Dead++
		m.count(mDeadLettered)
		log("dead-letter", "err", herr.Error())
		if last {
			// The next batch is read by the caller's loop (an empty read).
			return result{next: &queue.Batch{Depth: -1}}
		}
		return result{}
	case queue.Parked:
		m.count(mParked)
		log("parked", "err", herr.Error())
		return result{out: Parked}
	}
	m.count(mRetried)
	log("retry", "err", herr.Error(), "ready_at", fr.ReadyAt)
	return result{out: Retrying}
}

// reserve waits for the route's rate-limit slot, if it has a rate, and
// returns how long it waited. A slot further than MaxRateWait away returns
// a handler.ThrottledError: the key yields until then, with no attempt
// used. A limiter failure is returned as a failure of the call, retried
// like one. Every handler goes through here, so a custom handler's route
// is limited exactly as a forward route is (G6).
func (d *Drainer) reserve(ctx context.Context, route Route, tenant string) (time.Duration, error) {
	if route.Rate.N <= 0 {
		return 0, nil
	}
	if d.opt.Limiter == nil {
		return 0, errors.New("drain: the route has a rate but the drainer has no limiter")
	}
	res, err := d.opt.Limiter.Reserve(ctx, tenant, route.Endpoint, route.Rate, d.opt.MaxRateWait)
	if err != nil {
		return 0, fmt.Errorf("rate limiter: %w", err)
	}
	if !res.OK {
		// Come back half the sleep bound early: the next Reserve then finds
		// the slot within reach, sleeps to its start and calls on time, so
		// the bucket's calls stay evenly spaced.
		return 0, handler.Throttled(res.At.Add(-d.opt.MaxRateWait / 2))
	}
	start := d.opt.Clock.Now()
	if err := clock.Sleep(ctx, res.Wait); err != nil {
		return 0, fmt.Errorf("waiting for a rate-limit slot: %w", err)
	}
	// What it slept, timer slack included (a test's clock may stand still).
	return max(res.Wait, d.opt.Clock.Now().Sub(start)), nil
}

// callHandler calls the route's handler under the route's timeout, turning a
// panic into an error.
func callHandler(ctx context.Context, route Route, ev *handler.Event) (err error) {
	if route.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, route.Timeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v\n%s", p, firstLines(debug.Stack(), 12))
		}
	}()
	return route.Handler.Handle(ctx, ev)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// newEvent builds the handler's view of an item. Its Data is extracted by
// webhook.Data, by the rules ingest parsed the body with; it is nil for a
// body without a data object, which ingest never queues.
func newEvent(it *queue.Item, l *queue.Lease, attempt int) *handler.Event {
	data, _ := webhook.Data(it.Body)
	hdr := make(map[string]string, len(it.Headers))
	for _, h := range it.Headers {
		hdr[strings.ToLower(h.Name)] = h.Value
	}
	return &handler.Event{
		ID: it.ID, Key: it.Key(), Tenant: it.Tenant, Code: it.Code,
		Body: it.Body, Data: data, Headers: hdr,
		ReceivedAt: it.ReceivedAt, Attempt: attempt, Token: l.Token,
	}
}
