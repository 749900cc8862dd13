package webhook_test

import (
	"errors"
	"fmt"

	"github.com/hookline/hookline/shared/webhook"
)

func ExampleParse() {
	body := []byte(`{"code": "invoice.paid", "data": {"customer": {"id": 4711}, "amount": 1250}}`)
	p, err := webhook.Parse(body, "/data/customer/id")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Code, p.Tenant, string(p.Data))

	_, err = webhook.Parse([]byte(`{"code": "invoice.paid", "data": {}}`), "/data/customer/id")
	fmt.Println(errors.Is(err, webhook.ErrMissingTenant), webhook.ErrorCode(err))
	// Output:
	// invoice.paid 4711 {"customer": {"id": 4711}, "amount": 1250}
	// true missing_tenant
}
