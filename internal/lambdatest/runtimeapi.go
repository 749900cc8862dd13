package lambdatest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The Runtime API as aws-lambda-go v1.55 uses it (lambda/runtime_api_client.go,
// lambda/invoke_loop.go, lambda/extensions_api_client.go). The runtime
// requires 202 Accepted from every POST, or it exits.
const (
	headerRequestID   = "Lambda-Runtime-Aws-Request-Id"
	headerDeadlineMS  = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID     = "Lambda-Runtime-Trace-Id"
	// headerErrorType may accompany a POST to an error endpoint, and is a
	// trailer of a response POST whose body failed mid-stream (the trailer
	// Lambda-Runtime-Function-Error-Body then holds the base64 error
	// document).
	headerErrorType  = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"

	headerExtensionName = "Lambda-Extension-Name"
	headerExtensionID   = "Lambda-Extension-Identifier"
)

// environment is one process of a Function and the fake Runtime API server
// it talks to. A process that exits takes its server with it; the Function
// starts a new environment for the next invocation.
type environment struct {
	f   *Function
	srv *httptest.Server
	cmd *exec.Cmd

	// next hands an invocation to a runtime waiting in GET .../next.
	next chan *invocation
	// ready is closed when the runtime first asks for an invocation.
	ready     chan struct{}
	readyOnce sync.Once
	// exited is closed when the process has exited; waitErr is then set.
	exited  chan struct{}
	waitErr error
	// done is closed when the output is logged and the server closed.
	done chan struct{}
	// delivered counts the invocations the runtime took.
	delivered atomic.Int64

	mu       sync.Mutex
	inflight map[string]*invocation // taken by the runtime, not answered
	initErr  *InvokeError           // reported by this process
}

// invocation is one event on its way through an environment.
type invocation struct {
	id      string
	event   []byte
	timeout time.Duration

	// delivered is closed once the runtime took the invocation; deadline is
	// set before.
	delivered chan struct{}
	deadline  time.Time

	// done is closed once the runtime answered; result is set before.
	done     chan struct{}
	doneOnce sync.Once
	result   Result
}

// complete records the runtime's answer. It reports false if the
// invocation was already answered.
func (inv *invocation) complete(r Result) bool {
	ok := false
	inv.doneOnce.Do(func() {
		inv.result = r
		close(inv.done)
		ok = true
	})
	return ok
}

// answer returns the runtime's answer, if it has answered.
func (inv *invocation) answer() (Result, bool) {
	select {
	case <-inv.done:
		return inv.result, true
	default:
		return Result{}, false
	}
}

// startEnvironment starts a Runtime API server and a process of f's binary
// talking to it. The caller holds f.mu.
func startEnvironment(f *Function) (*environment, error) {
	e := &environment{
		f:        f,
		next:     make(chan *invocation),
		ready:    make(chan struct{}),
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
		inflight: map[string]*invocation{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", e.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", e.handleResponse)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", e.handleError)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", e.handleInitError)
	mux.HandleFunc("POST /2020-01-01/extension/register", e.handleExtensionRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", e.handleExtensionNext)
	mux.HandleFunc("/", e.handleUnknown)
	e.srv = httptest.NewServer(mux) // on 127.0.0.1

	logs := &logWriter{f: f}
	e.cmd = exec.Command(f.binary)
	e.cmd.Dir = filepath.Dir(f.binary)
	e.cmd.Env = append(f.env[:len(f.env):len(f.env)], "AWS_LAMBDA_RUNTIME_API="+e.srv.Listener.Addr().String())
	e.cmd.Stdout = logs
	e.cmd.Stderr = logs
	e.cmd.WaitDelay = waitDelay
	setProcAttrs(e.cmd)
	if err := startProcess(e.cmd); err != nil {
		e.srv.Close()
		return nil, fmt.Errorf("start %s (%s): %w", f.label, f.binary, err)
	}

	go func() {
		err := e.cmd.Wait()
		logs.flush()
		e.waitErr = err
		close(e.exited)
		if !f.isStopped() {
			f.tb.Logf("%s: process %d exited: %s", f.label, e.cmd.Process.Pid, exitStatus(err))
		}
		e.srv.Close()
		close(e.done)
	}()
	return e, nil
}

// hasExited reports whether the process has exited.
func (e *environment) hasExited() bool {
	select {
	case <-e.exited:
		return true
	default:
		return false
	}
}

// served returns how many invocations the runtime took.
func (e *environment) served() int64 { return e.delivered.Load() }

// kill sends SIGKILL to the process and waits for it to exit.
func (e *environment) kill() {
	if !e.hasExited() {
		_ = e.cmd.Process.Kill() // fails only if it has already exited
	}
	<-e.exited
}

// killIfBusy sends SIGKILL to the process if the runtime holds an
// invocation it has not answered, and reports whether it did. It holds e.mu
// while it checks and signals, so no answer is taken in between.
func (e *environment) killIfBusy() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.inflight) == 0 || e.hasExited() {
		return false
	}
	_ = e.cmd.Process.Kill() // fails only if it has just exited
	return true
}

// exitError returns the error for an invocation cut short by the process's
// exit, which happened at the moment described by when. It wraps the
// *exec.ExitError, if any, and the init error the process reported, if any.
// It must be called after exited is closed.
func (e *environment) exitError(when string) error {
	var err error
	if e.waitErr != nil {
		err = fmt.Errorf("%w %s (%s, pid %d): %w", ErrProcessExited, when, e.f.label, e.cmd.Process.Pid, e.waitErr)
	} else {
		err = fmt.Errorf("%w %s (%s, pid %d): exit status 0", ErrProcessExited, when, e.f.label, e.cmd.Process.Pid)
	}
	e.mu.Lock()
	ie := e.initErr
	e.mu.Unlock()
	if ie != nil {
		err = fmt.Errorf("%w (init error: %w)", err, ie)
	}
	return err
}

// exitStatus describes the result of exec.Cmd.Wait.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// handleNext serves GET /2018-06-01/runtime/invocation/next: it blocks until
// an invocation is handed over (or the process goes away) and answers with
// the event as the body and the invocation's metadata as headers.
func (e *environment) handleNext(w http.ResponseWriter, r *http.Request) {
	e.readyOnce.Do(func() { close(e.ready) })
	var inv *invocation
	select {
	case inv = <-e.next:
	case <-r.Context().Done():
		return
	case <-e.exited:
		return
	}
	inv.deadline = time.Now().Add(inv.timeout)
	e.mu.Lock()
	e.inflight[inv.id] = inv
	e.mu.Unlock()
	e.delivered.Add(1)
	close(inv.delivered)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(headerRequestID, inv.id)
	h.Set(headerDeadlineMS, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(headerFunctionARN, FunctionARN(e.f.name))
	h.Set(headerTraceID, newTraceID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.event)
}

// take removes the invocation with the request id of the request's path
// from the in-flight set. If there is none, it answers the request with 400
// and returns nil.
func (e *environment) take(w http.ResponseWriter, r *http.Request) *invocation {
	id := r.PathValue("id")
	e.mu.Lock()
	inv := e.inflight[id]
	delete(e.inflight, id)
	e.mu.Unlock()
	if inv == nil {
		e.f.tb.Logf("%s: runtime answered unknown or already answered invocation %q", e.f.label, id)
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+id)
		return nil
	}
	return inv
}

// handleResponse serves POST /2018-06-01/runtime/invocation/{id}/response.
func (e *environment) handleResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The process went away mid-request; its exit fails the invocation.
		return
	}
	inv := e.take(w, r)
	if inv == nil {
		return
	}
	res := Result{RequestID: inv.id, Payload: body}
	// aws-lambda-go reports a response body that failed while being read
	// in trailers, after the partial body.
	if typ := r.Trailer.Get(headerErrorType); typ != "" {
		ie := &InvokeError{Type: typ, Message: "response body failed"}
		if doc, err := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody)); err == nil {
			_ = json.Unmarshal(doc, ie)
			res.Payload = doc
		}
		res.Err = ie
	}
	inv.complete(res)
	writeAccepted(w)
}

// handleError serves POST /2018-06-01/runtime/invocation/{id}/error.
func (e *environment) handleError(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	inv := e.take(w, r)
	if inv == nil {
		return
	}
	inv.complete(Result{RequestID: inv.id, Payload: body, Err: parseErrorDoc(body, r.Header.Get(headerErrorType))})
	writeAccepted(w)
}

// handleInitError serves POST /2018-06-01/runtime/init/error. Like Lambda,
// the fake then ends the environment: the process is killed.
func (e *environment) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	ie := parseErrorDoc(body, r.Header.Get(headerErrorType))
	e.mu.Lock()
	e.initErr = ie
	e.mu.Unlock()
	e.f.setInitError(ie)
	e.f.tb.Logf("%s: runtime reported an init error: %v", e.f.label, ie)
	writeAccepted(w)
	go e.kill()
}

// handleExtensionRegister serves POST /2020-01-01/extension/register, which
// aws-lambda-go calls for lambda.WithEnableSIGTERM.
func (e *environment) handleExtensionRegister(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set(headerExtensionID, newRequestID())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"functionName":    e.f.name,
		"functionVersion": "$LATEST",
		"handler":         "bootstrap",
	})
}

// handleExtensionNext serves GET /2020-01-01/extension/event/next. The fake
// sends no extension events (SHUTDOWN included), so it blocks until the
// process goes away.
func (e *environment) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-e.exited:
	}
}

// handleUnknown answers requests outside the implemented API with 404 and
// logs them, to make a gap in the fake visible.
func (e *environment) handleUnknown(w http.ResponseWriter, r *http.Request) {
	e.f.tb.Logf("%s: unsupported Runtime API request %s %s", e.f.label, r.Method, r.URL.Path)
	writeRuntimeError(w, http.StatusNotFound, "UnsupportedRequest", "lambdatest does not implement "+r.Method+" "+r.URL.Path)
}

// parseErrorDoc decodes an error document posted by a runtime. typ, from
// the Lambda-Runtime-Function-Error-Type header, fills in a missing type.
func parseErrorDoc(body []byte, typ string) *InvokeError {
	ie := &InvokeError{}
	if err := json.Unmarshal(body, ie); err != nil {
		ie = &InvokeError{Message: string(body)}
	}
	if ie.Type == "" {
		ie.Type = typ
	}
	if ie.Type == "" {
		ie.Type = "Unknown"
	}
	return ie
}

// writeAccepted answers a runtime's POST the way Lambda does.
func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// writeRuntimeError answers a runtime's request with a Runtime API error.
func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(InvokeError{Type: typ, Message: msg})
}

// newRequestID returns a random version 4 UUID, the form of Lambda request
// ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newTraceID returns an X-Ray trace header for an invocation, not sampled.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%x;Parent=%x;Sampled=0", time.Now().Unix(), b[:12], b[12:20])
}
