// Package app starts hookline's three Lambda functions. Their mains in
// functions/ are one line each; a deployment with Go handlers of its own
// builds its drain function from a main that registers them (see package
// handler) and then calls StartDrain:
//
//	func main() {
//		handler.Register("crm-sync", handler.HandlerFunc(crmSync))
//		app.StartDrain()
//	}
//
// examples/custom-handler is such a main, run by the tests as a real
// Lambda binary. Each function reads its configuration from the
// environment (HOOKLINE_CONFIG, HOOKLINE_REDIS_URL, …: see the README) and
// stops at init, with a message naming the setting, when it is wrong.
package app

import (
	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/shared/handler"
)

// StartDrain serves the drain function until the process ends: each event
// (a key the scheduler claimed) is worked for one quantum, every item
// through its route's handler, built in (forward, log) or registered in
// handler.Default before the call. A route naming a handler that is not
// registered stops the function at init.
func StartDrain() { app.StartDrain(handler.Default) }

// StartIngest serves the ingest function until the process ends: API
// Gateway events in, webhooks verified and stored, 202 out.
func StartIngest() { app.StartIngest() }

// StartScheduler serves the scheduler function until the process ends:
// each invocation dispatches drain invocations for the ready keys until
// shortly before its deadline.
func StartScheduler() { app.StartScheduler() }
