package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
)

// upstream is what the forward routes of the metrics test call: /500 and
// /400 fail, /503 asks for a retry in 30s, /ok succeeds, /sleep succeeds
// after 2s (its key stays leased meanwhile).
func upstream(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
		case "/400":
			w.WriteHeader(http.StatusBadRequest)
		case "/503":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/sleep":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// metricsRoutes are the event codes of the metrics test's configuration.
var metricsRoutes = []string{"ok.event", "slow.event", "park.event", "retry.event", "rate.event", "dead.event", "busy.event"}

// metricsConfig writes the metrics test's configuration: a route per kind
// of outcome, scheduler metrics every second, its own namespace.
func metricsConfig(t *testing.T, up string) string {
	yml := fmt.Sprintf(`tenant: /data/customer_id
lanes:
  quick: {concurrency: 8, quantum: 5s}
  slow: {concurrency: 1, quantum: 5s}
routes:
  ok.event: {lane: quick, handler: log}
  slow.event: {lane: slow, handler: log}
  park.event: {lane: quick, handler: forward, url: "%[1]s/500", max_attempts: 1, on_exhausted: park}
  retry.event: {lane: quick, handler: forward, url: "%[1]s/503", max_attempts: 8}
  rate.event: {lane: quick, handler: forward, url: "%[1]s/ok", rate: 1/m}
  dead.event: {lane: quick, handler: forward, url: "%[1]s/400"}
  busy.event: {lane: quick, handler: forward, url: "%[1]s/sleep"}
scheduler: {poll: 50ms, metrics_every: 1s}
metrics: {namespace: hookline-test}
`, up)
	path := filepath.Join(t.TempDir(), "metrics.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// send runs `hookline send args...` and returns its output; failures are
// part of some tests, so its error is not checked.
func send(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(hooklineBinary(t), append([]string{"send", "--quiet"}, args...)...)
	cmd.Env = append(os.Environ(), "HOOKLINE_SIGNING_SECRETS=")
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// readEMF parses every line of an --emf file; a line that is not EMF fails
// the test.
func readEMF(t *testing.T, path string) []*telemetry.Line {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []*telemetry.Line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		l, err := telemetry.Parse(raw)
		if err != nil {
			// The last line may be cut while dev writes it.
			if !sc.Scan() {
				break
			}
			t.Fatalf("%v: %s", err, raw)
		}
		lines = append(lines, l)
	}
	return lines
}

func value(l *telemetry.Line, name string) (float64, bool) {
	m, ok := l.Metric(name)
	if !ok {
		return 0, false
	}
	return m.Values[0], true
}

// TestDevEMFMetrics runs the whole pipeline in `hookline dev --emf` with a
// route for each outcome, and checks the EMF lines of ingest, scheduler and
// drains: each parses as EMF, every metric is there, dimensions are
// bounded (Stack, Lane, Route, ErrorCode; never a tenant or a key), and the
// oldest item age is above 0 while a parked, a leased, a throttled and a
// retrying key hold the work and no key is ready.
func TestDevEMFMetrics(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { devEMFRun(t) })
	t.Run("redis-server", func(t *testing.T) {
		devEMFRun(t, "HOOKLINE_REDIS_URL=redis://"+redistest.Start(t).Addr())
	})
}

func devEMFRun(t *testing.T, env ...string) {
	emf := filepath.Join(t.TempDir(), "metrics.emf")
	cfg := metricsConfig(t, upstream(t))
	d := startDevIn(t, "", []string{"--config", cfg, "--emf", emf, "--quiet"}, append(env, "HOOKLINE_STACK=emf-test")...)
	codes := strings.Join(metricsRoutes, ",")
	send(t, "--url", d.url, "--count", "3", "--tenants", "1", "--codes", codes, "--run", "emf")
	send(t, "--url", d.url, "--count", "1", "--tenants", "1", "--codes", "ok.event", "--run", "emf") // a duplicate
	send(t, "--url", d.url, "--codes", "nope.event")                                                 // 422 unknown_code
	send(t, "--url", d.url, "--secret", "whsec_d3Jvbmctc2VjcmV0LWZvci1kZXYtdGVzdA==")                // 401

	// Wait for a scheduler line of the quick lane in which the work is held
	// by a parked, a leased, a throttled and a retrying key.
	var held *telemetry.Line
	deadline := time.Now().Add(30 * time.Second)
	for held == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduler line with parked, leased, throttled and retrying keys in 30s; dev printed:\n%s", strings.Join(d.snapshot(), "\n"))
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
		for _, l := range readEMF(t, emf) {
			parked, _ := value(l, "ParkedKeys")
			leased, _ := value(l, "LeasedKeys")
			delayed, _ := value(l, "DelayedKeys")
			retrying, _ := value(l, "RetryingKeys")
			ready, _ := value(l, "ReadyKeys")
			if l.Dims["Lane"] == "quick" && parked >= 1 && leased >= 1 && retrying >= 1 && delayed >= 2 && ready == 0 {
				held = l
				break
			}
		}
	}
	age, _ := value(held, "OldestItemAge")
	readyAge, _ := value(held, "OldestReadyAge")
	if age <= 0 || readyAge != 0 {
		t.Fatalf("with no key ready: OldestItemAge %v (want > 0), OldestReadyAge %v (want 0)", age, readyAge)
	}
	if !d.stop() {
		t.Fatal("dev did not stop on SIGINT")
	}

	lines := readEMF(t, emf)
	seen := map[string]bool{}
	codeRe := regexp.MustCompile(`^[a-z_]{1,64}$`)
	for _, l := range lines {
		for name, v := range l.Dims {
			switch name {
			case "Stack":
				if v != "emf-test" {
					t.Errorf("Stack %q, want emf-test (HOOKLINE_STACK)", v)
				}
			case "Lane":
				if v != "quick" && v != "slow" && v != "unrouted" {
					t.Errorf("Lane %q", v)
				}
			case "Route":
				if !slices.Contains(metricsRoutes, v) {
					t.Errorf("Route %q is not a configured route", v)
				}
			case "ErrorCode":
				if !codeRe.MatchString(v) {
					t.Errorf("ErrorCode %q", v)
				}
			default:
				t.Errorf("unbounded dimension %s=%q", name, v)
			}
			if strings.Contains(v, "tenant-") {
				t.Errorf("a dimension holds a tenant or key: %s=%q", name, v)
			}
		}
		if l.Dims["Stack"] == "" {
			t.Errorf("a line without the Stack dimension: %+v", l)
		}
		for _, m := range l.Metrics {
			if m.Namespace != "hookline-test" {
				t.Errorf("namespace %q, want hookline-test", m.Namespace)
			}
			for _, set := range m.Sets {
				if len(set) == 0 || set[0] != "Stack" {
					t.Errorf("%s: dimension set %v without Stack", m.Name, set)
				}
			}
			key := m.Name
			if code := l.Dims["ErrorCode"]; code != "" {
				key += "/" + code
			}
			seen[key] = true
		}
	}
	want := []string{
		// ingest
		"Accepted", "Duplicate", "Refused/unknown_code", "Refused/signature_invalid", "Latency",
		// drains
		"Handled", "Retried", "DeadLettered", "Parked", "Throttled", "HandlerDuration", "Lag",
		// scheduler
		"ReadyKeys", "LeasedKeys", "DelayedKeys", "RetryingKeys", "PausedKeys", "ParkedKeys", "QueuedItems",
		"LiveSlots", "Concurrency", "OldestItemAge", "OldestReadyAge", "DeadLetters",
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("metric %s missing from the EMF lines", name)
		}
	}
	// The drains' counts add up: 3 handled ok.event, 3 slow.event, 3
	// busy.event, 1 rate.event; 3 dead letters; 1 parked.
	sum := map[string]float64{}
	for _, l := range lines {
		if l.Dims["Route"] == "" {
			continue
		}
		for _, name := range []string{"Handled", "DeadLettered", "Parked"} {
			if v, ok := value(l, name); ok {
				sum[name] += v
			}
		}
	}
	if sum["Handled"] < 7 || sum["DeadLettered"] != 3 || sum["Parked"] != 1 {
		t.Errorf("drain counts %v, want at least 7 handled, 3 dead-lettered, 1 parked", sum)
	}
	t.Logf("%d EMF lines; with the work held: OldestItemAge %sms, OldestReadyAge %vms", len(lines), strconv.FormatFloat(age, 'f', 0, 64), readyAge)
}
