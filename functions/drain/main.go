// Command drain is hookline's drain Lambda function: invoked asynchronously
// by the scheduler with one claimed lease, it works that key's queue for one
// quantum and yields it. It serves the built-in handlers only; a deployment
// with Go handlers of its own builds its drain from a main like
// examples/custom-handler's.
package main

import "github.com/hookline/hookline/shared/app"

func main() { app.StartDrain() }
