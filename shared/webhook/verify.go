package webhook

import "time"

// Verifier checks the signature of a webhook request.
type Verifier interface {
	// Verify returns nil if the request with headers h and raw body body is
	// authentic at time now, and otherwise an error wrapping
	// ErrSignatureMissing, ErrSignatureInvalid or ErrTimestampInvalid. It
	// must be safe for concurrent use and must not retain h or body.
	Verify(h Headers, body []byte, now time.Time) error
}

// Compile-time checks that the verifiers implement Verifier.
var (
	_ Verifier = (*Standard)(nil)
	_ Verifier = (*HMAC)(nil)
	_ Verifier = NoVerify{}
)

// NoVerify is a Verifier that accepts every request, for sources configured
// with "verify: none".
type NoVerify struct{}

// Verify returns nil.
func (NoVerify) Verify(Headers, []byte, time.Time) error { return nil }
