package lambdatest_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/hookline/hookline/internal/lambdatest"
)

// newClient returns an SDK Lambda client for ep that makes at most attempts
// attempts per call, with a negligible backoff between them.
func newClient(ep *lambdatest.InvokeEndpoint, attempts int) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:       lambdatest.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint: aws.String(ep.URL()),
		Retryer: func() aws.Retryer {
			r := retry.AddWithMaxAttempts(retry.NewStandard(), attempts)
			return retry.AddWithMaxBackoffDelay(r, time.Millisecond)
		},
	})
}

// echoEndpoint returns an endpoint with the echo function registered,
// backed by a pool of n processes.
func echoEndpoint(t *testing.T, n int) (*lambdatest.InvokeEndpoint, *lambdatest.Pool) {
	ep := lambdatest.NewInvokeEndpoint(t)
	pool := lambdatest.StartPool(t, "echo", lambdatest.Build(t, echoPkg), nil, n)
	ep.Register("echo", lambdatest.Handler(pool, 10*time.Second))
	return ep, pool
}

// runReply decodes the echo reply of a successful run.
func runReply(t *testing.T, run lambdatest.Run) echoReply {
	t.Helper()
	if run.Err != nil {
		t.Fatalf("run %s failed: %v", run.RequestID, run.Err)
	}
	var r echoReply
	if err := json.Unmarshal(run.Response, &r); err != nil {
		t.Fatalf("decode run response %q: %v", run.Response, err)
	}
	return r
}

func TestEndpointEvent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep, _ := echoEndpoint(t, 1)
	client := newClient(ep, 1)

	payload := []byte(`{"n":1}`)
	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String("echo"),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		t.Fatalf("Invoke Event: %v", err)
	}
	if out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("Invoke Event: status %d payload %q, want 202 and none", out.StatusCode, out.Payload)
	}
	if err := ep.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	calls := ep.Calls()
	if len(calls) != 1 {
		t.Fatalf("Calls() has %d calls, want 1: %+v", len(calls), calls)
	}
	c := calls[0]
	if c.Function != "echo" || c.InvocationType != lambdatest.InvocationEvent || c.Status != 202 ||
		string(c.Payload) != string(payload) || len(c.RequestIDs) != 1 {
		t.Fatalf("call %+v, want an Event call of echo answered 202 with the payload and one request id", c)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != c.RequestIDs[0] {
		t.Fatalf("SDK saw request id %q, want %q", id, c.RequestIDs[0])
	}
	runs := ep.Runs()
	if len(runs) != 1 {
		t.Fatalf("Runs() has %d runs, want 1", len(runs))
	}
	r := runReply(t, runs[0])
	if r.RequestID != c.RequestIDs[0] || !sameJSON(t, r.Event, payload) {
		t.Fatalf("function saw request %q event %s, want %q %s", r.RequestID, r.Event, c.RequestIDs[0], payload)
	}
}

func TestEndpointRequestResponse(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep, _ := echoEndpoint(t, 1)
	client := newClient(ep, 1)

	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(lambdatest.FunctionARN("echo") + ":live"),
		Payload:      []byte(`{"sync":true}`),
	})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Fatalf("Invoke: status %d function error %v version %v, want 200, none, $LATEST",
			out.StatusCode, aws.ToString(out.FunctionError), aws.ToString(out.ExecutedVersion))
	}
	var r echoReply
	if err := json.Unmarshal(out.Payload, &r); err != nil || !sameJSON(t, r.Event, []byte(`{"sync":true}`)) {
		t.Fatalf("payload %s (%v), want the echo of the event", out.Payload, err)
	}
	c := ep.Calls()[0]
	if c.Function != "echo" || c.Qualifier != "live" || c.InvocationType != lambdatest.InvocationRequestResponse || c.Status != 200 {
		t.Fatalf("call %+v, want a RequestResponse call of echo:live answered 200", c)
	}

	// A function error is a successful call with X-Amz-Function-Error.
	out, err = client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("echo"),
		Payload:      []byte(`{"fail":true}`),
	})
	if err != nil {
		t.Fatalf("Invoke of a failing function: %v", err)
	}
	var doc lambdatest.InvokeError
	if err := json.Unmarshal(out.Payload, &doc); err != nil {
		t.Fatalf("decode error payload %q: %v", out.Payload, err)
	}
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || doc.Type != "errorString" {
		t.Fatalf("failing function: status %d function error %q payload %s, want 200, Unhandled, the error document",
			out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
	}

	// So is a crash.
	out, err = client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("echo"),
		Payload:      []byte(`{"exit":true}`),
	})
	if err != nil {
		t.Fatalf("Invoke of a crashing function: %v", err)
	}
	if err := json.Unmarshal(out.Payload, &doc); err != nil {
		t.Fatalf("decode error payload %q: %v", out.Payload, err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || doc.Type != "Runtime.ExitError" {
		t.Fatalf("crashing function: function error %q payload %s, want Unhandled, Runtime.ExitError",
			aws.ToString(out.FunctionError), out.Payload)
	}

	// DryRun runs nothing.
	out, err = client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String("echo"),
		InvocationType: types.InvocationTypeDryRun,
	})
	if err != nil || out.StatusCode != 204 {
		t.Fatalf("Invoke DryRun: status %v, %v; want 204", out, err)
	}
	if n := len(ep.Runs()); n != 3 {
		t.Fatalf("Runs() has %d runs, want 3", n)
	}
}

func TestEndpointUnknownFunction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep := lambdatest.NewInvokeEndpoint(t)
	_, err := newClient(ep, 1).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("Invoke of an unknown function: %v, want ResourceNotFoundException", err)
	}
}

func TestEndpointFailNext(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep, _ := echoEndpoint(t, 1)
	event := &lambda.InvokeInput{
		FunctionName:   aws.String("echo"),
		InvocationType: types.InvocationTypeEvent,
		Payload:        []byte(`{}`),
	}

	// Without retries, each injected failure reaches the caller.
	once := newClient(ep, 1)
	ep.FailNext(1, 500)
	var se *types.ServiceException
	if _, err := once.Invoke(ctx, event); !errors.As(err, &se) {
		t.Fatalf("Invoke after FailNext(1, 500): %v, want ServiceException", err)
	}
	ep.FailNext(1, 429)
	var tm *types.TooManyRequestsException
	if _, err := once.Invoke(ctx, event); !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
		t.Fatalf("Invoke after FailNext(1, 429): %v, want TooManyRequestsException", err)
	}
	if _, err := once.Invoke(ctx, event); err != nil {
		t.Fatalf("Invoke after the injected failures: %v", err)
	}

	// The SDK's retries get past two throttles.
	ep.FailNext(2, 429)
	out, err := newClient(ep, 3).Invoke(ctx, event)
	if err != nil || out.StatusCode != 202 {
		t.Fatalf("Invoke with retries after FailNext(2, 429): %v, %v; want 202", out, err)
	}
	var statuses []int
	for _, c := range ep.Calls() {
		statuses = append(statuses, c.Status)
	}
	if want := []int{500, 429, 202, 429, 429, 202}; !slices.Equal(statuses, want) {
		t.Fatalf("call statuses %v, want %v", statuses, want)
	}
	if err := ep.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if n := len(ep.Runs()); n != 2 {
		t.Fatalf("Runs() has %d runs, want 2 (failed calls run nothing)", n)
	}
}

func TestEndpointDuplicate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep, _ := echoEndpoint(t, 2)
	client := newClient(ep, 1)
	event := func(n int) *lambda.InvokeInput {
		return &lambda.InvokeInput{
			FunctionName:   aws.String("echo"),
			InvocationType: types.InvocationTypeEvent,
			Payload:        []byte(`{"n":` + string(rune('0'+n)) + `}`),
		}
	}

	ep.Duplicate(true)
	if _, err := client.Invoke(ctx, event(1)); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if _, err := client.Invoke(ctx, event(2)); err != nil {
		t.Fatalf("second Invoke: %v", err)
	}
	if err := ep.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	calls := ep.Calls()
	if len(calls[0].RequestIDs) != 2 || calls[0].RequestIDs[0] == calls[0].RequestIDs[1] || len(calls[1].RequestIDs) != 1 {
		t.Fatalf("request ids %v then %v, want two different ones, then one", calls[0].RequestIDs, calls[1].RequestIDs)
	}
	seen := map[string]string{} // request id -> event
	for _, run := range ep.Runs() {
		r := runReply(t, run)
		if r.RequestID != run.RequestID {
			t.Fatalf("function saw request id %q, run has %q", r.RequestID, run.RequestID)
		}
		seen[r.RequestID] = string(r.Event)
	}
	for _, id := range calls[0].RequestIDs {
		if !sameJSON(t, []byte(seen[id]), []byte(`{"n":1}`)) {
			t.Fatalf("delivery %s saw %q, want the first event", id, seen[id])
		}
	}
	if len(seen) != 3 {
		t.Fatalf("%d deliveries, want 3 (the first event twice)", len(seen))
	}
}

// TestEndpointFromFunction is the end-to-end shape: a function invokes
// another asynchronously through the real SDK, configured by
// AWS_ENDPOINT_URL_LAMBDA.
func TestEndpointFromFunction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	ep, _ := echoEndpoint(t, 1)
	front := lambdatest.Start(t, "front", lambdatest.Build(t, echoPkg), map[string]string{
		"AWS_ENDPOINT_URL_LAMBDA": ep.URL(),
	})

	r := invokeOK(t, ctx, front, `{"invoke":{"function":"echo","payload":{"from":"front"}}}`)
	if r.Invoked != 202 {
		t.Fatalf("front's Invoke got status %d, want 202", r.Invoked)
	}
	if err := ep.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	runs := ep.Runs()
	if len(runs) != 1 {
		t.Fatalf("Runs() has %d runs, want 1", len(runs))
	}
	if got := runReply(t, runs[0]); !sameJSON(t, got.Event, []byte(`{"from":"front"}`)) {
		t.Fatalf("echo saw %s, want front's payload", got.Event)
	}
}
