package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestDefaultConfigIsTheExample: the configuration built into hookline dev
// is examples/hookline.yaml.
func TestDefaultConfigIsTheExample(t *testing.T) {
	example, err := os.ReadFile("../../examples/hookline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(example, builtinDevConfig) {
		t.Fatal("cmd/hookline/devconfig.yaml differs from examples/hookline.yaml: copy it over")
	}
}

var (
	leftLine   = regexp.MustCompile(`hookline dev: stopped; (\d+) items? on (\d+) keys? left in`)
	redisURLRe = regexp.MustCompile(`HOOKLINE_REDIS_URL=(redis://\S+) \(try: .* hookline status --config (\S+)\)`)
)

// TestDevGracefulStop: `hookline dev` outside the repository runs on its
// built-in configuration, `hookline status` works against it, and stopped
// with SIGINT in the middle of a rate-limited backlog it loses no item
// handled as ok (each reached dev's own sink, none failed for want of it)
// and says how many were left: with a redis-server, exactly those are
// still queued there.
func TestDevGracefulStop(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { devStopRun(t, nil) })
	t.Run("redis-server", func(t *testing.T) { devStopRun(t, redistest.Start(t)) })
}

func devStopRun(t *testing.T, srv *redistest.Server) {
	var env []string
	if srv != nil {
		env = append(env, "HOOKLINE_REDIS_URL=redis://"+srv.Addr())
	}
	d := startDevIn(t, t.TempDir(), nil, env...)
	out := strings.Join(d.snapshot(), "\n")
	if !strings.Contains(out, "config built-in (a copy of examples/hookline.yaml)") {
		t.Fatalf("dev outside the repository did not use its built-in configuration:\n%s", out)
	}

	// order.paid forwards to dev's own sink at 2 calls/s per tenant: 10 per
	// tenant take about 5s, so the stop comes in the middle.
	const tenants, count = 3, 10
	total := tenants * count * 2
	if got := send(t, "--url", d.url, "--count", strconv.Itoa(count), "--tenants", strconv.Itoa(tenants), "--codes", "order.paid,post.create", "--run", "stop"); !strings.Contains(got, fmt.Sprintf("%d accepted", total)) {
		t.Fatalf("send: %s", got)
	}

	if srv == nil {
		// The operator commands reach the embedded Redis at the printed
		// address, with the printed configuration.
		m := redisURLRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dev did not print the embedded Redis URL and a status command:\n%s", out)
		}
		status := exec.Command(hooklineBinary(t), "status", "--config", m[2])
		status.Env = append(os.Environ(), "HOOKLINE_REDIS_URL="+m[1], "HOOKLINE_CONFIG=")
		got, err := status.CombinedOutput()
		if err != nil || !strings.Contains(string(got), "quick") || !strings.Contains(string(got), "slow") || !strings.Contains(string(got), "order.paid") {
			t.Fatalf("hookline status against dev: %v\n%s", err, got)
		}
	}

	okLine := regexp.MustCompile(`msg=item key=\S+ id=(\S+) attempt=\d+ result=ok`)
	// Two rounds of order.paid calls: the stop comes while drains call the
	// sink and wait for their rate-limit slots.
	d.waitFor(t, "some order.paid items handled", func(ls []string) bool {
		n := 0
		for _, l := range ls {
			if okLine.MatchString(l) && strings.Contains(l, "order.paid") {
				n++
			}
		}
		return n >= 2*tenants
	})
	if !d.stop() {
		t.Fatal("dev did not stop on SIGINT by itself")
	}
	lines := d.snapshot()
	handled := map[string]bool{}
	sunk := map[string]bool{}
	left := -1
	for _, l := range lines {
		if strings.Contains(l, "connection refused") || strings.Contains(l, "result=retry") {
			t.Errorf("an item failed during the stop: %s", l)
		}
		if m := okLine.FindStringSubmatch(l); m != nil {
			if handled[m[1]] {
				t.Errorf("item %s handled twice", m[1])
			}
			handled[m[1]] = true
		}
		if strings.Contains(l, "msg=sink ") {
			if i := strings.Index(l, " id="); i >= 0 {
				sunk[strings.Fields(l[i+4:])[0]] = true
			}
		}
		if m := leftLine.FindStringSubmatch(l); m != nil {
			left, _ = strconv.Atoi(m[1])
		}
	}
	if left < 0 {
		t.Fatalf("dev did not say what was left:\n%s", strings.Join(lines, "\n"))
	}
	if left == 0 {
		t.Fatalf("nothing was left: the stop did not come mid-run")
	}
	if len(handled)+left != total {
		t.Fatalf("%d handled ok + %d left = %d, want the %d accepted", len(handled), left, len(handled)+left, total)
	}
	for id := range handled {
		if strings.Contains(id, "order.paid") && !sunk[id] {
			t.Errorf("order.paid item %s handled as ok but never reached the sink", id)
		}
	}
	t.Logf("stopped mid-run: %d handled ok, %d left", len(handled), left)
	if srv == nil {
		return
	}
	// Exactly the items not handled are still queued.
	rdb := srv.Client(t)
	ctx := context.Background()
	queues, err := rdb.Keys(ctx, "hl:{*}:q:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, q := range queues {
		items, err := rdb.LRange(ctx, q, 0, -1).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		for _, it := range items {
			id := strings.TrimPrefix(strings.Fields(it)[0], "@")
			if handled[id] {
				t.Errorf("item %s handled as ok is still queued", id)
			}
			queued++
		}
	}
	if queued != left {
		t.Fatalf("%d items queued in Redis, dev said %d", queued, left)
	}
}
