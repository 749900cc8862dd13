package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	testNow  = time.Unix(1_700_000_000, 0)
	secretA  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("secret-A-0123456789abcdefghijkl"))
	secretB  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("secret-B-0123456789abcdefghijkl"))
	secretC  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("secret-C-0123456789abcdefghijkl"))
	testBody = []byte(`{"code":"order.created","data":{"customer_id":"c_42"}}`)
)

// mustSignStandard signs or fails the test.
func mustSignStandard(t testing.TB, secret, id string, ts time.Time, body []byte) string {
	t.Helper()
	sig, err := SignStandard(secret, id, ts, body)
	if err != nil {
		t.Fatalf("SignStandard: %v", err)
	}
	return sig
}

// standardHeaders builds the three Standard Webhooks headers.
func standardHeaders(id string, ts time.Time, sig string) HeaderMap {
	return HeaderMap{
		HeaderID:        id,
		HeaderTimestamp: strconv.FormatInt(ts.Unix(), 10),
		HeaderSignature: sig,
	}
}

func TestSignStandardKnownVector(t *testing.T) {
	// The test vector published with the Standard Webhooks libraries.
	sig, err := SignStandard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatalf("SignStandard: %v", err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; sig != want {
		t.Fatalf("SignStandard = %q, want %q", sig, want)
	}
}

func TestStandardVerify(t *testing.T) {
	v, err := NewStandard([]string{secretA, secretB}, 0)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
	sigA := mustSignStandard(t, secretA, id, testNow, testBody)
	sigB := mustSignStandard(t, secretB, id, testNow, testBody)
	sigC := mustSignStandard(t, secretC, id, testNow, testBody)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	with := func(name, value string) HeaderMap {
		h := standardHeaders(id, testNow, sigA)
		h[name] = value
		return h
	}

	tests := []struct {
		name    string
		h       Headers
		body    []byte
		now     time.Time
		wantErr error
	}{
		{name: "valid", h: standardHeaders(id, testNow, sigA)},
		{name: "second secret of a rotation", h: standardHeaders(id, testNow, sigB)},
		{name: "wrong secret", h: standardHeaders(id, testNow, sigC), wantErr: ErrSignatureInvalid},
		{name: "tampered body", h: standardHeaders(id, testNow, sigA), body: append([]byte(nil), append(testBody, ' ')...),
			wantErr: ErrSignatureInvalid},
		{name: "tampered id", h: with(HeaderID, id+"x"), wantErr: ErrSignatureInvalid},
		{name: "tampered timestamp", h: with(HeaderTimestamp, strconv.FormatInt(testNow.Unix()+1, 10)), wantErr: ErrSignatureInvalid},
		{name: "timestamp with leading zeros is canonicalized", h: with(HeaderTimestamp, "00"+ts)},
		{name: "5 minutes old", h: standardHeaders(id, testNow, sigA), now: testNow.Add(5 * time.Minute)},
		{name: "too old", h: standardHeaders(id, testNow, sigA), now: testNow.Add(5*time.Minute + time.Second), wantErr: ErrTimestampInvalid},
		{name: "5 minutes ahead", h: standardHeaders(id, testNow, sigA), now: testNow.Add(-5 * time.Minute)},
		{name: "too new", h: standardHeaders(id, testNow, sigA), now: testNow.Add(-5*time.Minute - time.Second), wantErr: ErrTimestampInvalid},
		{name: "far future timestamp", h: with(HeaderTimestamp, "999999999999999999"), wantErr: ErrTimestampInvalid},
		{name: "overflowing timestamp", h: with(HeaderTimestamp, "99999999999999999999999"), wantErr: ErrTimestampInvalid},
		{name: "zero timestamp", h: with(HeaderTimestamp, "0"), wantErr: ErrTimestampInvalid},
		{name: "timestamp with plus", h: with(HeaderTimestamp, "+"+ts), wantErr: ErrTimestampInvalid},
		{name: "negative timestamp", h: with(HeaderTimestamp, "-"+ts), wantErr: ErrTimestampInvalid},
		{name: "timestamp with space", h: with(HeaderTimestamp, " "+ts), wantErr: ErrTimestampInvalid},
		{name: "fractional timestamp", h: with(HeaderTimestamp, ts+".5"), wantErr: ErrTimestampInvalid},
		{name: "milliseconds timestamp", h: with(HeaderTimestamp, ts+"000"), wantErr: ErrTimestampInvalid},
		{name: "date timestamp", h: with(HeaderTimestamp, testNow.UTC().Format(time.RFC3339)), wantErr: ErrTimestampInvalid},
		{name: "no id", h: with(HeaderID, ""), wantErr: ErrSignatureMissing},
		{name: "no timestamp", h: with(HeaderTimestamp, ""), wantErr: ErrSignatureMissing},
		{name: "no signature", h: with(HeaderSignature, ""), wantErr: ErrSignatureMissing},
		{name: "no headers", h: HeaderMap{}, wantErr: ErrSignatureMissing},
		{name: "invalid then valid", h: with(HeaderSignature, sigC+" "+sigA)},
		{name: "valid then invalid", h: with(HeaderSignature, sigA+" "+sigC)},
		{name: "garbage around valid", h: with(HeaderSignature, "v1,abc= v1,def= nocomma  v1a,"+sigA[3:]+" "+sigB+" v1,")},
		{name: "other versions ignored", h: with(HeaderSignature, "v1a,"+sigA[3:]+" v2,"+sigA[3:]), wantErr: ErrSignatureInvalid},
		{name: "version is case-sensitive", h: with(HeaderSignature, "V1,"+sigA[3:]), wantErr: ErrSignatureInvalid},
		{name: "bare base64", h: with(HeaderSignature, sigA[3:]), wantErr: ErrSignatureInvalid},
		{name: "commas and spaces", h: with(HeaderSignature, "v1,abc= v1,def="), wantErr: ErrSignatureInvalid},
		{name: "signature with trailing comma", h: with(HeaderSignature, sigA+","), wantErr: ErrSignatureInvalid},
		{name: "signature truncated", h: with(HeaderSignature, sigA[:len(sigA)-1]), wantErr: ErrSignatureInvalid},
		{name: "signature unpadded", h: with(HeaderSignature, strings.TrimRight(sigA, "=")), wantErr: ErrSignatureInvalid},
		{name: "signature as a comma list", h: with(HeaderSignature, sigC+", "+sigA)},
		{name: "tab separated", h: with(HeaderSignature, sigC+"\t"+sigA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := testBody
			if tt.body != nil {
				body = tt.body
			}
			now := testNow
			if !tt.now.IsZero() {
				now = tt.now
			}
			err := v.Verify(tt.h, body, now)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				assertNoSecrets(t, err, secretA, secretB, secretC, sigA, sigB, sigC, sigA[3:], sigC[3:], "abc=")
			}
		})
	}
}

// assertNoSecrets fails the test if err's message contains any of secrets,
// or a secret's key part.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	msg := err.Error()
	for _, s := range secrets {
		for _, part := range []string{s, strings.TrimPrefix(s, "whsec_")} {
			if part != "" && strings.Contains(msg, part) {
				t.Errorf("error %q contains secret or signature %q", msg, part)
			}
		}
	}
}

func TestStandardTolerance(t *testing.T) {
	v, err := NewStandard([]string{secretA}, 30*time.Second)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	h := standardHeaders("id", testNow, mustSignStandard(t, secretA, "id", testNow, testBody))
	if err := v.Verify(h, testBody, testNow.Add(30*time.Second)); err != nil {
		t.Errorf("Verify at the tolerance: %v", err)
	}
	if err := v.Verify(h, testBody, testNow.Add(31*time.Second)); !errors.Is(err, ErrTimestampInvalid) {
		t.Errorf("Verify past the tolerance = %v, want ErrTimestampInvalid", err)
	}
	if err := v.Verify(h, testBody, testNow.Add(-31*time.Second)); !errors.Is(err, ErrTimestampInvalid) {
		t.Errorf("Verify before the tolerance = %v, want ErrTimestampInvalid", err)
	}
}

func TestStandardSignsWholeSeconds(t *testing.T) {
	v, err := NewStandard([]string{secretA}, 0)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	ts := testNow.Add(999 * time.Millisecond)
	sig := mustSignStandard(t, secretA, "id", ts, testBody)
	if err := v.Verify(standardHeaders("id", ts, sig), testBody, ts); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestStandardSecretForms(t *testing.T) {
	raw := strings.TrimPrefix(secretA, "whsec_")
	v, err := NewStandard([]string{raw}, 0)
	if err != nil {
		t.Fatalf("NewStandard(raw base64): %v", err)
	}
	sig := mustSignStandard(t, secretA, "id", testNow, testBody)
	if err := v.Verify(standardHeaders("id", testNow, sig), testBody, testNow); err != nil {
		t.Fatalf("Verify with an unprefixed secret: %v", err)
	}
	if sig2 := mustSignStandard(t, raw, "id", testNow, testBody); sig2 != sig {
		t.Fatalf("SignStandard differs with and without prefix: %q, %q", sig2, sig)
	}
}

func TestNewStandardErrors(t *testing.T) {
	const badSecret = "whsec_not*base64*SEKRIT"
	tests := []struct {
		name      string
		secrets   []string
		tolerance time.Duration
		wantErr   error
	}{
		{"no secrets", nil, 0, ErrInvalidSecret},
		{"empty list", []string{}, 0, ErrInvalidSecret},
		{"not base64", []string{secretA, badSecret}, 0, ErrInvalidSecret},
		{"prefix only", []string{"whsec_"}, 0, ErrInvalidSecret},
		{"empty", []string{""}, 0, ErrInvalidSecret},
		{"raw secret", []string{"SEKRIT-raw-password!"}, 0, ErrInvalidSecret},
		{"negative tolerance", []string{secretA}, -time.Second, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewStandard(tt.secrets, tt.tolerance)
			if !errors.Is(err, tt.wantErr) || v != nil {
				t.Fatalf("NewStandard = %v, %v; want nil, %v", v, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SEKRIT") || strings.Contains(err.Error(), "base64*") {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
	if _, err := SignStandard(badSecret, "id", testNow, testBody); !errors.Is(err, ErrInvalidSecret) || strings.Contains(err.Error(), "SEKRIT") {
		t.Errorf("SignStandard with a bad secret: %v", err)
	}
}

// TestStandardHeaderValueIntact checks that a signature list with commas and
// spaces reaches the verifier unchanged through HTTPHeaders.
func TestStandardHeaderValueIntact(t *testing.T) {
	v, err := NewStandard([]string{secretA}, 0)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	sig := mustSignStandard(t, secretA, "id", testNow, testBody)
	h := http.Header{}
	h.Set("Webhook-Id", "id")
	h.Set("Webhook-Timestamp", strconv.FormatInt(testNow.Unix(), 10))

	h.Set("Webhook-Signature", "v1,abc= v1,def=")
	if got := HTTPHeaders(h).Get(HeaderSignature); got != "v1,abc= v1,def=" {
		t.Fatalf("HTTPHeaders.Get = %q", got)
	}
	if err := v.Verify(HTTPHeaders(h), testBody, testNow); !errors.Is(err, ErrSignatureInvalid) {
		t.Fatalf("Verify(v1,abc= v1,def=) = %v, want ErrSignatureInvalid", err)
	}

	h.Set("Webhook-Signature", "v1,abc= v1,def= "+sig)
	if err := v.Verify(HTTPHeaders(h), testBody, testNow); err != nil {
		t.Fatalf("Verify(v1,abc= v1,def= <valid>) = %v", err)
	}

	// The same header sent twice: values are joined, not split.
	h.Del("Webhook-Signature")
	h.Add("Webhook-Signature", "v1,abc= v1,def=")
	h.Add("Webhook-Signature", sig)
	if got, want := HTTPHeaders(h).Get(HeaderSignature), "v1,abc= v1,def=, "+sig; got != want {
		t.Fatalf("HTTPHeaders.Get = %q, want %q", got, want)
	}
	if err := v.Verify(HTTPHeaders(h), testBody, testNow); err != nil {
		t.Fatalf("Verify with the header sent twice: %v", err)
	}
}

// TestStandardReference checks interoperability with the reference Go
// library of Standard Webhooks, both ways.
func TestStandardReference(t *testing.T) {
	secrets := []string{
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		secretA,
	}
	bodies := [][]byte{testBody, {}, []byte(`{"code":"a","data":{"s":"\u00e9 \n \"quoted\""}}`), []byte("not json \x00\xff")}
	now := time.Now() // the reference library reads the wall clock
	for _, secret := range secrets {
		ref, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatalf("reference NewWebhook: %v", err)
		}
		ours, err := NewStandard([]string{secret}, 0)
		if err != nil {
			t.Fatalf("NewStandard: %v", err)
		}
		for i, body := range bodies {
			id := "msg_" + strconv.Itoa(i)

			refSig, err := ref.Sign(id, now, body)
			if err != nil {
				t.Fatalf("reference Sign: %v", err)
			}
			if err := ours.Verify(standardHeaders(id, now, refSig), body, now); err != nil {
				t.Errorf("secret %q body %d: reference signature rejected: %v", secret, i, err)
			}

			ourSig := mustSignStandard(t, secret, id, now, body)
			if ourSig != refSig {
				t.Errorf("secret %q body %d: SignStandard = %q, reference = %q", secret, i, ourSig, refSig)
			}
			h := http.Header{}
			h.Set(standardwebhooks.HeaderWebhookID, id)
			h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
			h.Set(standardwebhooks.HeaderWebhookSignature, "v1,bogus= "+ourSig)
			if err := ref.Verify(body, h); err != nil {
				t.Errorf("secret %q body %d: reference rejects our signature: %v", secret, i, err)
			}
			if err := ours.Verify(HTTPHeaders(h), body, now); err != nil {
				t.Errorf("secret %q body %d: our signature rejected by us: %v", secret, i, err)
			}
		}
	}
}

func TestNoVerify(t *testing.T) {
	if err := (NoVerify{}).Verify(HeaderMap{}, nil, time.Time{}); err != nil {
		t.Fatalf("NoVerify.Verify = %v", err)
	}
}
