package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is N requests per Per, for example Rate{N: 2, Per: time.Second} for
// "2/s". A valid Rate has N in 1..MaxRateN and Per in MinRatePer..MaxRatePer.
// The zero Rate stands for no limit where a rate is optional (a route
// without one); the limiter refuses it.
//
// This is hookline's one rate type: the configuration reads routes' rates
// with ParseRate and hands them to the limiter as they are.
type Rate struct {
	N   int
	Per time.Duration
}

// Limits on a Rate, enforced by ParseRate and by the limiter.
const (
	// MaxRateN is the largest N.
	MaxRateN = 1_000_000
	// MinRatePer is the shortest period: slots are kept to the millisecond.
	MinRatePer = time.Millisecond
	// MaxRatePer is the longest period.
	MaxRatePer = 24 * time.Hour
)

// RateError reports a rate that ParseRate cannot read or that is out of
// range. It wraps ErrInvalidRate.
type RateError struct {
	// Rate is the text that was given.
	Rate string
	// Reason says what is wrong with it, without quoting it, such as
	// "N must be 1..1000000".
	Reason string
}

func (e *RateError) Error() string {
	return fmt.Sprintf("%s %q: %s", ErrInvalidRate, e.Rate, e.Reason)
}

// Unwrap returns ErrInvalidRate.
func (e *RateError) Unwrap() error { return ErrInvalidRate }

// Reasons a rate is refused, for RateError and validate.
var (
	rateSyntax = `want N/unit or N/duration such as "2/s", "10/m", "100/h" or "5/2s"`
	rateN      = fmt.Sprintf("N must be 1..%d", MaxRateN)
	ratePer    = fmt.Sprintf("the period must be %s..%s", periodText(MinRatePer), periodText(MaxRatePer))
)

// ParseRate parses a rate written "N/unit" or "N/duration": "2/s", "10/m",
// "100/h", "5/2s", "3/500ms". The duration is anything time.ParseDuration
// accepts; a bare unit ("s", "m", "h", "ms") means one of that unit. N is a
// decimal integer 1..MaxRateN and the period MinRatePer..MaxRatePer. Errors
// are *RateError.
func ParseRate(s string) (Rate, error) {
	refuse := func(reason string) (Rate, error) { return Rate{}, &RateError{Rate: s, Reason: reason} }
	ns, ds, ok := strings.Cut(s, "/")
	if !ok || ns == "" || ds == "" || strings.TrimLeft(ns, "0123456789") != "" {
		return refuse(rateSyntax)
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 || n > MaxRateN {
		return refuse(rateN)
	}
	if !strings.ContainsAny(ds, "0123456789") {
		ds = "1" + ds // a bare unit: "s" is "1s"
	}
	per, err := time.ParseDuration(ds)
	if err != nil {
		return refuse(rateSyntax)
	}
	if per < MinRatePer || per > MaxRatePer {
		return refuse(ratePer)
	}
	return Rate{N: n, Per: per}, nil
}

// String formats r the way ParseRate reads it, with a bare unit when Per is
// one hour, minute, second or millisecond ("2/s", "5/2s", "3/500ms"); the
// zero Rate is "".
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	return strconv.Itoa(r.N) + "/" + formatPer(r.Per)
}

// IsZero reports whether r is the zero Rate: no limit.
func (r Rate) IsZero() bool { return r == Rate{} }

// MarshalText writes r as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a rate as ParseRate does; empty text is the zero Rate.
func (r *Rate) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*r = Rate{}
		return nil
	}
	v, err := ParseRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Interval is the average spacing the rate allows between two requests,
// Per/N, or 0 for the zero Rate. The limiter spaces slots by at least
// Interval plus Options.Margin.
func (r Rate) Interval() time.Duration {
	if r.N < 1 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// validate reports whether the limiter can use r: the limits ParseRate
// enforces.
func (r Rate) validate() error {
	if r.N < 1 || r.N > MaxRateN {
		return fmt.Errorf("%w: N is %d: %s", ErrInvalidRate, r.N, rateN)
	}
	if r.Per < MinRatePer || r.Per > MaxRatePer {
		return fmt.Errorf("%w: Per is %s: %s", ErrInvalidRate, r.Per, ratePer)
	}
	return nil
}

// spacingMs is the minimum distance, in whole milliseconds, between two slot
// starts of a bucket at rate r with the given margin: Interval and margin
// each rounded up to the millisecond. Rounding up keeps N*spacing >= Per, so
// no window of length Per ever holds more than N slot starts; it also means
// a rate faster than one request per millisecond runs at one per millisecond.
func (r Rate) spacingMs(margin time.Duration) int64 {
	per, n := int64(r.Per), int64(r.N)
	interval := per / n
	if per%n != 0 {
		interval++
	}
	return ceilMs(time.Duration(interval)) + ceilMs(margin)
}

// ceilMs rounds a non-negative duration up to whole milliseconds.
func ceilMs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// periodText writes a period as a duration ParseRate reads: "1ms", "24h".
func periodText(d time.Duration) string {
	p := formatPer(d)
	if p[0] < '0' || p[0] > '9' {
		p = "1" + p // a bare unit
	}
	return p
}

// formatPer writes a duration for Rate.String.
func formatPer(d time.Duration) string {
	units := []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}}
	for _, u := range units {
		if d > 0 && d%u.d == 0 {
			if d == u.d {
				return u.name
			}
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}
