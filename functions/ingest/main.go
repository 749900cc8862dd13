// Command ingest is hookline's ingest Lambda function: API Gateway events in,
// webhooks verified and stored in Redis, 202 out.
package main

import "github.com/hookline/hookline/shared/app"

func main() { app.StartIngest() }
