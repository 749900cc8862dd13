package lambdatest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Invocation types, the values of the X-Amz-Invocation-Type header.
const (
	// InvocationEvent runs the function asynchronously: the endpoint answers
	// 202 at once.
	InvocationEvent = "Event"
	// InvocationRequestResponse runs the function and answers with its
	// response (the default).
	InvocationRequestResponse = "RequestResponse"
	// InvocationDryRun only checks the request: the endpoint answers 204.
	InvocationDryRun = "DryRun"
)

// ErrDuplicateFunction reports a second registration of a function name.
var ErrDuplicateFunction = errors.New("lambdatest: function already registered")

// Call is one request to the Invoke operation of an InvokeEndpoint.
type Call struct {
	// Time is when the request arrived.
	Time time.Time
	// FunctionName is the FunctionName path parameter as sent: a name, a
	// partial or full ARN, possibly with a qualifier.
	FunctionName string
	// Function is the function name resolved from FunctionName.
	Function string
	// Qualifier is the version or alias, from the Qualifier query parameter
	// or FunctionName, or "".
	Qualifier string
	// InvocationType is the X-Amz-Invocation-Type header, RequestResponse
	// if absent.
	InvocationType string
	// Payload is the request body.
	Payload []byte
	// Status is the HTTP status code the endpoint answered with.
	Status int
	// RequestIDs are the invocations the call started: none for a failed
	// call, two for a duplicated Event.
	RequestIDs []string
}

// Run is one invocation of a registered function that an InvokeEndpoint
// ran.
type Run struct {
	// Function is the function name.
	Function string
	// InvocationType is Event or RequestResponse.
	InvocationType string
	// RequestID is the invocation's request id.
	RequestID string
	// Payload is the event.
	Payload []byte
	// Response is the payload the function returned, if it succeeded.
	Response []byte
	// Err is the error the function returned, if it failed: an
	// *InvokeError for a function error.
	Err error
	// Start and End are when the run started and ended.
	Start, End time.Time
}

// InvokeEndpoint is a fake of the AWS Lambda service endpoint for the
// Invoke operation (POST /2015-03-31/functions/{FunctionName}/invocations),
// as the AWS SDK for Go v2 calls it. It runs functions registered by name.
// Its methods are safe for concurrent use.
//
// An Event invocation is answered 202 at once and runs in the background
// with a fresh request id (also sent as x-amzn-RequestId); a failed run is
// recorded and logged, not retried. A RequestResponse invocation is answered
// 200 with the function's response, or with X-Amz-Function-Error: Unhandled
// and the error document when the function fails (for a crash or timeout,
// errorType is Runtime.ExitError or Sandbox.Timedout). A DryRun is answered
// 204. An unknown function is answered 404 ResourceNotFoundException.
// X-Amz-Log-Type (no LogResult is returned), X-Amz-Client-Context and the
// qualifier are recorded or ignored, not acted on. The endpoint does not
// check request signatures.
type InvokeEndpoint struct {
	tb     testing.TB
	srv    *httptest.Server
	ctx    context.Context // of the runs; canceled when the test ends
	cancel context.CancelFunc

	mu         sync.Mutex
	fns        map[string]HandlerFunc
	calls      []Call
	runs       []Run
	failN      int           // calls left to fail
	failStatus int           // the HTTP status to fail them with
	duplicate  bool          // deliver the next Event twice
	pending    int           // Event runs not finished
	drained    chan struct{} // closed when pending drops to zero
}

// NewInvokeEndpoint starts an InvokeEndpoint on 127.0.0.1. When the test
// ends, it cancels the context of the runs in progress, waits for them, and
// stops.
func NewInvokeEndpoint(tb testing.TB) *InvokeEndpoint {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ep := &InvokeEndpoint{
		tb:     tb,
		ctx:    ctx,
		cancel: cancel,
		fns:    map[string]HandlerFunc{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{function}/invocations", ep.handleInvoke)
	mux.HandleFunc("/", ep.handleUnknown)
	ep.srv = httptest.NewServer(mux)
	tb.Cleanup(func() {
		cancel()
		_ = ep.Wait(context.Background())
		ep.srv.Close()
		// Calls that arrived during the first Wait may have started runs.
		_ = ep.Wait(context.Background())
	})
	return ep
}

// URL returns the endpoint's base URL, "http://127.0.0.1:port", for
// AWS_ENDPOINT_URL_LAMBDA or aws.Config.BaseEndpoint.
func (ep *InvokeEndpoint) URL() string { return ep.srv.URL }

// Register makes fn run the invocations of the function name, usually
// Handler(pool, timeout). It panics if name is already registered or fn is
// nil.
func (ep *InvokeEndpoint) Register(name string, fn HandlerFunc) {
	if err := ep.RegisterSafely(name, fn); err != nil {
		panic(err)
	}
}

// RegisterSafely is like Register but returns an error (wrapping
// ErrDuplicateFunction for a duplicate) instead of panicking.
func (ep *InvokeEndpoint) RegisterSafely(name string, fn HandlerFunc) error {
	if fn == nil {
		return fmt.Errorf("lambdatest: register %s: nil HandlerFunc", name)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if _, ok := ep.fns[name]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateFunction, name)
	}
	ep.fns[name] = fn
	return nil
}

// FailNext makes the next n Invoke calls fail with the HTTP status, 4xx or
// 5xx, and the AWS error the Lambda service sends with it: 429
// TooManyRequestsException, 500 ServiceException, 400
// InvalidRequestContentException, 404 ResourceNotFoundException, 409
// ResourceConflictException, 413 RequestTooLargeException, and
// ServiceException for any other 5xx. The failed calls are recorded. Note
// that the SDK retries 429 and 5xx (3 attempts by default). FailNext replaces
// a previous FailNext's remaining count; n = 0 cancels it. It panics for a
// status outside 400-599.
func (ep *InvokeEndpoint) FailNext(n, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("lambdatest: FailNext status %d, want 4xx or 5xx", status))
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.failN, ep.failStatus = max(n, 0), status
}

// Duplicate(true) makes the endpoint deliver the next Event invocation
// twice, as two concurrent runs with different request ids, simulating
// Lambda's at-least-once asynchronous delivery. Duplicate(false) cancels it.
func (ep *InvokeEndpoint) Duplicate(next bool) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.duplicate = next
}

// Calls returns every Invoke call so far, in arrival order.
func (ep *InvokeEndpoint) Calls() []Call {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return slices.Clone(ep.calls)
}

// Runs returns every finished run so far, in order of completion.
func (ep *InvokeEndpoint) Runs() []Run {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return slices.Clone(ep.runs)
}

// Wait waits until every Event run, including those started while it waits,
// has finished. It returns ctx's error if ctx ends first.
func (ep *InvokeEndpoint) Wait(ctx context.Context) error {
	for {
		ep.mu.Lock()
		if ep.pending == 0 {
			ep.mu.Unlock()
			return nil
		}
		drained := ep.drained
		ep.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			return fmt.Errorf("lambdatest: wait for asynchronous invocations: %w", context.Cause(ctx))
		}
	}
}

// handleInvoke serves the Invoke operation.
func (ep *InvokeEndpoint) handleInvoke(w http.ResponseWriter, r *http.Request) {
	call := Call{
		Time:           time.Now(),
		FunctionName:   r.PathValue("function"),
		InvocationType: cmp.Or(r.Header.Get("X-Amz-Invocation-Type"), InvocationRequestResponse),
	}
	call.Function, call.Qualifier = parseFunctionName(call.FunctionName)
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		call.Qualifier = q
	}
	requestID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	payload, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	call.Payload = payload

	ep.mu.Lock()
	fn := ep.fns[call.Function]
	var errMsg string // for a failed call
	switch {
	case ep.failN > 0:
		ep.failN--
		call.Status, errMsg = ep.failStatus, "lambdatest: injected failure"
	case fn == nil:
		call.Status, errMsg = http.StatusNotFound, "Function not found: "+FunctionARN(call.Function)
	case call.InvocationType == InvocationDryRun:
		call.Status = http.StatusNoContent
	case call.InvocationType == InvocationEvent:
		call.Status = http.StatusAccepted
		call.RequestIDs = []string{requestID}
		if ep.duplicate {
			ep.duplicate = false
			call.RequestIDs = append(call.RequestIDs, newRequestID())
		}
		for _, id := range call.RequestIDs {
			ep.startAsync()
			go ep.runAsync(call.Function, fn, id, payload)
		}
	case call.InvocationType == InvocationRequestResponse:
		call.Status = http.StatusOK
		call.RequestIDs = []string{requestID}
	default:
		call.Status, errMsg = http.StatusBadRequest, "invalid X-Amz-Invocation-Type "+call.InvocationType
	}
	ep.calls = append(ep.calls, call)
	ep.mu.Unlock()

	switch call.Status {
	case http.StatusOK:
		ep.runSync(w, r, call.Function, fn, requestID, payload)
	case http.StatusAccepted, http.StatusNoContent:
		w.WriteHeader(call.Status)
	default:
		writeAWSError(w, call.Status, errMsg)
	}
}

// runSync runs a RequestResponse invocation and answers with its outcome.
func (ep *InvokeEndpoint) runSync(w http.ResponseWriter, r *http.Request, name string, fn HandlerFunc, requestID string, payload []byte) {
	// End the run when the client goes away or the test ends.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(ep.ctx, cancel)()

	run := Run{Function: name, InvocationType: InvocationRequestResponse, RequestID: requestID, Payload: payload, Start: time.Now()}
	run.Response, run.Err = fn(ctx, requestID, payload)
	run.End = time.Now()
	ep.record(run)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	body := run.Response
	if run.Err != nil {
		h.Set("X-Amz-Function-Error", "Unhandled")
		body = errorDocument(run.Err)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// startAsync counts an Event run as pending. The caller holds ep.mu.
func (ep *InvokeEndpoint) startAsync() {
	if ep.pending == 0 {
		ep.drained = make(chan struct{})
	}
	ep.pending++
}

// runAsync runs an Event invocation and records it.
func (ep *InvokeEndpoint) runAsync(name string, fn HandlerFunc, requestID string, payload []byte) {
	run := Run{Function: name, InvocationType: InvocationEvent, RequestID: requestID, Payload: payload, Start: time.Now()}
	run.Response, run.Err = fn(ep.ctx, requestID, payload)
	run.End = time.Now()
	if run.Err != nil && ep.ctx.Err() == nil {
		ep.tb.Logf("lambdatest: asynchronous invocation %s of %s failed: %v", requestID, name, run.Err)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.runs = append(ep.runs, run)
	ep.pending--
	if ep.pending == 0 {
		close(ep.drained)
	}
}

// record records a finished run.
func (ep *InvokeEndpoint) record(run Run) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.runs = append(ep.runs, run)
}

// handleUnknown answers requests for other operations, which the fake does
// not implement.
func (ep *InvokeEndpoint) handleUnknown(w http.ResponseWriter, r *http.Request) {
	ep.tb.Logf("lambdatest: unsupported Lambda API request %s %s", r.Method, r.URL.Path)
	w.Header().Set("X-Amzn-Errortype", "UnknownOperationException")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"message":"lambdatest implements only Invoke"}`)
}

// parseFunctionName splits an Invoke FunctionName (my-function,
// my-function:v1, 123456789012:function:my-function,
// arn:aws:lambda:us-east-1:123456789012:function:my-function:v1) into the
// function name and the qualifier.
func parseFunctionName(s string) (name, qualifier string) {
	parts := strings.Split(s, ":")
	if i := slices.Index(parts, "function"); i >= 0 && i+1 < len(parts) {
		parts = parts[i+1:]
	}
	if len(parts) > 1 {
		return parts[0], parts[1]
	}
	return parts[0], ""
}

// errorDocument returns the Lambda error document for a failed run.
func errorDocument(err error) []byte {
	var ie *InvokeError
	if !errors.As(err, &ie) {
		typ := "Runtime.ExitError"
		if errors.Is(err, ErrTimedOut) || errors.Is(err, ErrInitTimedOut) {
			typ = "Sandbox.Timedout"
		}
		ie = &InvokeError{Type: typ, Message: err.Error()}
	}
	doc, err := json.Marshal(ie)
	if err != nil {
		// Only an invalid StackTrace can fail; drop it.
		doc, _ = json.Marshal(&InvokeError{Type: ie.Type, Message: ie.Message})
	}
	return doc
}

// awsError is an error of the Lambda API: its code and the JSON member that
// carries its message (the API is inconsistent about the case).
type awsError struct {
	code       string
	messageKey string
}

// awsErrors maps the HTTP statuses FailNext and the endpoint use to errors
// the Lambda Invoke operation returns with them.
var awsErrors = map[int]awsError{
	http.StatusBadRequest:            {"InvalidRequestContentException", "message"},
	http.StatusNotFound:              {"ResourceNotFoundException", "Message"},
	http.StatusConflict:              {"ResourceConflictException", "message"},
	http.StatusRequestEntityTooLarge: {"RequestTooLargeException", "message"},
	http.StatusTooManyRequests:       {"TooManyRequestsException", "message"},
	http.StatusInternalServerError:   {"ServiceException", "Message"},
}

// writeAWSError answers with an AWS JSON (restJson1) error: the error code
// in the X-Amzn-ErrorType header and the body.
func writeAWSError(w http.ResponseWriter, status int, msg string) {
	ae, ok := awsErrors[status]
	if !ok {
		ae = awsError{"ServiceException", "Message"}
		if status < 500 {
			ae = awsError{"InvalidParameterValueException", "message"}
		}
	}
	body := map[string]string{"__type": ae.code, ae.messageKey: msg, "Type": "User"}
	if status >= 500 {
		body["Type"] = "Service"
	}
	if status == http.StatusTooManyRequests {
		body["Reason"] = "ConcurrentInvocationLimitExceeded"
	}
	w.Header().Set("X-Amzn-Errortype", ae.code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
