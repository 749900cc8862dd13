package config

import (
	"testing"
	"time"

	"github.com/hookline/hookline/internal/ratelimit"
	"gopkg.in/yaml.v3"
)

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
		D Duration       `yaml:"d"`
		R ratelimit.Rate `yaml:"r"`
	}{Duration(14 * time.Minute), ratelimit.Rate{N: 3, Per: 500 * time.Millisecond}})
	if err != nil || string(out) != "d: 14m\nr: 3/500ms\n" {
		t.Fatalf("Marshal: %q, %v", out, err)
	}
	for d, want := range map[time.Duration]string{14 * time.Minute: "14m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 0: "0s", 200 * time.Millisecond: "200ms"} {
		if got := Duration(d).String(); got != want {
			t.Fatalf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
}
