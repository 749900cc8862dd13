// Package apisurface holds the test that pins hookline's public API: the
// exported names of shared/handler, shared/app and shared/webhook, the only
// packages a user's main imports. Everything else is internal/.
package apisurface
