// Command scheduler is hookline's scheduler Lambda function: started every
// minute by EventBridge, it dispatches one asynchronous drain invocation per
// ready key, within each lane's concurrency, until shortly before its
// deadline.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/schedule"
)

func main() {
	a, err := app.LoadLambda()
	if err != nil {
		app.InitFailed("scheduler", err)
	}
	if err := a.Config.RequireDrainFunction(); err != nil {
		app.InitFailed("scheduler", err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		app.InitFailed("scheduler", err)
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
