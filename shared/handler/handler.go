// Package handler is the API hookline's drains call to process webhooks: the
// Handler interface, the errors that steer retries, a registry of named
// handlers, and the built-in handlers "forward" and "log".
//
// A handler receives one Event at a time, in order per key. What it returns
// decides what happens next:
//
//	nil                   the item is done and removed from its queue
//	Permanent(err)        no retry: the route's on_exhausted policy applies now
//	RetryAfter(d, err)    retried in place, not before d (its key waits)
//	Throttled(at)         not a failure: the key yields until at, no attempt used
//	any other error       retried in place with exponential backoff
//	a panic               recovered by the drain, retried like an error
//
// Routes name handlers. Register puts a handler under a name, shared by
// every route naming it; RegisterFactory puts a Factory there instead, which
// builds each route's handler from the route's settings (Route: url, rate,
// timeout, secret, headers). Either way the drain enforces the route's rate
// limit and timeout around every call, so a handler need not.
//
// Handlers may see an item twice after a crash between handling and ack
// (at-least-once): use Event.ID as the idempotency key, and Event.Token to
// fence writes when a newer holder of the key may exist.
package handler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/redact"
)

// Event is one webhook handed to a handler.
type Event struct {
	// ID is the webhook id: stable across retries, the idempotency key.
	ID string
	// Key is "<tenant>:<code>".
	Key    string
	Tenant string
	Code   string
	// Body is the raw request body exactly as received.
	Body []byte
	// Data is the "data" member of the body.
	Data json.RawMessage
	// Headers are the request headers ingest kept, lower-case names.
	Headers map[string]string
	// ReceivedAt is when ingest accepted the webhook.
	ReceivedAt time.Time
	// Attempt counts from 1 for the first try of this item.
	Attempt int
	// Token is the fencing token of the drain's lease: it grows with every
	// claim of the key, so a downstream system can refuse writes carrying a
	// token older than one it has seen.
	Token int64
	// RateWait is how long the call waited for a rate-limit slot: the
	// drain sets it to its wait for the route's rate before the call, and a
	// handler that waits for a limiter of its own may add its waits. The
	// drain reports the handler's time without it (metric HandlerDuration,
	// log ms) and the wait apart (RateWait, rate_wait_ms).
	RateWait time.Duration
}

// Handler processes events.
type Handler interface {
	Handle(ctx context.Context, ev *Event) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, ev *Event) error

// Handle calls f(ctx, ev).
func (f HandlerFunc) Handle(ctx context.Context, ev *Event) error { return f(ctx, ev) }

// PermanentError marks a failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + errString(e.Err) }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the item is not retried: the route's
// on_exhausted policy (dead-letter or park) applies at once.
func Permanent(err error) error { return &PermanentError{Err: err} }

// RetryAfterError asks for a retry not before Delay from now.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %v: %s", e.Delay, errString(e.Err))
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the item is retried in place no sooner than d
// from now; the attempt counts towards max_attempts.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Delay: d, Err: err} }

// ThrottledError says the handler may not make its call before At (a rate
// limit); it is not a failure.
type ThrottledError struct{ At time.Time }

func (e *ThrottledError) Error() string {
	return "throttled until " + e.At.UTC().Format(time.RFC3339Nano)
}

// Throttled tells the drain to yield the key until at without counting an
// attempt, instead of sleeping in a billed function.
func Throttled(at time.Time) error { return &ThrottledError{At: at} }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// ErrDuplicateName reports a second registration of a handler name.
var ErrDuplicateName = errors.New("handler: name already registered")

// Rate is a rate limit: at most N calls per Per ("2/s" in the
// configuration). Its String, N and Per say what the route allows.
type Rate = ratelimit.Rate

// Route is a configured route as a handler factory sees it: the settings of
// the route's entry in the configuration file, with "env:NAME" values
// already read from the environment.
//
// The drain applies Rate and Timeout to every handler, whether it reads them
// or not: it reserves a rate-limit slot before each call and cancels the
// call's context after Timeout. A factory reads the route to build a handler
// that needs its settings, such as a URL to call or a secret to sign with.
type Route struct {
	// Code is the event code the route serves.
	Code string
	// Lane is the lane the route's keys are drained on.
	Lane string
	// Handler is the handler name the route names, the name the factory was
	// registered under.
	Handler string
	// URL is the route's url setting; "" when it has none.
	URL string
	// Rate is the route's rate limit; the zero Rate is no limit. The drain
	// holds each call until a slot of the bucket (tenant, Endpoint()) is
	// free, so the handler need not; a long wait yields the key instead.
	Rate Rate
	// Timeout is the route's timeout, its default applied when the file
	// sets none: the drain cancels a call's context when it runs out.
	Timeout time.Duration
	// Secret is the route's secret; "" when it has none. It is a credential:
	// never log it or put it in an error.
	Secret string
	// Headers are the route's headers setting; nil when it has none. Their
	// values may be credentials.
	Headers map[string]string
}

// Endpoint returns the endpoint of the route's rate limit: its URL, or for a
// route without one the handler name. A limit is per (tenant, endpoint), so
// the routes of one tenant that share an endpoint share one bucket: every
// route forwarding to one URL, or every route of one handler without a URL.
// A handler name never contains "://", so it never names a URL's bucket.
func (r Route) Endpoint() string { return cmp.Or(r.URL, r.Handler) }

// String describes the route without its secret, its header values and
// its URL's query and user info, so that printing a Route with %v or %+v
// never shows a credential.
func (r Route) String() string {
	secret := ""
	if r.Secret != "" {
		secret = "[redacted]"
	}
	names := slices.Sorted(maps.Keys(r.Headers))
	return fmt.Sprintf("{Code:%s Lane:%s Handler:%s URL:%s Rate:%d/%v Timeout:%v Secret:%s Headers:%v}",
		r.Code, r.Lane, r.Handler, redact.URLString(r.URL), r.Rate.N, r.Rate.Per, r.Timeout, secret, names)
}

// LogValue logs the route as String describes it.
func (r Route) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Factory builds the handler of one route. It is called once per route when
// a function starts; an error stops the function there, naming the route.
type Factory func(Route) (Handler, error)

// Registry maps handler names used in routes to handlers and handler
// factories. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]entry
}

// entry is one registration: a handler shared by every route naming it, or
// a factory that builds one per route.
type entry struct {
	h Handler
	f Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]entry{}} }

// Register adds h under name; every route naming it shares h. It panics if
// name is empty, h is nil or the name is taken: a programming error, found
// at start-up.
func (r *Registry) Register(name string, h Handler) {
	if err := r.RegisterSafely(name, h); err != nil {
		panic(err)
	}
}

// RegisterSafely adds h under name, or returns an error if name is empty, h
// is nil or the name is taken.
func (r *Registry) RegisterSafely(name string, h Handler) error {
	if h == nil {
		return errors.New("handler: register needs a name and a handler")
	}
	return r.add(name, entry{h: h})
}

// RegisterFactory adds f under name: each route naming it gets the handler
// f builds from the route's settings. It panics if name is empty, f is nil
// or the name is taken: a programming error, found at start-up.
func (r *Registry) RegisterFactory(name string, f Factory) {
	if err := r.RegisterFactorySafely(name, f); err != nil {
		panic(err)
	}
}

// RegisterFactorySafely adds f under name, or returns an error if name is
// empty, f is nil or the name is taken.
func (r *Registry) RegisterFactorySafely(name string, f Factory) error {
	if f == nil {
		return errors.New("handler: register needs a name and a factory")
	}
	return r.add(name, entry{f: f})
}

func (r *Registry) add(name string, e entry) error {
	if name == "" {
		return errors.New("handler: register needs a name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateName, name)
	}
	r.m[name] = e
	return nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// Lookup returns the handler registered under name with Register. A name
// registered with RegisterFactory has no handler until a route builds one:
// Lookup reports it as not found; use Build.
func (r *Registry) Lookup(name string) (Handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	return e.h, ok && e.h != nil
}

// Build returns the handler for route rt, registered under rt.Handler: the
// registered handler itself, or what its factory builds from rt. ok is
// false when the name is not registered; err is the factory's error.
func (r *Registry) Build(rt Route) (h Handler, ok bool, err error) {
	r.mu.RLock()
	e, ok := r.m[rt.Handler]
	r.mu.RUnlock()
	switch {
	case !ok:
		return nil, false, nil
	case e.h != nil:
		return e.h, true, nil
	}
	if h, err = e.f(rt); err == nil && h == nil {
		err = fmt.Errorf("handler: the factory of %q returned no handler", rt.Handler)
	}
	return h, true, err
}

// Default is the registry the hookline functions resolve custom route
// handlers from. Register your handlers in an init function or in main
// before the function starts.
var Default = NewRegistry()

// Register adds h to Default under name; it panics on a duplicate.
func Register(name string, h Handler) { Default.Register(name, h) }

// RegisterFactory adds f to Default under name; it panics on a duplicate.
func RegisterFactory(name string, f Factory) { Default.RegisterFactory(name, f) }
