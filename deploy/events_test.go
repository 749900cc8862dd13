package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
)

// eventsDir holds the events `sam local invoke -e` and the tests use.
const eventsDir = "../testdata/events"

// TestEvents checks that every file in testdata/events decodes into the event
// its function takes, and agrees with template.yaml and hookline.yaml: an
// API Gateway request on an ingest route, with a body whose event code is
// routed and whose tenant is found; an EventBridge Scheduler event; a drain
// lease on a lane that exists. The function is told by the file name's
// prefix; a file with no known prefix fails the test.
func TestEvents(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t)
	root := loadTemplate(t)
	var routes []string // "METHOD /path" of the ingest function's HTTP API events
	for _, ev := range entries(get(root, "Resources", "IngestFunction", "Properties", "Events")) {
		method, _ := str(get(ev.val, "Properties", "Method"))
		path, _ := str(get(ev.val, "Properties", "Path"))
		routes = append(routes, strings.ToUpper(method)+" "+path)
	}

	files, err := filepath.Glob(filepath.Join(eventsDir, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events in %s (%v)", eventsDir, err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch {
		case strings.HasPrefix(name, "ingest-"):
			seen["ingest"] = true
			method, path, body := decodeIngestEvent(t, name, data)
			if !slices.Contains(routes, method+" "+path) {
				t.Fatalf("%s: %s %s is not a route of IngestFunction (%v)", name, method, path, routes)
			}
			checkWebhookBody(t, name, cfg, body)
		case strings.HasPrefix(name, "scheduler-"):
			seen["scheduler"] = true
			var ev events.EventBridgeEvent
			decodeStrict(t, name, data, &ev)
			if ev.Source != "aws.scheduler" || ev.DetailType != "Scheduled Event" || ev.Time.IsZero() {
				t.Fatalf("%s: source %q, detail-type %q, time %v; want an EventBridge Scheduler event (aws.scheduler, Scheduled Event)", name, ev.Source, ev.DetailType, ev.Time)
			}
		case strings.HasPrefix(name, "drain"):
			seen["drain"] = true
			var l drain.Event
			decodeStrict(t, name, data, &l)
			if l.Key == "" || l.Lane == "" || l.Token <= 0 {
				t.Fatalf("%s: key %q, lane %q, token %d; want a key, a lane and a token > 0", name, l.Key, l.Lane, l.Token)
			}
			if _, ok := cfg.Lanes[l.Lane]; !ok {
				t.Fatalf("%s: lane %q is not a lane of hookline.yaml", name, l.Lane)
			}
			code := routeOfKey(cfg, l.Key)
			if code == "" {
				t.Fatalf("%s: key %q is not <tenant>:<event code> with a routed event code", name, l.Key)
			}
			if lane := cfg.Routes[code].Lane; lane != l.Lane {
				t.Fatalf("%s: key %q is on lane %q, but route %s is on %q", name, l.Key, l.Lane, code, lane)
			}
		default:
			t.Fatalf("%s: unknown event file: name it ingest-*, scheduler-* or drain* after the function it is for", name)
		}
	}
	for _, fn := range []string{"ingest", "scheduler", "drain"} {
		if !seen[fn] {
			t.Fatalf("%s: no event for the %s function (make invoke/%s uses one)", eventsDir, fn, fn)
		}
	}
}

// decodeIngestEvent decodes an API Gateway event the way ingest does: HTTP
// API payload format 2.0 when version is "2.0", else a 1.0 / REST API event.
func decodeIngestEvent(t *testing.T, name string, data []byte) (method, path, body string) {
	t.Helper()
	var probe struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if probe.Version == "2.0" {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("%s: not an HTTP API 2.0 event: %v", name, err)
		}
		method, path, body = ev.RequestContext.HTTP.Method, ev.RawPath, ev.Body
		if ev.RequestContext.HTTP.Path != path || ev.RouteKey != method+" "+path {
			t.Fatalf("%s: rawPath %q, requestContext.http.path %q and routeKey %q disagree", name, path, ev.RequestContext.HTTP.Path, ev.RouteKey)
		}
	} else {
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("%s: not an API Gateway 1.0 event: %v", name, err)
		}
		method, path, body = ev.HTTPMethod, ev.Path, ev.Body
	}
	if method == "" || path == "" || body == "" {
		t.Fatalf("%s: method %q, path %q, body of %d bytes; want all three", name, method, path, len(body))
	}
	return method, path, body
}

// checkWebhookBody checks that a webhook body is routed by hookline.yaml: its
// code has a route and the tenant pointer finds a non-empty id.
func checkWebhookBody(t *testing.T, name string, cfg *config.Config, body string) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v", name, err)
	}
	code, _ := doc["code"].(string)
	if _, ok := cfg.Routes[code]; !ok {
		t.Fatalf("%s: body code %q has no route in hookline.yaml", name, code)
	}
	tenant, ok := jsonPointer(doc, cfg.Tenant)
	if s := tenantString(tenant); !ok || s == "" {
		t.Fatalf("%s: body has no tenant at %s", name, cfg.Tenant)
	}
}

// jsonPointer resolves an RFC 6901 pointer in a decoded JSON document.
func jsonPointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v := doc.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			doc = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			doc = v[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

// tenantString renders a tenant id: a string or a number.
func tenantString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// routeOfKey returns the routed event code a key "<tenant>:<code>" ends
// with, or "".
func routeOfKey(cfg *config.Config, key string) string {
	for code := range cfg.Routes {
		if tenant, ok := strings.CutSuffix(key, ":"+code); ok && tenant != "" {
			return code
		}
	}
	return ""
}

// decodeStrict decodes data into v, refusing fields v does not have.
func decodeStrict(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: does not decode into %T: %v", name, v, err)
	}
}
