package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hookline/hookline/shared/handler"
)

// A handler that a user writes for the "invoice.paid" route: it decodes the
// webhook's data and steers retries by the error it returns.
func Example() {
	reg := handler.NewRegistry()
	reg.Register("invoice-paid", handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
		var data struct {
			Invoice string `json:"invoice"`
			Amount  int    `json:"amount"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			return handler.Permanent(fmt.Errorf("bad payload: %w", err)) // retrying cannot fix it
		}
		if data.Amount < 0 {
			return handler.RetryAfter(time.Minute, errors.New("ledger not ready"))
		}
		// ev.ID is stable across retries: use it as the idempotency key.
		fmt.Printf("booked %s for %d (key %s, id %s, attempt %d)\n", data.Invoice, data.Amount, ev.Key, ev.ID, ev.Attempt)
		return nil
	}))

	h, _ := reg.Lookup("invoice-paid")
	err := h.Handle(context.Background(), &handler.Event{
		ID: "msg_1", Key: "acme:invoice.paid", Tenant: "acme", Code: "invoice.paid",
		Data: json.RawMessage(`{"invoice":"INV-7","amount":1200}`), Attempt: 1,
	})
	fmt.Println("error:", err)
	// Output:
	// booked INV-7 for 1200 (key acme:invoice.paid, id msg_1, attempt 1)
	// error: <nil>
}

// A factory builds one handler per route from the route's settings; the
// drain applies the route's rate and timeout around every call, so the
// handler only reads what it needs, here the url.
func ExampleRegistry_RegisterFactory() {
	reg := handler.NewRegistry()
	reg.RegisterFactory("crm-sync", func(rt handler.Route) (handler.Handler, error) {
		if rt.URL == "" {
			return nil, errors.New("crm-sync needs a url")
		}
		return handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
			fmt.Printf("%s: sync %s to %s\n", rt.Code, ev.ID, rt.URL)
			return nil
		}), nil
	})

	rt := handler.Route{Code: "contact.updated", Lane: "quick", Handler: "crm-sync", URL: "https://crm.example/api", Timeout: 10 * time.Second}
	h, _, err := reg.Build(rt)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = h.Handle(context.Background(), &handler.Event{ID: "msg_2", Code: "contact.updated"})
	fmt.Println("rate limit per tenant and", rt.Endpoint())

	_, _, err = reg.Build(handler.Route{Code: "contact.deleted", Handler: "crm-sync"})
	fmt.Println("without a url:", err)
	// Output:
	// contact.updated: sync msg_2 to https://crm.example/api
	// rate limit per tenant and https://crm.example/api
	// without a url: crm-sync needs a url
}
