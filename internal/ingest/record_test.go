package ingest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/logbuf"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/redis/go-redis/v9"
)

// TestIngestLogsAndMetrics: one log line per accepted webhook (id, key,
// duplicate or not) and per refusal (code, reason, webhook id, source IP),
// never a body or a signature; one EMF line per webhook with bounded
// dimensions.
func TestIngestLogsAndMetrics(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		g := newRig(t, rdb)
		var logs, emf logbuf.Buffer
		g.srv.opt.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		g.srv.opt.Metrics = telemetry.New(&emf, telemetry.Options{Namespace: "hl-test", Dimensions: map[string]string{"Stack": "s1"}})

		g.do(signed(t, "msg_1", goodBody, now))
		g.do(signed(t, "msg_1", goodBody, now.Add(time.Second)))
		bad := signed(t, "msg_2", goodBody, now)
		bad.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		bad.RemoteAddr = "203.0.113.9:4711"
		g.do(bad)
		unknown := signed(t, "msg_3", `{"code":"nope","data":{"customer_id":"c"}}`, now)
		unknown.RemoteAddr = "198.51.100.7" // as the API Gateway adapters set it
		g.do(unknown)
		g.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)) // not a webhook: no line

		type logLine struct {
			Msg, ID, Key, Lane, Code, Reason, SourceIP string
			Duplicate                                  *bool
			Status                                     int
		}
		var got []logLine
		for _, l := range logs.Lines() {
			if strings.Contains(l, "cust_42\",\"title") || strings.Contains(l, "AAAAAAAA") || strings.Contains(l, testSecret) {
				t.Fatalf("a log line holds a body, a signature or the secret: %s", l)
			}
			var ll logLine
			var raw map[string]any
			if err := json.Unmarshal([]byte(l), &raw); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(strings.Replace(l, `"source_ip"`, `"SourceIP"`, 1)), &ll)
			got = append(got, ll)
		}
		tru, fal := true, false
		want := []logLine{
			{Msg: "webhook accepted", ID: "msg_1", Key: "cust_42:post.create", Lane: "quick", Duplicate: &fal},
			{Msg: "webhook accepted", ID: "msg_1", Key: "cust_42:post.create", Lane: "quick", Duplicate: &tru},
			{Msg: "webhook refused", ID: "msg_2", Status: 401, Code: "signature_invalid", SourceIP: "203.0.113.9"},
			{Msg: "webhook refused", ID: "msg_3", Status: 422, Code: "unknown_code", Reason: "no route for this event code", SourceIP: "198.51.100.7"},
		}
		if len(got) != len(want) {
			t.Fatalf("%d log lines, want %d:\n%s", len(got), len(want), strings.Join(logs.Lines(), "\n"))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Msg != w.Msg || g.ID != w.ID || g.Key != w.Key || g.Lane != w.Lane || g.Status != w.Status || g.Code != w.Code ||
				g.SourceIP != w.SourceIP || (w.Reason != "" && g.Reason != w.Reason) || (w.Duplicate != nil) != (g.Duplicate != nil) ||
				(w.Duplicate != nil && *w.Duplicate != *g.Duplicate) || (w.Code != "" && g.Reason == "") {
				t.Errorf("log line %d: %+v, want %+v", i, g, w)
			}
		}

		lines := emf.Lines()
		if len(lines) != 4 {
			t.Fatalf("%d EMF lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		sum := map[string]float64{}
		for _, raw := range lines {
			l, err := telemetry.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			for name := range l.Dims {
				if name != "Stack" && name != "Lane" && name != "Route" && name != "ErrorCode" {
					t.Fatalf("unbounded dimension %s in %s", name, raw)
				}
			}
			for _, m := range l.Metrics {
				if m.Namespace != "hl-test" {
					t.Fatalf("namespace %q", m.Namespace)
				}
				key := m.Name
				if c := l.Dims["ErrorCode"]; c != "" && m.Name == "Refused" {
					key += "/" + c
				}
				sum[key] += m.Values[0]
			}
			if _, ok := l.Metric("Latency"); !ok {
				t.Fatalf("no Latency in %s", raw)
			}
		}
		if sum["Accepted"] != 1 || sum["Duplicate"] != 1 || sum["Refused/signature_invalid"] != 1 || sum["Refused/unknown_code"] != 1 {
			t.Fatalf("sums %v", sum)
		}
	})
}

// TestIngestRecordsUnavailable: a 503, whether Redis failed the write or
// the open breaker answered without calling it, gets its log line and is
// counted as Refused{ErrorCode=unavailable}; the breaker logs its opening.
func TestIngestRecordsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	g := newRig(t, srv.Client(t))
	var logs, emf logbuf.Buffer
	g.srv.opt.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	g.srv.opt.Metrics = telemetry.New(&emf, telemetry.Options{Namespace: "hl-test"})
	srv.Kill(t)
	for i := range 3 {
		if a := g.do(signed(t, "down", goodBody, now)); a.status != http.StatusServiceUnavailable {
			t.Fatalf("webhook %d with Redis down: %d", i, a.status)
		}
	}
	var refusedErr, refusedShed, opened int
	for _, l := range logs.Lines() {
		var ll struct {
			Msg, Level, Code, Err string
			Status                int
		}
		if err := json.Unmarshal([]byte(strings.NewReplacer(`"msg"`, `"Msg"`, `"level"`, `"Level"`, `"err"`, `"Err"`).Replace(l)), &ll); err != nil {
			t.Fatal(err)
		}
		switch {
		case ll.Msg == "webhook refused" && ll.Status == 503 && ll.Code == "unavailable" && ll.Err != "":
			refusedErr++
		case ll.Msg == "webhook refused" && ll.Status == 503 && ll.Code == "unavailable":
			refusedShed++
		case strings.HasPrefix(ll.Msg, "storage unreachable"):
			opened++
		}
	}
	if refusedErr != 2 || refusedShed != 1 || opened != 1 {
		t.Fatalf("failed %d, shed %d, opened %d:\n%s", refusedErr, refusedShed, opened, strings.Join(logs.Lines(), "\n"))
	}
	n := 0.0
	for _, raw := range emf.Lines() {
		l, err := telemetry.Parse([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if m, ok := l.Metric("Refused"); ok && l.Dims["ErrorCode"] == "unavailable" {
			n += m.Values[0]
		}
	}
	if n != 3 {
		t.Fatalf("Refused{unavailable} = %v, want 3:\n%s", n, strings.Join(emf.Lines(), "\n"))
	}
}
