package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/config"
	"github.com/hookline/hookline/shared/drain"
	"github.com/hookline/hookline/shared/queue"
	"github.com/hookline/hookline/shared/redisstats"
	"github.com/hookline/hookline/shared/schedule"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// defaultDevConfig is the configuration `hookline dev` loads when neither
// --config nor HOOKLINE_CONFIG names one.
const defaultDevConfig = "examples/hookline.yaml"

// devOptions are the flags of `hookline dev`.
type devOptions struct {
	addr, cfgPath string
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

GET /_dev/stats answers {"redis_round_trips", "drain_invocations",
"items_handled"}: the Redis round trips of this process (one per command sent
alone, one per pipeline), the drains the scheduler started, and the items
they handled successfully (counted as each drain ends). Benchmarks read it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), opt)
		},
	}
	cmd.Flags().StringVar(&opt.addr, "addr", "127.0.0.1:8080", "address to serve ingest on (port 0 picks a free one)")
	cmd.Flags().StringVar(&opt.cfgPath, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultDevConfig+")")
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

// devStats are the counters GET /_dev/stats reports.
type devStats struct {
	trips  redisstats.Counter
	drains atomic.Int64
	items  atomic.Int64
}

func (st *devStats) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{
		"redis_round_trips": st.trips.RoundTrips(),
		"drain_invocations": st.drains.Load(),
		"items_handled":     st.items.Load(),
	})
}

func runDev(ctx context.Context, out io.Writer, opt devOptions) error {
	level := slog.LevelInfo
	if opt.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level, ReplaceAttr: devLogAttr}))
	getenv := devEnv(opt.cfgPath)
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	var rdb redis.UniversalClient
	where := ""
	// Every drain and every in-flight webhook of this one process may hold
	// a connection at once: size the pool to that, not to go-redis's
	// default of 10 per CPU, so nobody waits for a connection.
	pool := 64
	for _, l := range cfg.Lanes {
		pool += 2 * l.Concurrency
	}
	if cfg.Redis.URL != "" {
		r := cfg.Redis
		r.URL = withPoolSize(r.URL, pool)
		if rdb, err = app.Redis(r); err != nil {
			return err
		}
		where = "Redis at " + redactedAddr(rdb)
	} else {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("dev: embedded Redis: %w", err)
		}
		defer mr.Close()
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: pool})
		where = "embedded Redis (in-process; set HOOKLINE_REDIS_URL to use your own)"
	}
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
	var sched *schedule.Scheduler
	a.WakeLocally(func() {
		if sched != nil { // nil with --ingest-only
			sched.Notify()
		}
	})
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
		async.OnResult = func(res drain.Result, _ error) { stats.items.Add(int64(res.Handled)) }
		// A random owner: two dev processes on one Redis must not share
		// the scheduler lease.
		counted := schedule.InvokerFunc(func(ctx context.Context, l queue.Lease) error {
			stats.drains.Add(1)
			return async.Invoke(ctx, l)
		})
		if sched, err = a.Scheduler(counted, "", nil); err != nil {
			return err
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/", ingestSrv)
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
	ln, err := net.Listen("tcp", opt.addr)
	if err != nil {
		return fmt.Errorf("dev: listen on %s: %w", opt.addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	fmt.Fprintf(out, "hookline dev: config %s, %d routes, lanes %v\n", getenv(config.EnvConfig), len(cfg.Routes), cfg.LaneNames())
	fmt.Fprintf(out, "hookline dev: storage: %s\n", where)
	if opt.ingestOnly {
		fmt.Fprintln(out, "hookline dev: ingest only: no scheduler, no drains")
	}
	if os.Getenv(config.EnvSigningSecrets) == "" && cfg.Verify.Scheme == config.SchemeStandardWebhooks {
		fmt.Fprintf(out, "hookline dev: local signing secret: %s (for local use only)\n", devSecret)
	}
	fmt.Fprintf(out, "hookline dev: listening on http://%s/webhooks\n", ln.Addr())

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	go func() {
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
		errc <- nil
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	fmt.Fprintln(out, "hookline dev: stopping")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Drains first: they may be calling dev's own sink.
	if async != nil {
		async.Stop()
		async.Wait()
	}
	_ = hs.Shutdown(sctx)
	return nil
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
