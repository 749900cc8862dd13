// Package schedule is hookline's dispatcher: while it holds the singleton
// scheduler lease it polls every lane's ready keys, claims as many as the
// lane's free capacity allows (capacity counted as live leases), and invokes
// one drain per claimed key. It stops shortly before its invocation's
// deadline; EventBridge starts the next one.
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
	"sync"
	"time"

	"github.com/hookline/hookline/shared/clock"
	"github.com/hookline/hookline/shared/queue"
	"github.com/hookline/hookline/shared/telemetry"
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

// Options configure a Scheduler. Zero values select the documented defaults.
type Options struct {
	// Lanes maps each lane to its concurrency cap: the most live leases
	// (running or dispatched drains) it may have. Required.
	Lanes map[string]int
	// Poll is the pause between polls when nothing was claimed. Default 200ms.
	Poll time.Duration
	// Margin: the loop stops this long before the invocation deadline.
	// Default 5s.
	Margin time.Duration
	// MetricsEvery is how often queue metrics are emitted. Default 10s.
	MetricsEvery time.Duration
	// InvokeConcurrency bounds the Invoke calls in flight. Default 16.
	InvokeConcurrency int
	// ReleaseBackoff: after an Invoke fails, the key is ready again this
	// much later. Default 5s.
	ReleaseBackoff time.Duration
	// SingletonTTL is the scheduler lease; renewed at every poll. Default 30s.
	SingletonTTL time.Duration
	// Owner identifies this scheduler (its request id). Default random.
	Owner string
	// Clock supplies "now". Default the wall clock.
	Clock clock.Clock
	// Logger gets dispatch errors. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives EMF lines. Nil: no metrics.
	Metrics *telemetry.Emitter
}

// Scheduler dispatches drains.
type Scheduler struct {
	e     *queue.Engine
	inv   Invoker
	opt   Options
	lanes []string
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
	opt.Poll = cmp.Or(opt.Poll, 200*time.Millisecond)
	opt.Margin = cmp.Or(opt.Margin, 5*time.Second)
	opt.MetricsEvery = cmp.Or(opt.MetricsEvery, 10*time.Second)
	opt.InvokeConcurrency = cmp.Or(opt.InvokeConcurrency, 16)
	opt.ReleaseBackoff = cmp.Or(opt.ReleaseBackoff, 5*time.Second)
	opt.SingletonTTL = cmp.Or(opt.SingletonTTL, 30*time.Second)
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
	return &Scheduler{e: e, inv: inv, opt: opt, lanes: lanes}, nil
}

// Stats reports one run of the loop.
type Stats struct {
	// Leader is false when another scheduler held the lease: the run did
	// nothing.
	Leader       bool `json:"leader"`
	Polls        int  `json:"polls"`
	Dispatched   int  `json:"dispatched"`
	InvokeErrors int  `json:"invoke_errors"`
}

// Run polls and dispatches until deadline minus the margin (a zero deadline:
// until ctx ends). A second scheduler running at the same time returns at
// once with Leader false.
func (s *Scheduler) Run(ctx context.Context, deadline time.Time) (Stats, error) {
	var st Stats
	ok, err := s.e.AcquireSingleton(ctx, singletonName, s.opt.Owner, s.opt.SingletonTTL)
	if err != nil || !ok {
		return st, err
	}
	st.Leader = true
	defer func() {
		// A fresh context: ctx may be done, and the next scheduler should
		// not wait for the lease to run out.
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.e.ReleaseSingleton(rctx, singletonName, s.opt.Owner)
	}()
	stopAt := time.Time{}
	if !deadline.IsZero() {
		stopAt = deadline.Add(-s.opt.Margin)
	}
	var lastMetrics time.Time
	for {
		now := s.opt.Clock.Now()
		if ctx.Err() != nil || (!stopAt.IsZero() && !now.Before(stopAt)) {
			return st, nil
		}
		if st.Polls > 0 {
			if ok, err := s.e.AcquireSingleton(ctx, singletonName, s.opt.Owner, s.opt.SingletonTTL); err != nil || !ok {
				if err != nil && ctx.Err() == nil {
					s.opt.Logger.ErrorContext(ctx, "scheduler lease renewal failed", "err", err)
				}
				return st, nil
			}
		}
		st.Polls++
		claimed, err := s.Poll(ctx, &st)
		if err != nil && ctx.Err() == nil {
			s.opt.Logger.ErrorContext(ctx, "poll failed", "err", err)
		}
		if s.opt.Metrics != nil && now.Sub(lastMetrics) >= s.opt.MetricsEvery {
			lastMetrics = now
			s.emitMetrics(ctx)
		}
		if claimed == 0 || err != nil {
			wait := s.opt.Poll
			if !stopAt.IsZero() {
				wait = min(wait, stopAt.Sub(now))
			}
			if err := clock.Sleep(ctx, wait); err != nil || ctx.Err() != nil {
				return st, nil
			}
		}
	}
}

// Poll claims each lane's free capacity once and dispatches the claimed
// keys. It returns how many keys it claimed.
func (s *Scheduler) Poll(ctx context.Context, st *Stats) (int, error) {
	live, err := s.e.LiveLeasesByLane(ctx, s.lanes...)
	if err != nil {
		return 0, err
	}
	var leases []queue.Lease
	var errs []error
	for _, lane := range s.lanes {
		free := s.opt.Lanes[lane] - int(live[lane])
		if free <= 0 {
			continue
		}
		ls, err := s.e.Claim(ctx, lane, free)
		if err != nil {
			errs = append(errs, err)
		}
		leases = append(leases, ls...)
	}
	s.dispatch(ctx, leases, st)
	return len(leases), errors.Join(errs...)
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
			if _, rerr := s.e.Yield(context.WithoutCancel(ctx), &l, at); rerr != nil {
				s.opt.Logger.ErrorContext(ctx, "release failed; the claim runs out by itself", "key", l.Key, "err", rerr)
			}
		})
	}
	wg.Wait()
}

// emitMetrics writes one EMF line per lane.
func (s *Scheduler) emitMetrics(ctx context.Context) {
	now := s.opt.Clock.Now()
	for _, lane := range s.lanes {
		st, err := s.e.Stats(ctx, lane)
		if err != nil {
			s.opt.Logger.WarnContext(ctx, "metrics read failed", "lane", lane, "err", err)
			continue
		}
		age := 0.0
		if !st.OldestReady.IsZero() {
			age = float64(now.Sub(st.OldestReady).Milliseconds())
		}
		_ = s.opt.Metrics.Emit(now, map[string]string{"Lane": lane},
			telemetry.Metric{Name: "ReadyKeys", Unit: "Count", Value: float64(st.Ready)},
			telemetry.Metric{Name: "LeasedKeys", Unit: "Count", Value: float64(st.Leased)},
			telemetry.Metric{Name: "DelayedKeys", Unit: "Count", Value: float64(st.Delayed)},
			telemetry.Metric{Name: "OldestReadyAge", Unit: "Milliseconds", Value: age},
			telemetry.Metric{Name: "Concurrency", Unit: "Count", Value: float64(s.opt.Lanes[lane])},
		)
	}
}
