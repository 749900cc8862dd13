package priority

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spin keeps 4x GOMAXPROCS goroutines runnable until stop is closed: the
// scheduler is contended.
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
			}
		})
	}
	return &wg
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
	g.closed.Store(true)
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
	g.closed.Store(true)
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
