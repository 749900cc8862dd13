package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// LambdaHandler serves h behind API Gateway: it takes an HTTP API event in
// payload format 2.0 or 1.0, or a REST API event, and returns the matching
// response event.
//
// Header values reach h exactly as API Gateway delivered them. That matters
// for signatures: httpadapter.NewV2 splits every header value at commas, so
// "webhook-signature: v1,abc v1,def" would arrive as three values and the
// first, "v1", would be read as the signature. For 2.0 events the raw values
// are restored from the event before h runs; 1.0 and REST events keep their
// multi-value headers, which httpadapter.New does not split.
func LambdaHandler(h http.Handler) func(ctx context.Context, raw json.RawMessage) (any, error) {
	v1 := httpadapter.New(h)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("ingest: event is not a JSON object: %w", err)
		}
		if probe.Version == "2.0" {
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("ingest: HTTP API 2.0 event: %w", err)
			}
			return httpadapter.NewV2(rawHeaders(ev.Headers, h)).ProxyWithContext(ctx, ev)
		}
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("ingest: API Gateway 1.0 event: %w", err)
		}
		if ev.HTTPMethod == "" {
			return nil, errors.New("ingest: not an API Gateway event (no version 2.0, no httpMethod)")
		}
		return v1.ProxyWithContext(ctx, ev)
	}
}

// rawHeaders replaces the request's headers named in raw with raw's values,
// undoing the adapter's comma splitting.
func rawHeaders(raw map[string]string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, value := range raw {
			r.Header[http.CanonicalHeaderKey(name)] = []string{value}
		}
		h.ServeHTTP(w, r)
	})
}
