package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/lambdatest"
)

// echoPkg is the test function, built by directory.
const echoPkg = "./testdata/echo"

// testTimeout bounds every test's waiting, so that a hang fails the test
// instead of the whole test binary.
const testTimeout = 60 * time.Second

// echoReply is the answer of the echo function.
type echoReply struct {
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMS  int64             `json:"deadlineMs"`
	PID         int               `json:"pid"`
	Event       json.RawMessage   `json:"event"`
	Env         map[string]string `json:"env"`
	Invoked     int32             `json:"invokedStatus"`
}

// testContext returns a context that ends with the test or after
// testTimeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// decodeReply decodes a successful echo result.
func decodeReply(t *testing.T, res lambdatest.Result) echoReply {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("result error %v, want success (payload %s)", res.Err, res.Payload)
	}
	var r echoReply
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("decode echo reply %q: %v", res.Payload, err)
	}
	return r
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// invokeOK invokes f with event and returns the decoded echo reply.
func invokeOK(t *testing.T, ctx context.Context, inv lambdatest.Invoker, event string) echoReply {
	t.Helper()
	res, err := inv.Invoke(ctx, "", []byte(event), 10*time.Second)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	return decodeReply(t, res)
}

// barrier is an HTTP server whose requests block until n of them have
// arrived, for the echo function's "wait" member.
type barrier struct {
	srv     *httptest.Server
	n       int
	first   chan struct{} // closed when the first request arrives
	release chan struct{} // closed when the n-th request arrives
	closing chan struct{} // closed when the test ends

	mu      sync.Mutex
	arrived int
}

// newBarrier starts a barrier for n requests.
func newBarrier(t *testing.T, n int) *barrier {
	b := &barrier{
		n:       n,
		first:   make(chan struct{}),
		release: make(chan struct{}),
		closing: make(chan struct{}),
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.arrived++
		if b.arrived == 1 {
			close(b.first)
		}
		if b.arrived == b.n {
			close(b.release)
		}
		b.mu.Unlock()
		select {
		case <-b.release:
		case <-r.Context().Done():
		case <-b.closing:
		}
	}))
	t.Cleanup(func() {
		close(b.closing)
		b.srv.Close()
	})
	return b
}

// event returns an echo event that waits at the barrier.
func (b *barrier) event() string {
	return fmt.Sprintf(`{"wait":%q}`, b.srv.URL)
}

// fatalTB records the message of Fatalf and ends the goroutine, like
// testing.T, without failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestBuild(t *testing.T) {
	t.Parallel()
	bin := lambdatest.Build(t, echoPkg)
	info, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("stat built binary: %v", err)
	}
	if info.Mode()&0o111 == 0 {
		t.Fatalf("built binary %s is not executable (mode %v)", bin, info.Mode())
	}
	if again := lambdatest.Build(t, echoPkg); again != bin {
		t.Fatalf("second Build = %s, want the cached %s", again, bin)
	}
	byImport := lambdatest.Build(t, "github.com/hookline/hookline/internal/lambdatest/testdata/echo")
	if byImport == "" {
		t.Fatalf("Build by import path returned an empty path")
	}
}

func TestBuildFailure(t *testing.T) {
	t.Parallel()
	ftb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		lambdatest.Build(ftb, "./testdata/broken")
	}()
	<-done
	if !strings.Contains(ftb.msg, "testdata/broken") || !strings.Contains(ftb.msg, "cannot use") {
		t.Fatalf("Build of a broken package: Fatalf message %q, want the package and the compiler output", ftb.msg)
	}
}

func TestInvokeEcho(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), map[string]string{
		"ECHO_SETTING": "from-test",
		"AWS_REGION":   "eu-west-1", // env overrides the defaults
	})
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	event := `{"hello":"world","env":["ECHO_SETTING","AWS_REGION","AWS_LAMBDA_FUNCTION_NAME","AWS_LAMBDA_FUNCTION_MEMORY_SIZE","_HANDLER","AWS_ACCESS_KEY_ID","HOME"]}`
	before := time.Now()
	res, err := f.Invoke(ctx, "req-1", []byte(event), 5*time.Second)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	after := time.Now()
	if res.RequestID != "req-1" {
		t.Fatalf("Result.RequestID = %q, want req-1", res.RequestID)
	}
	r := decodeReply(t, res)
	if r.RequestID != "req-1" {
		t.Fatalf("function saw request id %q, want req-1", r.RequestID)
	}
	if !sameJSON(t, r.Event, []byte(event)) {
		t.Fatalf("function saw event %s, want %s", r.Event, event)
	}
	if want := lambdatest.FunctionARN("echo"); r.FunctionARN != want {
		t.Fatalf("function ARN %q, want %q", r.FunctionARN, want)
	}
	lo, hi := before.Add(5*time.Second).UnixMilli()-1, after.Add(5*time.Second).UnixMilli()+1
	if r.DeadlineMS < lo || r.DeadlineMS > hi {
		t.Fatalf("deadline %d, want within [%d, %d]", r.DeadlineMS, lo, hi)
	}
	wantEnv := map[string]string{
		"ECHO_SETTING":                    "from-test",
		"AWS_REGION":                      "eu-west-1",
		"AWS_LAMBDA_FUNCTION_NAME":        "echo",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"_HANDLER":                        "bootstrap",
		"AWS_ACCESS_KEY_ID":               "AKIDLAMBDATEST",
		"HOME":                            "", // not inherited from the test
	}
	for k, want := range wantEnv {
		if got := r.Env[k]; got != want {
			t.Fatalf("env %s = %q, want %q", k, got, want)
		}
	}

	// A generated request id, and the same process serves it.
	res2, err := f.Invoke(ctx, "", []byte(`"just a string"`), 0)
	if err != nil {
		t.Fatalf("second Invoke: %v", err)
	}
	r2 := decodeReply(t, res2)
	if res2.RequestID == "" || r2.RequestID != res2.RequestID {
		t.Fatalf("generated request id: Result %q, function saw %q", res2.RequestID, r2.RequestID)
	}
	if r2.PID != r.PID || f.Starts() != 1 {
		t.Fatalf("second invocation ran in pid %d (first %d), Starts = %d; want the warm process", r2.PID, r.PID, f.Starts())
	}
	if logs := f.Logs(); !strings.Contains(logs, "echo: answered req-1") {
		t.Fatalf("Logs() = %q, want the function's output", logs)
	}
}

func TestInvokeError(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	res, err := f.Invoke(ctx, "", []byte(`{"fail":true}`), 10*time.Second)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Err == nil {
		t.Fatalf("Result.Err = nil, want the handler's error (payload %s)", res.Payload)
	}
	if res.Err.Type != "errorString" || res.Err.Message != "echo: asked to fail" {
		t.Fatalf("Result.Err = %+v, want errorString: echo: asked to fail", res.Err)
	}
	var doc map[string]any
	if err := json.Unmarshal(res.Payload, &doc); err != nil || doc["errorType"] != "errorString" {
		t.Fatalf("error payload %s (%v), want the error document", res.Payload, err)
	}
	// A handler error does not end the environment.
	invokeOK(t, ctx, f, `{}`)
	if n := f.Starts(); n != 1 {
		t.Fatalf("Starts = %d after a handler error, want 1", n)
	}
}

func TestInvokePanic(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	res, err := f.Invoke(ctx, "", []byte(`{"panic":true}`), 10*time.Second)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Err == nil || res.Err.Type != "string" || res.Err.Message != "echo: asked to panic" {
		t.Fatalf("Result.Err = %+v, want string: echo: asked to panic", res.Err)
	}
	if len(res.Err.StackTrace) == 0 {
		t.Fatalf("Result.Err has no stack trace")
	}
	// aws-lambda-go exits after reporting a panic; the next invocation gets
	// a new process.
	invokeOK(t, ctx, f, `{}`)
	if n := f.Starts(); n != 2 {
		t.Fatalf("Starts = %d after a panic, want 2", n)
	}
}

func TestInvokeExit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	_, err := f.Invoke(ctx, "", []byte(`{"exit":true}`), 30*time.Second)
	if !errors.Is(err, lambdatest.ErrProcessExited) {
		t.Fatalf("Invoke of a function that exits: %v, want ErrProcessExited", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error %q does not give the exit status", err)
	}
	invokeOK(t, ctx, f, `{}`)
	if n := f.Starts(); n != 2 {
		t.Fatalf("Starts = %d after an exit, want 2", n)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	b := newBarrier(t, 2) // never released
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	errc := make(chan error, 1)
	go func() {
		_, err := f.Invoke(ctx, "", []byte(b.event()), 30*time.Second)
		errc <- err
	}()
	select {
	case <-b.first:
	case <-ctx.Done():
		t.Fatalf("the invocation never reached the barrier")
	}
	f.Kill()
	if err := <-errc; !errors.Is(err, lambdatest.ErrProcessExited) {
		t.Fatalf("Invoke in flight during Kill: %v, want ErrProcessExited", err)
	}
	invokeOK(t, ctx, f, `{}`)
}

func TestKillBusy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	b := newBarrier(t, 2) // never released
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	// Idle, before and after serving an invocation: left alone.
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if f.KillBusy() {
		t.Fatal("KillBusy killed a process that had not taken an invocation")
	}
	first := invokeOK(t, ctx, f, `{}`)
	if f.KillBusy() {
		t.Fatal("KillBusy killed an idle process")
	}
	if n := f.Starts(); n != 1 {
		t.Fatalf("Starts = %d after KillBusy of an idle process, want 1", n)
	}

	// In the middle of an invocation: killed, and the next invocation runs
	// in a new process.
	errc := make(chan error, 1)
	go func() {
		_, err := f.Invoke(ctx, "", []byte(b.event()), 30*time.Second)
		errc <- err
	}()
	select {
	case <-b.first:
	case <-ctx.Done():
		t.Fatalf("the invocation never reached the barrier")
	}
	if !f.KillBusy() {
		t.Fatal("KillBusy did not kill a process in the middle of an invocation")
	}
	if err := <-errc; !errors.Is(err, lambdatest.ErrProcessExited) {
		t.Fatalf("Invoke in flight during KillBusy: %v, want ErrProcessExited", err)
	}
	if again := invokeOK(t, ctx, f, `{}`); again.PID == first.PID {
		t.Fatalf("the invocation after KillBusy ran in the killed process %d", first.PID)
	}
	if n := f.Starts(); n != 2 {
		t.Fatalf("Starts = %d after KillBusy, want 2", n)
	}
}

func TestPoolReplacesKilledEnvironments(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	p := lambdatest.StartPool(t, "echo", lambdatest.Build(t, echoPkg), nil, 2)

	// Twice over, kill both environments while each is in an invocation:
	// the pool keeps serving, each time from new processes.
	for round := range 2 {
		errc := make(chan error, 2)
		for range 2 {
			b := newBarrier(t, 2) // never released
			go func() {
				_, err := p.Invoke(ctx, "", []byte(b.event()), 30*time.Second)
				errc <- err
			}()
			select {
			case <-b.first:
			case <-ctx.Done():
				t.Fatalf("round %d: an invocation never reached its barrier", round)
			}
		}
		for _, f := range p.Functions() {
			if !f.KillBusy() {
				t.Fatalf("round %d: KillBusy did not kill %s, which is in an invocation", round, f.Name())
			}
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, lambdatest.ErrProcessExited) {
				t.Fatalf("round %d: Invoke during KillBusy: %v, want ErrProcessExited", round, err)
			}
		}
	}
	for range 2 {
		invokeOK(t, ctx, p, `{}`)
	}
	starts := 0
	for _, f := range p.Functions() {
		starts += f.Starts()
	}
	if starts != 6 {
		t.Fatalf("the pool started %d processes for 2 environments killed twice each, want 6", starts)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	_, err := f.Invoke(ctx, "", []byte(`{"hang":true}`), 300*time.Millisecond)
	if !errors.Is(err, lambdatest.ErrTimedOut) {
		t.Fatalf("Invoke of a hanging function: %v, want ErrTimedOut", err)
	}
	invokeOK(t, ctx, f, `{}`)
	if n := f.Starts(); n != 2 {
		t.Fatalf("Starts = %d after a timeout, want 2", n)
	}
}

func TestInitError(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), map[string]string{"ECHO_INIT_ERROR": "1"})

	if err := f.Ready(ctx); !errors.Is(err, lambdatest.ErrProcessExited) {
		t.Fatalf("Ready of a function failing init: %v, want ErrProcessExited", err)
	}
	ie := f.InitError()
	if ie == nil || ie.Type != "echo.InitError" || !strings.Contains(ie.Message, "ECHO_INIT_ERROR") {
		t.Fatalf("InitError() = %+v, want the reported init error", ie)
	}
	_, err := f.Invoke(ctx, "", []byte(`{}`), 10*time.Second)
	var got *lambdatest.InvokeError
	if !errors.Is(err, lambdatest.ErrProcessExited) || !errors.As(err, &got) || got.Type != "echo.InitError" {
		t.Fatalf("Invoke of a function failing init: %v, want ErrProcessExited with the init error", err)
	}
}

func TestPoolConcurrency(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	b := newBarrier(t, 2) // released only when two invocations run at once
	p := lambdatest.StartPool(t, "echo", lambdatest.Build(t, echoPkg), nil, 2)

	type out struct {
		res lambdatest.Result
		err error
	}
	outs := make(chan out, 2)
	for range 2 {
		go func() {
			res, err := p.Invoke(ctx, "", []byte(b.event()), 30*time.Second)
			outs <- out{res, err}
		}()
	}
	pids := map[int]bool{}
	for range 2 {
		o := <-outs
		if o.err != nil {
			t.Fatalf("concurrent Invoke: %v", o.err)
		}
		pids[decodeReply(t, o.res).PID] = true
	}
	if len(pids) != 2 {
		t.Fatalf("two concurrent invocations ran in processes %v, want two", pids)
	}
	if n := len(p.Functions()); n != 2 {
		t.Fatalf("Functions() has %d, want 2", n)
	}
	if logs := p.Logs(); !strings.Contains(logs, "== echo#1") || !strings.Contains(logs, "== echo#2") {
		t.Fatalf("Pool.Logs() = %q, want a section per function", logs)
	}
}

func TestFunctionServesOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	b := newBarrier(t, 2)
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)

	// Both invocations wait at a barrier for two. Run concurrently, both
	// would pass it. Served one at a time, the first waits alone until its
	// deadline kills the process; the second then runs on a new process and
	// passes the barrier as its second arrival.
	type out struct {
		res lambdatest.Result
		err error
	}
	first := make(chan out, 1)
	go func() {
		res, err := f.Invoke(ctx, "", []byte(b.event()), time.Second)
		first <- out{res, err}
	}()
	select {
	case <-b.first:
	case <-ctx.Done():
		t.Fatalf("the first invocation never reached the barrier")
	}
	res, err := f.Invoke(ctx, "", []byte(b.event()), 10*time.Second)
	if err != nil {
		t.Fatalf("second Invoke: %v", err)
	}
	decodeReply(t, res)
	// The first one's handler gives up at its context's deadline, racing
	// with the harness's timeout; either way it must not have succeeded.
	o := <-first
	if o.err == nil && o.res.Err == nil {
		t.Fatalf("first Invoke succeeded (%s), want a timeout: it ran concurrently with the second", o.res.Payload)
	}
	if o.err != nil && !errors.Is(o.err, lambdatest.ErrTimedOut) {
		t.Fatalf("first Invoke: %v, want ErrTimedOut or a deadline error result", o.err)
	}
}

func TestInvokeContextCanceled(t *testing.T) {
	t.Parallel()
	f := lambdatest.Start(t, "echo", lambdatest.Build(t, echoPkg), nil)
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	if _, err := f.Invoke(ctx, "", []byte(`{}`), time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Invoke with a canceled context: %v, want context.Canceled", err)
	}
	invokeOK(t, testContext(t), f, `{}`)
}
