package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Header names of Standard Webhooks.
const (
	// HeaderID carries the unique message id.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the time of signing in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries space-separated "v1,<base64>" signatures.
	HeaderSignature = "webhook-signature"
)

// ToleranceDefault is how far a Standard Webhooks timestamp may lie from the
// verifier's clock, in either direction, when NewStandard is given 0.
const ToleranceDefault = 5 * time.Minute

// maxTimestamp bounds accepted timestamps (about the year 36812) so that time
// arithmetic on them cannot overflow.
const maxTimestamp = 1 << 40

// secretPrefix starts a Standard Webhooks secret.
const secretPrefix = "whsec_"

// Standard verifies Standard Webhooks signatures
// (https://www.standardwebhooks.com). It is safe for concurrent use.
type Standard struct {
	keys      [][]byte
	tolerance time.Duration
}

// NewStandard returns a Standard verifier that accepts a signature made with
// any of secrets, and timestamps at most tolerance away from the verifier's
// clock in either direction (ToleranceDefault if tolerance is 0).
//
// Each secret is "whsec_" followed by the base64 (standard alphabet, padded)
// of the key, or the base64 alone. It returns an error wrapping
// ErrInvalidSecret if secrets is empty or a secret does not decode to a
// non-empty key (the message gives the secret's index, never the secret),
// and one wrapping ErrInvalidConfig if tolerance is negative.
func NewStandard(secrets []string, tolerance time.Duration) (*Standard, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secrets configured", ErrInvalidSecret)
	}
	if tolerance < 0 {
		return nil, fmt.Errorf("%w: negative timestamp tolerance", ErrInvalidConfig)
	}
	s := &Standard{keys: make([][]byte, len(secrets)), tolerance: tolerance}
	if s.tolerance == 0 {
		s.tolerance = ToleranceDefault
	}
	for i, secret := range secrets {
		key, err := standardKey(secret)
		if err != nil {
			return nil, fmt.Errorf("%w (secret %d of %d)", err, i+1, len(secrets))
		}
		s.keys[i] = key
	}
	return s, nil
}

// standardKey decodes a Standard Webhooks secret.
func standardKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		// The base64 error names the offending byte's offset only, but
		// leave it out all the same: nothing about a secret is logged.
		return nil, fmt.Errorf("%w: not base64 after the %q prefix", ErrInvalidSecret, secretPrefix)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrInvalidSecret)
	}
	return key, nil
}

// Verify checks the headers webhook-id, webhook-timestamp and
// webhook-signature against body at time now. It returns an error wrapping
// ErrSignatureMissing if a header is missing or empty, ErrTimestampInvalid if
// the timestamp is not decimal Unix seconds or is more than the tolerance
// away from now, and ErrSignatureInvalid if no "v1," entry of the signature
// list matches any secret. Entries of other versions, and entries without a
// comma, are ignored.
func (s *Standard) Verify(h Headers, body []byte, now time.Time) error {
	id := h.Get(HeaderID)
	tsText := h.Get(HeaderTimestamp)
	sigs := h.Get(HeaderSignature)
	for _, hv := range [...]struct{ name, value string }{
		{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigs},
	} {
		if hv.value == "" {
			return fmt.Errorf("%w: no %s header", ErrSignatureMissing, hv.name)
		}
	}

	ts, ok := parseTimestamp(tsText)
	if !ok {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrTimestampInvalid, HeaderTimestamp)
	}
	signed := time.Unix(ts, 0)
	if now.Sub(signed) > s.tolerance {
		return fmt.Errorf("%w: too old", ErrTimestampInvalid)
	}
	if signed.Sub(now) > s.tolerance {
		return fmt.Errorf("%w: too far in the future", ErrTimestampInvalid)
	}

	want := make([][]byte, len(s.keys))
	for i, key := range s.keys {
		want[i] = []byte(base64.StdEncoding.EncodeToString(standardMAC(key, id, ts, body)))
	}
	seen := false
	for entry := range strings.FieldsSeq(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		seen = true
		for _, w := range want {
			if hmac.Equal([]byte(sig), w) {
				return nil
			}
		}
	}
	if !seen {
		return fmt.Errorf("%w: no v1 entry in %s", ErrSignatureInvalid, HeaderSignature)
	}
	return fmt.Errorf("%w: no v1 entry in %s matches", ErrSignatureInvalid, HeaderSignature)
}

// parseTimestamp parses decimal Unix seconds: digits only (no sign, no
// space), at most maxTimestamp. Leading zeros are allowed, as the reference
// implementations allow them; the signed content uses the canonical form.
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ts > maxTimestamp {
		return 0, false
	}
	return ts, true
}

// standardMAC returns HMAC-SHA256 with key over "<id>.<ts>.<body>", ts in
// canonical decimal.
func standardMAC(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	writeStrings(m, id, ".", strconv.FormatInt(ts, 10), ".")
	m.Write(body)
	return m.Sum(nil)
}

// writeStrings writes each string to h, which never fails.
func writeStrings(h hash.Hash, ss ...string) {
	for _, s := range ss {
		h.Write([]byte(s))
	}
}

// SignStandard returns the webhook-signature header value ("v1,<base64>")
// for a Standard Webhooks message with the given id, timestamp (truncated to
// whole seconds) and body, signed with secret in the form NewStandard
// accepts. The webhook-timestamp header must carry ts.Unix() in decimal. It
// returns an error wrapping ErrInvalidSecret if secret does not decode.
func SignStandard(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(key, id, ts.Unix(), body)), nil
}
