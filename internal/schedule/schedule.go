// Package schedule is hookline's dispatcher: while it holds the singleton
// scheduler lease it polls every lane's ready keys, claims as many as the
// lane's free capacity allows (capacity counted as running drains), and
// invokes one drain per claimed key. It stops shortly before its
// invocation's deadline and releases the lease. A scheduler that finds the
// lease held stands by until its own deadline and takes over the moment
// the leader releases the lease, or a poll after a dead leader's lease runs
// out; EventBridge starts a new one every minute.
//
// The same loop runs in the scheduler Lambda function (invoking the drain
// function through the AWS SDK) and in `hookline dev` (in-process drains).
package schedule

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/telemetry"
)

// Invoker starts one drain for a claimed lease, asynchronously: it returns
// once the drain is dispatched, not when it has run.
type Invoker interface {
	Invoke(ctx context.Context, l queue.Lease) error
}

// InvokerFunc adapts a function to Invoker.
type InvokerFunc func(ctx context.Context, l queue.Lease) error

// Invoke calls f(ctx, l).
func (f InvokerFunc) Invoke(ctx context.Context, l queue.Lease) error { return f(ctx, l) }

// singletonName names the scheduler's singleton lease.
const singletonName = "scheduler"

// Defaults of Options, which New gives its zero fields. The configuration's
// defaults refer to them.
const (
	PollDefault              = time.Second
	MarginDefault            = 5 * time.Second
	MetricsEveryDefault      = 10 * time.Second
	InvokeConcurrencyDefault = 16
	ReleaseBackoffDefault    = 5 * time.Second
	SingletonTTLDefault      = 10 * time.Second
)

// Options configure a Scheduler. Zero values select the documented defaults.
type Options struct {
	// Lanes maps each lane to its concurrency cap: the most live leases
	// (running or dispatched drains) it may have. Required.
	Lanes map[string]int
	// Poll is the longest wait between polls when nothing wakes the
	// scheduler: new work (Notify, or Engine.Wake when RedisWake is set)
	// and a delayed key's ready time wake it sooner. Default PollDefault.
	Poll time.Duration
	// RedisWake makes the scheduler wait on the engine's wake signal
	// (Engine.Wake from other processes: ingest and drain functions)
	// instead of in-process Notify calls.
	RedisWake bool
	// Margin: the loop stops this long before the invocation deadline.
	// Default MarginDefault.
	Margin time.Duration
	// MetricsEvery is how often queue metrics are emitted. Default
	// MetricsEveryDefault.
	MetricsEvery time.Duration
	// InvokeConcurrency bounds the Invoke calls in flight. Default
	// InvokeConcurrencyDefault.
	InvokeConcurrency int
	// ReleaseBackoff: after an Invoke fails, the key is ready again this
	// much later. Default ReleaseBackoffDefault.
	ReleaseBackoff time.Duration
	// SingletonTTL is the scheduler lease, renewed at every poll: a leader
	// that dies is replaced within about this long. Keep it well above the
	// longest poll (claims and Invoke calls). Default SingletonTTLDefault.
	SingletonTTL time.Duration
	// Owner identifies this scheduler (its request id). Default random.
	Owner string
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Logger gets dispatch errors. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives EMF lines. Nil: no metrics.
	Metrics *telemetry.Emitter
	// RouteLane returns the lane of an event code's route, for the dead
	// letters per lane: a key's dead letters count in the lane of its
	// code's route, those of a code without a route in a line of lane
	// "unrouted". Nil: dead letters are counted in the total only.
	RouteLane func(code string) (lane string, ok bool)
}

// Scheduler dispatches drains.
type Scheduler struct {
	e     *queue.Engine
	inv   Invoker
	opt   Options
	lanes []string
	wake  chan struct{}
}

// Notify wakes the scheduler's loop at once: there is new work (a key became
// ready) or free capacity. It never blocks.
func (s *Scheduler) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// New returns a Scheduler.
func New(e *queue.Engine, inv Invoker, opt Options) (*Scheduler, error) {
	if len(opt.Lanes) == 0 {
		return nil, errors.New("schedule: Options.Lanes is required")
	}
	lanes := make([]string, 0, len(opt.Lanes))
	for lane, c := range opt.Lanes {
		if c < 1 {
			return nil, fmt.Errorf("schedule: lane %q: concurrency must be at least 1", lane)
		}
		lanes = append(lanes, lane)
	}
	slices.Sort(lanes)
	opt.Poll = cmp.Or(opt.Poll, PollDefault)
	opt.Margin = cmp.Or(opt.Margin, MarginDefault)
	opt.MetricsEvery = cmp.Or(opt.MetricsEvery, MetricsEveryDefault)
	opt.InvokeConcurrency = cmp.Or(opt.InvokeConcurrency, InvokeConcurrencyDefault)
	opt.ReleaseBackoff = cmp.Or(opt.ReleaseBackoff, ReleaseBackoffDefault)
	opt.SingletonTTL = cmp.Or(opt.SingletonTTL, SingletonTTLDefault)
	if opt.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opt.Owner = "sched-" + hex.EncodeToString(b[:])
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Scheduler{e: e, inv: inv, opt: opt, lanes: lanes, wake: make(chan struct{}, 1)}, nil
}

// Stats reports one run of the loop.
type Stats struct {
	// Leader is false when another scheduler held the lease for the whole
	// run: this one stood by and dispatched nothing.
	Leader       bool `json:"leader"`
	Polls        int  `json:"polls"`
	Dispatched   int  `json:"dispatched"`
	InvokeErrors int  `json:"invoke_errors"`
}

// Run dispatches until deadline minus the margin (a zero deadline: until
// ctx ends), while it holds the scheduler lease.
//
// One scheduler leads at a time. A scheduler that finds the lease held
// stands by until its own stop time: it tries for the lease every poll, and
// at once when the leader releases it, so a leader that stops is replaced
// without a gap and a leader that died is replaced within a poll of its
// lease running out (SingletonTTL after its last renewal). A leader renews
// the lease at every poll. When a renewal fails (Redis unreachable) it
// dispatches nothing and keeps trying; when it finds the lease taken by
// another scheduler it stands by again. When it stops it releases the lease.
//
// A poll still running at deadline minus half the margin is cut short, so
// that the lease is released before the deadline. Run returns an error only
// when it never led and its last try for the lease failed.
func (s *Scheduler) Run(ctx context.Context, deadline time.Time) (Stats, error) {
	var st Stats
	stopAt := time.Time{}
	if !deadline.IsZero() {
		stopAt = deadline.Add(-s.opt.Margin)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-s.opt.Margin/2))
		defer cancel()
	}
	start := s.opt.Clock.Now()
	standby := false // logged once per stand-by
	for {
		if s.stopping(ctx, stopAt) {
			return st, nil
		}
		ok, err := s.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return st, nil
			}
			s.opt.Logger.WarnContext(ctx, "scheduler lease unavailable; retrying", "err", err)
			_ = clock.Sleep(ctx, s.until(stopAt, s.opt.Poll))
			if !st.Leader && s.stopping(ctx, stopAt) {
				return st, fmt.Errorf("schedule: scheduler lease: %w", err)
			}
			continue
		}
		if !ok {
			if !standby {
				standby = true
				s.opt.Logger.InfoContext(ctx, "scheduler standing by: another scheduler leads", "owner", s.opt.Owner)
			}
			if _, err := s.e.WaitSingleton(ctx, singletonName, s.until(stopAt, s.opt.Poll)); err != nil && ctx.Err() == nil {
				s.opt.Logger.WarnContext(ctx, "waiting for the scheduler lease failed", "err", err)
				_ = clock.Sleep(ctx, s.until(stopAt, s.opt.Poll))
			}
			continue
		}
		standby = false
		st.Leader = true
		s.opt.Logger.InfoContext(ctx, "scheduler leading", "owner", s.opt.Owner,
			"since_start_ms", s.opt.Clock.Now().Sub(start).Milliseconds())
		if s.lead(ctx, stopAt, &st) {
			return st, nil
		}
	}
}

// acquire takes or renews the scheduler lease. The lease runs from the
// "now" the call sent, so a call that took half the lease or more (a paused
// process, a slow network) may have granted one that is about to run out:
// it is renewed again, and after three such calls not trusted at all.
func (s *Scheduler) acquire(ctx context.Context) (bool, error) {
	for range 3 {
		begin := s.opt.Clock.Now()
		ok, err := s.e.AcquireSingleton(ctx, singletonName, s.opt.Owner, s.opt.SingletonTTL)
		if err != nil || !ok || s.opt.Clock.Now().Sub(begin) < s.opt.SingletonTTL/2 {
			return ok, err
		}
	}
	return false, nil
}

// stopping reports whether the run is over: ctx ended or stopAt passed.
func (s *Scheduler) stopping(ctx context.Context, stopAt time.Time) bool {
	return ctx.Err() != nil || (!stopAt.IsZero() && !s.opt.Clock.Now().Before(stopAt))
}

// until returns d, or less if stopAt comes sooner.
func (s *Scheduler) until(stopAt time.Time, d time.Duration) time.Duration {
	if stopAt.IsZero() {
		return d
	}
	return max(min(d, stopAt.Sub(s.opt.Clock.Now())), 0)
}

// lead polls and dispatches while the scheduler holds the lease, which it
// has just taken. It returns true when the run is over (the lease then
// released), false when the lease was lost: another scheduler took it, or
// renewals kept taking half the lease or more.
func (s *Scheduler) lead(ctx context.Context, stopAt time.Time, st *Stats) (stopped bool) {
	defer func() {
		if !stopped {
			return
		}
		// A fresh context: ctx may be done, and the next scheduler should
		// not wait for the lease to run out.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := s.e.ReleaseSingleton(rctx, singletonName, s.opt.Owner); err != nil {
			s.opt.Logger.WarnContext(ctx, "scheduler lease release failed; it runs out by itself", "err", err)
		}
		s.opt.Logger.InfoContext(ctx, "scheduler stopped leading", "owner", s.opt.Owner)
	}()
	var lastMetrics time.Time
	renewed := true
	for {
		now := s.opt.Clock.Now()
		if s.stopping(ctx, stopAt) {
			return true
		}
		if !renewed {
			ok, err := s.acquire(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return true
				}
				// Dispatch nothing until the lease is renewed: it may
				// have run out meanwhile, and another scheduler may lead.
				s.opt.Logger.ErrorContext(ctx, "scheduler lease renewal failed; retrying", "err", err)
				_ = clock.Sleep(ctx, s.until(stopAt, s.opt.Poll))
				continue
			}
			if !ok {
				s.opt.Logger.WarnContext(ctx, "scheduler lease lost (another scheduler took it, or it could not be renewed in time); standing by", "owner", s.opt.Owner)
				return false
			}
		}
		renewed = false
		st.Polls++
		claimed, nextAt, err := s.poll(ctx, st)
		if err != nil && ctx.Err() == nil {
			s.opt.Logger.ErrorContext(ctx, "poll failed", "err", err)
		}
		if s.opt.Metrics != nil && now.Sub(lastMetrics) >= s.opt.MetricsEvery {
			lastMetrics = now
			s.emitMetrics(ctx)
		}
		if claimed > 0 && err == nil {
			continue // more may be ready, and capacity may be left
		}
		wait := s.opt.Poll
		if !nextAt.IsZero() {
			wait = min(wait, max(nextAt.Sub(s.opt.Clock.Now()), time.Millisecond))
		}
		if err := s.waitWake(ctx, s.until(stopAt, wait)); err != nil || ctx.Err() != nil {
			return true
		}
	}
}

// waitWake waits up to d for new work: a Notify, or with RedisWake the
// engine's wake signal.
func (s *Scheduler) waitWake(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if s.opt.RedisWake {
		if _, err := s.e.WaitWake(ctx, d); err != nil && ctx.Err() == nil {
			s.opt.Logger.WarnContext(ctx, "waiting for wake failed", "err", err)
			return clock.Sleep(ctx, d)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.wake:
	case <-t.C:
	}
	return nil
}

// poll claims each lane's free capacity once and dispatches the claimed
// keys. It returns how many keys it claimed and the earliest time a key
// that is not ready yet becomes ready (zero if none is known), for the
// loop's wait.
//
// A lane's capacity is its slots: a slot is one running (or dispatched)
// drain, which may work many keys one after another. For each claimed key
// the poll takes a slot, and the drain holds it until it finds no ready key
// in its lane.
func (s *Scheduler) poll(ctx context.Context, st *Stats) (int, time.Time, error) {
	live, err := s.e.LiveSlots(ctx, s.lanes...)
	if err != nil {
		return 0, time.Time{}, err
	}
	var leases []queue.Lease
	var errs []error
	var nextAt time.Time
	for _, lane := range s.lanes {
		limit := s.opt.Lanes[lane]
		free := limit - int(live[lane])
		if free <= 0 {
			continue
		}
		ls, next, err := s.e.ClaimWithNext(ctx, lane, free)
		if err != nil {
			errs = append(errs, err)
		}
		if !next.IsZero() && (nextAt.IsZero() || next.Before(nextAt)) {
			nextAt = next
		}
		if len(ls) == 0 {
			continue
		}
		ids := make([]string, len(ls))
		for i := range ls {
			ids[i] = s.opt.Owner + "/" + newSlotID()
		}
		got, err := s.e.AcquireSlots(ctx, lane, limit, ids)
		if err != nil {
			errs = append(errs, err)
		}
		for i := range ls {
			if i < got {
				ls[i].Slot = ids[i]
				leases = append(leases, ls[i])
				continue
			}
			// No slot for it (a drain started meanwhile): back to the
			// ready index at once.
			if _, err := s.e.Yield(ctx, &ls[i], time.Time{}); err != nil {
				s.opt.Logger.WarnContext(ctx, "release without a slot failed; the claim runs out by itself", "key", ls[i].Key, "err", err)
			}
		}
	}
	s.dispatch(ctx, leases, st)
	return len(leases), nextAt, errors.Join(errs...)
}

// newSlotID returns 8 random hex digits.
func newSlotID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dispatch invokes one drain per lease, InvokeConcurrency at a time. A key
// whose Invoke fails is released to be ready again after ReleaseBackoff.
func (s *Scheduler) dispatch(ctx context.Context, leases []queue.Lease, st *Stats) {
	sem := make(chan struct{}, s.opt.InvokeConcurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, l := range leases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.inv.Invoke(ctx, l)
			mu.Lock()
			if err == nil {
				st.Dispatched++
			} else {
				st.InvokeErrors++
			}
			mu.Unlock()
			if err == nil {
				return
			}
			s.opt.Logger.ErrorContext(ctx, "invoke failed; key released with backoff", "key", l.Key, "lane", l.Lane, "err", err)
			at := s.opt.Clock.Now().Add(s.opt.ReleaseBackoff)
			rctx := context.WithoutCancel(ctx)
			if _, rerr := s.e.Yield(rctx, &l, at); rerr != nil {
				s.opt.Logger.ErrorContext(ctx, "release failed; the claim runs out by itself", "key", l.Key, "err", rerr)
			}
			if rerr := s.e.ReleaseSlot(rctx, l.Lane, l.Slot); rerr != nil {
				s.opt.Logger.ErrorContext(ctx, "slot release failed; it runs out by itself", "lane", l.Lane, "err", rerr)
			}
		})
	}
	wg.Wait()
}

// emitMetrics writes one EMF line per lane and one for the whole stack.
//
// Per lane (dimension Lane, and rolled up under the Stack alone: read those
// with the Maximum statistic): the keys with work by state (ReadyKeys,
// LeasedKeys, DelayedKeys, RetryingKeys, PausedKeys, ParkedKeys), the
// running drains (LiveSlots) beside the lane's Concurrency, QueuedItems,
// OldestItemAge (the oldest queued item over every key with work, ready or
// not), OldestReadyAge (how long the oldest ready key has waited for a
// drain), and DeadLetters (of the keys whose route is in the lane, under
// Lane only). For the stack: DeadLetters over every key.
func (s *Scheduler) emitMetrics(ctx context.Context) {
	now := s.opt.Clock.Now()
	age := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(max(now.Sub(t), 0).Milliseconds())
	}
	slots, err := s.e.LiveSlots(ctx, s.lanes...)
	if err != nil {
		s.opt.Logger.WarnContext(ctx, "metrics read failed", "err", err)
	}
	deadByLane, deadTotal, deadErr := s.deadLetters(ctx)
	if deadErr != nil {
		s.opt.Logger.WarnContext(ctx, "metrics read failed", "err", deadErr)
	}
	both := [][]string{{"Lane"}, {}}
	gauge := func(name string, v float64) telemetry.Metric {
		return telemetry.Metric{Name: name, Unit: telemetry.Count, Value: v, Sets: both}
	}
	for _, lane := range s.lanes {
		ld, err := s.e.LaneLoad(ctx, lane)
		if err != nil {
			s.opt.Logger.WarnContext(ctx, "metrics read failed", "lane", lane, "err", err)
			continue
		}
		ms := []telemetry.Metric{
			gauge("ReadyKeys", float64(ld.Ready)),
			gauge("LeasedKeys", float64(ld.Leased)),
			gauge("DelayedKeys", float64(ld.Delayed)),
			gauge("RetryingKeys", float64(ld.Retrying)),
			gauge("PausedKeys", float64(ld.Paused)),
			gauge("ParkedKeys", float64(ld.Parked)),
			gauge("QueuedItems", float64(ld.QueuedItems)),
			gauge("LiveSlots", float64(slots[lane])),
			gauge("Concurrency", float64(s.opt.Lanes[lane])),
			{Name: "OldestItemAge", Unit: telemetry.Milliseconds, Value: age(ld.OldestItem), Sets: both},
			{Name: "OldestReadyAge", Unit: telemetry.Milliseconds, Value: age(ld.OldestReady), Sets: both},
		}
		if s.opt.RouteLane != nil && deadErr == nil {
			ms = append(ms, telemetry.Metric{Name: "DeadLetters", Unit: telemetry.Count, Value: float64(deadByLane[lane]), Sets: [][]string{{"Lane"}}})
		}
		_ = s.opt.Metrics.Emit(now, map[string]string{"Lane": lane}, ms...)
	}
	if deadErr != nil {
		return
	}
	if n := deadByLane[unroutedLane]; n > 0 {
		_ = s.opt.Metrics.Emit(now, map[string]string{"Lane": unroutedLane},
			telemetry.Metric{Name: "DeadLetters", Unit: telemetry.Count, Value: float64(n), Sets: [][]string{{"Lane"}}})
	}
	_ = s.opt.Metrics.Emit(now, nil, telemetry.Metric{Name: "DeadLetters", Unit: telemetry.Count, Value: float64(deadTotal)})
}

// unroutedLane is the Lane dimension of dead letters whose event code has
// no route.
const unroutedLane = "unrouted"

// deadLetters counts the dead letters per lane of their key's route, and in
// total, over up to queue.MaxCountKeys keys with dead letters.
func (s *Scheduler) deadLetters(ctx context.Context) (map[string]int64, int64, error) {
	keys, err := s.e.DeadKeys(ctx, queue.MaxCountKeys)
	if err != nil {
		return nil, 0, err
	}
	byLane := map[string]int64{}
	var total int64
	for _, k := range keys {
		total += k.Count
		if s.opt.RouteLane == nil {
			continue
		}
		_, code, _ := strings.Cut(k.Key, ":")
		lane, ok := s.opt.RouteLane(code)
		if !ok {
			lane = unroutedLane
		}
		byLane[lane] += k.Count
	}
	return byLane, total, nil
}
