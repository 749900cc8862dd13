package builtins

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/redact"
	"github.com/hookline/hookline/shared/handler"
	"github.com/hookline/hookline/shared/webhook"
)

// Log returns the built-in "log" handler: it logs each event's key, id,
// attempt and size at info level and succeeds.
func Log(logger *slog.Logger) handler.Handler {
	return handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
		logger.InfoContext(ctx, "webhook", "key", ev.Key, "id", ev.ID, "attempt", ev.Attempt, "bytes", len(ev.Body))
		return nil
	})
}

// Defaults of ForwardConfig, which NewForward gives its zero fields. The
// configuration's defaults refer to them.
const (
	MaxConnsPerHostDefault = 64
)

// ForwardConfig configures the built-in "forward" handler.
type ForwardConfig struct {
	// URL receives a POST of each webhook's exact body. Required.
	URL string
	// Secret, a Standard Webhooks secret ("whsec_..."), signs each call in
	// the webhook-signature header. Empty: calls are not signed.
	Secret string
	// Headers are added to every call.
	Headers map[string]string
	// Timeout bounds one call: the wait for the answer's headers and the
	// call's context. Default drain.TimeoutDefault.
	Timeout time.Duration
	// MaxConnsPerHost is how many connections the handler opens to one
	// host and keeps alive between calls. Set it to how many calls can be
	// in flight at once in the process: concurrent drains then reuse
	// connections instead of dialing, and a call beyond it waits for a
	// connection to come free. Default MaxConnsPerHostDefault. Ignored
	// when Client is set.
	MaxConnsPerHost int
	// Client makes the calls. Default a client with no overall timeout
	// (Timeout applies per call) over a keep-alive pool shared by every
	// forward handler of the process with the same MaxConnsPerHost and
	// Timeout, so connections outlive a handler and a Lambda invocation.
	Client *http.Client
	// Rate, when N > 0, is the route's rate limit, per (tenant, URL). The
	// drain reserves each call's slot before calling the handler; the
	// handler pushes the bucket through Limiter when the URL answers 429
	// with Retry-After, so every drain sharing the bucket slows down.
	Rate    ratelimit.Rate
	Limiter *ratelimit.Limiter
	// Clock supplies "now" for the signature timestamp. Default wall clock.
	Clock clock.Clock
}

// Forward is the built-in "forward" handler: it POSTs the webhook's exact
// body to a URL.
//
// Each call carries webhook-id, webhook-timestamp, webhook-signature (when a
// secret is set), hookline-key and hookline-attempt. A 2xx answer succeeds;
// 429 and 503 with Retry-After retry not before it (a 429 also pushes the
// rate-limit bucket); 408, 425, 429, 5xx and network errors retry with
// backoff; any other answer is permanent.
type Forward struct {
	cfg      ForwardConfig
	safeURL  string // URL without user info or query, for errors and logs
	endpoint string // the rate-limit endpoint: the full URL, as Route.Endpoint
}

// ForwardFactory returns the handler.Factory of the built-in "forward" handler: a
// route's handler posts to the route's URL, signs with its Secret, adds its
// Headers, bounds each call by its Timeout and pushes its Rate's bucket on an
// upstream 429. base supplies the rest (Limiter, Client, MaxConnsPerHost,
// Clock); its route settings are ignored.
func ForwardFactory(base ForwardConfig) handler.Factory {
	return func(rt handler.Route) (handler.Handler, error) {
		cfg := base
		cfg.URL, cfg.Secret, cfg.Headers, cfg.Timeout, cfg.Rate = rt.URL, rt.Secret, rt.Headers, rt.Timeout, rt.Rate
		return NewForward(cfg)
	}
}

// NewForward returns a forward handler.
func NewForward(cfg ForwardConfig) (*Forward, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("handler: forward: url must be an absolute http or https URL")
	}
	if cfg.Rate.N > 0 && cfg.Limiter == nil {
		return nil, errors.New("handler: forward: a rate needs a limiter")
	}
	if cfg.Secret != "" {
		if _, err := webhook.SignStandard(cfg.Secret, "probe", time.Unix(0, 0), nil); err != nil {
			return nil, errors.New("handler: forward: secret is not a valid Standard Webhooks secret")
		}
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, drain.TimeoutDefault)
	cfg.MaxConnsPerHost = cmp.Or(cfg.MaxConnsPerHost, MaxConnsPerHostDefault)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: sharedTransport(poolKey{perHost: cfg.MaxConnsPerHost, headerTimeout: cfg.Timeout})}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Forward{cfg: cfg, safeURL: redact.URL(u), endpoint: cfg.URL}, nil
}

// poolKey identifies the settings of a forward connection pool.
type poolKey struct {
	perHost       int           // connections per host, in use or idle
	headerTimeout time.Duration // the wait for response headers: the call timeout
}

// pools holds the process's forward connection pools, one per poolKey. A
// configuration names few keys, so the map stays small and is never pruned;
// idle connections close after IdleConnTimeout.
var pools struct {
	sync.Mutex
	m map[poolKey]*http.Transport
}

// sharedTransport returns the process's transport for k, creating it on
// first use.
func sharedTransport(k poolKey) *http.Transport {
	pools.Lock()
	defer pools.Unlock()
	if t, ok := pools.m[k]; ok {
		return t
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: k.headerTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   k.perHost,
		// A limit equal to the idle one: with none, a call that finds no
		// idle connection dials even when another call is about to return
		// one, and concurrent callers end up opening more connections
		// than there are callers.
		MaxConnsPerHost: k.perHost,
		// No overall idle limit: the per-host one times the few hosts a
		// configuration forwards to bounds it, and a smaller cap would close
		// one host's warm connections to keep another's.
		MaxIdleConns: 0,
	}
	if pools.m == nil {
		pools.m = make(map[poolKey]*http.Transport)
	}
	pools.m[k] = t
	return t
}

// Handle forwards one event. It does not wait for the rate limit: the drain
// reserves the call's slot before calling it.
func (f *Forward) Handle(ctx context.Context, ev *handler.Event) error {
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > f.cfg.Timeout {
		// The drain bounds every call by the route's timeout already; this
		// is for a caller that did not.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(ev.Body))
	if err != nil {
		return handler.Permanent(fmt.Errorf("forward %s: %w", f.safeURL, err))
	}
	now := f.cfg.Clock.Now()
	req.Header.Set("Content-Type", "application/json")
	for k, v := range f.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("webhook-id", ev.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	if f.cfg.Secret != "" {
		sig, err := webhook.SignStandard(f.cfg.Secret, ev.ID, now, ev.Body)
		if err != nil {
			return handler.Permanent(fmt.Errorf("forward %s: sign: %w", f.safeURL, err))
		}
		req.Header.Set("webhook-signature", sig)
	}
	req.Header.Set("hookline-key", ev.Key)
	req.Header.Set("hookline-attempt", strconv.Itoa(ev.Attempt))

	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		// Network errors and timeouts: retry with backoff. url.Error repeats
		// the full URL, so report the redacted one and keep the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("forward %s: %w", f.safeURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused

	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	failure := fmt.Errorf("forward %s: HTTP %d", f.safeURL, code)
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
			if code == http.StatusTooManyRequests && f.cfg.Rate.N > 0 {
				if err := f.cfg.Limiter.Push(ctx, ev.Tenant, f.endpoint, f.cfg.Rate, now.Add(d)); err != nil {
					return fmt.Errorf("%w (and pushing the rate limit failed: %w)", failure, err)
				}
			}
			return handler.RetryAfter(d, failure)
		}
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		return failure
	}
	return handler.Permanent(failure)
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
