// Command drain is hookline's drain Lambda function: invoked asynchronously
// by the scheduler with one drain.Event (a claimed lease), it works that
// key's queue for one quantum and yields it.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/drain"
)

func main() {
	a, err := app.LoadLambda()
	if err != nil {
		app.InitFailed("drain", err)
	}
	a.Metrics = a.Emitter(os.Stdout)
	d, err := a.Drainer(nil)
	if err != nil {
		app.InitFailed("drain", err)
	}
	lambda.StartHandlerFunc(func(ctx context.Context, ev drain.Event) (drain.Result, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		return d.Run(ctx, ev.Lease(), requestID(lc), deadline)
	})
}

func requestID(lc *lambdacontext.LambdaContext) string {
	if lc == nil || lc.AwsRequestID == "" {
		return "no-request-id-" + time.Now().Format(time.RFC3339Nano)
	}
	return lc.AwsRequestID
}
