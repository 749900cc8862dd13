package ingest

import (
	"testing"
	"time"
)

// TestBreakerStates walks the breaker through an outage: it opens after two
// failures in a row, refuses calls but one probe per interval, and closes on
// the first success.
func TestBreakerStates(t *testing.T) {
	at := time.Unix(0, 0)
	b := &breaker{now: func() time.Time { return at }}
	admit := func(wantCall, wantProbe bool) {
		t.Helper()
		if call, probe := b.admit(); call != wantCall || probe != wantProbe {
			t.Fatalf("at %v: admit = %v, %v; want %v, %v", at.Sub(time.Unix(0, 0)), call, probe, wantCall, wantProbe)
		}
	}

	admit(true, false)
	if tr := b.record(false, failed); tr.opened {
		t.Fatal("one failure opened the breaker")
	}
	admit(true, false)
	b.record(false, succeeded) // a success in between resets the count
	admit(true, false)
	b.record(false, failed)
	admit(true, false)
	b.record(false, neutral) // says nothing either way
	admit(true, false)
	if tr := b.record(false, failed); !tr.opened {
		t.Fatal("two failures in a row did not open the breaker")
	}

	admit(false, false) // open: refused at once
	at = at.Add(breakerProbe - time.Millisecond)
	admit(false, false)
	at = at.Add(time.Millisecond)
	admit(true, true)   // the probe
	admit(false, false) // one probe at a time
	at = at.Add(time.Second)
	admit(false, false)
	b.record(true, failed) // the probe failed: next one an interval later
	admit(false, false)
	at = at.Add(breakerProbe)
	admit(true, true)
	b.record(true, neutral) // the probe's caller went away: the next request probes
	admit(true, true)
	tr := b.record(true, succeeded)
	if !tr.closed || tr.shed != 5 || tr.down != 1400*time.Millisecond {
		t.Fatalf("closing: %+v, want closed after 1.4s with 5 shed", tr)
	}
	admit(true, false)
	b.record(false, failed)
	admit(true, false) // closed again: one failure does not reopen
}
