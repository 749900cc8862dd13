// Command custom-handler is a drain function with a Go handler of its own:
// every route whose handler is "crm-sync" gets one, built from the route's
// settings. The drain applies the route's rate limit and timeout around each
// call, as it does for the built-in handlers. Build it like
// functions/drain and deploy it as the stack's drain function.
package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/handler"
)

func main() {
	handler.RegisterFactory("crm-sync", func(rt handler.Route) (handler.Handler, error) {
		return handler.HandlerFunc(func(ctx context.Context, ev *handler.Event) error {
			var data struct {
				Customer string `json:"customer_id"`
			}
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				return handler.Permanent(err) // retrying cannot fix the payload
			}
			slog.InfoContext(ctx, "crm sync", "route", rt.Code, "customer", data.Customer, "id", ev.ID)
			return nil // done; any other error is retried with backoff
		}), nil
	})
	app.StartDrain()
}
