package schedule

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
)

// LambdaAPI is the part of the AWS Lambda client the invoker uses.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// LambdaInvoker starts drains as asynchronous invocations (InvocationType
// Event) of the drain function, one event per claimed key. The event is a
// drain.Event built from the lease; Lambda may deliver it late or twice,
// which the drain's lease activation absorbs.
type LambdaInvoker struct {
	client   LambdaAPI
	function string
}

// NewLambdaInvoker returns an invoker of function (a name or ARN).
func NewLambdaInvoker(client LambdaAPI, function string) *LambdaInvoker {
	return &LambdaInvoker{client: client, function: function}
}

// Invoke dispatches one drain.
func (li *LambdaInvoker) Invoke(ctx context.Context, l queue.Lease) error {
	payload, err := json.Marshal(drain.NewEvent(l))
	if err != nil {
		return fmt.Errorf("schedule: drain event: %w", err)
	}
	out, err := li.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(li.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("schedule: invoke %s: %w", li.function, err)
	}
	if out.StatusCode != 202 {
		return fmt.Errorf("schedule: invoke %s: status %d, want 202", li.function, out.StatusCode)
	}
	return nil
}
