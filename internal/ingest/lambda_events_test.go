package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hookline/hookline/internal/redistest"
)

// lambdaAnswer is a response event, either format.
type lambdaAnswer struct {
	v2     bool
	status int
	ctype  string
	body   string
}

// callEvent runs raw through h and fails tb on an invocation error or a
// response that is neither format.
func callEvent(tb testing.TB, h func(context.Context, json.RawMessage) (any, error), raw []byte) lambdaAnswer {
	tb.Helper()
	out, err := h(context.Background(), raw)
	if err != nil {
		tb.Fatalf("invocation error (API Gateway would answer a bare 502): %v", err)
	}
	switch r := out.(type) {
	case events.APIGatewayV2HTTPResponse:
		if r.IsBase64Encoded {
			tb.Fatalf("2.0 response body is base64: %q", r.Body)
		}
		return lambdaAnswer{v2: true, status: r.StatusCode, ctype: r.Headers["Content-Type"], body: r.Body}
	case events.APIGatewayProxyResponse:
		if r.IsBase64Encoded {
			tb.Fatalf("1.0 response body is base64: %q", r.Body)
		}
		return lambdaAnswer{status: r.StatusCode, ctype: strings.Join(r.MultiValueHeaders["Content-Type"], ","), body: r.Body}
	}
	tb.Fatalf("response of type %T", out)
	return lambdaAnswer{}
}

// errorCode checks the JSON error shape and returns its code.
func (a lambdaAnswer) errorCode(tb testing.TB) string {
	tb.Helper()
	var e ErrorBody
	if a.ctype != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("answer %d (%s) %q is not {error:{code,message}}", a.status, a.ctype, a.body)
	}
	return e.Error.Code
}

// apigwFixtures returns the paths of aws-lambda-go's API Gateway request
// events (testdata/apigw).
func apigwFixtures(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "apigw", "*.json"))
	if err != nil || len(paths) < 5 {
		tb.Fatalf("aws-lambda-go fixtures: %v %v", paths, err)
	}
	return paths
}

// Field setters that know where each format keeps a field.
func setMethod(ev map[string]any, m any) {
	if ev["version"] == "2.0" {
		ev["requestContext"].(map[string]any)["http"].(map[string]any)["method"] = m
		return
	}
	ev["httpMethod"] = m
}

func deleteMethod(ev map[string]any) {
	if ev["version"] == "2.0" {
		delete(ev["requestContext"].(map[string]any)["http"].(map[string]any), "method")
		return
	}
	delete(ev, "httpMethod")
}

func setPath(ev map[string]any, p string) {
	if ev["version"] == "2.0" {
		ev["rawPath"] = p
		return
	}
	ev["path"] = p
}

func deletePath(ev map[string]any) {
	delete(ev, "path")
	delete(ev, "rawPath")
	if rc, ok := ev["requestContext"].(map[string]any); ok {
		if h, ok := rc["http"].(map[string]any); ok {
			delete(h, "path")
		}
	}
}

// asWebhook turns an aws-lambda-go fixture into a signed webhook for
// POST /webhooks, keeping everything else of it.
func asWebhook(t testing.TB, path, id string) map[string]any {
	ev := readEvent(t, path)
	setMethod(ev, "POST")
	setPath(ev, "/webhooks")
	ev["body"], ev["isBase64Encoded"] = goodBody, false
	for _, field := range []string{"headers", "multiValueHeaders"} {
		if m, ok := ev[field].(map[string]any); ok {
			for k := range m {
				if strings.EqualFold(k, "content-type") {
					delete(m, k) // one fixture is a form post
				}
			}
		}
	}
	setHeader(ev, "content-type", "application/json")
	sign(t, ev, id)
	return ev
}

// TestLambdaMalformedEvents: every malformed API Gateway event, built from
// the real ones (HTTP API 2.0 and 1.0, REST API), gets a 4xx with the JSON
// error body in the event's response format, never an invocation error;
// the well-formed variants beside them are stored.
func TestLambdaMalformedEvents(t *testing.T) {
	g := newRig(t, redistest.Standalone(t))
	h := LambdaHandler(g.srv)

	type row struct {
		name   string
		mutate func(ev map[string]any)
		status int
		code   string // "" for 2xx
	}
	huge := strings.Repeat("x", MaxEventHeaderBytes)
	perFormat := []row{
		{"as delivered", func(map[string]any) {}, 202, ""},
		{"valid base64 body", func(ev map[string]any) {
			ev["body"], ev["isBase64Encoded"] = base64.StdEncoding.EncodeToString([]byte(ev["body"].(string))), true
		}, 202, ""},
		{"lower-case method", func(ev map[string]any) { setMethod(ev, "post") }, 202, ""},
		{"bad base64: JSON text", func(ev map[string]any) { ev["isBase64Encoded"] = true }, 400, "invalid_base64"},
		{"bad base64: a stray character", func(ev map[string]any) {
			ev["body"], ev["isBase64Encoded"] = base64.StdEncoding.EncodeToString([]byte(ev["body"].(string)))[4:]+"!", true
		}, 400, "invalid_base64"},
		{"missing method", deleteMethod, 400, "invalid_event"},
		{"method not a token", func(ev map[string]any) { setMethod(ev, "PO ST") }, 400, "invalid_event"},
		{"method not a string", func(ev map[string]any) { setMethod(ev, 7) }, 400, "invalid_event"},
		{"wrong method", func(ev map[string]any) { setMethod(ev, "GET") }, 405, "method_not_allowed"},
		{"wrong path", func(ev map[string]any) { setPath(ev, "/hooks") }, 404, "not_found"},
		{"path with a trailing slash", func(ev map[string]any) { setPath(ev, "/webhooks/") }, 404, "not_found"},
		{"path not clean", func(ev map[string]any) { setPath(ev, "//webhooks") }, 404, "not_found"},
		{"relative path", func(ev map[string]any) { setPath(ev, "webhooks") }, 400, "invalid_event"},
		{"missing path", deletePath, 400, "invalid_event"},
		{"missing headers", func(ev map[string]any) { ev["headers"], ev["multiValueHeaders"] = nil, nil }, 415, "unsupported_media_type"},
		{"headers not an object", func(ev map[string]any) { ev["headers"] = "content-type: application/json" }, 400, "invalid_event"},
		{"huge header", func(ev map[string]any) { setHeader(ev, "x-padding", huge) }, 431, "headers_too_large"},
		{"many headers", func(ev map[string]any) {
			for i := range 3000 {
				setHeader(ev, fmt.Sprintf("x-h-%d", i), "0123456789")
			}
		}, 431, "headers_too_large"},
		{"header value with a line break", func(ev map[string]any) { setHeader(ev, "x-bad", "a\r\nx-injected: b") }, 400, "invalid_event"},
		{"header name not a token", func(ev map[string]any) { setHeader(ev, "bad header", "v") }, 400, "invalid_event"},
		{"missing body", func(ev map[string]any) { delete(ev, "body") }, 401, "signature_invalid"},
		{"body not a string", func(ev map[string]any) { ev["body"] = map[string]any{"code": "post.create"} }, 400, "invalid_event"},
		{"isBase64Encoded not a boolean", func(ev map[string]any) { ev["isBase64Encoded"] = "true" }, 400, "invalid_event"},
		{"missing requestContext", func(ev map[string]any) { delete(ev, "requestContext") }, 0, ""}, // per format below
		{"requestContext not an object", func(ev map[string]any) { ev["requestContext"] = []any{} }, 400, "invalid_event"},
		{"unsupported version", func(ev map[string]any) { ev["version"] = "3.0" }, 400, "invalid_event"},
		{"version not a string", func(ev map[string]any) { ev["version"] = 2 }, 400, "invalid_event"},
	}
	formats := []struct {
		name, file string
		v2         bool
		extra      []row
	}{
		{"http-api-2.0", "ingest-http-v2.json", true, []row{
			{"missing version (read as 1.0, which has no httpMethod)", func(ev map[string]any) { delete(ev, "version") }, 400, "invalid_event"},
			{"rawPath not percent-encoded", func(ev map[string]any) { ev["rawPath"] = "/web%zzhooks" }, 400, "invalid_event"},
			{"rawPath percent-encoded", func(ev map[string]any) { ev["rawPath"] = "/web%68ooks" }, 202, ""},
			{"rawPath missing, requestContext.http.path kept", func(ev map[string]any) { delete(ev, "rawPath") }, 202, ""},
			{"cookies not an array", func(ev map[string]any) { ev["cookies"] = "a=b" }, 400, "invalid_event"},
			{"cookie with a line break", func(ev map[string]any) { ev["cookies"] = []any{"a=b\nc"} }, 400, "invalid_event"},
			{"header value not a string", func(ev map[string]any) { ev["headers"].(map[string]any)["x-n"] = 1 }, 400, "invalid_event"},
		}},
		{"http-api-1.0", "ingest-http-v1.json", false, []row{
			{"multiValueHeaders not arrays", func(ev map[string]any) { ev["multiValueHeaders"].(map[string]any)["x-n"] = "v" }, 400, "invalid_event"},
			{"headers only (no multiValueHeaders)", func(ev map[string]any) { delete(ev, "multiValueHeaders") }, 202, ""},
		}},
		{"rest-api", "ingest-rest-v1.json", false, []row{
			{"query parameters not strings", func(ev map[string]any) { ev["queryStringParameters"] = map[string]any{"a": 1} }, 400, "invalid_event"},
		}},
	}

	n := 0
	check := func(t *testing.T, raw []byte, wantV2 bool, status int, code string) {
		t.Helper()
		a := callEvent(t, h, raw)
		if a.v2 != wantV2 {
			t.Errorf("answered in format 2.0 = %v, want %v", a.v2, wantV2)
		}
		if a.status != status {
			t.Errorf("status %d (%s), want %d", a.status, a.body, status)
		}
		if code == "" {
			if a.status/100 != 2 {
				t.Errorf("want 2xx, got %d %s", a.status, a.body)
			}
			return
		}
		t.Logf("%d %s", a.status, a.body)
		if got := a.errorCode(t); got != code {
			t.Errorf("code %q, want %q (%s)", got, code, a.body)
		}
		if len(a.body) > 1024 {
			t.Errorf("error body of %d bytes echoes the input", len(a.body))
		}
	}
	for _, f := range formats {
		for _, r := range append(perFormat, f.extra...) {
			t.Run(f.name+"/"+r.name, func(t *testing.T) {
				n++
				ev := loadEvent(t, f.file, fmt.Sprintf("msg_table_%d", n))
				r.mutate(ev)
				wantV2 := ev["version"] == "2.0" // else the answer is in format 1.0
				status, code := r.status, r.code
				if r.name == "missing requestContext" {
					if f.v2 {
						status, code = 400, "invalid_event" // no requestContext.http.method
					} else {
						status, code = 202, "" // 1.0 needs nothing from it
					}
				}
				check(t, marshal(t, ev), wantV2, status, code)
			})
		}
	}

	// Events that are not API Gateway HTTP events at all.
	for _, raw := range []string{``, ` `, `null`, `42`, `"event"`, `[]`, `[{"httpMethod":"POST"}]`, `{"a":`, `{}`, `{"hello":"world"}`,
		`{"httpMethod":"POST"}`, `{"version":"2.0"}`, `{"version":null,"httpMethod":"POST","path":"/webhooks"}`,
		`{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`} {
		t.Run("raw/"+raw, func(t *testing.T) {
			want := 400
			if strings.Contains(raw, `"/webhooks"`) {
				want = 415 // a POST /webhooks without headers
			}
			a := callEvent(t, h, []byte(raw))
			if a.status != want || a.status/100 != 4 {
				t.Errorf("%q: %d %s, want %d", raw, a.status, a.body, want)
			}
			a.errorCode(t)
		})
	}

	// aws-lambda-go's own fixtures, unchanged: none is POST /webhooks.
	for _, path := range apigwFixtures(t) {
		t.Run("aws-lambda-go/"+filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := callEvent(t, h, raw)
			if a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed {
				t.Errorf("%d %s, want 404 or 405", a.status, a.body)
			}
			a.errorCode(t)
			// Turned into a signed webhook, it is stored.
			n++
			ev := asWebhook(t, path, fmt.Sprintf("msg_fixture_%d", n))
			if a := callEvent(t, h, marshal(t, ev)); a.status != http.StatusAccepted {
				t.Errorf("as a webhook: %d %s", a.status, a.body)
			}
		})
	}
}

// FuzzLambdaEvent feeds LambdaHandler untrusted events, seeded with the
// real ones: it never fails the invocation or panics, always answers with a
// status, a non-2xx answer always carries the JSON error body, and nothing
// is a server error (Redis is up).
func FuzzLambdaEvent(f *testing.F) {
	for _, name := range []string{"ingest-http-v2.json", "ingest-http-v1.json", "ingest-rest-v1.json"} {
		ev := loadEvent(f, name, "msg_fuzz_"+name[7:14])
		f.Add([]byte(marshal(f, ev)))
		ev["isBase64Encoded"] = true
		f.Add([]byte(marshal(f, ev)))
	}
	for _, path := range apigwFixtures(f) {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add([]byte(marshal(f, asWebhook(f, path, "msg_fuzz_"+filepath.Base(path)[:12]))))
	}
	for _, s := range []string{``, `null`, `{}`, `[]`, `{"version":"2.0"}`, `{"httpMethod":"POST","path":"/webhooks"}`} {
		f.Add([]byte(s))
	}
	g := newRig(f, redistest.Standalone(f))
	h := LambdaHandler(g.srv)
	f.Fuzz(func(t *testing.T, raw []byte) {
		a := callEvent(t, h, raw)
		if a.status < 200 || a.status > 599 {
			t.Fatalf("status %d", a.status)
		}
		if a.status >= 500 {
			t.Fatalf("server error %d %s", a.status, a.body)
		}
		if a.status >= 300 {
			a.errorCode(t)
		}
	})
}
