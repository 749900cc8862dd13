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
// Handlers may see an item twice after a crash between handling and ack
// (at-least-once): use Event.ID as the idempotency key, and Event.Token to
// fence writes when a newer holder of the key may exist.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
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
	// RateWait is set by the handler: how long it waited for a rate-limit
	// slot before its call. forward sets it; a custom handler that waits
	// for a limiter of its own may add its waits. The drain reports the
	// handler's time without it (metric HandlerDuration, log ms) and the
	// wait apart (RateWait, rate_wait_ms).
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

// Registry maps handler names used in routes to handlers. It is safe for
// concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Handler
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Handler{}} }

// Register adds h under name. It panics if name is empty, h is nil or the
// name is taken: a programming error, found at start-up.
func (r *Registry) Register(name string, h Handler) {
	if err := r.RegisterSafely(name, h); err != nil {
		panic(err)
	}
}

// RegisterSafely adds h under name, or returns an error if name is empty, h
// is nil or the name is taken.
func (r *Registry) RegisterSafely(name string, h Handler) error {
	if name == "" || h == nil {
		return errors.New("handler: register needs a name and a handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateName, name)
	}
	r.m[name] = h
	return nil
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// Lookup returns the handler registered under name.
func (r *Registry) Lookup(name string) (Handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.m[name]
	return h, ok
}

// Default is the registry the hookline functions resolve custom route
// handlers from. Register your handlers in an init function or in main
// before the function starts.
var Default = NewRegistry()

// Register adds h to Default under name; it panics on a duplicate.
func Register(name string, h Handler) { Default.Register(name, h) }
