package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	// Region is the AWS region the fakes pretend to run in. Start sets it
	// as AWS_REGION and AWS_DEFAULT_REGION.
	Region = "us-east-1"
	// AccountID is the AWS account the fakes pretend to run in. It appears
	// in the function ARNs passed to invocations.
	AccountID = "123456789012"
	// DefaultTimeout is the invocation timeout used when Invoke is passed a
	// zero timeout. It is longer than Lambda's default (3 s) to leave room for
	// slow, race-instrumented test machines.
	DefaultTimeout = 30 * time.Second
	// InitTimeout bounds how long an invocation waits for a starting process
	// to ask for it (Lambda's init phase limit is also 10 s).
	InitTimeout = 10 * time.Second

	// memorySize is AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB.
	memorySize = 128
	// waitDelay bounds how long a process's exit waits for its output pipe
	// to close (a child it started may hold the pipe open).
	waitDelay = 2 * time.Second
)

var (
	// ErrProcessExited reports that the function's process exited (crashed,
	// called os.Exit, was killed by Kill) before it answered the invocation.
	// The next invocation starts a new process.
	ErrProcessExited = errors.New("lambdatest: process exited")
	// ErrTimedOut reports that the invocation ran past its deadline. Like
	// Lambda, the fake then kills the process; the next invocation starts a
	// new one.
	ErrTimedOut = errors.New("lambdatest: invocation timed out")
	// ErrInitTimedOut reports that a started process did not ask for the
	// invocation within InitTimeout. The process has been killed.
	ErrInitTimedOut = errors.New("lambdatest: process did not ask for an invocation within the init timeout")
	// ErrStopped reports an invocation of a Function whose test has ended.
	ErrStopped = errors.New("lambdatest: function stopped")
)

// FunctionARN returns the ARN of the function named name in the fakes'
// account and region, as passed to invocations in
// Lambda-Runtime-Invoked-Function-Arn.
func FunctionARN(name string) string {
	return "arn:aws:lambda:" + Region + ":" + AccountID + ":function:" + name
}

// Result is the outcome of an invocation that the function's runtime
// answered.
type Result struct {
	// RequestID is the invocation's request id.
	RequestID string
	// Payload is the response body the runtime posted. For an error result
	// it is the error document the runtime posted.
	Payload []byte
	// Err is the error the runtime reported through the invocation error
	// endpoint (a handler error or a recovered panic), or nil on success.
	Err *InvokeError
}

// InvokeError is an error reported by a function's runtime, for an
// invocation or for its initialization, in the Lambda error document format.
type InvokeError struct {
	// Message is the error message ("errorMessage").
	Message string `json:"errorMessage"`
	// Type is the error type ("errorType"). aws-lambda-go reports the Go
	// type name of the error or panic value, such as "errorString".
	Type string `json:"errorType"`
	// StackTrace is the stack trace as posted ("stackTrace"), if any;
	// aws-lambda-go sends one for panics.
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

// Error returns the error's type and message.
func (e *InvokeError) Error() string {
	return e.Type + ": " + e.Message
}

// Function is a running bootstrap process with its own fake Runtime API: one
// Lambda execution environment. It serves one invocation at a time. When its
// process has exited, the next invocation starts a new one, as Lambda does
// after a crash or timeout. Its methods are safe for concurrent use.
type Function struct {
	tb     testing.TB
	name   string   // AWS_LAMBDA_FUNCTION_NAME
	label  string   // prefix of logged lines; differs from name in a Pool
	binary string   // the bootstrap binary
	env    []string // the process environment, without AWS_LAMBDA_RUNTIME_API

	// busy holds a token while an invocation is in flight.
	busy chan struct{}
	// running counts the invocations' lifecycle goroutines, which stop
	// waits for so that none logs after the test.
	running sync.WaitGroup

	mu      sync.Mutex
	cur     *environment   // the current (possibly exited) environment
	envs    []*environment // every environment started, for the cleanup
	stopped bool           // the test has ended
	initErr *InvokeError   // the last init error reported
	logs    bytes.Buffer   // every process's output
}

// Start runs the bootstrap binary as a Lambda function named name and
// returns once the process has started (not necessarily initialized; see
// Ready). The process gets a small Lambda-like environment, not the test's:
// AWS_LAMBDA_RUNTIME_API pointing at its fake Runtime API,
// AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION ($LATEST),
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE (128), AWS_LAMBDA_LOG_GROUP_NAME,
// AWS_LAMBDA_LOG_STREAM_NAME, AWS_REGION and AWS_DEFAULT_REGION (Region),
// _HANDLER (bootstrap), LAMBDA_TASK_ROOT (the binary's directory, which is
// also its working directory), dummy credentials (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), AWS_EC2_METADATA_DISABLED, TZ,
// LANG and PATH, and GOCOVERDIR if the test has it. env adds to and
// overrides these, except AWS_LAMBDA_RUNTIME_API.
//
// The process is killed when the test ends. Start fails the test if the
// process cannot be started.
func Start(tb testing.TB, name, binary string, env map[string]string) *Function {
	tb.Helper()
	f := newFunction(tb, name, name, binary, env)
	if _, err := f.environment(); err != nil {
		tb.Fatalf("lambdatest: %v", err)
	}
	return f
}

// newFunction returns a Function with no process yet, stopped at the end of
// the test.
func newFunction(tb testing.TB, name, label, binary string, env map[string]string) *Function {
	abs, err := filepath.Abs(binary)
	if err != nil {
		tb.Fatalf("lambdatest: start %s: %v", label, err)
	}
	f := &Function{
		tb:     tb,
		name:   name,
		label:  label,
		binary: abs,
		env:    processEnv(name, label, abs, env),
		busy:   make(chan struct{}, 1),
	}
	tb.Cleanup(f.stop)
	return f
}

// processEnv returns the environment of a bootstrap process, sorted.
func processEnv(name, label, binary string, extra map[string]string) []string {
	vars := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(memorySize),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "lambdatest/" + label,
		"AWS_REGION":                      Region,
		"AWS_DEFAULT_REGION":              Region,
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                filepath.Dir(binary),
		"AWS_ACCESS_KEY_ID":               "AKIDLAMBDATEST",
		"AWS_SECRET_ACCESS_KEY":           "lambdatest-secret-access-key",
		"AWS_SESSION_TOKEN":               "lambdatest-session-token",
		"AWS_EC2_METADATA_DISABLED":       "true",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
	}
	if dir := os.Getenv("GOCOVERDIR"); dir != "" {
		vars["GOCOVERDIR"] = dir
	}
	maps.Copy(vars, extra)
	delete(vars, "AWS_LAMBDA_RUNTIME_API")
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// Name returns the function's name (its AWS_LAMBDA_FUNCTION_NAME).
func (f *Function) Name() string { return f.name }

// Invoke hands event to the function and waits for the runtime's answer. An
// empty requestID is replaced by a generated one. timeout (DefaultTimeout
// if zero) is the invocation's run time limit, passed to the runtime as
// Lambda-Runtime-Deadline-Ms when it takes the invocation; waiting for a
// busy function or a starting process does not count.
//
// A nil error means the runtime answered: Result.Err tells a success from a
// handler error or panic. Otherwise the error wraps ErrProcessExited (the
// process exited before answering), ErrTimedOut or ErrInitTimedOut (the
// process was killed), ErrStopped, or ctx's error. Concurrent Invokes are
// served one at a time, in no particular order. If ctx ends after the
// runtime took the invocation, Invoke returns at once but the function stays
// busy until the runtime answers, as in Lambda.
func (f *Function) Invoke(ctx context.Context, requestID string, event []byte, timeout time.Duration) (Result, error) {
	return f.invoke(ctx, requestID, event, timeout, nil)
}

// outcome is what an invocation's lifecycle goroutine hands to Invoke.
type outcome struct {
	res Result
	err error
}

// invoke implements Invoke, calling release (if not nil) once the function
// is free for the next invocation.
func (f *Function) invoke(ctx context.Context, requestID string, event []byte, timeout time.Duration, release func()) (Result, error) {
	if requestID == "" {
		requestID = newRequestID()
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	res := Result{RequestID: requestID}
	fail := func(err error) (Result, error) {
		if release != nil {
			release()
		}
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("lambdatest: invoke %s: %w", f.label, context.Cause(ctx)))
	}
	select {
	case f.busy <- struct{}{}:
	case <-ctx.Done():
		return fail(fmt.Errorf("lambdatest: invoke %s: %w", f.label, context.Cause(ctx)))
	}
	f.mu.Lock()
	stopped := f.stopped
	if !stopped {
		f.running.Add(1)
	}
	f.mu.Unlock()
	if stopped {
		<-f.busy
		return fail(ErrStopped)
	}

	inv := &invocation{
		id:        requestID,
		event:     event,
		timeout:   timeout,
		delivered: make(chan struct{}),
		done:      make(chan struct{}),
	}
	out := make(chan outcome, 1)
	go func() {
		defer f.running.Done()
		defer func() {
			<-f.busy
			if release != nil {
				release()
			}
		}()
		res, err := f.run(ctx, inv)
		out <- outcome{res, err}
	}()

	select {
	case o := <-out:
		return o.res, o.err
	case <-ctx.Done():
		select {
		case o := <-out:
			return o.res, o.err
		default:
		}
		return res, fmt.Errorf("lambdatest: invoke %s: %w", f.label, context.Cause(ctx))
	}
}

// run delivers inv to the runtime and waits for its answer, the process's
// exit or the deadline.
func (f *Function) run(ctx context.Context, inv *invocation) (Result, error) {
	res := Result{RequestID: inv.id}
	e, err := f.deliver(ctx, inv)
	if err != nil {
		return res, err
	}
	<-inv.delivered // inv.deadline is set
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case <-inv.done:
	case <-e.exited:
	case <-timer.C:
	}
	// A runtime answers before it exits, and is killed only after the
	// deadline, so an answer that raced with either still counts.
	if r, ok := inv.answer(); ok {
		return r, nil
	}
	if e.hasExited() {
		return res, e.exitError("during the invocation")
	}
	e.kill()
	if r, ok := inv.answer(); ok {
		return r, nil
	}
	if !f.isStopped() {
		f.tb.Logf("%s: invocation %s timed out after %s; killed the process", f.label, inv.id, inv.timeout)
	}
	return res, fmt.Errorf("%w after %s (%s)", ErrTimedOut, inv.timeout, f.label)
}

// deliver hands inv to the runtime of the current environment, starting one
// if there is none, and returns the environment that took it. An
// environment that exits while idle, after serving invocations, is
// replaced, as Lambda would; one that exits during its init phase fails the
// invocation.
func (f *Function) deliver(ctx context.Context, inv *invocation) (*environment, error) {
	initTimer := time.NewTimer(InitTimeout)
	defer initTimer.Stop()
	for {
		e, err := f.environment()
		if err != nil {
			return nil, err
		}
		select {
		case e.next <- inv:
			return e, nil
		case <-e.exited:
			if e.served() == 0 {
				return nil, e.exitError("before taking the invocation")
			}
			// It exited after serving earlier invocations: start another.
		case <-initTimer.C:
			e.kill()
			return nil, fmt.Errorf("%w (%s, %s)", ErrInitTimedOut, f.label, InitTimeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("lambdatest: invoke %s: %w", f.label, context.Cause(ctx))
		}
	}
}

// environment returns the current environment, starting a new process if
// there is none or it has exited.
func (f *Function) environment() (*environment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return nil, ErrStopped
	}
	if f.cur != nil && !f.cur.hasExited() {
		return f.cur, nil
	}
	e, err := startEnvironment(f)
	if err != nil {
		return nil, err
	}
	f.cur = e
	f.envs = append(f.envs, e)
	return e, nil
}

// Ready waits until the current process has finished its init phase and
// asks for invocations. It returns an error wrapping ErrProcessExited if the
// process exits first (see InitError), or ctx's error. It does not start a
// new process.
func (f *Function) Ready(ctx context.Context) error {
	f.mu.Lock()
	e := f.cur
	f.mu.Unlock()
	if e == nil {
		return ErrStopped
	}
	select {
	case <-e.ready:
		return nil
	case <-e.exited:
		return e.exitError("during init")
	case <-ctx.Done():
		return fmt.Errorf("lambdatest: %s not ready: %w", f.label, context.Cause(ctx))
	}
}

// InitError returns the last error a process of the function reported
// through the Runtime API's init error endpoint, or nil. aws-lambda-go never
// reports one (a failing init exits the process), but custom runtimes do.
func (f *Function) InitError() *InvokeError {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.initErr
}

// Logs returns everything the function's processes have written to stdout
// and stderr so far, in order, including earlier processes'.
func (f *Function) Logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs.String()
}

// Starts returns how many processes the function has started: 1 plus the
// number of cold starts after a crash, timeout or Kill.
func (f *Function) Starts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.envs)
}

// Kill sends SIGKILL to the current process, simulating a crash of the
// execution environment, and waits for it to exit. An invocation in flight
// fails with ErrProcessExited; the next one starts a new process.
func (f *Function) Kill() {
	f.mu.Lock()
	e := f.cur
	f.mu.Unlock()
	if e != nil {
		e.kill()
	}
}

// KillBusy is Kill for an environment in the middle of an invocation: it
// sends SIGKILL to the current process only if its runtime has taken an
// invocation and not yet answered it, waits for the process to exit, and
// reports whether it killed. An idle or starting process is left alone. The
// invocation in flight fails with ErrProcessExited, unless the runtime's
// answer was already being delivered when the signal was sent; the next
// invocation starts a new process.
func (f *Function) KillBusy() bool {
	f.mu.Lock()
	e := f.cur
	f.mu.Unlock()
	if e == nil || !e.killIfBusy() {
		return false
	}
	<-e.exited
	return true
}

// stop kills every process of the function and waits until their output is
// logged, their Runtime API servers are closed and every invocation has
// ended.
func (f *Function) stop() {
	f.mu.Lock()
	f.stopped = true
	envs := slices.Clone(f.envs)
	f.mu.Unlock()
	for _, e := range envs {
		e.kill()
		<-e.done
	}
	// Every invocation ends once its process is gone.
	f.running.Wait()
}

// isStopped reports whether the test has ended.
func (f *Function) isStopped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// setInitError records an init error reported by a process.
func (f *Function) setInitError(ie *InvokeError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.initErr = ie
}

// appendLog appends process output to the function's log.
func (f *Function) appendLog(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs.Write(p)
}

// startProcess starts cmd from a fresh goroutine: the parent-death signal
// set by setProcAttrs on Linux fires when the forking OS thread exits, and a
// fresh goroutine never runs on a thread locked (runtime.LockOSThread) by a
// caller, which could exit with that caller's goroutine.
func startProcess(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() { errc <- cmd.Start() }()
	return <-errc
}

// logWriter receives a process's stdout and stderr: it appends the output to
// the function's log and writes each complete line to the test log. exec calls
// Write from one goroutine at a time, since stdout and stderr share it.
type logWriter struct {
	f       *Function
	partial []byte // an incomplete last line
}

// Write implements io.Writer.
func (w *logWriter) Write(p []byte) (int, error) {
	w.f.appendLog(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.logLine(bytes.TrimRight(w.partial[:i], "\r"))
		w.partial = w.partial[i+1:]
	}
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

// flush logs an incomplete last line, once the process has exited.
func (w *logWriter) flush() {
	if len(w.partial) > 0 {
		w.logLine(w.partial)
		w.partial = nil
	}
}

// logLine writes one line of output to the test log, prefixed with the
// function's label and without the source location Logf would add.
func (w *logWriter) logLine(line []byte) {
	fmt.Fprintf(w.f.tb.Output(), "%s: %s\n", w.f.label, line)
}
