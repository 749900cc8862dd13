package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
)

// emfLines returns the EMF lines among a function's log lines (the others
// are its JSON logs), failing the test on a line that claims to be EMF but
// is not.
func emfLines(t *testing.T, logs string) []*telemetry.Line {
	t.Helper()
	var out []*telemetry.Line
	for _, raw := range strings.Split(logs, "\n") {
		if !strings.Contains(raw, `"_aws"`) {
			continue
		}
		l, err := telemetry.Parse([]byte(raw))
		if err != nil {
			t.Fatalf("%v: %s", err, raw)
		}
		out = append(out, l)
	}
	return out
}

// metricSum adds up a metric over lines.
func metricSum(lines []*telemetry.Line, name string) (sum float64, found bool) {
	for _, l := range lines {
		if m, ok := l.Metric(name); ok {
			found = true
			for _, v := range m.Values {
				sum += v
			}
		}
	}
	return sum, found
}

// TestFunctionsEmitMetrics: the real bootstrap binaries write EMF lines on
// stdout in the configured namespace, with the Stack dimension: ingest per
// webhook, the drain per key worked, the scheduler per lane; and ingest
// logs each accepted and refused webhook.
func TestFunctionsEmitMetrics(t *testing.T) {
	rdb := redistest.Standalone(t)
	cfg := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
lanes:
  quick: {concurrency: 2, quantum: 5s}
routes:
  post.create: {lane: quick, handler: log}
scheduler: {poll: 50ms, margin: 1s, metrics_every: 1s}
drain: {margin: 1s}
metrics: {namespace: hookline-fn, stack: fn-test}
`, redistest.Prefix(t))
	st := startStack(t, rdb, cfg, secret, 1)
	ctx := context.Background()
	post := func(id, body string) int {
		res, err := st.ingest.Invoke(ctx, "", apiEvent(t, "ingest-http-v2.json", id, body), 10*time.Second)
		if err != nil || res.Err != nil {
			t.Fatalf("ingest %s: %v %v", id, err, res.Err)
		}
		var resp struct{ StatusCode int }
		_ = json.Unmarshal(res.Payload, &resp)
		return resp.StatusCode
	}
	body := `{"code":"post.create","data":{"customer_id":"c1"}}`
	if post("m1", body) != 202 || post("m1", body) != 200 || post("m2", `{"code":"nope","data":{"customer_id":"c1"}}`) != 422 {
		t.Fatal("unexpected ingest answers")
	}
	schedEvent, _ := os.ReadFile(filepath.Join("..", "testdata", "events", "scheduler-schedule.json"))
	if res, err := st.scheduler.Invoke(ctx, "", schedEvent, 4*time.Second); err != nil || res.Err != nil {
		t.Fatalf("scheduler: %v %v", err, res.Err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := st.ep.Wait(wctx); err != nil {
		t.Fatal(err)
	}

	for fn, logs := range map[string]string{"ingest": st.ingest.Logs(), "drain": st.drains.Logs(), "scheduler": st.scheduler.Logs()} {
		lines := emfLines(t, logs)
		if len(lines) == 0 {
			t.Fatalf("%s wrote no EMF line:\n%s", fn, logs)
		}
		for _, l := range lines {
			if l.Dims["Stack"] != "fn-test" || l.Metrics[0].Namespace != "hookline-fn" {
				t.Fatalf("%s: line without the stack or namespace: %+v", fn, l)
			}
		}
	}
	in := emfLines(t, st.ingest.Logs())
	for name, want := range map[string]float64{"Accepted": 1, "Duplicate": 1, "Refused": 1} {
		if got, _ := metricSum(in, name); got != want {
			t.Errorf("ingest %s = %v, want %v", name, got, want)
		}
	}
	if got, _ := metricSum(emfLines(t, st.drains.Logs()), "Handled"); got != 1 {
		t.Errorf("drain Handled = %v, want 1", got)
	}
	if _, ok := metricSum(emfLines(t, st.scheduler.Logs()), "OldestItemAge"); !ok {
		t.Error("the scheduler wrote no OldestItemAge")
	}
	logs := st.ingest.Logs()
	for _, want := range []string{`"message":"webhook accepted"`, `"id":"m1"`, `"duplicate":true`, `"message":"webhook refused"`,
		`"code":"unknown_code","reason":"no route for this event code","id":"m2","source_ip":"1.2.3.4"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("ingest logs lack %s:\n%s", want, logs)
		}
	}
}
