package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// MaxEventHeaderBytes bounds the header names and values (cookies included)
// of one API Gateway event; an event with more is answered 431. API Gateway
// itself passes about 10 KiB of headers, so only an integration that builds
// events by other means reaches it.
const MaxEventHeaderBytes = 32 << 10

// LambdaHandler serves h behind API Gateway: it takes an HTTP API event in
// payload format 2.0 or 1.0, or a REST API event, and returns the matching
// response event.
//
// Every event gets an HTTP answer with the JSON error body when it cannot
// be served, never an invocation error, which API Gateway would turn into a
// bare 502: an event that is not a JSON object, has an unknown payload
// format version, a field of the wrong JSON type, no HTTP method or path, a
// method that is not an HTTP token, a path that is not absolute or not
// percent-encoded, or a header that HTTP does not allow gets 400
// invalid_event; a body marked isBase64Encoded that is not base64 gets 400
// invalid_base64; headers over MaxEventHeaderBytes get 431
// headers_too_large. A panic in h is answered 500 and logged. The returned
// error is always nil.
//
// Header values reach h exactly as API Gateway delivered them. That matters
// for signatures: httpadapter.NewV2 splits every 2.0 header value at commas,
// so "webhook-signature: v1,abc v1,def" would arrive as three values and the
// first, "v1", would be read as the signature. 1.0 and REST events carry
// multiValueHeaders, which are used as they are (headers when absent).
func LambdaHandler(h http.Handler) func(ctx context.Context, raw json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		return serveEvent(ctx, h, raw), nil
	}
}

// eventV1 holds what ingest reads of a REST API or HTTP API 1.0 event (the
// names of events.APIGatewayProxyRequest). Only these fields are decoded, so
// a field ingest does not use cannot make an event fail.
type eventV1 struct {
	HTTPMethod                      string              `json:"httpMethod"`
	Path                            string              `json:"path"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	RequestContext                  struct {
		DomainName string `json:"domainName"`
		Identity   struct {
			SourceIP string `json:"sourceIp"`
		} `json:"identity"`
	} `json:"requestContext"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// eventV2 holds what ingest reads of an HTTP API 2.0 event (the names of
// events.APIGatewayV2HTTPRequest).
type eventV2 struct {
	RawPath        string            `json:"rawPath"`
	RawQueryString string            `json:"rawQueryString"`
	Cookies        []string          `json:"cookies"`
	Headers        map[string]string `json:"headers"`
	RequestContext struct {
		DomainName string `json:"domainName"`
		HTTP       struct {
			Method   string `json:"method"`
			Path     string `json:"path"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
	} `json:"requestContext"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// eventError is an event that cannot be served, and its answer.
type eventError struct {
	status    int
	code, msg string
}

func badEvent(format string, args ...any) *eventError {
	return &eventError{status: http.StatusBadRequest, code: "invalid_event", msg: fmt.Sprintf(format, args...)}
}

// serveEvent answers one event.
func serveEvent(ctx context.Context, h http.Handler, raw []byte) any {
	w := &recorder{header: http.Header{}}
	r, v2, err := eventRequest(ctx, raw)
	if err != nil {
		writeError(w, err.status, err.code, err.msg)
	} else {
		serve(h, w, r)
	}
	if v2 {
		return w.responseV2()
	}
	return w.responseV1()
}

// serve runs h, answering 500 if it panics.
func serve(h http.Handler, w *recorder, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			slog.ErrorContext(r.Context(), "ingest: handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			*w = recorder{header: http.Header{}}
			writeError(w, http.StatusInternalServerError, "internal", "the request could not be handled")
		}
	}()
	h.ServeHTTP(w, r)
}

// eventRequest builds the request an event stands for, and reports whether
// it is a 2.0 event (answered with a 2.0 response).
func eventRequest(ctx context.Context, raw []byte) (*http.Request, bool, *eventError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return nil, false, badEvent("the event is not a JSON object")
	}
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	_ = json.Unmarshal(raw, &head) // raw is a valid object
	version := ""
	if head.Version != nil && string(head.Version) != "null" {
		if err := json.Unmarshal(head.Version, &version); err != nil {
			return nil, false, badEvent("the event's version is not a string")
		}
	}
	switch version {
	case "2.0":
		var ev eventV2
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, true, fieldError(err)
		}
		r, err := ev.request(ctx)
		return r, true, err
	case "1.0", "":
		var ev eventV1
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, false, fieldError(err)
		}
		r, err := ev.request(ctx)
		return r, false, err
	}
	return nil, false, badEvent("the event's payload format version is not 1.0 or 2.0")
}

// fieldError names the field of the wrong JSON type.
func fieldError(err error) *eventError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return badEvent("the event's %s: a JSON %s where %s belongs", te.Field, te.Value, jsonKind(te.Type))
	}
	return badEvent("the event does not have the shape of an API Gateway event")
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a number"
}

func (ev *eventV1) request(ctx context.Context) (*http.Request, *eventError) {
	if ev.HTTPMethod == "" {
		return nil, badEvent("the event has no httpMethod: it is not an API Gateway event (payload format 1.0 has httpMethod, 2.0 has version \"2.0\")")
	}
	switch {
	case ev.Path == "":
		return nil, badEvent("the event has no path")
	case ev.Path[0] != '/':
		return nil, badEvent("the event's path must be an absolute path such as /webhooks")
	}
	u := &url.URL{Scheme: "https", Host: ev.RequestContext.DomainName, Path: ev.Path}
	q := url.Values(ev.MultiValueQueryStringParameters)
	if len(q) == 0 && len(ev.QueryStringParameters) > 0 {
		q = url.Values{}
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	hdr := ev.MultiValueHeaders
	if len(hdr) == 0 {
		hdr = make(map[string][]string, len(ev.Headers))
		for k, v := range ev.Headers {
			hdr[k] = []string{v}
		}
	}
	return newRequest(ctx, ev.HTTPMethod, "httpMethod", u, hdr, nil, ev.Body, ev.IsBase64Encoded, ev.RequestContext.Identity.SourceIP)
}

func (ev *eventV2) request(ctx context.Context) (*http.Request, *eventError) {
	rc := &ev.RequestContext
	if rc.HTTP.Method == "" {
		return nil, badEvent("the event has no requestContext.http.method")
	}
	u := &url.URL{Scheme: "https", Host: rc.DomainName, RawQuery: ev.RawQueryString}
	switch {
	case ev.RawPath != "":
		p, err := url.PathUnescape(ev.RawPath)
		if err != nil || ev.RawPath[0] != '/' {
			return nil, badEvent("the event's rawPath must be an absolute, percent-encoded path such as /webhooks")
		}
		u.Path, u.RawPath = p, ev.RawPath
	case rc.HTTP.Path != "" && rc.HTTP.Path[0] == '/':
		u.Path = rc.HTTP.Path
	default:
		return nil, badEvent("the event has no rawPath and no requestContext.http.path")
	}
	hdr := make(map[string][]string, len(ev.Headers))
	for k, v := range ev.Headers {
		hdr[k] = []string{v} // as delivered: never split at commas
	}
	return newRequest(ctx, rc.HTTP.Method, "requestContext.http.method", u, hdr, ev.Cookies, ev.Body, ev.IsBase64Encoded, rc.HTTP.SourceIP)
}

// newRequest checks the parts common to both formats and builds the request.
func newRequest(ctx context.Context, method, methodField string, u *url.URL, hdr map[string][]string,
	cookies []string, body string, isBase64 bool, remote string) (*http.Request, *eventError) {
	method = strings.ToUpper(method)
	if !isToken(method) {
		return nil, badEvent("the event's %s is not an HTTP method", methodField)
	}
	size := 0
	h := make(http.Header, len(hdr)+1)
	for _, name := range slices.Sorted(maps.Keys(hdr)) {
		if !isToken(name) {
			return nil, badEvent("the event has a header name that is not an HTTP token")
		}
		for _, v := range hdr[name] {
			if !validHeaderValue(v) {
				return nil, badEvent("the event's header %s holds a control character (a line break, say)", http.CanonicalHeaderKey(name))
			}
			size += len(name) + len(v)
			h.Add(name, v)
		}
	}
	for _, c := range cookies {
		if !validHeaderValue(c) {
			return nil, badEvent("the event's cookies hold a control character")
		}
		size += len(c)
	}
	if size > MaxEventHeaderBytes {
		return nil, &eventError{status: http.StatusRequestHeaderFieldsTooLarge, code: "headers_too_large",
			msg: fmt.Sprintf("the headers are over the %d-byte limit", MaxEventHeaderBytes)}
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
	b := []byte(body)
	if isBase64 {
		var err error
		if b, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, &eventError{status: http.StatusBadRequest, code: "invalid_base64",
				msg: "the event's isBase64Encoded is true but its body is not valid base64"}
		}
	}
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(b))
	if err != nil {
		return nil, badEvent("the event's %s is not an HTTP method", methodField)
	}
	r.URL, r.Host, r.RequestURI = u, u.Host, u.RequestURI()
	r.Header = h
	r.RemoteAddr = remote
	return r, nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), as
// method and header names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether v has no control character but tab.
func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// recorder is the http.ResponseWriter whose content becomes the response
// event.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// payload returns the body as the event carries it: as is when it is UTF-8,
// else base64.
func (w *recorder) payload() (string, bool) {
	w.WriteHeader(http.StatusOK) // nothing written: 200, as net/http answers
	if b := w.body.Bytes(); !utf8.Valid(b) {
		return base64.StdEncoding.EncodeToString(b), true
	}
	return w.body.String(), false
}

func (w *recorder) responseV1() events.APIGatewayProxyResponse {
	body, b64 := w.payload()
	return events.APIGatewayProxyResponse{StatusCode: w.status, MultiValueHeaders: w.header, Body: body, IsBase64Encoded: b64}
}

func (w *recorder) responseV2() events.APIGatewayV2HTTPResponse {
	body, b64 := w.payload()
	resp := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: make(map[string]string, len(w.header)), Body: body, IsBase64Encoded: b64}
	for name, vs := range w.header {
		if name == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[name] = strings.Join(vs, ",")
	}
	return resp
}
