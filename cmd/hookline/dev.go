package main

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/autopipe"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/priority"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redisstats"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// defaultDevConfig is the configuration `hookline dev` loads when neither
// --config nor HOOKLINE_CONFIG names one. When it is not there (dev runs
// outside the repository's root), dev uses builtinDevConfig, a copy built
// into the binary.
const defaultDevConfig = "examples/hookline.yaml"

// builtinDevConfig is examples/hookline.yaml, built in (a test keeps the
// two the same).
//
//go:embed devconfig.yaml
var builtinDevConfig []byte

// drainStopWait bounds how long a stopping dev waits for its drains to
// finish the items in hand.
const drainStopWait = 15 * time.Second

// devOptions are the flags of `hookline dev`.
type devOptions struct {
	addr, cfgPath string
	// redisAddr is where the embedded Redis listens.
	redisAddr string
	// emf names the file the EMF metric lines go to ("-": stdout).
	emf string
	// quiet logs at warn level: no line per handled item.
	quiet bool
	// ingestOnly runs ingest alone, without scheduler and drains.
	ingestOnly bool
	// pprof serves net/http/pprof under /debug/pprof/.
	pprof bool
}

func newDevCmd() *cobra.Command {
	var opt devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline locally: ingest, scheduler and drains in one process",
		Long: `Runs the ingest HTTP handler on a local port, the scheduler loop, and drains
invoked in-process through the same code the Lambda functions run.

Redis is HOOKLINE_REDIS_URL when set, otherwise an embedded in-process Redis
(nothing to install; its data is gone when dev stops). Webhooks are verified
with HOOKLINE_SIGNING_SECRETS, or with a local development secret printed at
start, which ` + "`hookline send`" + ` uses for localhost by default.

The embedded Redis listens on a local address (--redis-addr), printed at
start as HOOKLINE_REDIS_URL=redis://..., so the operator commands (hookline
status, inspect, dlq, ...) work against a running dev.

The configuration is --config, else HOOKLINE_CONFIG, else
examples/hookline.yaml when it is there, else a built-in copy of it.

--emf FILE writes the CloudWatch metrics the functions would emit (EMF
lines: ingest, scheduler and drains) to FILE ("-" for stdout).

Ctrl-C (or SIGTERM) stops gracefully: new webhooks are answered 503, the
scheduler stops, running drains finish the item in hand and yield their key,
then the HTTP server stops and dev says how many items were left. A second
Ctrl-C stops at once.

GET /_dev/stats answers {"redis_round_trips", "drain_invocations",
"items_handled", "rate_wait_max_ms"}: the Redis round trips of this process
(one per command sent alone, one per pipeline), the drains the scheduler
started, the items they handled successfully, and the longest a drain slept
for a rate-limit slot (the last two counted as each drain ends). Benchmarks
read it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				stop() // a second signal now ends the process at once
			}()
			return runDev(ctx, cmd.OutOrStdout(), opt)
		},
	}
	cmd.Flags().StringVar(&opt.addr, "addr", "127.0.0.1:8080", "address to serve ingest on (port 0 picks a free one)")
	cmd.Flags().StringVar(&opt.cfgPath, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultDevConfig+", else a built-in copy of it)")
	cmd.Flags().StringVar(&opt.redisAddr, "redis-addr", "127.0.0.1:0", "address the embedded Redis listens on (port 0 picks a free one); unused with HOOKLINE_REDIS_URL")
	cmd.Flags().StringVar(&opt.emf, "emf", "", "write the functions' EMF metric lines to this file (\"-\": stdout)")
	cmd.Flags().BoolVar(&opt.quiet, "quiet", false, "log warnings and errors only (no line per handled item)")
	cmd.Flags().BoolVar(&opt.ingestOnly, "ingest-only", false, "run ingest only, no scheduler or drains (queue a backlog for another dev to drain)")
	cmd.Flags().BoolVar(&opt.pprof, "pprof", false, "serve Go profiles under /debug/pprof/ (go tool pprof http://ADDR/debug/pprof/profile)")
	return cmd
}

// devEnv is the environment dev loads its configuration with: the process
// environment, with the config path and a local signing secret filled in.
func devEnv(cfgPath string) func(string) string {
	return func(name string) string {
		v := os.Getenv(name)
		switch name {
		case config.EnvConfig:
			return cmp.Or(cfgPath, v, defaultDevConfig)
		case config.EnvSigningSecrets:
			return cmp.Or(v, devSecret)
		}
		return v
	}
}

// loadDevConfig loads the configuration dev runs with and says where it
// came from: the file named by --config or HOOKLINE_CONFIG, else
// examples/hookline.yaml, else, when that is not there, the built-in copy.
func loadDevConfig(cfgPath string) (cfg *config.Config, from string, builtin bool, err error) {
	getenv := devEnv(cfgPath)
	path := getenv(config.EnvConfig)
	if cfgPath == "" && os.Getenv(config.EnvConfig) == "" {
		if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) {
			cfg, err = config.Parse(builtinDevConfig, getenv)
			return cfg, "built-in (a copy of " + defaultDevConfig + ")", true, err
		}
	}
	cfg, err = config.Load(getenv)
	return cfg, path, false, err
}

// devStats are the counters GET /_dev/stats reports.
type devStats struct {
	trips    redisstats.Counter
	drains   atomic.Int64
	items    atomic.Int64
	rateWait atomic.Int64 // the longest rate-limit sleep, µs
}

// drained adds a drain's result.
func (st *devStats) drained(res drain.Result) {
	st.items.Add(int64(res.Handled))
	us := int64(res.RateWaitMaxMs * 1000)
	for {
		cur := st.rateWait.Load()
		if us <= cur || st.rateWait.CompareAndSwap(cur, us) {
			return
		}
	}
}

func (st *devStats) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"redis_round_trips": st.trips.RoundTrips(),
		"drain_invocations": st.drains.Load(),
		"items_handled":     st.items.Load(),
		"rate_wait_max_ms":  float64(st.rateWait.Load()) / 1000,
	})
}

func runDev(ctx context.Context, out io.Writer, opt devOptions) error {
	// dev keeps little in memory (the queues are in Redis) and serves and
	// drains in one process: it trades some heap for CPU, collecting
	// garbage when the heap has grown 4x rather than Go's default 2x,
	// unless GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(devGCPercent)
	}
	level := slog.LevelInfo
	if opt.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level, ReplaceAttr: devLogAttr}))
	cfg, cfgFrom, builtin, err := loadDevConfig(opt.cfgPath)
	if err != nil {
		return err
	}
	var rdb redis.UniversalClient
	where, redisURL := "", ""
	// Every drain and every in-flight webhook of this one process may hold
	// a connection at once: size the pool to that, not to go-redis's
	// default of 10 per CPU, so nobody waits for a connection.
	pool := 64
	for _, l := range cfg.Lanes {
		pool += 2 * l.Concurrency
	}
	embedded := cfg.Redis.URL == ""
	if !embedded {
		r := cfg.Redis
		r.URL = withPoolSize(r.URL, pool)
		if rdb, err = app.Redis(r); err != nil {
			return err
		}
		where = "Redis at " + redactedAddr(rdb)
	} else {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr(opt.redisAddr); err != nil {
			return fmt.Errorf("dev: embedded Redis on %s: %w", opt.redisAddr, err)
		}
		defer mr.Close()
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: pool})
		redisURL = "redis://" + mr.Addr()
		where = "embedded Redis (in-process; its data is gone when dev stops; set HOOKLINE_REDIS_URL to use your own)"
	}
	// Many webhooks and drains of this one process call scripts at once:
	// they share round trips (autopipe), ahead of the round-trip counter so
	// it counts the pipelines that really go.
	pipe := autopipe.Add(rdb, autopipe.FlushersDefault)
	defer pipe.Close()
	stats := &devStats{}
	rdb.AddHook(&stats.trips)
	a, err := app.NewWith(cfg, rdb, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Ping(ctx); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	var metrics *telemetry.Emitter
	if opt.emf != "" {
		w, closeEMF, err := openEMF(opt.emf, out)
		if err != nil {
			return err
		}
		defer closeEMF()
		metrics = a.Emitter(w)
		a.Metrics = metrics
	}
	ln, err := net.Listen("tcp", opt.addr)
	if err != nil {
		return fmt.Errorf("dev: listen on %s: %w", opt.addr, err)
	}
	defer ln.Close()
	followAddr(cfg, ln.Addr().String())
	var sched *schedule.Scheduler
	a.WakeLocally(func() {
		if sched != nil { // nil with --ingest-only
			sched.Notify()
		}
	})
	// Webhooks go first when the process runs short of CPU: drains then
	// hold items back (internal/priority).
	gate := priority.New(priority.Options{})
	defer gate.Close()
	a.Admit = gate.Enter
	ingestSrv, err := a.Ingest()
	if err != nil {
		return err
	}
	var async *drain.Async
	if !opt.ingestOnly {
		d, err := a.Drainer(nil)
		if err != nil {
			return err
		}
		async = drain.NewAsync(d)
		async.OnResult = func(res drain.Result, _ error) { stats.drained(res) }
		// A random owner: two dev processes on one Redis must not share
		// the scheduler lease.
		counted := schedule.InvokerFunc(func(ctx context.Context, l queue.Lease) error {
			stats.drains.Add(1)
			return async.Invoke(ctx, l)
		})
		if sched, err = a.Scheduler(counted, "", metrics); err != nil {
			return err
		}
	}

	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/", ingestSrv)
	mux.HandleFunc("POST /webhooks", func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"hookline dev is stopping"}}`+"\n")
			return
		}
		gate.Urgent()
		ingestSrv.ServeHTTP(w, r)
	})
	mux.Handle("GET /_dev/stats", stats)
	if opt.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("POST /_dev/sink/", func(w http.ResponseWriter, r *http.Request) {
		logger.Info("sink", "path", r.URL.Path, "key", r.Header.Get("hookline-key"), "id", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	fmt.Fprintf(out, "hookline dev: config %s, %d routes, lanes %v\n", cfgFrom, len(cfg.Routes), cfg.LaneNames())
	fmt.Fprintf(out, "hookline dev: storage: %s\n", where)
	if embedded {
		statusConfig := cfgFrom
		if builtin {
			// The operator commands read a file: give them the built-in one.
			if statusConfig, err = writeTempConfig(); err != nil {
				return err
			}
			defer os.Remove(statusConfig)
		}
		fmt.Fprintf(out, "hookline dev: HOOKLINE_REDIS_URL=%s (try: HOOKLINE_REDIS_URL=%s hookline status --config %s)\n", redisURL, redisURL, statusConfig)
	}
	if opt.emf != "" {
		fmt.Fprintf(out, "hookline dev: EMF metric lines (namespace %s, Stack %s) go to %s\n", cfg.Metrics.Namespace, cfg.Metrics.Stack, opt.emf)
	}
	if opt.ingestOnly {
		fmt.Fprintln(out, "hookline dev: ingest only: no scheduler, no drains")
	}
	if os.Getenv(config.EnvSigningSecrets) == "" && cfg.Verify.Scheme == config.SchemeStandardWebhooks {
		fmt.Fprintf(out, "hookline dev: local signing secret: %s (for local use only)\n", devSecret)
	}
	fmt.Fprintf(out, "hookline dev: listening on http://%s/webhooks\n", ln.Addr())

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		if sched == nil {
			return // --ingest-only
		}
		// The scheduler runs until ctx ends. While another scheduler holds
		// the lease (a second dev on the same Redis) it stands by inside
		// Run and takes over when that one stops.
		for ctx.Err() == nil {
			if _, err := sched.Run(ctx, time.Time{}); err != nil {
				logger.Error("scheduler", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}

	// A graceful stop: take no new webhook, let the scheduler stop and the
	// drains finish the item in hand (they may be calling dev's own sink,
	// so the HTTP server stays up until then), then stop serving.
	fmt.Fprintln(out, "hookline dev: stopping: new webhooks are refused; drains finish the item in hand")
	stopping.Store(true)
	cancelRun()
	<-schedDone
	if async != nil {
		async.Stop()
		drained := make(chan struct{})
		go func() { async.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(drainStopWait):
			fmt.Fprintf(out, "hookline dev: drains still running after %s; stopping without them (their leases run out)\n", drainStopWait)
		}
	}
	// Requests in flight end first; a connection a client opened but sent
	// nothing on (a keep-alive pool's spare dial) is not waited for.
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if hs.Shutdown(sctx) != nil {
		_ = hs.Close()
	}
	lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	left, err := leftOver(lctx, a.Engine, cfg.LaneNames())
	switch {
	case err != nil:
		fmt.Fprintf(out, "hookline dev: stopped; could not count the items left: %v\n", err)
	case embedded:
		fmt.Fprintf(out, "hookline dev: stopped; %s left in the embedded Redis, gone with it\n", left)
	default:
		fmt.Fprintf(out, "hookline dev: stopped; %s left in %s for the next run\n", left, where)
	}
	return runErr
}

// devSinkHosts are the hosts of dev's default address, which routes to
// dev's own sink name.
var devSinkHosts = []string{"127.0.0.1:8080", "localhost:8080"}

// followAddr points the routes that forward to dev's own sink on its
// default address (as examples/hookline.yaml's order.paid does) at the
// address dev listens on.
func followAddr(cfg *config.Config, addr string) {
	for code, r := range cfg.Routes {
		u, err := url.Parse(r.URL)
		if err != nil || u.Scheme != "http" || !slices.Contains(devSinkHosts, u.Host) || !strings.HasPrefix(u.Path, "/_dev/sink/") {
			continue
		}
		u.Host = addr
		r.URL = u.String()
		cfg.Routes[code] = r
	}
}

// leftover counts what a stopping dev leaves in Redis.
type leftover struct {
	items, keys, dead int64
	exact             bool
}

func (l leftover) String() string {
	approx := ""
	if !l.exact {
		approx = "at least "
	}
	s := fmt.Sprintf("%s%d %s on %d %s", approx, l.items, plural(int(l.items), "item"), l.keys, plural(int(l.keys), "key"))
	if l.dead > 0 {
		s += fmt.Sprintf(" (and %d dead %s)", l.dead, plural(int(l.dead), "letter"))
	}
	return s
}

// leftOver counts the queued items and dead letters of every lane.
func leftOver(ctx context.Context, e *queue.Engine, lanes []string) (leftover, error) {
	l := leftover{exact: true}
	for _, lane := range lanes {
		ld, err := e.LaneLoad(ctx, lane)
		if err != nil {
			return l, err
		}
		l.items += ld.QueuedItems
		l.keys += ld.KeysWithWork
		l.exact = l.exact && ld.ItemsExact
	}
	dead, err := e.DeadKeys(ctx, queue.MaxCountKeys)
	if err != nil {
		return l, err
	}
	for _, d := range dead {
		l.dead += d.Count
	}
	return l, nil
}

// openEMF opens the destination of --emf: a file, created or truncated,
// or stdout for "-".
func openEMF(name string, stdout io.Writer) (io.Writer, func(), error) {
	if name == "-" {
		return stdout, func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, nil, fmt.Errorf("dev: --emf: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// writeTempConfig writes the built-in configuration to a temporary file,
// for the operator commands to read.
func writeTempConfig() (string, error) {
	f, err := os.CreateTemp("", "hookline-dev-*.yaml")
	if err != nil {
		return "", fmt.Errorf("dev: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(builtinDevConfig); err != nil {
		return "", fmt.Errorf("dev: %w", err)
	}
	return f.Name(), nil
}

// withPoolSize adds pool_size=n to a redis:// URL that does not set it.
func withPoolSize(raw string, n int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // app.Redis reports it
	}
	q := u.Query()
	if q.Has("pool_size") {
		return raw
	}
	q.Set("pool_size", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// devLogAttr shortens log lines for a terminal: time of day, no level for
// info.
func devLogAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("time", a.Value.Time().Format("15:04:05.000"))
	case slog.LevelKey:
		if a.Value.String() == slog.LevelInfo.String() {
			return slog.Attr{}
		}
	}
	return a
}

// redactedAddr names the Redis server without credentials.
func redactedAddr(rdb redis.UniversalClient) string {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return fmt.Sprint(c.Options().Addrs)
	}
	return "?"
}

// devGCPercent is dev's GOGC when the environment sets none.
const devGCPercent = 400
