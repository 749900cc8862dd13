package schedule

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
)

// lambdaRecorder is a LambdaAPI that keeps the last input and answers 202.
type lambdaRecorder struct{ in *lambda.InvokeInput }

func (r *lambdaRecorder) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	r.in = in
	return &lambda.InvokeOutput{StatusCode: 202}, nil
}

// TestLambdaInvokerSendsDrainEvent: the invoker sends one asynchronous
// invocation whose payload is the drain.Event of the lease, byte for byte
// its JSON encoding, and which decodes back into the lease.
func TestLambdaInvokerSendsDrainEvent(t *testing.T) {
	rec := &lambdaRecorder{}
	l := queue.Lease{Key: "cust_0042:post.create", Lane: "quick", Token: 9,
		Deadline: time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC), Slot: "sched-a/1"}
	if err := NewLambdaInvoker(rec, "hookline-drain").Invoke(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(rec.in.FunctionName) != "hookline-drain" || rec.in.InvocationType != types.InvocationTypeEvent {
		t.Fatalf("invoked %q as %q, want hookline-drain as Event", aws.ToString(rec.in.FunctionName), rec.in.InvocationType)
	}
	const want = `{"key":"cust_0042:post.create","lane":"quick","token":9,"deadline":"2026-11-23T12:00:30Z","slot":"sched-a/1"}`
	if string(rec.in.Payload) != want {
		t.Fatalf("payload %s, want %s", rec.in.Payload, want)
	}
	var ev drain.Event
	if err := json.Unmarshal(rec.in.Payload, &ev); err != nil || ev.Lease() != l {
		t.Fatalf("payload decoded to %+v (%v), want the lease %+v", ev.Lease(), err, l)
	}
}
