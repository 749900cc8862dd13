// Command echo is the Lambda function the lambdatest tests run. It answers
// an event with the event itself and details of the invocation, and
// misbehaves on request. The event is a JSON object; its optional members:
//
//	"fail": true      return an error
//	"panic": true     panic (aws-lambda-go reports it, then exits)
//	"exit": true      exit the process with status 3, mid-invocation
//	"hang": true      never answer
//	"wait": "<url>"   GET the URL before answering (a barrier for tests)
//	"env": ["NAME"]   include these environment variables in the answer
//	"invoke": {"function": "<name>", "payload": <json>}
//	                  first invoke that function asynchronously through the
//	                  AWS SDK (configured from the environment, so through
//	                  AWS_ENDPOINT_URL_LAMBDA)
//
// With ECHO_INIT_ERROR set, it reports an init error through the Runtime
// API and exits instead of starting, as a custom runtime would.
//
// It deliberately does what real functions must not (os.Exit in a
// handler), to test how the harness copes.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// request is the part of the event that steers the function.
type request struct {
	Fail   bool     `json:"fail"`
	Panic  bool     `json:"panic"`
	Exit   bool     `json:"exit"`
	Hang   bool     `json:"hang"`
	Wait   string   `json:"wait"`
	Env    []string `json:"env"`
	Invoke *struct {
		Function string          `json:"function"`
		Payload  json.RawMessage `json:"payload"`
	} `json:"invoke"`
}

// reply is the function's answer.
type reply struct {
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMS  int64             `json:"deadlineMs"`
	PID         int               `json:"pid"`
	Event       json.RawMessage   `json:"event"`
	Env         map[string]string `json:"env,omitempty"`
	Invoked     int32             `json:"invokedStatus,omitempty"`
}

func handle(ctx context.Context, event json.RawMessage) (reply, error) {
	var req request
	_ = json.Unmarshal(event, &req) // anything but an object is just echoed
	switch {
	case req.Exit:
		os.Exit(3)
	case req.Panic:
		panic("echo: asked to panic")
	case req.Fail:
		return reply{}, errors.New("echo: asked to fail")
	case req.Hang:
		time.Sleep(time.Hour)
	}
	if req.Wait != "" {
		if err := get(ctx, req.Wait); err != nil {
			return reply{}, err
		}
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	out := reply{
		RequestID:   lc.AwsRequestID,
		FunctionARN: lc.InvokedFunctionArn,
		DeadlineMS:  deadline.UnixMilli(),
		PID:         os.Getpid(),
		Event:       event,
	}
	if len(req.Env) > 0 {
		out.Env = map[string]string{}
		for _, k := range req.Env {
			out.Env[k] = os.Getenv(k)
		}
	}
	if req.Invoke != nil {
		status, err := invoke(ctx, req.Invoke.Function, req.Invoke.Payload)
		if err != nil {
			return reply{}, err
		}
		out.Invoked = status
	}
	fmt.Printf("echo: answered %s\n", lc.AwsRequestID)
	return out, nil
}

// get fetches url and discards the body.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// invoke invokes function asynchronously and returns the status code.
func invoke(ctx context.Context, function string, payload []byte) (int32, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return 0, err
	}
	out, err := awslambda.NewFromConfig(cfg).Invoke(ctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return 0, err
	}
	return out.StatusCode, nil
}

// reportInitError posts an init error to the Runtime API, as a custom
// runtime does when its initialization fails.
func reportInitError() {
	url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
	body := `{"errorMessage":"echo: ECHO_INIT_ERROR is set","errorType":"echo.InitError"}`
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "echo.InitError")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Fprintf(os.Stderr, "echo: init error reported (%s)\n", resp.Status)
	os.Exit(1)
}

func main() {
	if os.Getenv("ECHO_INIT_ERROR") != "" {
		reportInitError()
	}
	lambda.Start(handle)
}
