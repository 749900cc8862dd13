// Package lambdatest runs the project's real Lambda bootstrap binaries in
// tests, under fakes of the two AWS interfaces they touch.
//
// It has three parts:
//
//   - [Build] compiles a main package the way the deployment does
//     (CGO_ENABLED=0, -tags lambda.norpc, host OS and architecture) and caches
//     the binary for the rest of the test binary's life.
//   - [Start] and [StartPool] run a binary as a child process under a fake of
//     the Lambda Runtime API (2018-06-01), the HTTP API that aws-lambda-go's
//     lambda.Start polls. [Function.Invoke] hands one event to the process and
//     waits for its response or error. A [Function] is one execution
//     environment: it serves one invocation at a time, and like Lambda it
//     starts a fresh process (a cold start) for the next invocation after its
//     process crashed, panicked, timed out or was killed. A [Pool] is several
//     environments of one function, for concurrent invocations.
//   - [NewInvokeEndpoint] is a fake of the Lambda service's Invoke operation
//     for the real AWS SDK client (point it there with AWS_ENDPOINT_URL_LAMBDA
//     or aws.Config.BaseEndpoint). It runs registered functions, usually a
//     Pool through [Handler], synchronously (RequestResponse) or in the
//     background (Event), records every call, and injects throttling, service
//     errors and duplicate asynchronous deliveries.
//
// A typical end-to-end test:
//
//	drainBin := lambdatest.Build(t, "github.com/hookline/hookline/functions/drain")
//	ingestBin := lambdatest.Build(t, "github.com/hookline/hookline/functions/ingest")
//	ep := lambdatest.NewInvokeEndpoint(t)
//	drain := lambdatest.StartPool(t, "drain", drainBin, env, 2)
//	ep.Register("drain", lambdatest.Handler(drain, 10*time.Second))
//	ingest := lambdatest.Start(t, "ingest", ingestBin, map[string]string{
//		"AWS_ENDPOINT_URL_LAMBDA": ep.URL(),
//	})
//	res, err := ingest.Invoke(ctx, "", event, 10*time.Second)
//	...
//	err = ep.Wait(ctx) // until the asynchronous drain runs are done
//
// Every server listens on 127.0.0.1 only. Processes and servers are stopped in
// tb.Cleanup. Each process's stdout and stderr are logged through tb.Log,
// line by line with the function's name as a prefix, and kept for
// [Function.Logs].
//
// The fakes pretend to run in account [AccountID], region [Region]. They do
// not enforce payload size limits, do not retry failed asynchronous
// invocations (Lambda retries them twice), and do not support response
// streaming or the Extensions API beyond the registration that
// lambda.WithEnableSIGTERM performs.
package lambdatest
