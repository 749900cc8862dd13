package drain

import (
	"strings"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/telemetry"
)

// The drain's metrics, with dimensions Lane and Route (the event code of
// the key) and, rolled up, Lane alone:
const (
	// Counts of items: handled (the handler succeeded and the item was
	// acked), retried (failed, retried later), dead-lettered, parked, and
	// throttled (the rate limit allows the call only later: the key
	// yielded until then, no attempt used).
	mHandled      = "Handled"
	mRetried      = "Retried"
	mDeadLettered = "DeadLettered"
	mParked       = "Parked"
	mThrottled    = "Throttled"
	// Milliseconds per handler call (succeeded or failed, not throttled):
	// the handler's time without its rate-limit wait, and the wait.
	mHandlerDuration = "HandlerDuration"
	mRateWait        = "RateWait"
	// Milliseconds from the webhook's receipt to the start of the handler
	// call that succeeded.
	mLag = "Lag"
)

var itemCounts = []string{mHandled, mRetried, mDeadLettered, mParked, mThrottled}

// keyMetrics collects the metrics of the items of one key worked by one
// drain; nil records nothing.
type keyMetrics struct {
	a       *telemetry.Aggregate
	started bool
}

func (d *Drainer) keyMetrics(l queue.Lease) *keyMetrics {
	if d.opt.Metrics == nil {
		return nil
	}
	_, code, _ := strings.Cut(l.Key, ":")
	a := d.opt.Metrics.Aggregate(map[string]string{"Lane": l.Lane, "Route": code}, []string{"Lane", "Route"}, []string{"Lane"})
	return &keyMetrics{a: a}
}

// item records a handler call: called tells whether the handler made its
// call (false for a throttled call or an item without a route).
func (m *keyMetrics) item(called bool, took, wait time.Duration) {
	if m == nil {
		return
	}
	if !m.started {
		// Every count appears in the key's line, zero or not, so alarms
		// see 0 rather than missing data.
		for _, name := range itemCounts {
			m.a.Add(name, 0)
		}
		m.started = true
	}
	if called {
		m.a.Observe(mHandlerDuration, telemetry.Milliseconds, ms(took))
	}
	if wait > 0 {
		m.a.Observe(mRateWait, telemetry.Milliseconds, ms(wait))
	}
}

func (m *keyMetrics) count(name string) {
	if m != nil {
		m.a.Add(name, 1)
	}
}

func (m *keyMetrics) observe(name string, d time.Duration) {
	if m != nil {
		m.a.Observe(name, telemetry.Milliseconds, ms(max(d, 0)))
	}
}

func (m *keyMetrics) flush(now time.Time) error {
	if m == nil || !m.started {
		return nil
	}
	return m.a.Flush(now)
}

// ms returns d in milliseconds, with a microsecond's precision.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
