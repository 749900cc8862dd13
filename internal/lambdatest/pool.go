package lambdatest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Invoker runs invocations of a function: a *Function or a *Pool.
type Invoker interface {
	// Invoke runs one invocation; see Function.Invoke.
	Invoke(ctx context.Context, requestID string, event []byte, timeout time.Duration) (Result, error)
}

// Pool is several execution environments (Functions) of one function, each
// running its own process of the same binary, like the concurrent
// environments Lambda runs a function in. Its methods are safe for
// concurrent use.
type Pool struct {
	name string
	fns  []*Function
	idle chan *Function // Functions free for an invocation
}

// StartPool starts n processes of binary as the function name, each as Start
// would, and returns them as a Pool. All get the same environment, including
// AWS_LAMBDA_FUNCTION_NAME; their log lines are prefixed "name#1",
// "name#2", and so on. The processes are killed when the test ends.
// StartPool fails the test if n < 1 or a process cannot be started.
func StartPool(tb testing.TB, name, binary string, env map[string]string, n int) *Pool {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("lambdatest: StartPool %s: n = %d, want at least 1", name, n)
	}
	p := &Pool{name: name, idle: make(chan *Function, n)}
	for i := range n {
		f := newFunction(tb, name, fmt.Sprintf("%s#%d", name, i+1), binary, env)
		if _, err := f.environment(); err != nil {
			tb.Fatalf("lambdatest: %v", err)
		}
		p.fns = append(p.fns, f)
		p.idle <- f
	}
	return p
}

// Invoke runs one invocation on an idle Function of the pool, waiting for
// one to become idle if all are busy. Otherwise it behaves like
// Function.Invoke; concurrent Invokes run concurrently, up to the pool's
// size.
func (p *Pool) Invoke(ctx context.Context, requestID string, event []byte, timeout time.Duration) (Result, error) {
	select {
	case f := <-p.idle:
		return f.invoke(ctx, requestID, event, timeout, func() { p.idle <- f })
	case <-ctx.Done():
		return Result{RequestID: requestID}, fmt.Errorf("lambdatest: invoke %s: %w", p.name, context.Cause(ctx))
	}
}

// Functions returns the pool's Functions, to inspect or kill one.
func (p *Pool) Functions() []*Function {
	return append([]*Function(nil), p.fns...)
}

// Logs returns the output of all the pool's processes, grouped by Function,
// each group headed by a line "== name#i".
func (p *Pool) Logs() string {
	var b strings.Builder
	for _, f := range p.fns {
		fmt.Fprintf(&b, "== %s\n%s", f.label, f.Logs())
	}
	return b.String()
}

// HandlerFunc runs one invocation of a function for an InvokeEndpoint. It
// returns the response payload, or an error: an *InvokeError for a function
// error reported by the runtime, any other error for an invocation that
// failed otherwise (crash, timeout). It must return when ctx is done.
type HandlerFunc func(ctx context.Context, requestID string, payload []byte) ([]byte, error)

// Handler returns a HandlerFunc that runs invocations on inv with the given
// timeout (DefaultTimeout if zero). A function error becomes a returned
// *InvokeError.
func Handler(inv Invoker, timeout time.Duration) HandlerFunc {
	return func(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
		res, err := inv.Invoke(ctx, requestID, payload, timeout)
		if err != nil {
			return nil, err
		}
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Payload, nil
	}
}
