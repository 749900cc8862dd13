package ratelimit

import (
	"errors"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Rate
		wantErr bool
	}{
		{in: "2/s", want: Rate{2, time.Second}},
		{in: "10/m", want: Rate{10, time.Minute}},
		{in: "100/h", want: Rate{100, time.Hour}},
		{in: "5/2s", want: Rate{5, 2 * time.Second}},
		{in: "3/500ms", want: Rate{3, 500 * time.Millisecond}},
		{in: "1/ms", want: Rate{1, time.Millisecond}},
		{in: "7/1.5s", want: Rate{7, 1500 * time.Millisecond}},
		{in: "1/1h30m", want: Rate{1, 90 * time.Minute}},
		{in: "007/s", want: Rate{7, time.Second}},
		{in: "0/s", wantErr: true},
		{in: "x", wantErr: true},
		{in: "2/0s", wantErr: true},
		{in: "-1/s", wantErr: true},
		{in: "2/", wantErr: true},
		{in: "", wantErr: true},
		{in: "/s", wantErr: true},
		{in: "2", wantErr: true},
		{in: "2/x", wantErr: true},
		{in: "2/-1s", wantErr: true},
		{in: "+2/s", wantErr: true},
		{in: " 2/s", wantErr: true},
		{in: "2/s/3", wantErr: true},
		{in: "1.5/s", wantErr: true},
		{in: "99999999999999999999/s", wantErr: true},
		// The limits, and what the configuration's parser refused before
		// it became this one.
		{in: "1000000/s", want: Rate{MaxRateN, time.Second}},
		{in: "1000001/s", wantErr: true},
		{in: "1/24h", want: Rate{1, MaxRatePer}},
		{in: "1/25h", wantErr: true},
		{in: "2/100us", wantErr: true},
		{in: "1/us", wantErr: true},
		{in: "2/d", wantErr: true},
		{in: "2 /s", wantErr: true},
		{in: "x/s", wantErr: true},
		{in: "7/ms", want: Rate{7, time.Millisecond}},
		{in: "1/1m30s", want: Rate{1, 90 * time.Second}},
		{in: "4/1s", want: Rate{4, time.Second}},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Fatalf("ParseRate(%q) = %+v, want an error", tc.in, got)
			}
			var re *RateError
			if !errors.Is(err, ErrInvalidRate) || !errors.As(err, &re) || re.Rate != tc.in {
				t.Fatalf("ParseRate(%q) error %v is not a RateError wrapping ErrInvalidRate", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseRate(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Fatalf("ParseRate(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestRateString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    Rate
		want string
	}{
		{Rate{2, time.Second}, "2/s"},
		{Rate{10, time.Minute}, "10/m"},
		{Rate{100, time.Hour}, "100/h"},
		{Rate{5, 2 * time.Second}, "5/2s"},
		{Rate{3, 500 * time.Millisecond}, "3/500ms"},
		{Rate{1, 90 * time.Minute}, "1/90m"},
		{Rate{1, 1500 * time.Millisecond}, "1/1500ms"},
		{Rate{1, 1500 * time.Microsecond}, "1/1.5ms"},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Fatalf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
		back, err := ParseRate(tc.want)
		if err != nil || back != tc.r {
			t.Fatalf("ParseRate(%q) = %+v, %v; want %+v", tc.want, back, err, tc.r)
		}
	}
	// The zero Rate, no limit, is written as nothing, and read back from it.
	var zero Rate
	if !zero.IsZero() || zero.String() != "" || zero.Interval() != 0 {
		t.Fatalf("zero Rate: %q, interval %v", zero.String(), zero.Interval())
	}
	if err := zero.UnmarshalText(nil); err != nil || !zero.IsZero() {
		t.Fatalf("UnmarshalText(empty) = %+v, %v", zero, err)
	}
	var r Rate
	if err := r.UnmarshalText([]byte("5/2s")); err != nil || r != (Rate{5, 2 * time.Second}) {
		t.Fatalf("UnmarshalText(5/2s) = %+v, %v", r, err)
	}
	if err := r.UnmarshalText([]byte("0/s")); !errors.Is(err, ErrInvalidRate) {
		t.Fatalf("UnmarshalText(0/s): %v", err)
	}
}

func TestRateIntervalAndSpacing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r        Rate
		margin   time.Duration
		interval time.Duration
		spacing  int64 // ms
	}{
		{Rate{2, time.Second}, 20 * time.Millisecond, 500 * time.Millisecond, 520},
		{Rate{2, time.Second}, 0, 500 * time.Millisecond, 500},
		{Rate{3, time.Second}, 0, 333333333 * time.Nanosecond, 334},
		{Rate{3, time.Second}, 20 * time.Millisecond, 333333333 * time.Nanosecond, 354},
		{Rate{2, time.Second}, 500 * time.Microsecond, 500 * time.Millisecond, 501},
		{Rate{1_000_000, time.Second}, 0, time.Microsecond, 1},
		{Rate{1, time.Hour}, 20 * time.Millisecond, time.Hour, 3_600_020},
	}
	for _, tc := range tests {
		if got := tc.r.Interval(); got != tc.interval {
			t.Fatalf("%v.Interval() = %v, want %v", tc.r, got, tc.interval)
		}
		got := tc.r.spacingMs(tc.margin)
		if got != tc.spacing {
			t.Fatalf("%v spacing with margin %v = %dms, want %dms", tc.r, tc.margin, got, tc.spacing)
		}
		if time.Duration(got)*time.Millisecond*time.Duration(tc.r.N) < tc.r.Per {
			t.Fatalf("%v: N*spacing = %v < Per", tc.r, time.Duration(got)*time.Millisecond*time.Duration(tc.r.N))
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"2/s", "10/m", "100/h", "5/2s", "3/500ms", "1/1h30m", "7/1.5s", "0/s", "x", "2/0s", "-1/s", "2/", "1/us", "4/µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidRate) {
				t.Fatalf("ParseRate(%q) error %v does not wrap ErrInvalidRate", s, err)
			}
			return
		}
		if r.N < 1 || r.N > MaxRateN || r.Per < MinRatePer || r.Per > MaxRatePer || r.validate() != nil {
			t.Fatalf("ParseRate(%q) = %+v: accepted a rate out of range", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v; ParseRate(String() = %q) = %+v, %v", s, r, r.String(), back, err)
		}
	})
}
