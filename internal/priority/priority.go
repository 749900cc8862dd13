// Package priority lets the work that must answer now go first when one
// process has more to do than it has CPUs.
//
// `hookline dev` receives webhooks and drains queues in one process. A
// provider waits for each answer; a queued item can wait. While the process
// has CPU to spare, both run at full speed and nothing here changes
// anything. When its goroutines queue for a CPU (Go's scheduling latency is
// high) while webhooks are arriving, a [Gate] lets only one item (Slots)
// be handled at once, so answering webhooks takes the CPU the other drains
// would have used: a burst is accepted at ingest's own pace and drained
// right after it, as a backlog, which costs less per item too (more items
// per key activation). It never stops the drains: Slots of them keep going,
// and they all go again, waiting ones included, as soon as webhooks stop
// arriving or the CPUs catch up. In Lambda the functions run apart and
// nothing uses it.
package priority

import (
	"context"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	SlotsDefault   = 1
	EveryDefault   = 10 * time.Millisecond
	LatencyDefault = 100 * time.Microsecond
	ShareDefault   = 0.1
	RecentDefault  = 20 * time.Millisecond
)

// Options tune a Gate. Zero values select the defaults.
type Options struct {
	// Slots is how many deferrable tasks run at once while the gate is
	// closed. Default SlotsDefault.
	Slots int
	// Every is how often the gate reads the scheduling latencies. Default
	// EveryDefault.
	Every time.Duration
	// Latency and Share define contention: over the last Every, at least
	// 200 goroutines became runnable and at least Share of them waited
	// Latency or more for a CPU. Defaults LatencyDefault and ShareDefault.
	Latency time.Duration
	Share   float64
	// Recent is how long after the last urgent task the gate may close.
	// Default RecentDefault.
	Recent time.Duration
}

// Gate decides, every Options.Every, whether deferrable work must make
// room; see the package comment. Its methods are safe for concurrent use.
type Gate struct {
	opt    Options
	slots  chan struct{}
	urgent atomic.Int64                  // Unix ns of the last urgent task's start
	shut   atomic.Pointer[chan struct{}] // non-nil while closed; closed when the gate opens
	closes atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// New starts a Gate; Close stops it.
func New(opt Options) *Gate {
	opt.Slots = max(opt.Slots, 0)
	if opt.Slots == 0 {
		opt.Slots = SlotsDefault
	}
	if opt.Every <= 0 {
		opt.Every = EveryDefault
	}
	if opt.Latency <= 0 {
		opt.Latency = LatencyDefault
	}
	if opt.Share <= 0 {
		opt.Share = ShareDefault
	}
	if opt.Recent <= 0 {
		opt.Recent = RecentDefault
	}
	g := &Gate{opt: opt, slots: make(chan struct{}, opt.Slots), stop: make(chan struct{}), done: make(chan struct{})}
	go g.watch()
	return g
}

// Close stops the gate's watcher and opens the gate for good.
func (g *Gate) Close() {
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		g.set(false)
	})
}

// Urgent records the start of urgent work (a webhook being received).
func (g *Gate) Urgent() { g.urgent.Store(time.Now().UnixNano()) }

// Closed says whether deferrable work is held back now.
func (g *Gate) Closed() bool { return g.shut.Load() != nil }

// Closes counts the times the gate closed.
func (g *Gate) Closes() int64 { return g.closes.Load() }

// Enter is called before a deferrable task (handling one item). While the
// gate is open it returns at once; while it is closed it waits for one of
// Slots, for the gate to open, or for ctx. The returned func ends the task.
// A nil Gate is open.
func (g *Gate) Enter(ctx context.Context) func() {
	if g == nil {
		return func() {}
	}
	opened := g.shut.Load()
	if opened == nil {
		return func() {}
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }
	case <-*opened: // every waiter goes at once
		return func() {}
	case <-ctx.Done():
		return func() {}
	}
}

// set closes (shut) or opens the gate. Only one goroutine calls it at a
// time: the watcher, or Close after it.
func (g *Gate) set(shut bool) {
	cur := g.shut.Load()
	switch {
	case shut && cur == nil:
		opened := make(chan struct{})
		g.shut.Store(&opened)
		g.closes.Add(1)
	case !shut && cur != nil:
		g.shut.Store(nil)
		close(*cur)
	}
}

const latencies = "/sched/latencies:seconds"

// minSample is the fewest latencies counted in one Every for them to say
// anything: a process that wakes fewer goroutines is not busy, and one slow
// wake among a handful is noise (a GC pause, a page fault). The runtime
// counts about one wake in 8, so this is about 200 wakes.
const minSample = 25

// watch closes the gate while the scheduler is contended and urgent work
// is recent, and opens it otherwise.
func (g *Gate) watch() {
	defer close(g.done)
	sample := []metrics.Sample{{Name: latencies}}
	var prev []uint64 // the counts at the last tick: each tick judges its own Every
	if metrics.Read(sample); sample[0].Value.Kind() == metrics.KindFloat64Histogram {
		prev = append(prev, sample[0].Value.Float64Histogram().Counts...)
	}
	t := time.NewTicker(g.opt.Every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
			return // not measured by this runtime: the gate stays open
		}
		h := sample[0].Value.Float64Histogram()
		contended := g.contended(h, prev)
		prev = append(prev[:0], h.Counts...)
		recent := time.Now().UnixNano()-g.urgent.Load() < int64(g.opt.Recent)
		g.set(recent && contended)
	}
}

// contended says whether, between the counts prev and h, at least minSample
// goroutines were made runnable and at least Share of them waited Latency
// or more for a CPU.
func (g *Gate) contended(h *metrics.Float64Histogram, prev []uint64) bool {
	var all, slow uint64
	for i, c := range h.Counts {
		d := c
		if i < len(prev) {
			d -= prev[i]
		}
		all += d
		if h.Buckets[i] >= g.opt.Latency.Seconds() {
			slow += d
		}
	}
	return all >= minSample && float64(slow) >= g.opt.Share*float64(all)
}
