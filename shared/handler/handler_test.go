package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/ratelimit"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	h := HandlerFunc(func(context.Context, *Event) error { return nil })
	r.Register("log", h)
	if err := r.RegisterSafely("log", h); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate RegisterSafely = %v", err)
	}
	if err := r.RegisterSafely("", h); err == nil {
		t.Fatal("empty name accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate Register did not panic")
		}
	}()
	if got, ok := r.Lookup("log"); !ok || got == nil {
		t.Fatal("lookup failed")
	}
	r.Register("crm", h)
	if names := r.Names(); len(names) != 2 || names[0] != "crm" || names[1] != "log" {
		t.Fatalf("names %v", names)
	}
	if err := h.Handle(context.Background(), &Event{ID: "msg_1"}); err != nil {
		t.Fatal(err)
	}
	r.Register("log", h)
}

func TestErrorWrappers(t *testing.T) {
	cause := errors.New("boom")
	for _, err := range []error{Permanent(cause), RetryAfter(time.Second, cause)} {
		if !errors.Is(err, cause) || !strings.Contains(err.Error(), "boom") {
			t.Errorf("%v does not wrap its cause", err)
		}
	}
	if !strings.Contains(Throttled(time.Unix(0, 0)).Error(), "1970-01-01T00:00:00Z") {
		t.Error("Throttled message lacks its time")
	}
}

// TestRegistryFactories: a factory builds each route's handler from the
// route's settings; a plain handler serves every route naming it; names are
// shared between the two forms; a factory's error or nil handler comes back
// from Build.
func TestRegistryFactories(t *testing.T) {
	r := NewRegistry()
	var built []Route
	r.RegisterFactory("crm", func(rt Route) (Handler, error) {
		built = append(built, rt)
		if rt.URL == "" {
			return nil, errors.New("crm needs a url")
		}
		return HandlerFunc(func(context.Context, *Event) error { return nil }), nil
	})
	r.RegisterFactory("broken", func(Route) (Handler, error) { return nil, nil })
	plain := HandlerFunc(func(context.Context, *Event) error { return nil })
	r.Register("plain", plain)

	rt := Route{Code: "c.a", Lane: "quick", Handler: "crm", URL: "https://crm.example/api",
		Rate: ratelimit.Rate{N: 2, Per: time.Second}, Timeout: 3 * time.Second, Secret: "s", Headers: map[string]string{"X": "y"}}
	if h, ok, err := r.Build(rt); !ok || err != nil || h == nil {
		t.Fatalf("Build(crm) = %v %v %v", h, ok, err)
	}
	if len(built) != 1 || built[0].URL != rt.URL || built[0].Rate != rt.Rate || built[0].Timeout != rt.Timeout || built[0].Secret != "s" || built[0].Code != "c.a" || built[0].Lane != "quick" {
		t.Fatalf("the factory got %+v, want %+v", built, rt)
	}
	if _, ok, err := r.Build(Route{Handler: "crm"}); !ok || err == nil || err.Error() != "crm needs a url" {
		t.Fatalf("a factory's error: %v %v", ok, err)
	}
	if _, ok, err := r.Build(Route{Handler: "broken"}); !ok || err == nil || !strings.Contains(err.Error(), `"broken" returned no handler`) {
		t.Fatalf("a factory returning nil: %v %v", ok, err)
	}
	if h, ok, err := r.Build(Route{Handler: "plain"}); !ok || err != nil || h == nil {
		t.Fatalf("Build(plain) = %v %v %v", h, ok, err)
	}
	if _, ok, err := r.Build(Route{Handler: "nope"}); ok || err != nil {
		t.Fatalf("Build(nope) = %v %v, want not found", ok, err)
	}
	// Lookup finds plain handlers only: a factory has none until a route
	// builds one.
	if _, ok := r.Lookup("crm"); ok {
		t.Fatal("Lookup found a factory")
	}
	if h, ok := r.Lookup("plain"); !ok || h == nil {
		t.Fatal("Lookup lost a plain handler")
	}
	if err := r.RegisterFactorySafely("plain", func(Route) (Handler, error) { return plain, nil }); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("a factory under a handler's name: %v", err)
	}
	if err := r.RegisterSafely("crm", plain); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("a handler under a factory's name: %v", err)
	}
	if err := r.RegisterFactorySafely("x", nil); err == nil {
		t.Fatal("nil factory accepted")
	}
	if err := r.RegisterFactorySafely("", func(Route) (Handler, error) { return plain, nil }); err == nil {
		t.Fatal("empty name accepted")
	}
	if names := r.Names(); !slices.Equal(names, []string{"broken", "crm", "plain"}) {
		t.Fatalf("names %v", names)
	}
}

// TestRouteEndpointAndRedaction: a route's rate-limit endpoint is its URL,
// else its handler name; printing or logging a route shows no credential.
func TestRouteEndpointAndRedaction(t *testing.T) {
	rt := Route{Code: "c", Handler: "crm", URL: "https://user:pw@crm.example/api?token=tok3n", Secret: "whsec_s3cr3t",
		Headers: map[string]string{"Authorization": "Bearer b34rer"}, Rate: ratelimit.Rate{N: 2, Per: time.Second}}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("route", "route", rt)
	for _, out := range []string{fmt.Sprint(rt), fmt.Sprintf("%+v", rt), fmt.Sprintf("%v", &rt), logs.String()} {
		for _, secret := range []string{"pw", "tok3n", "s3cr3t", "b34rer"} {
			if strings.Contains(out, secret) {
				t.Errorf("%q shows %s", out, secret)
			}
		}
		if !strings.Contains(out, "https://crm.example/api") || !strings.Contains(out, "Authorization") || !strings.Contains(out, "2/1s") {
			t.Errorf("%q lacks the route's url, header names or rate", out)
		}
	}
	if e := (Route{Handler: "forward", URL: "https://a.example/x"}).Endpoint(); e != "https://a.example/x" {
		t.Fatalf("with a url: %q", e)
	}
	if e := (Route{Handler: "crm-sync"}).Endpoint(); e != "crm-sync" {
		t.Fatalf("without a url: %q", e)
	}
}
