package app

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/shared/handler"
)

// DrainHandler returns the drain function's Lambda handler, with the
// handlers of reg (handler.Default when nil) for custom routes: given a
// drain event (the lease the scheduler claimed), it works that key for
// one quantum within the invocation's deadline and yields it, and its
// result says how the drain ended. Pass it to lambda.StartHandlerFunc;
// StartDrain does all of that.
func (a *App) DrainHandler(reg *handler.Registry) (func(context.Context, drain.Event) (drain.Result, error), error) {
	d, err := a.Drainer(reg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev drain.Event) (drain.Result, error) {
		deadline, _ := ctx.Deadline()
		return d.Run(ctx, ev.Lease(), requestID(ctx), deadline)
	}, nil
}

// StartDrain is the whole main of a drain function: it loads the App as
// LoadLambda does, writes metrics to stdout, resolves the routes' handlers
// from reg (handler.Default when nil) and serves drain events until the
// process ends. A bad configuration, or a route naming a handler that is
// not registered, stops the function at init with a message naming the
// setting (InitFailed). The public shared/app.StartDrain calls it.
func StartDrain(reg *handler.Registry) {
	a, err := LoadLambda()
	if err != nil {
		InitFailed("drain", err)
	}
	a.Metrics = a.Emitter(os.Stdout)
	h, err := a.DrainHandler(reg)
	if err != nil {
		InitFailed("drain", err)
	}
	lambda.StartHandlerFunc(h)
}

// requestID returns the invocation's request id, which the drain binds its
// lease to, or a unique stand-in outside Lambda.
func requestID(ctx context.Context) string {
	lc, _ := lambdacontext.FromContext(ctx)
	if lc == nil || lc.AwsRequestID == "" {
		return "no-request-id-" + time.Now().Format(time.RFC3339Nano)
	}
	return lc.AwsRequestID
}
