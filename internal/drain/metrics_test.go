package drain

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/logbuf"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

// TestDrainMetricsAndItemLog: one EMF line per key worked, with the
// outcome counts, the handler's time without its rate-limit wait, the wait
// and the lag, under Lane and Route; the item log line separates handler
// time from rate wait.
func TestDrainMetricsAndItemLog(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		var emf, logs logbuf.Buffer
		var f *fixture
		f = setup(t, rdb, Route{MaxAttempts: 3, Policy: queue.Park, Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
			switch ev.ID {
			case "slow":
				// Waits 30ms for its rate-limit slot, then works 5ms.
				ev.RateWait = 30 * time.Millisecond
				f.clk.Advance(35 * time.Millisecond)
			case "later":
				return handler.Throttled(f.clk.Now().Add(time.Second))
			case "bad":
				f.clk.Advance(2 * time.Millisecond)
				return errors.New("HTTP 500")
			case "poison":
				return handler.Permanent(errors.New("HTTP 400"))
			}
			return nil
		})}, func(o *Options) {
			o.Metrics = telemetry.New(&emf, telemetry.Options{Dimensions: map[string]string{"Stack": "test"}})
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		f.enqueue("acme:c", "fast", "slow", "later")
		f.clk.Advance(4 * time.Second) // the items wait 4s before a drain takes them
		if res := f.run(f.claim(), "a"); res.Outcome != Throttled || res.Handled != 2 {
			t.Fatalf("run %+v", res)
		}
		lines := strings.Split(strings.TrimSpace(emf.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("%d EMF lines, want 1 for the key:\n%s", len(lines), emf.String())
		}
		l, err := telemetry.Parse([]byte(lines[0]))
		if err != nil {
			t.Fatal(err)
		}
		if l.Dims["Lane"] != "quick" || l.Dims["Route"] != "c" || l.Dims["Stack"] != "test" || len(l.Dims) != 3 {
			t.Fatalf("dimensions %v, want Stack, Lane and Route only", l.Dims)
		}
		want := map[string][]float64{
			"Handled": {2}, "Retried": {0}, "DeadLettered": {0}, "Parked": {0}, "Throttled": {1},
			"HandlerDuration": {0, 5}, "RateWait": {30}, "Lag": {4000, 4000},
		}
		for name, values := range want {
			m, ok := l.Metric(name)
			if !ok || !slices.Equal(m.Values, values) {
				t.Errorf("%s = %v, want %v", name, m.Values, values)
			}
			if !slices.EqualFunc(m.Sets, [][]string{{"Stack", "Lane", "Route"}, {"Stack", "Lane"}}, slices.Equal) {
				t.Errorf("%s sets %v", name, m.Sets)
			}
		}
		if m, _ := l.Metric("Lag"); m.Unit != "Milliseconds" {
			t.Errorf("Lag unit %q", m.Unit)
		}
		if !regexp.MustCompile(`msg=item key=acme:c id=slow attempt=1 result=ok ms=5 rate_wait_ms=30`).MatchString(logs.String()) {
			t.Fatalf("item line does not separate handler time from rate wait:\n%s", logs.String())
		}

		// Failures: retried, then parked.
		emf.Reset()
		f.enqueue("acme:c", "x")
		f.clk.Advance(2 * time.Second)
		f.route.Handler = handler.HandlerFunc(func(context.Context, *handler.Event) error { return errors.New("HTTP 500") })
		for range 3 {
			f.clk.Advance(time.Hour)
			f.run(f.claim(), "b")
		}
		var retried, parked float64
		for _, line := range emf.Lines() {
			l, err := telemetry.Parse([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			r, _ := l.Metric("Retried")
			p, _ := l.Metric("Parked")
			retried += r.Values[0]
			parked += p.Values[0]
			if _, ok := l.Metric("Lag"); ok {
				t.Errorf("a line without a handled item has Lag: %s", line)
			}
		}
		if retried != 2 || parked != 1 {
			t.Fatalf("retried %v parked %v, want 2 and 1:\n%s", retried, parked, emf.String())
		}
	})
}
