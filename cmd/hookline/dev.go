package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/config"
	"github.com/hookline/hookline/shared/drain"
	"github.com/hookline/hookline/shared/schedule"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// defaultDevConfig is the configuration `hookline dev` loads when neither
// --config nor HOOKLINE_CONFIG names one.
const defaultDevConfig = "examples/hookline.yaml"

func newDevCmd() *cobra.Command {
	var addr, cfgPath string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline locally: ingest, scheduler and drains in one process",
		Long: `Runs the ingest HTTP handler on a local port, the scheduler loop, and drains
invoked in-process through the same code the Lambda functions run.

Redis is HOOKLINE_REDIS_URL when set, otherwise an embedded in-process Redis
(nothing to install; its data is gone when dev stops). Webhooks are verified
with HOOKLINE_SIGNING_SECRETS, or with a local development secret printed at
start, which ` + "`hookline send`" + ` uses for localhost by default.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), addr, cfgPath)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to serve ingest on (port 0 picks a free one)")
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file (default $HOOKLINE_CONFIG, else "+defaultDevConfig+")")
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

func runDev(ctx context.Context, out io.Writer, addr, cfgPath string) error {
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: devLogAttr}))
	getenv := devEnv(cfgPath)
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	var rdb redis.UniversalClient
	where := ""
	if cfg.Redis.URL != "" {
		if rdb, err = app.Redis(cfg.Redis); err != nil {
			return err
		}
		where = "Redis at " + redactedAddr(rdb)
	} else {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("dev: embedded Redis: %w", err)
		}
		defer mr.Close()
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		where = "embedded Redis (in-process; set HOOKLINE_REDIS_URL to use your own)"
	}
	a, err := app.NewWith(cfg, rdb, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Ping(ctx); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	var sched *schedule.Scheduler
	a.WakeLocally(func() { sched.Notify() })
	ingestSrv, err := a.Ingest()
	if err != nil {
		return err
	}
	d, err := a.Drainer(nil)
	if err != nil {
		return err
	}
	async := drain.NewAsync(d)
	// A random owner: two dev processes on one Redis must not share the lease.
	if sched, err = a.Scheduler(async, "", nil); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/", ingestSrv)
	mux.HandleFunc("POST /_dev/sink/", func(w http.ResponseWriter, r *http.Request) {
		logger.Info("sink", "path", r.URL.Path, "key", r.Header.Get("hookline-key"), "id", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dev: listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	fmt.Fprintf(out, "hookline dev: config %s, %d routes, lanes %v\n", getenv(config.EnvConfig), len(cfg.Routes), cfg.LaneNames())
	fmt.Fprintf(out, "hookline dev: storage: %s\n", where)
	if os.Getenv(config.EnvSigningSecrets) == "" && cfg.Verify.Scheme == config.SchemeStandardWebhooks {
		fmt.Fprintf(out, "hookline dev: local signing secret: %s (for local use only)\n", devSecret)
	}
	fmt.Fprintf(out, "hookline dev: listening on http://%s/webhooks\n", ln.Addr())

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	go func() {
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
	async.Stop()
	async.Wait()
	_ = hs.Shutdown(sctx)
	return nil
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
