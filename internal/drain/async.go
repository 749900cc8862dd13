package drain

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookline/hookline/internal/queue"
)

// Async runs drains in goroutines of this process: the local stand-in for
// asynchronous Lambda invocations, used by `hookline dev` and tests. It
// implements the scheduler's Invoker.
type Async struct {
	d *Drainer
	// OnResult, if set, is called after each drain.
	OnResult func(Result, error)
	wg       sync.WaitGroup
	n        atomic.Int64
	quit     chan struct{}
	stopOnce sync.Once
}

// NewAsync returns an Async over d.
func NewAsync(d *Drainer) *Async { return &Async{d: d, quit: make(chan struct{})} }

// Invoke starts a drain for l and returns at once. Each drain gets a fresh
// invocation id, as a Lambda invocation gets a fresh request id.
func (a *Async) Invoke(ctx context.Context, l queue.Lease) error {
	id := "local-" + strconv.FormatInt(a.n.Add(1), 10)
	ctx = context.WithoutCancel(ctx)
	a.wg.Go(func() {
		res, err := a.d.run(ctx, l, id, time.Time{}, a.quit)
		if a.OnResult != nil {
			a.OnResult(res, err)
		}
	})
	return nil
}

// Invocations counts the drains started so far.
func (a *Async) Invocations() int64 { return a.n.Load() }

// Stop asks every running drain to finish the item in hand, yield its key
// and take no further key.
func (a *Async) Stop() { a.stopOnce.Do(func() { close(a.quit) }) }

// Wait waits for every started drain to finish.
func (a *Async) Wait() { a.wg.Wait() }
