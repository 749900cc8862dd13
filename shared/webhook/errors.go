package webhook

import "errors"

// Errors returned for a request that is rejected. Each may be wrapped with
// detail; test for them with errors.Is. ErrorCode maps them to machine codes.
var (
	// ErrMalformedJSON means the body is not exactly one JSON object in valid
	// UTF-8, is nested too deeply, or has an object with a duplicate key.
	ErrMalformedJSON = errors.New("webhook: body is not a JSON object")
	// ErrMissingCode means the body has no "code" member, or it is null or
	// the empty string.
	ErrMissingCode = errors.New("webhook: missing code")
	// ErrInvalidCode means "code" is not a JSON string, or is not 1 to
	// MaxCodeLen bytes of printable ASCII without '{' and '}'.
	ErrInvalidCode = errors.New("webhook: invalid code")
	// ErrMissingData means the body has no "data" member, or it is not a JSON
	// object (null, an array or a scalar).
	ErrMissingData = errors.New("webhook: missing data")
	// ErrMissingTenant means the tenant pointer resolves to nothing, to null
	// or to the empty string.
	ErrMissingTenant = errors.New("webhook: missing tenant")
	// ErrInvalidTenant means the tenant pointer resolves to a value that is
	// neither a JSON string nor an integral JSON number, or whose text is not
	// 1 to MaxTenantLen bytes of printable ASCII without ':', '{' and '}'.
	ErrInvalidTenant = errors.New("webhook: invalid tenant")
	// ErrInvalidID means a webhook id is not 1 to MaxIDLen bytes of
	// printable ASCII without ':', '{' and '}' (see ValidateID).
	ErrInvalidID = errors.New("webhook: invalid id")

	// ErrSignatureMissing means a header the verifier needs is missing or
	// empty.
	ErrSignatureMissing = errors.New("webhook: signature missing")
	// ErrSignatureInvalid means no signature in the request matches any
	// secret, or the signature header is malformed.
	ErrSignatureInvalid = errors.New("webhook: signature invalid")
	// ErrTimestampInvalid means the signed timestamp is not a Unix time in
	// decimal seconds, or lies outside the verifier's tolerance.
	ErrTimestampInvalid = errors.New("webhook: timestamp invalid")
)

// Errors in configuration, reported by constructors and ValidatePointer (and
// by Parse when given a pointer that ValidatePointer rejects). ErrorCode maps
// them to "": they are the server's fault, not the request's.
var (
	// ErrInvalidPointer means a tenant pointer is not an RFC 6901 JSON
	// pointer.
	ErrInvalidPointer = errors.New("webhook: invalid JSON pointer")
	// ErrInvalidSecret means no secret is configured or a secret cannot be
	// used. Its message never includes the secret.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrInvalidConfig means a verifier setting other than a secret is
	// invalid.
	ErrInvalidConfig = errors.New("webhook: invalid verifier configuration")
)

// errorCodes lists the request errors and their machine codes.
var errorCodes = []struct {
	err  error
	code string
}{
	{ErrMalformedJSON, "malformed_json"},
	{ErrMissingCode, "missing_code"},
	{ErrInvalidCode, "invalid_code"},
	{ErrMissingData, "missing_data"},
	{ErrMissingTenant, "missing_tenant"},
	{ErrInvalidTenant, "invalid_tenant"},
	{ErrSignatureMissing, "signature_missing"},
	{ErrSignatureInvalid, "signature_invalid"},
	{ErrTimestampInvalid, "timestamp_invalid"},
}

// ErrorCode returns the stable machine code for a request error of this
// package ("malformed_json", "missing_code", "invalid_code", "missing_data",
// "missing_tenant", "invalid_tenant", "signature_missing",
// "signature_invalid" or "timestamp_invalid"), or "" if err is nil or is not
// one of them. Every non-empty code means the request itself is at fault.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return ""
}
