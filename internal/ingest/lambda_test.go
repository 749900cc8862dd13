package ingest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/webhook"
)

// loadEvent reads testdata/events/<name> (also used with sam local invoke)
// and re-signs it for now: the signature header holds a wrong signature, a
// space, and the right one, so it carries commas and spaces as real
// Standard Webhooks headers do.
func loadEvent(t testing.TB, name, id string) map[string]any {
	t.Helper()
	ev := readEvent(t, filepath.Join("..", "..", "testdata", "events", name))
	sign(t, ev, id)
	return ev
}

// readEvent reads a JSON event.
func readEvent(t testing.TB, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// sign signs the event's body for now with webhook id id.
func sign(t testing.TB, ev map[string]any, id string) {
	t.Helper()
	body := ev["body"].(string)
	sig, err := webhook.SignStandard(testSecret, id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	setHeader(ev, "webhook-id", id)
	setHeader(ev, "webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	setHeader(ev, "webhook-signature", "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiAzMiBieXRlcyEhISE= "+sig)
}

// setHeader sets a header in headers and, when the event has them,
// multiValueHeaders.
func setHeader(ev map[string]any, name, value string) {
	if _, ok := ev["headers"].(map[string]any); !ok {
		ev["headers"] = map[string]any{}
	}
	ev["headers"].(map[string]any)[name] = value
	if mv, ok := ev["multiValueHeaders"].(map[string]any); ok {
		mv[name] = []any{value}
	}
}

func marshal(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLambdaEventsKeepSignatureHeaders feeds the real API Gateway event
// shapes (HTTP API 2.0 and 1.0, REST API) through LambdaHandler with a
// comma-bearing signature header.
func TestLambdaEventsKeepSignatureHeaders(t *testing.T) {
	g := newRig(t, redistest.Standalone(t))
	h := LambdaHandler(g.srv)
	ctx := context.Background()

	out, err := h(ctx, marshal(t, loadEvent(t, "ingest-http-v2.json", "msg_v2")))
	if err != nil {
		t.Fatal(err)
	}
	v2 := out.(events.APIGatewayV2HTTPResponse)
	if v2.StatusCode != 202 || v2.Headers["Content-Type"] != "application/json" {
		t.Fatalf("HTTP API 2.0: %d %v %s", v2.StatusCode, v2.Headers, v2.Body)
	}
	var acc Accepted
	if err := json.Unmarshal([]byte(v2.Body), &acc); err != nil || acc.ID != "msg_v2" || acc.Key != "cust_0042:post.create" {
		t.Fatalf("HTTP API 2.0 body %s", v2.Body)
	}
	for _, name := range []string{"ingest-rest-v1.json", "ingest-http-v1.json"} {
		out, err := h(ctx, marshal(t, loadEvent(t, name, "msg_"+name[7:11])))
		if err != nil {
			t.Fatal(err)
		}
		if v1 := out.(events.APIGatewayProxyResponse); v1.StatusCode != 202 {
			t.Fatalf("%s: %d %s", name, v1.StatusCode, v1.Body)
		}
	}
	// A bad request through the adapter keeps the JSON error contract.
	ev := loadEvent(t, "ingest-http-v2.json", "msg_bad")
	ev["headers"].(map[string]any)["webhook-signature"] = "v1,bad"
	out, _ = h(ctx, marshal(t, ev))
	if r := out.(events.APIGatewayV2HTTPResponse); r.StatusCode != 401 {
		t.Fatalf("bad signature through the adapter: %d %s", r.StatusCode, r.Body)
	}
	// So does an event that is not from API Gateway at all (more in
	// TestLambdaMalformedEvents).
	out, err = h(ctx, json.RawMessage(`{"hello":"world"}`))
	if r, ok := out.(events.APIGatewayProxyResponse); err != nil || !ok || r.StatusCode != 400 {
		t.Fatalf("a non-API-Gateway event: %+v, %v", out, err)
	}
}

// TestPlainNewV2SplitsSignatures documents why LambdaHandler builds requests
// itself: httpadapter.NewV2 splits the signature header at its commas and
// the valid webhook is refused.
func TestPlainNewV2SplitsSignatures(t *testing.T) {
	g := newRig(t, redistest.Standalone(t))
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(marshal(t, loadEvent(t, "ingest-http-v2.json", "msg_split")), &ev); err != nil {
		t.Fatal(err)
	}
	resp, err := httpadapter.NewV2(g.srv).ProxyWithContext(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 {
		t.Fatalf("plain NewV2 answered %d; if the adapter stopped splitting headers, LambdaHandler could use it again", resp.StatusCode)
	}
}
