package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// buildHookline builds the hookline CLI of the repository at repo into dir.
func buildHookline(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "hookline")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hookline")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hookline in %s: %w\n%s", repo, err, out)
	}
	return bin, nil
}

// lane is one lane of a generated configuration.
type lane struct {
	name        string
	concurrency int
}

// route is one route of a generated configuration.
type route struct {
	code, lane, handler, url, rate string
}

// hooklineConfig is a configuration file the suite writes.
type hooklineConfig struct {
	lanes  []lane
	routes []route
	poll   time.Duration // scheduler.poll; 0 leaves the default
}

// yaml renders the configuration in hookline's file format.
func (c hooklineConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by hookline's benchmark suite (bench/)\ntenant: %s\n", tenantPointer)
	b.WriteString("lanes:\n")
	for _, l := range c.lanes {
		fmt.Fprintf(&b, "  %s: {concurrency: %d}\n", l.name, l.concurrency)
	}
	b.WriteString("routes:\n")
	for _, r := range c.routes {
		fmt.Fprintf(&b, "  %s:\n    lane: %s\n    handler: %s\n", r.code, r.lane, r.handler)
		if r.url != "" {
			fmt.Fprintf(&b, "    url: %q\n", r.url)
		}
		if r.rate != "" {
			fmt.Fprintf(&b, "    rate: %s\n", r.rate)
		}
	}
	if c.poll > 0 {
		fmt.Fprintf(&b, "scheduler: {poll: %s}\n", c.poll)
	}
	return b.String()
}

// write saves the configuration in dir and returns its path.
func (c hooklineConfig) write(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "hookline-*.yaml")
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(c.yaml()); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return f.Name(), nil
}

// devProc is a running `hookline dev`.
type devProc struct {
	cmd    *exec.Cmd
	base   string // http://127.0.0.1:port
	out    *tail
	exited chan struct{}
	client *http.Client
}

// ingestURL is the webhook endpoint.
func (d *devProc) ingestURL() string { return d.base + "/webhooks" }

var listening = regexp.MustCompile(`listening on (http://\S+)/webhooks`)

// startDev runs `hookline dev --quiet` with the configuration at cfgPath on
// the Redis at redisURL, verifying with secret, and waits until it listens.
func startDev(ctx context.Context, env *suiteEnv, cfgPath, redisURL string, extra ...string) (*devProc, error) {
	args := append([]string{"dev", "--addr", "127.0.0.1:0", "--config", cfgPath, "--quiet"}, extra...)
	// HOOKLINE_BENCH_DEV_ARGS adds flags, e.g. "--pprof" to profile dev
	// while a scenario runs (the -v output shows its address).
	args = append(args, strings.Fields(os.Getenv("HOOKLINE_BENCH_DEV_ARGS"))...)
	cmd := exec.Command(env.bin, args...)
	cmd.Env = hooklineEnv(redisURL, env.secret)
	cmd.SysProcAttr = childAttr()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hookline dev: %w", err)
	}
	d := &devProc{cmd: cmd, out: &tail{max: 200, echo: env.verbose}, exited: make(chan struct{}), client: &http.Client{Timeout: 5 * time.Second}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			d.out.add(line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		close(d.exited)
	}()
	select {
	case d.base = <-found:
		return d, nil
	case <-d.exited:
		return nil, fmt.Errorf("hookline dev exited at start:%s", lastLines(d.out.text(), 20))
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	d.stop()
	return nil, fmt.Errorf("hookline dev did not listen within 30s:%s", lastLines(d.out.text(), 20))
}

// hooklineEnv is the environment of a dev process: the suite's, without any
// HOOKLINE_ variable but the Redis URL and the signing secret.
func hooklineEnv(redisURL, secret string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKLINE_") {
			env = append(env, kv)
		}
	}
	return append(env, "HOOKLINE_REDIS_URL="+redisURL, "HOOKLINE_SIGNING_SECRETS="+secret)
}

// stop interrupts dev and waits for it to exit, killing it after 10s.
func (d *devProc) stop() {
	if d == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// devStats is the body of GET /_dev/stats.
type devStats struct {
	RedisRoundTrips  int64 `json:"redis_round_trips"`
	DrainInvocations int64 `json:"drain_invocations"`
	ItemsHandled     int64 `json:"items_handled"`
	// RateWaitMaxMs is the longest a drain slept for a rate-limit slot.
	RateWaitMaxMs float64 `json:"rate_wait_max_ms"`
}

// stats reads GET /_dev/stats.
func (d *devProc) stats(ctx context.Context) (devStats, error) {
	var st devStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/_dev/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("GET /_dev/stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /_dev/stats: %s (is this hookline built with --ingest-only and /_dev/stats?)", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /_dev/stats: %w", err)
	}
	return st, nil
}

// alive returns an error with dev's last lines if it has exited.
func (d *devProc) alive() error {
	select {
	case <-d.exited:
		return fmt.Errorf("hookline dev exited:%s", lastLines(d.out.text(), 20))
	default:
		return nil
	}
}

// tail keeps the last lines of a process's output.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
	echo  bool
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.echo {
		fmt.Println("    | " + line)
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
