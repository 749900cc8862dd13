// Command ingest is hookline's ingest Lambda function: API Gateway events in,
// webhooks verified and stored in Redis, 202 out.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/hookline/hookline/shared/app"
	"github.com/hookline/hookline/shared/ingest"
)

func main() {
	a, err := app.LoadLambda()
	if err != nil {
		app.InitFailed("ingest", err)
	}
	a.Metrics = a.Emitter(os.Stdout)
	srv, err := a.Ingest()
	if err != nil {
		app.InitFailed("ingest", err)
	}
	lambda.StartHandlerFunc(ingest.LambdaHandler(srv))
}
