// Command scheduler is hookline's scheduler Lambda function: started every
// minute by EventBridge, it dispatches one asynchronous drain invocation per
// ready key, within each lane's concurrency, until shortly before its
// deadline.
package main

import "github.com/hookline/hookline/shared/app"

func main() { app.StartScheduler() }
