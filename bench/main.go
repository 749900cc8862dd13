// Command bench is hookline's benchmark suite. It drives hookline as a black
// box — `hookline dev` built from this repository, on a redis-server the
// suite starts — and prints every figure beside a baseline measured in the
// same run, so that ratios mean something on a noisy machine: a plain asynq
// pipeline doing the same job, raw Redis (one RPUSH per request, an
// RPUSH+LPOP queue), or, where nothing can be measured, the ideal or the
// target.
//
//	cd bench && go run .            # every scenario, full size (a few minutes)
//	cd bench && go run . --quick    # a small run
//	cd bench && go run . --only cold --n 5000
//
// It lives in a module of its own so that asynq never enters hookline's
// go.mod. Scenarios run one after another, never in parallel; each
// measurement starts a fresh redis-server (no persistence) and fresh
// hookline processes, and stops them when it ends.
//
// hookline is used only through its public surfaces: the HTTP ingest
// contract, the configuration file, and `hookline dev` with --quiet (no line
// per item), --ingest-only (ingest without scheduler or drains, to queue a
// backlog that a second dev then drains) and GET /_dev/stats (Redis round
// trips, drain invocations, items handled). Webhooks are Standard Webhooks,
// signed with a fresh secret, bodies of exactly 200 bytes; each key's
// webhooks are sent one after the other, so send order is defined. Handled
// means delivered to the suite's own HTTP sink by the forward handler,
// except in figure 2.
//
// The asynq baseline does the same job the plain way: an HTTP handler that
// verifies the signature with hookline's verifier and enqueues one task per
// webhook, deduplicated by webhook id (asynq.TaskID), and an asynq server
// whose workers forward each body to the sink with a keep-alive client.
// asynq's TaskCheckInterval is set to hookline's scheduler.poll (--poll).
// Like hookline dev, the asynq front and its workers run in processes of
// their own (this binary, started with the argument asynq-serve), never in
// the suite's, so neither shares a Go runtime with the senders and the sink.
//
// Figures, as the table numbers them:
//
//  1. Throughput (--n webhooks on --keys keys, --c senders, lane concurrency
//     and asynq workers): accepted/s and accept latency, end-to-end items/s
//     (first send to last delivery), keys whose deliveries are out of send
//     order, webhooks never delivered, Redis commands per item (INFO
//     total_commands_processed), and CPU time per item of the pipeline's
//     own processes (/proc) and of its redis-server (INFO cpu), which,
//     unlike items/s, do not depend on what else the machine runs. Raw
//     baselines: an HTTP handler doing one RPUSH per request, and an
//     RPUSH+LPOP queue. With -v, Redis's calls per item by command.
//  2. The same with the log handler, so only the engine is timed (done when
//     /_dev/stats counts every item handled), against the raw queue.
//  3. A backlog queued with --ingest-only, drained by a second dev: Redis
//     round trips (/_dev/stats) and commands per handled item, against the
//     engine's targets and a raw LPOP drain.
//  4. Drain invocations per 1,000 webhooks, trickled (one every 5 ms round
//     the keys) and as a backlog; the floor is one drain per key.
//  5. Cold keys (5 webhooks each, a lane of 8): wait from the 202 of a key's
//     first webhook to its first delivery, alone and behind a hot key whose
//     backlog is queued first and already being drained; asynq with 8
//     workers.
//  6. Idle dispatch: single webhooks 50 ms apart to an idle pipeline, 202 to
//     delivery.
//  7. Redis used_memory growth per queued webhook, less the 200-byte body,
//     with nothing draining (connections opened beforehand); asynq
//     enqueued, and plain lists.
//  8. A 2/s forward route shared by 3 keys of one tenant, each with a
//     backlog, for --rate-seconds: calls at the sink, 1-second windows with
//     more than 2 calls, utilisation; the ideal is 2 calls a second.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

// scenario is one figure of the suite.
type scenario struct {
	fig  int
	name string
	desc string
	run  func(e *suiteEnv, ctx context.Context) error
}

var scenarios = []scenario{
	{1, "throughput", "forward to a sink: hookline dev vs asynq vs raw Redis", (*suiteEnv).throughput},
	{2, "noop", "no-op (log) handler vs a raw RPUSH+LPOP queue", (*suiteEnv).noop},
	{3, "backlog", "Redis round trips and commands per item, draining a backlog", (*suiteEnv).backlog},
	{4, "invocations", "drain invocations per 1,000 webhooks, trickle and backlog", (*suiteEnv).invocations},
	{5, "cold", "cold keys' first-item wait, without and behind a hot key", (*suiteEnv).cold},
	{6, "idle", "idle dispatch latency, 202 to sink", (*suiteEnv).idle},
	{7, "memory", "Redis bytes per queued item beyond the body", (*suiteEnv).memory},
	{8, "rate", "a 2/s rate limit shared by 3 keys", (*suiteEnv).rate},
}

// options are the command-line flags.
type options struct {
	only        string
	quick       bool
	n, keys, c  int
	rateSeconds int
	poll        time.Duration
	timeout     time.Duration
	stall       time.Duration
	repo        string
	verbose     bool
}

// scale is the size of every scenario, derived from the options.
type scale struct {
	n, keys, c            int
	coldKeys, coldPerKey  int
	coldLane              int
	hot                   int
	trickleN, trickleKeys int
	trickleEvery          time.Duration
	idleN                 int
	idleEvery             time.Duration
	rateSeconds           int
	poll                  time.Duration
	timeout, stall        time.Duration
}

func newScale(o options) scale {
	s := scale{n: 20000, keys: 1000, c: 64, rateSeconds: 60}
	if o.quick {
		s = scale{n: 2000, keys: 100, c: 16, rateSeconds: 10}
	}
	if o.n > 0 {
		s.n = o.n
	}
	if o.keys > 0 {
		s.keys = o.keys
	}
	if o.c > 0 {
		s.c = o.c
	}
	if o.rateSeconds > 0 {
		s.rateSeconds = o.rateSeconds
	}
	s.coldKeys, s.coldPerKey, s.coldLane = max(s.keys/5, 1), 5, 8
	s.hot = s.n
	s.trickleN, s.trickleKeys, s.trickleEvery = max(s.n/20, 1), max(s.keys/10, 1), 5*time.Millisecond
	s.idleN, s.idleEvery = max(s.keys/5, 1), 50*time.Millisecond
	s.poll, s.timeout, s.stall = o.poll, o.timeout, o.stall
	return s
}

// suiteEnv is what every scenario uses, and where it puts its results.
type suiteEnv struct {
	scale
	bin     string // the hookline binary
	tmp     string
	secret  string
	verbose bool
	rows    []row
	summary []string
}

// add records rows and prints them at once.
func (e *suiteEnv) add(rows ...row) {
	e.rows = append(e.rows, rows...)
	printTable(os.Stdout, rows)
}

// note adds a line to the final summary and prints it at once.
func (e *suiteEnv) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	e.summary = append(e.summary, s)
	fmt.Println("  " + s)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == asynqServeArg {
		if err := asynqServe(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench asynq-serve:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	flag.StringVar(&o.only, "only", "", "run one scenario: "+strings.Join(names, ", "))
	flag.BoolVar(&o.quick, "quick", false, "a small run: 2,000 webhooks on 100 keys, 16 senders, 10s of rate limit")
	flag.IntVar(&o.n, "n", 0, "webhooks per throughput run, and the hot key's backlog (default 20,000)")
	flag.IntVar(&o.keys, "keys", 0, "keys of the throughput runs (default 1,000); cold keys, idle webhooks and trickle keys scale with it")
	flag.IntVar(&o.c, "c", 0, "concurrent senders, lane concurrency and asynq workers of the throughput runs (default 64)")
	flag.IntVar(&o.rateSeconds, "rate-seconds", 0, "how long the rate-limit scenario runs (default 60)")
	flag.DurationVar(&o.poll, "poll", 200*time.Millisecond, "hookline's scheduler.poll and asynq's TaskCheckInterval: how often each looks for work when idle")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the longest one scenario may take (the rate scenario gets its --rate-seconds on top)")
	flag.DurationVar(&o.stall, "stall", 30*time.Second, "give up a wait when nothing progressed for this long")
	flag.StringVar(&o.repo, "repo", "..", "hookline's repository (where ./cmd/hookline is)")
	flag.BoolVar(&o.verbose, "v", false, "echo the output of hookline dev")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if o.only != "" && !slices.Contains(names, o.only) {
		fmt.Fprintf(os.Stderr, "bench: --only %q: want one of %s\n", o.only, strings.Join(names, ", "))
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "cmd", "hookline")); err != nil {
		return fmt.Errorf("--repo %s: no cmd/hookline there: %w", o.repo, err)
	}
	tmp, err := os.MkdirTemp("", "hookline-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fmt.Println("building hookline ...")
	bin, err := buildHookline(ctx, repo, tmp)
	if err != nil {
		return err
	}
	e := &suiteEnv{scale: newScale(o), bin: bin, tmp: tmp, secret: newSecret(), verbose: o.verbose}
	header(e, repo)

	var failed []string
	for _, s := range scenarios {
		if o.only != "" && s.name != o.only {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Printf("\n== %d %s: %s\n", s.fig, s.name, s.desc)
		start := time.Now()
		bound := o.timeout
		if s.name == "rate" {
			bound += time.Duration(e.rateSeconds) * time.Second
		}
		sctx, cancel := context.WithTimeout(ctx, bound)
		err := s.run(e, sctx)
		cancel()
		if err != nil {
			fmt.Printf("  %s FAILED: %v\n", s.name, err)
			failed = append(failed, s.name)
			e.summary = append(e.summary, fmt.Sprintf("%d %s: FAILED: %v", s.fig, s.name, firstLine(err.Error())))
			continue
		}
		fmt.Printf("  (%s in %s)\n", s.name, time.Since(start).Round(100*time.Millisecond))
	}

	fmt.Println("\n== results (ratio = hookline / baseline)")
	printTable(os.Stdout, e.rows)
	fmt.Println("\n== summary")
	for _, s := range e.summary {
		fmt.Println("  " + s)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// header prints what was measured, with what, on what.
func header(e *suiteEnv, repo string) {
	rev := "?"
	if out, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty").Output(); err == nil {
		rev = strings.TrimSpace(string(out))
	}
	redisVersion := "?"
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for f := range strings.FieldsSeq(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				redisVersion = v
			}
		}
	}
	asynqVersion := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/hibiken/asynq" {
				asynqVersion = d.Version
			}
		}
	}
	fmt.Printf("hookline %s, redis-server %s, asynq %s, %s, %d CPUs\n", rev, redisVersion, asynqVersion, runtime.Version(), runtime.NumCPU())
	fmt.Printf("scale: %d webhooks of %d bytes on %d keys, %d senders/workers; cold %dx%d on a lane of %d behind a hot key of %d; "+
		"trickle %d on %d keys every %s; idle %d every %s; rate %ds; poll %s (hookline scheduler.poll = asynq TaskCheckInterval)\n",
		e.n, bodySize, e.keys, e.c, e.coldKeys, e.coldPerKey, e.coldLane, e.hot,
		e.trickleN, e.trickleKeys, e.trickleEvery, e.idleN, e.idleEvery, e.rateSeconds, e.poll)
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
