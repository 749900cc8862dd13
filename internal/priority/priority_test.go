package priority

import (
	"context"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spin keeps 4x GOMAXPROCS goroutines runnable until stop is closed, each
// yielding its CPU every few tens of microseconds as a busy server's
// goroutines do: the scheduler is contended.
func spin(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			x := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 100_000 {
					x += i
				}
				_ = x
				runtime.Gosched()
			}
		})
	}
	return &wg
}

// TestContendedNeedsASample: a tick is contended when at least minSample
// goroutines became runnable and Share of them waited Latency or more; a
// few slow wakes in an idle process are not contention.
func TestContendedNeedsASample(t *testing.T) {
	g := &Gate{opt: Options{Latency: 100 * time.Microsecond, Share: 0.1}}
	// Buckets: [0, 10µs), [10µs, 100µs), [100µs, 1ms), [1ms, +Inf).
	h := &metrics.Float64Histogram{Buckets: []float64{0, 10e-6, 100e-6, 1e-3, math.Inf(1)}}
	for _, c := range []struct {
		prev, now []uint64
		want      bool
	}{
		{nil, []uint64{0, 0, 0, 0}, false},
		{nil, []uint64{1, 1, 3, 0}, false},                          // 3 of 5 slow: too few to say
		{nil, []uint64{80, 10, 9, 1}, true},                         // 10 of 100 slow
		{nil, []uint64{81, 10, 8, 1}, false},                        // 9 of 100
		{[]uint64{1000, 0, 50, 0}, []uint64{1090, 0, 60, 0}, true},  // since prev: 10 of 100
		{[]uint64{1000, 0, 50, 0}, []uint64{1010, 0, 60, 0}, false}, // since prev: 10 of 20, too few
	} {
		h.Counts = c.now
		if got := g.contended(h, c.prev); got != c.want {
			t.Errorf("contended(%v since %v) = %v, want %v", c.now, c.prev, got, c.want)
		}
	}
}

// waitFor polls cond every millisecond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestGateClosesUnderContentionWhileUrgentWorkArrives: with the CPUs
// contended and urgent work arriving, the gate closes; when urgent work
// stops it opens, and Enter no longer waits.
func TestGateClosesUnderContentionWhileUrgentWorkArrives(t *testing.T) {
	g := New(Options{Slots: 2})
	defer g.Close()
	stop := make(chan struct{})
	wg := spin(stop)
	defer func() { close(stop); wg.Wait() }()

	urgentDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-urgentDone:
				return
			default:
				g.Urgent()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	if !waitFor(5*time.Second, g.Closed) {
		close(urgentDone)
		t.Fatal("the gate stayed open with the CPUs contended and urgent work arriving")
	}

	t.Logf("the gate closed (%d times so far)", g.Closes())

	close(urgentDone)
	if !waitFor(2*time.Second, func() bool { return !g.Closed() }) {
		t.Fatal("the gate stayed closed after urgent work stopped")
	}
	// Open: Enter does not wait, however many enter.
	for range 10 {
		defer g.Enter(context.Background())()
	}
}

// TestGateOpenWithoutUrgentWork: contended CPUs alone never close it, and a
// nil gate is open.
func TestGateOpenWithoutUrgentWork(t *testing.T) {
	g := New(Options{})
	defer g.Close()
	stop := make(chan struct{})
	wg := spin(stop)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if g.Closes() != 0 {
		t.Fatalf("the gate closed %d times with no urgent work", g.Closes())
	}
	var nilGate *Gate
	nilGate.Enter(context.Background())()
}

// TestEnterGivesUpWithItsContext: a task waiting at a closed gate returns
// when its context ends.
func TestEnterGivesUpWithItsContext(t *testing.T) {
	g := &Gate{slots: make(chan struct{}, 1)}
	g.set(true)
	done := g.Enter(context.Background()) // takes the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	g.Enter(ctx)()
	if d := time.Since(start); d < 25*time.Millisecond || d > time.Second {
		t.Fatalf("Enter returned after %v, want about its context's 30 ms", d)
	}
	done()
}

// TestClosedGateAdmitsSlots: through a closed gate of 2 slots, 8 tasks of
// 20 ms each run at most 2 at once, and all of them run.
func TestClosedGateAdmitsSlots(t *testing.T) {
	g := &Gate{slots: make(chan struct{}, 2)}
	g.set(true)
	var running, most, ran atomic.Int64
	var tasks sync.WaitGroup
	for range 8 {
		tasks.Go(func() {
			done := g.Enter(context.Background())
			defer done()
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			ran.Add(1)
		})
	}
	tasks.Wait()
	if most.Load() != 2 || ran.Load() != 8 {
		t.Fatalf("%d tasks ran, at most %d at once; want 8, at most 2", ran.Load(), most.Load())
	}
}

// TestGateOpenForAQuietStream: urgent work arriving every millisecond in a
// process that has little else to do never closes the gate, however busy
// the machine's other processes keep its CPUs: a few wakes are no sample.
func TestGateOpenForAQuietStream(t *testing.T) {
	g := New(Options{})
	defer g.Close()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		g.Urgent()
	}
	if g.Closes() != 0 {
		t.Fatalf("the gate closed %d times for a quiet stream", g.Closes())
	}
}

// TestOpeningReleasesWaiters: tasks waiting at a closed gate all go as soon
// as it opens, not one slot at a time.
func TestOpeningReleasesWaiters(t *testing.T) {
	g := &Gate{slots: make(chan struct{}, 1)}
	g.set(true)
	hold := g.Enter(context.Background()) // the only slot, held throughout
	defer hold()
	var entered sync.WaitGroup
	for range 8 {
		entered.Go(func() { g.Enter(context.Background())() })
	}
	time.Sleep(20 * time.Millisecond) // they wait at the closed gate
	g.set(false)
	done := make(chan struct{})
	go func() { entered.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("tasks waiting at the gate still wait after it opened")
	}
	if g.Closes() != 1 {
		t.Fatalf("Closes() = %d, want 1", g.Closes())
	}
}
