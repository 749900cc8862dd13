package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/shared/queue"
	"github.com/hookline/hookline/shared/redistest"
)

// runCLI runs the hookline command with args and returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// TestOperatorCommands: an operator sees a dead letter, a parked key and a
// poisoned head in `status`, `inspect` and `dlq`, and fixes them with
// `dlq --redrive`, `resume` and `skip`.
func TestOperatorCommands(t *testing.T) {
	rdb := redistest.Standalone(t)
	prefix := redistest.Prefix(t)
	cfgPath := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(cfgPath, []byte("prefix: "+prefix+`
tenant: /data/customer_id
lanes:
  quick: {concurrency: 4, quantum: 5s}
  slow:  {concurrency: 1, quantum: 5s}
routes:
  post.create: {lane: quick, handler: log}
  report.build: {lane: slow, handler: log}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKLINE_REDIS_URL", "redis://"+rdb.Options().Addr)
	t.Setenv("HOOKLINE_CONFIG", cfgPath)

	ctx := context.Background()
	e, err := queue.New(rdb, queue.Options{Prefix: prefix, Lanes: []string{"quick", "slow"}})
	if err != nil {
		t.Fatal(err)
	}
	enqueue := func(lane, tenant, code string, ids ...string) {
		for _, id := range ids {
			if _, err := e.Enqueue(ctx, lane, &queue.Item{ID: id, Tenant: tenant, Code: code, Body: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	work := func(lane string, f queue.Failure) {
		ls, err := e.Claim(ctx, lane, 1)
		if err != nil || len(ls) != 1 {
			t.Fatalf("claim %s: %v %v", lane, ls, err)
		}
		l := &ls[0]
		if err := e.Activate(ctx, l, "op-test"); err != nil {
			t.Fatal(err)
		}
		b, _ := e.Fetch(ctx, l, 1)
		if _, err := e.Fail(ctx, l, b.Items[0].ID, f); err != nil {
			t.Fatal(err)
		}
		_, _ = e.Yield(ctx, l, time.Time{})
	}
	enqueue("quick", "acme", "post.create", "a1", "a2", "a3")
	work("quick", queue.Failure{Reason: "HTTP 400 bad payload", Permanent: true}) // a1 dead
	enqueue("slow", "globex", "report.build", "g1", "g2")
	work("slow", queue.Failure{Reason: "ledger closed", Permanent: true, Policy: queue.Park}) // parked

	out, err := runCLI(t, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^quick\s+1\s+0\s+0\s+\S+`),
		regexp.MustCompile(`(?m)^slow\s+0\s+0\s+0\s+-`),
		regexp.MustCompile(`(?m)^acme:post.create\s+quick\s+2\s+false`),
		regexp.MustCompile(`(?m)^globex:report.build\s+-\s+2\s+true`),
		regexp.MustCompile(`(?m)^acme:post.create\s+1\s+\S+ ago`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status lacks %s:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "inspect", "globex:report.build")
	if err != nil || !strings.Contains(out, "paused        true") || !strings.Contains(out, "ledger closed") || !strings.Contains(out, "depth         2") {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	out, err = runCLI(t, "dlq", "acme:post.create")
	if err != nil || !regexp.MustCompile(`(?m)^a1\s+\S+\s+1\s+HTTP 400 bad payload`).MatchString(out) {
		t.Fatalf("dlq KEY: %v\n%s", err, out)
	}
	// Fix: redrive the dead letter, resume the parked key, skip a poisoned head.
	if out, err = runCLI(t, "dlq", "acme:post.create", "--redrive"); err != nil || !strings.Contains(out, "redrove 1 item") {
		t.Fatalf("redrive: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "resume", "globex:report.build"); err != nil || !strings.Contains(out, "(ready)") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "pause", "acme:post.create"); err != nil {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "skip", "acme:post.create", "--note", "ticket 7"); err != nil || !strings.Contains(out, "skipped the head item") {
		t.Fatalf("skip: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "resume", "acme:post.create"); err != nil {
		t.Fatal(err)
	}
	// The queues now hold a2, a3 (a1 skipped again after redrive) and g1, g2.
	for key, want := range map[string]string{"acme:post.create": "a2 a3", "globex:report.build": "g1 g2"} {
		lane := map[string]string{"acme:post.create": "quick", "globex:report.build": "slow"}[key]
		ls, err := e.Claim(ctx, lane, 1)
		if err != nil || len(ls) != 1 || ls[0].Key != key {
			t.Fatalf("claim after the fixes: %v %v", ls, err)
		}
		_ = e.Activate(ctx, &ls[0], "check")
		b, _ := e.Fetch(ctx, &ls[0], 10)
		var ids []string
		for _, it := range b.Items {
			ids = append(ids, it.ID)
		}
		if fmt.Sprint(strings.Join(ids, " ")) != want || b.Attempts != 0 {
			t.Fatalf("%s holds %v (attempts %d), want %s", key, ids, b.Attempts, want)
		}
	}
	dead, _ := e.DeadItems(ctx, "acme:post.create", 0, 10)
	if len(dead) != 1 || dead[0].Item.ID != "a1" || dead[0].Reason != "skipped by operator: ticket 7" {
		t.Fatalf("dead letters after skip: %+v", dead)
	}
	// Without a Redis URL the commands say what is missing.
	t.Setenv("HOOKLINE_REDIS_URL", "")
	if _, err := runCLI(t, "status"); err == nil || !strings.Contains(err.Error(), "HOOKLINE_REDIS_URL") {
		t.Fatalf("status without Redis: %v", err)
	}
}
