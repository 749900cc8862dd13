package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is N requests per Per, for example Rate{N: 2, Per: time.Second} for
// "2/s". A valid Rate has N >= 1 and Per > 0.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate parses a rate written "N/duration": "2/s", "10/m", "100/h",
// "5/2s", "3/500ms". The duration is anything time.ParseDuration accepts; a
// bare unit ("s", "m", "h", "ms", "us", "ns") means one of that unit. N must
// be a decimal integer >= 1 and the duration must be positive. Errors wrap
// ErrInvalidRate.
func ParseRate(s string) (Rate, error) {
	ns, ds, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("%w %q: want N/duration, like 2/s or 5/2s", ErrInvalidRate, s)
	}
	if ns == "" || strings.TrimLeft(ns, "0123456789") != "" {
		return Rate{}, fmt.Errorf("%w %q: count %q is not a positive integer", ErrInvalidRate, s, ns)
	}
	n, err := strconv.Atoi(ns)
	if err != nil {
		return Rate{}, fmt.Errorf("%w %q: count: %w", ErrInvalidRate, s, err)
	}
	if ds == "" {
		return Rate{}, fmt.Errorf("%w %q: missing duration after '/'", ErrInvalidRate, s)
	}
	if !strings.ContainsAny(ds, "0123456789") {
		ds = "1" + ds // a bare unit: "s" is "1s"
	}
	per, err := time.ParseDuration(ds)
	if err != nil {
		return Rate{}, fmt.Errorf("%w %q: duration: %w", ErrInvalidRate, s, err)
	}
	r := Rate{N: n, Per: per}
	if err := r.validate(); err != nil {
		return Rate{}, fmt.Errorf("%w %q", err, s)
	}
	return r, nil
}

// String formats r the way ParseRate reads it, with a bare unit when Per is
// one hour, minute, second or millisecond ("2/s", "5/2s", "3/500ms").
func (r Rate) String() string {
	return strconv.Itoa(r.N) + "/" + formatPer(r.Per)
}

// Interval is the average spacing the rate allows between two requests,
// Per/N. The limiter spaces slots by at least Interval plus Options.Margin.
func (r Rate) Interval() time.Duration {
	if r.N < 1 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

// validate reports whether r is usable.
func (r Rate) validate() error {
	if r.N < 1 {
		return fmt.Errorf("%w: N is %d, must be at least 1", ErrInvalidRate, r.N)
	}
	if r.Per <= 0 {
		return fmt.Errorf("%w: Per is %s, must be positive", ErrInvalidRate, r.Per)
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
