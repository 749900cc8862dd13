package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/sender"
	"github.com/hookline/hookline/shared/webhook"
)

// sendTarget is an ingest endpoint for the send command's tests. It accepts
// webhooks signed with secret and answers the others 401, and lets answer
// refuse webhooks by event code.
type sendTarget struct {
	url    string
	mu     sync.Mutex
	codes  []string // event code of every verified request
	answer func(code string) (int, string)
}

func newSendTarget(t *testing.T, secret string) *sendTarget {
	t.Helper()
	v, err := webhook.NewStandard([]string{secret}, 0)
	if err != nil {
		t.Fatalf("NewStandard: %v", err)
	}
	st := &sendTarget{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if err := v.Verify(webhook.HTTPHeaders(r.Header), body, time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":{"code":%q,"message":"no"}}`, webhook.ErrorCode(err))
			return
		}
		p, err := webhook.Parse(body, "/data/customer_id")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":%q,"message":"no"}}`, webhook.ErrorCode(err))
			return
		}
		st.mu.Lock()
		st.codes = append(st.codes, p.Code)
		st.mu.Unlock()
		status, answer := http.StatusAccepted, `{"id":"x","key":"y"}`
		if st.answer != nil {
			status, answer = st.answer(p.Code)
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	st.url = srv.URL + "/webhooks"
	return st
}

// received returns how many verified requests arrived.
func (st *sendTarget) received() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.codes)
}

// runSend runs `hookline send args...` and returns its stdout, its stderr and
// its error.
func runSend(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newSendCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

var summaryLine = regexp.MustCompile(`^sent (\d+) webhooks? to (\d+) keys? in \d[0-9.]*(ms|s|µs): (\d+) accepted, (\d+) duplicates?, (\d+) failed( \(.*\))?\n$`)

// TestSendCmdDevSecret: with no secret configured, a localhost URL gets the
// hookline dev secret, and the summary adds up.
func TestSendCmdDevSecret(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, "")
	st := newSendTarget(t, devSecret)
	out, errOut, err := runSend(t, "--url", st.url, "--count", "3", "--tenants", "2", "--codes", "post.create, order.paid", "--run", "cmd", "--quiet")
	if err != nil {
		t.Fatalf("send: %v\n%s", err, errOut)
	}
	m := summaryLine.FindStringSubmatch(out)
	if m == nil || m[1] != "12" || m[2] != "4" || m[4] != "12" || m[5] != "0" || m[6] != "0" || m[7] != "" {
		t.Fatalf("summary %q, want 12 webhooks to 4 keys, all accepted", out)
	}
	if errOut != "" {
		t.Fatalf("stderr %q, want nothing with --quiet", errOut)
	}
	if n := st.received(); n != 12 {
		t.Fatalf("server verified %d webhooks, want 12", n)
	}
}

// TestSendCmdEnvSecret: the first of HOOKLINE_SIGNING_SECRETS signs.
func TestSendCmdEnvSecret(t *testing.T) {
	first := "whsec_Zmlyc3Qtc2VuZC1jbWQtdGVzdC1zZWNyZXQ="
	t.Setenv(config.EnvSigningSecrets, " "+first+"  whsec_c2Vjb25kLXNlbmQtY21kLXRlc3Qtc2VjcmV0 ")
	st := newSendTarget(t, first)
	out, _, err := runSend(t, "--url", st.url, "--quiet")
	if err != nil || !strings.HasPrefix(out, "sent 1 webhook to 1 key in ") || !strings.HasSuffix(out, ": 1 accepted, 0 duplicates, 0 failed\n") {
		t.Fatalf("send: %q, %v", out, err)
	}
}

// TestSendCmdSecretFlag: --secret wins over the environment, and a wrong
// secret makes every webhook fail without the secret being printed.
func TestSendCmdSecretFlag(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, devSecret)
	wrong := "whsec_d3Jvbmctc2VjcmV0LWZvci1zZW5kLXRlc3Q="
	st := newSendTarget(t, devSecret)
	out, errOut, err := runSend(t, "--url", st.url, "--secret", wrong, "--count", "2", "--quiet")
	if err == nil || err.Error() != "send: 2 of 2 webhooks failed" {
		t.Fatalf("send error %v, want 2 of 2 failed", err)
	}
	if !strings.HasSuffix(out, ": 0 accepted, 0 duplicates, 2 failed (401 signature_invalid: 2)\n") {
		t.Fatalf("summary %q", out)
	}
	for _, s := range []string{out, errOut, err.Error()} {
		if strings.Contains(s, strings.TrimPrefix(wrong, "whsec_")) {
			t.Fatalf("output %q contains the secret", s)
		}
	}
}

// TestSendCmdFailures: refused webhooks are broken down by cause, most
// frequent first, and make the command fail.
func TestSendCmdFailures(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, "")
	st := newSendTarget(t, devSecret)
	st.answer = func(code string) (int, string) {
		switch code {
		case "no.route":
			return http.StatusUnprocessableEntity, `{"error":{"code":"unknown_code","message":"no route"}}`
		case "too.big":
			return http.StatusRequestEntityTooLarge, `{"error":{"code":"body_too_large","message":"big"}}`
		case "again":
			return http.StatusOK, `{"id":"x","key":"y","duplicate":true}`
		}
		return http.StatusAccepted, `{"id":"x","key":"y"}`
	}
	out, errOut, err := runSend(t, "--url", st.url, "--count", "2", "--tenants", "2", "--codes", "ok,no.route,too.big,again", "--quiet")
	if err == nil || err.Error() != "send: 8 of 16 webhooks failed" {
		t.Fatalf("send error %v, want 8 of 16 failed", err)
	}
	want := ": 4 accepted, 4 duplicates, 8 failed (413 body_too_large: 4, 422 unknown_code: 4)\n"
	if !summaryLine.MatchString(out) || !strings.HasPrefix(out, "sent 16 webhooks to 8 keys in ") || !strings.HasSuffix(out, want) {
		t.Fatalf("summary %q, want ...%q", out, want)
	}
	// The server's message for each cause, in the summary's order.
	if !strings.HasPrefix(errOut, "413 body_too_large: big\n422 unknown_code: no route\n") {
		t.Fatalf("stderr %q, want the server's message per cause", errOut)
	}
}

// TestSendCmdNothingListens: a refused connection ends the send at once
// with a message that says so, instead of retrying for seconds.
func TestSendCmdNothingListens(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	out, _, err := runSend(t, "--url", "http://"+addr+"/webhooks", "--count", "3", "--quiet")
	want := "send: nothing listens at " + addr + ": connection refused (is `hookline dev` running, and on this port? see its --addr)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v to say nothing listens", took)
	}
	if out != "" {
		t.Fatalf("stdout %q, want nothing when nothing was sent", out)
	}
}

// TestSendCmdProgress: 50 webhooks or more get a progress bar on stderr,
// cleared at the end; stdout has only the summary.
func TestSendCmdProgress(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, "")
	st := newSendTarget(t, devSecret)
	out, errOut, err := runSend(t, "--url", st.url, "--count", "25", "--tenants", "2")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if m := summaryLine.FindStringSubmatch(out); m == nil || m[4] != "50" {
		t.Fatalf("summary %q, want 50 accepted", out)
	}
	if !strings.Contains(errOut, "sending") || !strings.Contains(errOut, "/50") {
		t.Fatalf("stderr %q has no progress bar", errOut)
	}

	_, errOut, err = runSend(t, "--url", st.url, "--count", "49")
	if err != nil || errOut != "" {
		t.Fatalf("49 webhooks: stderr %q, error %v; want no progress bar", errOut, err)
	}
}

// TestSendCmdBadFlags: bad flags fail before anything is sent or printed.
func TestSendCmdBadFlags(t *testing.T) {
	t.Setenv(config.EnvSigningSecrets, "")
	st := newSendTarget(t, devSecret)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "send: --count must be at least 1"},
		{[]string{"--tenants", "-1"}, "send: --tenants must be at least 1"},
		{[]string{"--concurrency", "0"}, "send: --concurrency must be at least 1"},
		{[]string{"--codes", "a,,b"}, "send: sender: invalid options: Codes[1]"},
		{[]string{"--tenant-pointer", "/code"}, "send: sender: invalid options: TenantPointer"},
		{[]string{"--secret", "whsec_*secret*"}, "send: sender: invalid options: Secret"},
		{[]string{"extra"}, "unknown command"},
	} {
		out, _, err := runSend(t, append([]string{"--url", st.url}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("send %q: error %v, want %q", tc.args, err, tc.want)
		}
		if strings.Contains(err.Error(), "*secret*") {
			t.Fatalf("error %q contains the secret", err)
		}
		if strings.Contains(tc.want, "invalid options") && !errors.Is(err, sender.ErrInvalidOptions) {
			t.Fatalf("error %v does not wrap ErrInvalidOptions", err)
		}
		if out != "" {
			t.Fatalf("send %q printed %q", tc.args, out)
		}
	}
	if n := st.received(); n != 0 {
		t.Fatalf("%d webhooks sent despite bad flags", n)
	}
}

func TestSendSecretChoice(t *testing.T) {
	t.Parallel()
	const env = "whsec_ZW52LTE= whsec_ZW52LTI="
	for _, tc := range []struct {
		flag    string
		flagSet bool
		env     string
		url     string
		want    string
		warn    bool
	}{
		{"whsec_ZmxhZw==", true, env, "https://hooks.example.com/webhooks", "whsec_ZmxhZw==", false},
		{"", true, env, "https://hooks.example.com/webhooks", "", true},
		{"", true, "", "http://localhost:8080/webhooks", "", false},
		{"", false, env, "https://hooks.example.com/webhooks", "whsec_ZW52LTE=", false},
		{"", false, "\t" + env, "http://127.0.0.1:8080/webhooks", "whsec_ZW52LTE=", false},
		{"", false, "", "http://localhost:8080/webhooks", devSecret, false},
		{"", false, " ", "http://LOCALHOST/webhooks", devSecret, false},
		{"", false, "", "http://127.0.0.1:9999/webhooks", devSecret, false},
		{"", false, "", "http://[::1]:8080/webhooks", devSecret, false},
		{"", false, "", "https://hooks.example.com/webhooks", "", true},
		{"", false, "", "http://localhost.example.com/webhooks", "", true},
		{"", false, "", "http://127.0.0.2/webhooks", "", true},
	} {
		secret, warning := sendSecret(tc.flag, tc.flagSet, tc.env, tc.url)
		if secret != tc.want || (warning != "") != tc.warn {
			t.Fatalf("sendSecret(%q, %v, %q, %q) = %q, %q; want %q, warning %v",
				tc.flag, tc.flagSet, tc.env, tc.url, secret, warning, tc.want, tc.warn)
		}
	}
}

func TestSendSummary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rep  sender.Report
		keys int
		want string
	}{
		{sender.Report{Sent: 120, Accepted: 120, Elapsed: 1234 * time.Millisecond}, 6,
			"sent 120 webhooks to 6 keys in 1.2s: 120 accepted, 0 duplicates, 0 failed"},
		{sender.Report{Sent: 1, Duplicates: 1, Elapsed: 3456 * time.Microsecond}, 1,
			"sent 1 webhook to 1 key in 3ms: 0 accepted, 1 duplicate, 0 failed"},
		{sender.Report{Sent: 9, Accepted: 3, Failed: 6, Elapsed: time.Minute,
			Errors: map[string]int{"network_error": 1, "503 unavailable": 2, "500": 1, "422 unknown_code": 2}}, 3,
			"sent 9 webhooks to 3 keys in 1m0s: 3 accepted, 0 duplicates, 6 failed (422 unknown_code: 2, 503 unavailable: 2, 500: 1, network_error: 1)"},
	} {
		if got := summary(tc.rep, tc.keys); got != tc.want {
			t.Fatalf("summary = %q\nwant      %q", got, tc.want)
		}
	}
}
