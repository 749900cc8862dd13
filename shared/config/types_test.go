package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		str  string
	}{
		{"2/s", Rate{2, time.Second}, "2/s"},
		{"10/m", Rate{10, time.Minute}, "10/m"},
		{"100/h", Rate{100, time.Hour}, "100/h"},
		{"5/2s", Rate{5, 2 * time.Second}, "5/2s"},
		{"3/500ms", Rate{3, 500 * time.Millisecond}, "3/500ms"},
		{"1/1m30s", Rate{1, 90 * time.Second}, "1/1m30s"},
		{"7/ms", Rate{7, time.Millisecond}, "7/1ms"},
		{"4/1s", Rate{4, time.Second}, "4/s"},
		{"", Rate{}, ""},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Fatalf("ParseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.str {
			t.Fatalf("%+v.String() = %q, want %q", got, got.String(), tt.str)
		}
		if back, err := ParseRate(got.String()); err != nil || back != got {
			t.Fatalf("round trip of %q: %+v, %v", tt.in, back, err)
		}
	}
	for _, in := range []string{"2", "/s", "2/", "-2/s", "+2/s", "0/s", "2/d", "2/0s", "2/100us", "2/25h", "1000001/s", "2 /s", "x/s", "99999999999999999999/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Fatalf("ParseRate(%q) = %+v, want an error", in, r)
		} else if !strings.HasPrefix(err.Error(), "config: rate ") {
			t.Fatalf("ParseRate(%q): error %q lacks prefix", in, err)
		}
	}
	if d := (Rate{N: 4, Per: time.Second}).Interval(); d != 250*time.Millisecond {
		t.Fatalf("Interval %v", d)
	}
	if d := (Rate{}).Interval(); d != 0 || !(Rate{}).IsZero() {
		t.Fatalf("zero Rate: Interval %v", d)
	}
}

func TestParseSize(t *testing.T) {
	tests := map[string]int64{
		"0": 0, "262144": 262144, "256KiB": 256 << 10, "1MiB": 1 << 20, "1 MiB": 1 << 20,
		"2kib": 2048, "500KB": 500_000, "6MB": 6_000_000, "1GiB": 1 << 30, "10B": 10,
	}
	for in, want := range tests {
		if got, err := parseSize(in); err != nil || got != want {
			t.Fatalf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "-1", "1.5MiB", "1TiB", "1 Mi", "99999999999999999999", "9999999999999GiB"} {
		if got, err := parseSize(in); err == nil {
			t.Fatalf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	for in, want := range map[string]time.Duration{"20s": 20 * time.Second, "1m30s": 90 * time.Second, `"500ms"`: 500 * time.Millisecond, "-1s": -time.Second} {
		if err := yaml.Unmarshal([]byte("d: "+in), &v); err != nil || time.Duration(v.D) != want {
			t.Fatalf("%s: %v, %v", in, time.Duration(v.D), err)
		}
	}
	for _, in := range []string{"20", "1.5", "20 s", "true", "[1s]", "{a: 1}", "1d"} {
		if err := yaml.Unmarshal([]byte("d: "+in), &v); err == nil {
			t.Fatalf("%s: no error", in)
		}
	}
	out, err := yaml.Marshal(struct {
		D Duration `yaml:"d"`
		R Rate     `yaml:"r"`
	}{Duration(14 * time.Minute), Rate{3, 500 * time.Millisecond}})
	if err != nil || string(out) != "d: 14m\nr: 3/500ms\n" {
		t.Fatalf("Marshal: %q, %v", out, err)
	}
	for d, want := range map[time.Duration]string{14 * time.Minute: "14m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 0: "0s", 200 * time.Millisecond: "200ms"} {
		if got := Duration(d).String(); got != want {
			t.Fatalf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}
