package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

var (
	githubConfig  = HMACConfig{Header: "X-Hub-Signature-256", Encoding: EncodingHex, Prefix: "sha256="}
	shopifyConfig = HMACConfig{Header: "X-Shopify-Hmac-Sha256", Encoding: EncodingBase64}
)

func TestSignHMACKnownVectors(t *testing.T) {
	// From GitHub's "Validating webhook deliveries".
	got := SignHMAC(githubConfig, "It's a Secret to Everybody", []byte("Hello, World!"))
	if want := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"; got != want {
		t.Errorf("SignHMAC(GitHub) = %q, want %q", got, want)
	}
	// Computed with: printf '%s' "$body" | openssl dgst -sha256 -hmac shpss_test_secret -binary | base64
	got = SignHMAC(shopifyConfig, "shpss_test_secret", []byte(`{"id":820982911946154508,"email":"jon@doe.ca"}`))
	if want := "ydL79GgFis+45WlpB77OS7dfcX+8t6iObguHVHAAEPc="; got != want {
		t.Errorf("SignHMAC(Shopify) = %q, want %q", got, want)
	}
}

func TestHMACVerify(t *testing.T) {
	const (
		secret1 = "first-SEKRIT-1"
		secret2 = "second-SEKRIT-2"
		other   = "other-SEKRIT-3"
	)
	body := []byte(`{"action":"opened","number":1}`)
	gh1 := SignHMAC(githubConfig, secret1, body)
	gh2 := SignHMAC(githubConfig, secret2, body)
	ghOther := SignHMAC(githubConfig, other, body)
	sh1 := SignHMAC(shopifyConfig, secret1, body)
	sh2 := SignHMAC(shopifyConfig, secret2, body)
	shOther := SignHMAC(shopifyConfig, other, body)

	tests := []struct {
		name    string
		cfg     HMACConfig
		h       Headers
		body    []byte
		wantErr error
	}{
		{name: "github valid", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1}},
		{name: "github rotated secret", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh2}},
		{name: "github upper-case hex", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": "sha256=" + strings.ToUpper(gh1[7:])}},
		{name: "github via http.Header", cfg: githubConfig, h: HTTPHeaders(http.Header{"X-Hub-Signature-256": {gh1}})},
		{name: "github wrong secret", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": ghOther}, wantErr: ErrSignatureInvalid},
		{name: "github tampered body", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1}, body: []byte(`{"action":"closed","number":1}`),
			wantErr: ErrSignatureInvalid},
		{name: "github missing header", cfg: githubConfig, h: HeaderMap{"x-hub-signature": gh1}, wantErr: ErrSignatureMissing},
		{name: "github empty header", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": ""}, wantErr: ErrSignatureMissing},
		{name: "github no prefix", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1[7:]}, wantErr: ErrSignatureInvalid},
		{name: "github sha1 prefix", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": "sha1=" + gh1[7:]}, wantErr: ErrSignatureInvalid},
		{name: "github prefix is case-sensitive", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": "SHA256=" + gh1[7:]}, wantErr: ErrSignatureInvalid},
		{name: "github not hex", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": "sha256=" + strings.Repeat("zz", 32)}, wantErr: ErrSignatureInvalid},
		{name: "github short", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1[:len(gh1)-2]}, wantErr: ErrSignatureInvalid},
		{name: "github long", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1 + "00"}, wantErr: ErrSignatureInvalid},
		{name: "github odd length", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1 + "0"}, wantErr: ErrSignatureInvalid},
		{name: "github two values", cfg: githubConfig, h: HTTPHeaders(http.Header{"X-Hub-Signature-256": {ghOther, gh1}}), wantErr: ErrSignatureInvalid},
		{name: "github trailing space", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": gh1 + " "}, wantErr: ErrSignatureInvalid},
		{name: "github prefix only", cfg: githubConfig, h: HeaderMap{"x-hub-signature-256": "sha256="}, wantErr: ErrSignatureInvalid},

		{name: "shopify valid", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": sh1}},
		{name: "shopify rotated secret", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": sh2}},
		{name: "shopify via http.Header", cfg: shopifyConfig, h: HTTPHeaders(http.Header{"X-Shopify-Hmac-Sha256": {sh1}})},
		{name: "shopify wrong secret", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": shOther}, wantErr: ErrSignatureInvalid},
		{name: "shopify tampered body", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": sh1}, body: []byte(`{}`), wantErr: ErrSignatureInvalid},
		{name: "shopify missing header", cfg: shopifyConfig, h: HeaderMap{}, wantErr: ErrSignatureMissing},
		{name: "shopify hex instead of base64", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": gh1[7:]}, wantErr: ErrSignatureInvalid},
		{name: "shopify unpadded", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": strings.TrimRight(sh1, "=")}, wantErr: ErrSignatureInvalid},
		{name: "shopify not base64", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": "!!" + sh1[2:]}, wantErr: ErrSignatureInvalid},
		{name: "shopify with line break", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": sh1[:20] + "\n" + sh1[20:]}, wantErr: ErrSignatureInvalid},
		{name: "shopify non-zero padding bits", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": flipPadBits(sh1)}, wantErr: ErrSignatureInvalid},
		{name: "shopify short", cfg: shopifyConfig, h: HeaderMap{"x-shopify-hmac-sha256": "AAAA"}, wantErr: ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewHMAC(tt.cfg, []string{secret1, secret2})
			if err != nil {
				t.Fatalf("NewHMAC: %v", err)
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			err = v.Verify(tt.h, b, time.Time{})
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				assertNoSecrets(t, err, secret1, secret2, other, gh1, gh1[7:], ghOther[7:], sh1, shOther, "zzzz")
			}
		})
	}
}

func TestNewHMACErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     HMACConfig
		secrets []string
		wantErr error
	}{
		{"no header", HMACConfig{Encoding: EncodingHex}, []string{"s"}, ErrInvalidConfig},
		{"no encoding", HMACConfig{Header: "X-Sig"}, []string{"s"}, ErrInvalidConfig},
		{"unknown encoding", HMACConfig{Header: "X-Sig", Encoding: "base32"}, []string{"s"}, ErrInvalidConfig},
		{"no secrets", githubConfig, nil, ErrInvalidSecret},
		{"empty secret", githubConfig, []string{"SEKRIT", ""}, ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewHMAC(tt.cfg, tt.secrets)
			if !errors.Is(err, tt.wantErr) || v != nil {
				t.Fatalf("NewHMAC = %v, %v; want nil, %v", v, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SEKRIT") {
				t.Errorf("error %q contains a secret", err)
			}
		})
	}
}

func TestHMACSecretIsRawBytes(t *testing.T) {
	// A secret that looks like base64 is still used as its own bytes.
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := NewHMAC(githubConfig, []string{secret})
	if err != nil {
		t.Fatalf("NewHMAC: %v", err)
	}
	body := []byte("{}")
	if err := v.Verify(HeaderMap{"x-hub-signature-256": "sha256=" + hexMAC([]byte(secret), body)}, body, time.Time{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// hexMAC computes HMAC-SHA256 in hex independently of the package.
func hexMAC(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// flipPadBits returns the base64 text of a 32-byte MAC with its unused low
// bits set: the same bytes to a lenient decoder.
func flipPadBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(s) - 2 // last data character; 32 bytes leave 2 unused bits
	c := strings.IndexByte(alphabet, s[i]) | 3
	return s[:i] + string(alphabet[c]) + s[i+1:]
}
