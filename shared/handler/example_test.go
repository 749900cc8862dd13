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
