// Package app assembles hookline's parts from a configuration: the Redis
// client, the engine, the ingest server, the routes with their handlers, the
// drainer and the scheduler. The three Lambda functions and `hookline dev`
// build themselves through it, so they run the same code. A drain function
// with Go handlers of its own is a main that registers them (package
// handler) and calls StartDrain.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/hookline/hookline/internal/builtins"
	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/handler"
	"github.com/hookline/hookline/shared/webhook"
	"github.com/redis/go-redis/v9"
)

// App holds the parts every function needs.
type App struct {
	Config *config.Config
	Redis  redis.UniversalClient
	Engine *queue.Engine
	Logger *slog.Logger
	Clock  clock.Clock
	// Metrics receives the EMF lines of the ingest server and the drainers
	// built afterwards (see Emitter); nil: none.
	Metrics *telemetry.Emitter
	// Admit, when set, is given to the drainers built afterwards
	// (drain.Options.Admit): `hookline dev` holds items back with it while
	// webhooks need the CPU (internal/priority).
	Admit func(context.Context) func()
	// local, when set, is how ingest and drains built afterwards wake the
	// scheduler in this process (`hookline dev`); unset, they signal it
	// through Redis (Engine.Wake), as the Lambda functions do.
	local func()
}

// WakeLocally makes the ingest server and drainers built afterwards wake an
// in-process scheduler with notify (its Notify method), and schedulers
// built afterwards wait for that instead of the Redis wake signal.
func (a *App) WakeLocally(notify func()) { a.local = notify }

// wake tells the scheduler there is new work or free capacity.
func (a *App) wake(ctx context.Context) {
	if a.local != nil {
		a.local()
		return
	}
	if err := a.Engine.Wake(ctx); err != nil {
		a.Logger.WarnContext(ctx, "waking the scheduler failed; it polls anyway", "err", err)
	}
}

// NewWith builds the engine over an existing Redis client.
func NewWith(cfg *config.Config, rdb redis.UniversalClient, logger *slog.Logger) (*App, error) {
	if logger == nil {
		logger = slog.Default()
	}
	e, err := queue.New(rdb, queueOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return &App{Config: cfg, Redis: rdb, Engine: e, Logger: logger, Clock: clock.Real{}}, nil
}

// queueOptions returns the queue engine options cfg implies. Fields it does
// not set (backoff, clock, jitter) take the engine's defaults. Like every
// mapping from the configuration to a part's options, it lives here, so the
// configuration knows only its settings.
func queueOptions(cfg *config.Config) queue.Options {
	return queue.Options{
		Prefix:      cfg.Prefix,
		Shards:      cfg.Shards,
		Lanes:       cfg.LaneNames(),
		DedupWindow: time.Duration(cfg.DedupWindow),
		LeaseTTL:    time.Duration(cfg.Drain.LeaseTTL),
		ClaimTTL:    time.Duration(cfg.Drain.ClaimTTL),
		MaxBatch:    cfg.Drain.Batch,

		DeadLetterMax:       cfg.DeadLetters.MaxPerKey,
		DeadLetterRetention: time.Duration(cfg.DeadLetters.Retention),
	}
}

// Emitter returns an EMF emitter writing to w (os.Stdout in Lambda) in the
// configured namespace, with the configured stack as the Stack dimension
// of every metric.
func (a *App) Emitter(w io.Writer) *telemetry.Emitter {
	return telemetry.New(w, telemetry.Options{
		Namespace:  a.Config.Metrics.Namespace,
		Dimensions: map[string]string{"Stack": a.Config.Metrics.Stack},
		Clock:      a.Clock,
	})
}

// Redis returns a client for r, with the password of its URL if any: a
// cluster client when r.Cluster is set, TLS for rediss://. Lambda functions
// use LoadLambda, which adds AUTH tokens and IAM authentication.
func Redis(r config.Redis) (redis.UniversalClient, error) {
	return RedisClient(r, RedisAuth{})
}

// Verifier returns the signature verifier cfg asks for.
func Verifier(cfg *config.Config) (webhook.Verifier, error) {
	switch cfg.Verify.Scheme {
	case config.SchemeNone:
		return webhook.NoVerify{}, nil
	case config.SchemeHMAC:
		return webhook.NewHMAC(webhook.HMACConfig{Header: cfg.Verify.Header, Encoding: cfg.Verify.Encoding, Prefix: cfg.Verify.Prefix}, cfg.SigningSecrets)
	}
	return webhook.NewStandard(cfg.SigningSecrets, time.Duration(cfg.Verify.Tolerance))
}

// Ingest returns the ingest server. Signing secrets are required unless the
// configuration says verify: none.
func (a *App) Ingest() (*ingest.Server, error) {
	if err := a.Config.RequireSigningSecrets(); err != nil {
		return nil, err
	}
	v, err := Verifier(a.Config)
	if err != nil {
		return nil, fmt.Errorf("app: %s: %w", config.EnvSigningSecrets, err)
	}
	return ingest.New(ingest.Options{
		Engine:        a.Engine,
		Verifier:      v,
		TenantPointer: a.Config.Tenant,
		MaxBody:       a.Config.MaxBody,
		Lane: func(code string) (string, bool) {
			r, ok := a.Config.Route(code)
			return r.Lane, ok
		},
		KeepHeaders: func(code string) []string {
			r, _ := a.Config.Route(code)
			return r.KeepHeaders
		},
		Clock:   a.Clock,
		Logger:  a.Logger,
		Metrics: a.Metrics,
		OnReady: a.wake,
	})
}

// Routes builds the drain routes of the configuration: forward and log are
// built in; any other handler name is looked up in reg (handler.Default when
// nil), as a handler or a factory given the route's settings. An unknown
// handler name, or a factory's error, is an error at start-up.
//
// Every route gets its rate limit and timeout applied by the drain, whatever
// its handler: the limit is per (tenant, handler.Route.Endpoint), the route's
// url or, without one, its handler name.
//
// Forward handlers keep as many connections per host as the lanes'
// concurrencies add up to: in one process (hookline dev) every lane's drains
// may call the same host at once, so the sum, not the largest lane, is how
// many calls can need a connection together. A Lambda environment runs one
// drain at a time and uses one connection, which its later invocations reuse.
func (a *App) Routes(reg *handler.Registry) (func(code string) (drain.Route, bool), error) {
	routes, _, err := a.routes(reg)
	if err != nil {
		return nil, err
	}
	return routes, nil
}

// routes is Routes, also returning the limiter the routes' rates need.
func (a *App) routes(reg *handler.Registry) (func(code string) (drain.Route, bool), *ratelimit.Limiter, error) {
	if reg == nil {
		reg = handler.Default
	}
	conns := 0
	for _, l := range a.Config.Lanes {
		conns += l.Concurrency
	}
	lim, err := ratelimit.New(a.Redis, ratelimit.Options{Prefix: a.Config.Prefix, Clock: a.Clock, Margin: time.Duration(a.Config.Drain.RateMargin)})
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	builtin := handler.NewRegistry()
	builtin.Register(config.HandlerLog, builtins.Log(a.Logger))
	builtin.RegisterFactory(config.HandlerForward, builtins.ForwardFactory(builtins.ForwardConfig{
		Limiter: lim, Clock: a.Clock, MaxConnsPerHost: conns,
	}))
	routes := make(map[string]drain.Route, len(a.Config.Routes))
	for code, rc := range a.Config.Routes {
		hr := handler.Route{
			Code: code, Lane: rc.Lane, Handler: rc.Handler, URL: rc.URL, Rate: rc.Rate,
			Timeout: time.Duration(rc.Timeout), Secret: rc.Secret, Headers: rc.Headers,
		}
		from := builtin
		if !slices.Contains(builtin.Names(), rc.Handler) {
			from = reg
		}
		h, ok, err := from.Build(hr)
		switch {
		case !ok:
			known := slices.Concat(builtin.Names(), reg.Names())
			return nil, nil, a.Config.SettingError(config.RouteSetting(code, "handler"),
				fmt.Sprintf("%q is neither built in (forward, log) nor registered", rc.Handler), config.DidYouMean(rc.Handler, known))
		case err != nil:
			return nil, nil, fmt.Errorf("app: routes.%s: %w", code, err)
		}
		routes[code] = drain.Route{Handler: h, MaxAttempts: rc.MaxAttempts, Policy: rc.OnExhausted,
			Rate: hr.Rate, Endpoint: hr.Endpoint(), Timeout: hr.Timeout}
	}
	return func(code string) (drain.Route, bool) {
		r, ok := routes[code]
		return r, ok
	}, lim, nil
}

// Drainer returns the drainer, with the handlers of reg for custom routes.
func (a *App) Drainer(reg *handler.Registry) (*drain.Drainer, error) {
	routes, lim, err := a.routes(reg)
	if err != nil {
		return nil, err
	}
	quantum := make(map[string]time.Duration, len(a.Config.Lanes))
	for name, l := range a.Config.Lanes {
		quantum[name] = time.Duration(l.Quantum)
	}
	return drain.New(a.Engine, drain.Options{
		Routes:  routes,
		Quantum: quantum,
		Batch:   a.Config.Drain.Batch,
		Margin:  time.Duration(a.Config.Drain.Margin),
		Limiter: lim,
		// The drain waits for every route's rate-limit slot, whatever its
		// handler, up to this long.
		MaxRateWait: time.Duration(a.Config.Drain.MaxRateWait),
		Clock:       a.Clock,
		Logger:      a.Logger,
		Metrics:     a.Metrics,
		Wake:        a.wake,
		Admit:       a.Admit,
	})
}

// Scheduler returns a scheduler dispatching through inv, identified by owner
// (an invocation id), emitting metrics to metrics when not nil (usually
// a.Metrics).
func (a *App) Scheduler(inv schedule.Invoker, owner string, metrics *telemetry.Emitter) (*schedule.Scheduler, error) {
	caps := make(map[string]int, len(a.Config.Lanes))
	for name, l := range a.Config.Lanes {
		caps[name] = l.Concurrency
	}
	s := a.Config.Scheduler
	return schedule.New(a.Engine, inv, schedule.Options{
		Lanes:        caps,
		Poll:         time.Duration(s.Poll),
		RedisWake:    a.local == nil,
		Margin:       time.Duration(s.Margin),
		MetricsEvery: time.Duration(s.MetricsEvery),
		SingletonTTL: time.Duration(s.LeaseTTL),
		Owner:        owner,
		Clock:        a.Clock,
		Logger:       a.Logger,
		Metrics:      metrics,
		RouteLane: func(code string) (string, bool) {
			r, ok := a.Config.Route(code)
			return r.Lane, ok
		},
	})
}

// Close releases the Redis client.
func (a *App) Close() error { return a.Redis.Close() }

// Ping checks Redis, for start-up logs.
func (a *App) Ping(ctx context.Context) error { return a.Engine.Ping(ctx) }
