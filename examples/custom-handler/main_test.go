package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/lambdatest"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestReadmeQuotesTheExample: the README's "Extend with your own handler"
// section shows this program exactly, so what users copy is what the test
// below builds and runs.
func TestReadmeQuotesTheExample(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := bytes.Cut(readme, []byte("\n## Extend with your own handler\n"))
	if !ok {
		t.Fatal(`README.md has no "## Extend with your own handler" section`)
	}
	_, block, ok := bytes.Cut(section, []byte("\n```go\n"))
	if !ok {
		t.Fatal("the README's handler section has no go code block")
	}
	block, _, ok = bytes.Cut(block, []byte("\n```\n"))
	if !ok {
		t.Fatal("the README's go code block is not closed")
	}
	if got := string(block) + "\n"; got != string(src) {
		t.Fatalf("the README's code block differs from examples/custom-handler/main.go:\n--- README\n%s--- main.go\n%s", got, src)
	}
}

// TestExampleHandlesAQueuedItem builds this program as a real bootstrap
// binary, runs it under the fake Lambda Runtime API against a real
// redis-server, and hands it a drain event for a key with a queued item:
// the registered factory's handler handles it.
func TestExampleHandlesAQueuedItem(t *testing.T) {
	// Built first: a cold build takes longer than the lease claimed below.
	bin := lambdatest.Build(t, "github.com/hookline/hookline/examples/custom-handler")
	rdb := redistest.Standalone(t)
	yaml := fmt.Sprintf(`
prefix: %s
tenant: /data/customer_id
verify: none
lanes: {quick: {concurrency: 2, quantum: 5s}}
routes:
  contact.updated: {lane: quick, handler: crm-sync, rate: 5/s}
`, redistest.Prefix(t))
	path := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.NewWith(cfg, rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	it := &queue.Item{ID: "msg_1", Tenant: "acme", Code: "contact.updated",
		Body: []byte(`{"code":"contact.updated","data":{"customer_id":"acme"}}`)}
	if _, err := a.Engine.Enqueue(ctx, "quick", it); err != nil {
		t.Fatal(err)
	}
	leases, err := a.Engine.Claim(ctx, "quick", 1)
	if err != nil || len(leases) != 1 {
		t.Fatalf("claim: %v %v", leases, err)
	}
	event, err := json.Marshal(drain.NewEvent(leases[0]))
	if err != nil {
		t.Fatal(err)
	}

	f := lambdatest.Start(t, "drain", bin, map[string]string{
		"HOOKLINE_CONFIG":    path,
		"HOOKLINE_REDIS_URL": "redis://" + rdb.Options().Addr,
	})
	res, err := f.Invoke(ctx, "", event, 20*time.Second)
	if err != nil || res.Err != nil {
		t.Fatalf("invoke: %v %v\n%s", err, res.Err, f.Logs())
	}
	var out drain.Result
	if err := json.Unmarshal(res.Payload, &out); err != nil || out.Outcome != drain.Emptied || out.Handled != 1 {
		t.Fatalf("result %s (%v), want the key emptied with 1 item handled\n%s", res.Payload, err, f.Logs())
	}
	logs := f.Logs()
	var line string
	for l := range strings.Lines(logs) {
		if strings.Contains(l, `message="crm sync"`) {
			line = l
		}
	}
	for _, want := range []string{"route=contact.updated", "customer=acme", "id=msg_1"} {
		if !strings.Contains(line, want) {
			t.Fatalf("the custom handler's log line lacks %s:\n%s", want, logs)
		}
	}
	t.Logf("the handler logged: %s", line)
	if info, err := a.Engine.Inspect(ctx, "acme:contact.updated"); err != nil || info.Depth != 0 {
		t.Fatalf("the key after the drain: %+v %v", info, err)
	}
}
