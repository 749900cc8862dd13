package ingest

import (
	"sync"
	"time"
)

// Breaker settings. Two failures in a row, not one, open the breaker, so a
// single slow call does not turn webhooks away; a probe every 200 ms finds
// Redis back well within a second, and costs Redis (or the network) at most
// five connection attempts a second per ingest process, whatever the rate
// of webhooks.
const (
	breakerThreshold = 2
	breakerProbe     = 200 * time.Millisecond
)

// verdict is what came of a Redis call the breaker admitted.
type verdict int

const (
	// succeeded: Redis took the call.
	succeeded verdict = iota
	// failed: Redis did not answer in time or could not take the write.
	failed
	// neutral: the call tells nothing about Redis (the request was refused
	// before reaching it, or its caller went away).
	neutral
)

// breaker keeps ingest from calling Redis while Redis is unreachable, so
// every webhook is answered 503 at once instead of after the storage
// timeout, and Redis is not met by one connection attempt per webhook when
// it comes back. Closed, it admits every call. After breakerThreshold
// failures in a row it opens: calls are refused without touching Redis,
// except one probe at a time, at most every breakerProbe; the probe's
// success closes it. It measures time with the monotonic wall clock, never
// the injected clock, which tests hold still. It is safe for concurrent use.
type breaker struct {
	now func() time.Time

	mu      sync.Mutex
	fails   int       // failures in a row
	open    bool      // refusing calls
	since   time.Time // when it opened
	next    time.Time // no probe before
	probing bool      // a probe is in flight
	shed    int       // calls refused since it opened
}

func newBreaker() *breaker { return &breaker{now: time.Now} }

// admit reports whether a request may call Redis, and whether that call is
// the probe of an open breaker. A request that may not call is counted as
// shed.
func (b *breaker) admit() (call, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true, false
	}
	if b.probing || b.now().Before(b.next) {
		b.shed++
		return false, false
	}
	b.probing = true
	return true, true
}

// transition is a change of the breaker's state, for the log.
type transition struct {
	opened, closed bool
	down           time.Duration // how long it was open (closed only)
	shed           int           // calls refused meanwhile (closed only)
}

// record takes the outcome of a call admitted by admit.
func (b *breaker) record(probe bool, v verdict) transition {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if probe {
		b.probing = false
	}
	var t transition
	switch v {
	case succeeded:
		b.fails = 0
		if b.open {
			t = transition{closed: true, down: now.Sub(b.since), shed: b.shed}
			b.open, b.shed = false, 0
		}
	case failed:
		b.fails++
		if b.open {
			if probe {
				b.next = now.Add(breakerProbe)
			}
		} else if b.fails >= breakerThreshold {
			b.open, b.since, b.next, b.shed = true, now, now.Add(breakerProbe), 0
			t.opened = true
		}
	}
	return t
}
