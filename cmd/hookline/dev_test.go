package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// hooklineBinary builds this command once per test run.
func hooklineBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookline-cli-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hookline")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// devProc is a running `hookline dev` whose output lines are collected.
type devProc struct {
	mu    sync.Mutex
	lines []string
	url   string

	cmd      *exec.Cmd
	done     chan struct{} // closed when its output ends
	stopOnce sync.Once
}

// stop sends SIGINT and waits for dev to exit (10s, then SIGKILL); it
// reports whether dev exited by itself.
func (d *devProc) stop() (exited bool) {
	d.stopOnce.Do(func() {
		_ = d.cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.done:
			exited = true
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
		}
		_ = d.cmd.Wait()
	})
	return exited
}

func (d *devProc) snapshot() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

// waitFor polls the output until cond holds or 60s pass.
func (d *devProc) waitFor(t *testing.T, what string, cond func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		lines := d.snapshot()
		if cond(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; dev printed:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// startDev runs `hookline dev` on a free port with the example configuration
// and env, and stops it (SIGINT) at cleanup.
func startDev(t *testing.T, env ...string) *devProc {
	t.Helper()
	return startDevArgs(t, nil, env...)
}

// startDevArgs is startDev with extra dev flags.
func startDevArgs(t *testing.T, args []string, env ...string) *devProc {
	t.Helper()
	return startDevIn(t, "", append([]string{"--config", "../../examples/hookline.yaml"}, args...), env...)
}

// startDevIn runs `hookline dev --addr 127.0.0.1:0 args...` in directory
// dir ("": this one) and waits until it listens.
func startDevIn(t *testing.T, dir string, args []string, env ...string) *devProc {
	t.Helper()
	args = append([]string{"dev", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(hooklineBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOOKLINE_REDIS_URL=", "HOOKLINE_CONFIG=", "HOOKLINE_SIGNING_SECRETS=", "HOOKLINE_STACK=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &devProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("dev output:\n%s", strings.Join(d.snapshot(), "\n"))
		}
	})
	listen := regexp.MustCompile(`listening on (http://\S+/webhooks)`)
	d.waitFor(t, "dev to listen", func(ls []string) bool {
		for _, l := range ls {
			if m := listen.FindStringSubmatch(l); m != nil {
				d.url = m[1]
				return true
			}
		}
		return false
	})
	return d
}

var itemLine = regexp.MustCompile(`msg=item key=(\S+) id=(\S+) attempt=(\d+) result=(\S+)`)

// sendAndCheckOrder posts count webhooks per key with `hookline send` as a
// real process and checks that dev handled each exactly once, in order per
// key.
func sendAndCheckOrder(t *testing.T, d *devProc) {
	t.Helper()
	const count, tenants = 15, 4
	codes := []string{"post.create", "post.update", "report.build"}
	send := exec.Command(hooklineBinary(t), "send", "--url", d.url, "--count", strconv.Itoa(count),
		"--tenants", strconv.Itoa(tenants), "--codes", strings.Join(codes, ","), "--run", "e2e", "--quiet")
	send.Env = append(os.Environ(), "HOOKLINE_SIGNING_SECRETS=")
	out, err := send.CombinedOutput()
	if err != nil {
		t.Fatalf("hookline send: %v\n%s", err, out)
	}
	total := count * tenants * len(codes)
	if !strings.Contains(string(out), fmt.Sprintf("%d accepted", total)) {
		t.Fatalf("send summary: %s", out)
	}
	lines := d.waitFor(t, fmt.Sprintf("%d handled items", total), func(ls []string) bool {
		n := 0
		for _, l := range ls {
			if m := itemLine.FindStringSubmatch(l); m != nil && m[4] == "ok" {
				n++
			}
		}
		return n >= total
	})
	next := map[string]int{}
	seen := map[string]bool{}
	for _, l := range lines {
		m := itemLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		key, id := m[1], m[2]
		if seen[id] {
			t.Errorf("item %s handled twice", id)
		}
		seen[id] = true
		// Ids are <run>-<tenant>-<code>-<n>, n counting per key.
		n, err := strconv.Atoi(id[strings.LastIndex(id, "-")+1:])
		if err != nil {
			t.Fatalf("unexpected id %q", id)
		}
		if n != next[key] {
			t.Errorf("key %s: item %d handled when %d was due", key, n, next[key])
		}
		next[key] = n + 1
	}
	if len(next) != tenants*len(codes) {
		t.Fatalf("handled %d keys, want %d", len(next), tenants*len(codes))
	}
	t.Logf("%d webhooks on %d keys handled once each, in order per key", len(seen), len(next))
}

// TestDevEmbeddedRedis: `hookline dev` with no Redis configured runs on its
// embedded Redis and handles what `hookline send` posts, in order per key.
func TestDevEmbeddedRedis(t *testing.T) {
	d := startDev(t)
	if !strings.Contains(strings.Join(d.snapshot(), "\n"), "embedded Redis") {
		t.Fatal("dev did not say it runs on the embedded Redis")
	}
	sendAndCheckOrder(t, d)
}

// TestDevRealRedis: the same against a real redis-server via
// HOOKLINE_REDIS_URL.
func TestDevRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	d := startDev(t, "HOOKLINE_REDIS_URL=redis://"+srv.Addr())
	if !strings.Contains(strings.Join(d.snapshot(), "\n"), "Redis at "+srv.Addr()) {
		t.Fatal("dev did not say it uses the configured Redis")
	}
	sendAndCheckOrder(t, d)
	// The items really went through that server.
	keys, err := srv.Client(t).Keys(context.Background(), "hl:{*}:seq").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no fencing counters in the real Redis: %v %v", keys, err)
	}
}

// stats reads dev's GET /_dev/stats: its counters, and the longest
// rate-limit sleep (ms, rounded down).
func (d *devProc) stats(t *testing.T) map[string]int64 {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(d.url, "/webhooks") + "/_dev/stats")
	if err != nil {
		t.Fatalf("GET /_dev/stats: %v", err)
	}
	defer resp.Body.Close()
	var raw map[string]float64
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&raw) != nil {
		t.Fatalf("GET /_dev/stats: status %d or a body that is not a JSON object of numbers", resp.StatusCode)
	}
	st := map[string]int64{}
	for _, name := range []string{"redis_round_trips", "drain_invocations", "items_handled", "rate_wait_max_ms"} {
		v, ok := raw[name]
		if !ok {
			t.Fatalf("GET /_dev/stats: no %s in %v", name, raw)
		}
		st[name] = int64(v)
	}
	return st
}

// TestDevIngestOnlyThenDrain: `dev --ingest-only` stores webhooks without
// draining them; a second `dev --quiet` on the same Redis drains the backlog
// without a line per item; /_dev/stats counts round trips, drains and items.
func TestDevIngestOnlyThenDrain(t *testing.T) {
	srv := redistest.Start(t)
	env := "HOOKLINE_REDIS_URL=redis://" + srv.Addr()
	in := startDevArgs(t, []string{"--ingest-only", "--quiet"}, env)
	if !strings.Contains(strings.Join(in.snapshot(), "\n"), "ingest only") {
		t.Fatal("dev --ingest-only did not say so")
	}
	const count, tenants = 5, 3
	send := exec.Command(hooklineBinary(t), "send", "--url", in.url, "--count", strconv.Itoa(count),
		"--tenants", strconv.Itoa(tenants), "--run", "backlog", "--quiet")
	send.Env = append(os.Environ(), "HOOKLINE_SIGNING_SECRETS=")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("hookline send: %v\n%s", err, out)
	}
	st := in.stats(t)
	if st["redis_round_trips"] < count*tenants || st["drain_invocations"] != 0 || st["items_handled"] != 0 {
		t.Fatalf("ingest-only stats %v: want a round trip per webhook at least, no drains, no items", st)
	}

	dr := startDevArgs(t, []string{"--quiet"}, env)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = dr.stats(t)
		if st["items_handled"] >= count*tenants {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained in 60s: stats %v", st)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if st["items_handled"] != count*tenants || st["drain_invocations"] < tenants || st["redis_round_trips"] == 0 {
		t.Fatalf("drain stats %v: want %d items by at least %d drains, and round trips", st, count*tenants, tenants)
	}
	for _, l := range dr.snapshot() {
		if itemLine.MatchString(l) {
			t.Fatalf("dev --quiet printed an item line: %s", l)
		}
	}
}
