package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Encodings of an HMACConfig signature.
const (
	// EncodingHex is lower- or upper-case hexadecimal (GitHub).
	EncodingHex = "hex"
	// EncodingBase64 is padded base64 with the standard alphabet (Shopify).
	EncodingBase64 = "base64"
)

// HMACConfig describes a scheme that puts one HMAC-SHA256 of the raw body in
// one header, like GitHub's
//
//	HMACConfig{Header: "X-Hub-Signature-256", Encoding: "hex", Prefix: "sha256="}
//
// and Shopify's
//
//	HMACConfig{Header: "X-Shopify-Hmac-Sha256", Encoding: "base64"}
type HMACConfig struct {
	// Header is the name of the header carrying the signature, matched
	// case-insensitively. Required.
	Header string
	// Encoding is how the MAC is written: EncodingHex or EncodingBase64.
	// Required; the zero value is invalid.
	Encoding string
	// Prefix must precede the encoded MAC in the header, such as "sha256=".
	// It is matched case-sensitively. The zero value means no prefix.
	Prefix string
}

// validate checks the configuration.
func (c HMACConfig) validate() error {
	if c.Header == "" {
		return fmt.Errorf("%w: no signature header name", ErrInvalidConfig)
	}
	if c.Encoding != EncodingHex && c.Encoding != EncodingBase64 {
		return fmt.Errorf("%w: encoding must be %q or %q", ErrInvalidConfig, EncodingHex, EncodingBase64)
	}
	return nil
}

// HMAC verifies signatures made as HMACConfig describes. It is safe for
// concurrent use.
type HMAC struct {
	cfg     HMACConfig
	secrets [][]byte
}

// NewHMAC returns an HMAC verifier for cfg that accepts a MAC made with any of
// secrets. Each secret is used as the key exactly as given (its UTF-8 bytes,
// not decoded). It returns an error wrapping ErrInvalidConfig if cfg is
// invalid and one wrapping ErrInvalidSecret if secrets is empty or has an
// empty secret.
func NewHMAC(cfg HMACConfig, secrets []string) (*HMAC, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secrets configured", ErrInvalidSecret)
	}
	v := &HMAC{cfg: cfg, secrets: make([][]byte, len(secrets))}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("%w: empty key (secret %d of %d)", ErrInvalidSecret, i+1, len(secrets))
		}
		v.secrets[i] = []byte(s)
	}
	return v, nil
}

// Verify checks the configured header against body; now is not used. It
// returns an error wrapping ErrSignatureMissing if the header is missing or
// empty, and ErrSignatureInvalid if it lacks the prefix, does not decode to a
// SHA-256 MAC, or matches no secret.
func (v *HMAC) Verify(h Headers, body []byte, _ time.Time) error {
	value := h.Get(v.cfg.Header)
	if value == "" {
		return fmt.Errorf("%w: no %s header", ErrSignatureMissing, v.cfg.Header)
	}
	enc, ok := strings.CutPrefix(value, v.cfg.Prefix)
	if !ok {
		return fmt.Errorf("%w: %s lacks the expected prefix", ErrSignatureInvalid, v.cfg.Header)
	}
	got, ok := decodeMAC(v.cfg.Encoding, enc)
	if !ok {
		return fmt.Errorf("%w: %s is not a %s SHA-256 MAC", ErrSignatureInvalid, v.cfg.Header, v.cfg.Encoding)
	}
	for _, key := range v.secrets {
		if hmac.Equal(got, bodyMAC(key, body)) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches no secret", ErrSignatureInvalid, v.cfg.Header)
}

// decodeMAC decodes a SHA-256 MAC in the given encoding. Only the canonical
// text is accepted (hex in either case), not base64 with line breaks or
// non-zero padding bits, so that one MAC has one spelling.
func decodeMAC(encoding, s string) ([]byte, bool) {
	var (
		mac []byte
		err error
	)
	if encoding == EncodingBase64 {
		if len(s) != base64.StdEncoding.EncodedLen(sha256.Size) {
			return nil, false
		}
		mac, err = base64.StdEncoding.Strict().DecodeString(s)
	} else {
		if len(s) != hex.EncodedLen(sha256.Size) {
			return nil, false
		}
		mac, err = hex.DecodeString(s)
	}
	return mac, err == nil && len(mac) == sha256.Size
}

// bodyMAC returns HMAC-SHA256 with key over body.
func bodyMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// SignHMAC returns the header value for body signed with secret as cfg
// describes: cfg.Prefix followed by the MAC in base64 if cfg.Encoding is
// EncodingBase64 and in lower-case hex otherwise.
func SignHMAC(cfg HMACConfig, secret string, body []byte) string {
	mac := bodyMAC([]byte(secret), body)
	if cfg.Encoding == EncodingBase64 {
		return cfg.Prefix + base64.StdEncoding.EncodeToString(mac)
	}
	return cfg.Prefix + hex.EncodeToString(mac)
}
