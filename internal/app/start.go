package app

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/schedule"
)

// StartIngest is the whole main of the ingest function: it loads the App
// as LoadLambda does, writes metrics to stdout and serves API Gateway
// events (HTTP API v2 and v1, REST) until the process ends. A bad
// configuration stops the function at init with a message naming the
// setting (InitFailed).
func StartIngest() {
	a, err := LoadLambda()
	if err != nil {
		InitFailed("ingest", err)
	}
	a.Metrics = a.Emitter(os.Stdout)
	srv, err := a.Ingest()
	if err != nil {
		InitFailed("ingest", err)
	}
	lambda.StartHandlerFunc(ingest.LambdaHandler(srv))
}

// StartScheduler is the whole main of the scheduler function: started by
// the schedule, each invocation dispatches one asynchronous drain
// invocation (of HOOKLINE_DRAIN_FUNCTION) per ready key, within each lane's
// concurrency, until shortly before its deadline.
func StartScheduler() {
	a, err := LoadLambda()
	if err != nil {
		InitFailed("scheduler", err)
	}
	if err := a.Config.RequireDrainFunction(); err != nil {
		InitFailed("scheduler", err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		InitFailed("scheduler", err)
	}
	inv := schedule.NewLambdaInvoker(awslambda.NewFromConfig(awsCfg), a.Config.DrainFunction)
	metrics := a.Emitter(os.Stdout)
	lambda.StartHandlerFunc(func(ctx context.Context, _ json.RawMessage) (schedule.Stats, error) {
		owner := ""
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			owner = lc.AwsRequestID
		}
		s, err := a.Scheduler(inv, owner, metrics)
		if err != nil {
			return schedule.Stats{}, err
		}
		deadline, _ := ctx.Deadline()
		return s.Run(ctx, deadline)
	})
}
