// Package webhook holds the logic ingest applies to an untrusted webhook
// request before anything is queued: verifying its signature and parsing its
// body. It does no I/O; the HTTP server, the queue and configuration live
// elsewhere.
//
// A provider POSTs a JSON object
//
//	{"code": "<event code>", "data": {...}}
//
// Parse checks the body (one JSON object, valid UTF-8, no duplicate keys at
// any depth), extracts the event code and the data object, and derives the
// tenant with an RFC 6901 JSON pointer configured per source, such as
// "/data/customer_id". Data extracts the data object of a body again by
// the same rules, for a drain that hands a queued body to its handler: this
// package is the one place a body's data is read.
//
// A Verifier checks a request's signature before its body is parsed:
//
//   - Standard implements Standard Webhooks (https://www.standardwebhooks.com):
//     headers webhook-id, webhook-timestamp and webhook-signature, HMAC-SHA256
//     over "<id>.<timestamp>.<body>", whsec_ secrets.
//   - HMAC implements the single-header HMAC-SHA256 schemes of GitHub
//     (X-Hub-Signature-256: sha256=<hex>) and Shopify
//     (X-Shopify-Hmac-Sha256: <base64>).
//   - NoVerify accepts every request.
//
// Every verifier takes a list of secrets so that secrets can be rotated: a
// request is valid if any of its signatures matches any secret.
//
// Errors are the sentinels below, possibly wrapped with detail. Their messages
// never repeat values taken from the request (only names of fields and
// headers), so they are safe to return to the caller and to log. ErrorCode maps
// them to stable machine codes for HTTP responses.
package webhook
