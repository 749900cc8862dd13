package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/sender"
)

// devSecret is the Standard Webhooks signing secret `hookline dev` uses when
// none is configured, and `hookline send` uses for a localhost URL when none
// is given. It is public (it is in the source code): it must never be used
// anywhere but on a developer's machine.
const devSecret = "whsec_aG9va2xpbmUtbG9jYWwtZGV2LXNlY3JldC1vbmx5IQ=="

// progressMin is the smallest run that gets a progress bar.
const progressMin = 50

// newSendCmd returns `hookline send`, which posts signed sample webhooks
// with package sender.
func newSendCmd() *cobra.Command {
	var (
		opt    sender.Options
		secret string
		codes  string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "send [flags]",
		Short: "Post signed sample webhooks to an ingest endpoint",
		Long: `Posts sample webhooks, signed the Standard Webhooks way, to a hookline ingest
endpoint: --count webhooks for each key, a key being a tenant ("tenant-1" to
"tenant-N") and an event code. Keys take turns, --concurrency of them in
flight at once, and each key's webhooks go out one after the other, so the
receiver gets them in order. Webhook ids are <run>-<tenant>-<code>-<seq>.

The signing secret is --secret, else the first of HOOKLINE_SIGNING_SECRETS,
else, for a localhost URL, the local secret of ` + "`hookline dev`" + `. Without any, the
webhooks go unsigned. Prefer the environment to --secret, which other users
of the machine can see in the process list.

A 503 answer or a network error is retried (same id, Retry-After honoured up
to 5s, at most 5 times). The command fails if any webhook failed, and prints
the server's message for each kind of refusal. When nothing listens at the
URL it says so at once, without retrying.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range []struct {
				flag string
				v    int
			}{{"count", opt.Count}, {"tenants", opt.Tenants}, {"concurrency", opt.Concurrency}} {
				if n.v < 1 {
					return fmt.Errorf("send: --%s must be at least 1", n.flag)
				}
			}
			opt.Codes = splitCodes(codes)
			var warning string
			opt.Secret, warning = sendSecret(secret, cmd.Flags().Changed("secret"), os.Getenv(config.EnvSigningSecrets), opt.URL)
			if warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), warning)
			}

			keys := opt.Tenants * len(opt.Codes)
			var bar *progressbar.ProgressBar
			if total := keys * opt.Count; !quiet && total >= progressMin {
				bar = newBar(cmd.ErrOrStderr(), total)
				opt.Progress = func(done, _ int) { _ = bar.Set(done) }
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, refused := context.WithCancelCause(ctx)
			defer refused(nil)
			msgs := &answerMessages{refused: refused}
			opt.Client = msgs.client(opt.Concurrency)
			rep, err := sender.Send(ctx, opt)
			if bar != nil && !bar.IsFinished() {
				_ = bar.Clear() // interrupted: make room for the summary
			}
			if errors.Is(err, sender.ErrInvalidOptions) {
				return fmt.Errorf("send: %w", err)
			}
			var nl *notListening
			if errors.As(context.Cause(ctx), &nl) {
				if rep.Sent > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), summary(rep, keys))
				}
				return nl.explain(opt.URL)
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary(rep, keys))
			for _, line := range msgs.lines(rep.Errors) {
				fmt.Fprintln(cmd.ErrOrStderr(), line)
			}
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			if rep.Failed > 0 {
				return fmt.Errorf("send: %d of %d webhooks failed", rep.Failed, rep.Sent)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.URL, "url", sender.DefaultURL, "ingest endpoint")
	f.StringVar(&secret, "secret", "", "Standard Webhooks signing secret, whsec_... (default: first of $"+config.EnvSigningSecrets+", or the hookline dev secret for localhost)")
	f.IntVar(&opt.Count, "count", 1, "webhooks per key")
	f.IntVar(&opt.Tenants, "tenants", 1, "number of tenants, tenant-1 to tenant-N")
	f.StringVar(&codes, "codes", sender.DefaultCode, "event codes, comma-separated")
	f.StringVar(&opt.TenantPointer, "tenant-pointer", sender.DefaultTenantPointer, "JSON pointer at which the tenant goes into the body")
	f.IntVar(&opt.Concurrency, "concurrency", sender.DefaultConcurrency, "keys in flight at once")
	f.StringVar(&opt.Run, "run", "", "run id that starts every webhook id (default 6 random hex digits)")
	f.BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// notListening is the cause that ends a send when a connection is refused:
// nothing listens at the URL (dev is not running, or the port is wrong).
// Retrying, meant for a server that restarts, would only delay the news.
type notListening struct{ host string }

func (e *notListening) Error() string { return "nothing listens at " + e.host }

func (e *notListening) explain(rawURL string) error {
	hint := ""
	if isLocalURL(rawURL) {
		hint = " (is `hookline dev` running, and on this port? see its --addr)"
	}
	return fmt.Errorf("send: nothing listens at %s: connection refused%s", e.host, hint)
}

// answerMessages keeps the first error message the server gave for each
// failure cause ("422 unknown_code"), read from the answers' bodies.
// It also ends the send at the first refused connection.
type answerMessages struct {
	mu sync.Mutex
	m  map[string]string
	// refused cancels the send with a *notListening cause.
	refused context.CancelCauseFunc
}

// client returns the HTTP client send uses: the sender's default, with a
// transport that records the messages of error answers.
func (am *answerMessages) client(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = concurrency
	return &http.Client{Timeout: sender.DefaultTimeout, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := t.RoundTrip(r)
		if errors.Is(err, syscall.ECONNREFUSED) && am.refused != nil {
			am.refused(&notListening{host: r.URL.Host})
		}
		if err != nil || resp.StatusCode < 400 {
			return resp, err
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			am.record(resp.StatusCode, body)
		}
		return resp, nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// maxMessage bounds a printed server message.
const maxMessage = 200

func (am *answerMessages) record(status int, body []byte) {
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error.Message == "" {
		return
	}
	cause := strconv.Itoa(status)
	if b.Error.Code != "" {
		cause += " " + b.Error.Code
	}
	msg := strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, b.Error.Message)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.m == nil {
		am.m = map[string]string{}
	}
	if _, ok := am.m[cause]; !ok {
		am.m[cause] = msg
	}
}

// lines returns one line per failure cause of errs with a recorded message,
// in the summary's order: "422 unknown_code: no route for this event code".
func (am *answerMessages) lines(errs map[string]int) []string {
	am.mu.Lock()
	defer am.mu.Unlock()
	var out []string
	for _, cause := range causesByCount(errs) {
		if msg, ok := am.m[cause]; ok {
			out = append(out, cause+": "+msg)
		}
	}
	return out
}

// splitCodes splits a comma-separated list, trimming spaces around each
// element. Empty elements are kept, so that the sender rejects them.
func splitCodes(s string) []string {
	codes := strings.Split(s, ",")
	for i, c := range codes {
		codes[i] = strings.TrimSpace(c)
	}
	return codes
}

// sendSecret chooses the signing secret: the --secret flag if it was given
// (even empty), else the first of the secrets in env (the value of
// HOOKLINE_SIGNING_SECRETS), else devSecret if rawURL is on this machine. It
// returns a warning to print if the webhooks go unsigned to another host.
func sendSecret(flag string, flagSet bool, env, rawURL string) (secret, warning string) {
	switch secrets := strings.Fields(env); {
	case flagSet:
		secret = flag
	case len(secrets) > 0:
		secret = secrets[0]
	case isLocalURL(rawURL):
		secret = devSecret
	}
	if secret == "" && !isLocalURL(rawURL) {
		warning = "warning: no signing secret (--secret or " + config.EnvSigningSecrets + "): sending unsigned webhooks"
	}
	return secret, warning
}

// isLocalURL reports whether rawURL's host is localhost or a loopback
// address literal.
func isLocalURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	return slices.Contains([]string{"localhost", "127.0.0.1", "::1"}, strings.ToLower(u.Hostname()))
}

// newBar returns a progress bar for total webhooks drawn on w.
func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("sending"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("webhooks"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// summary returns the one-line account of a run, such as
//
//	sent 120 webhooks to 6 keys in 1.2s: 117 accepted, 0 duplicates, 3 failed (422 unknown_code: 3)
func summary(rep sender.Report, keys int) string {
	s := fmt.Sprintf("sent %d %s to %d %s in %s: %d accepted, %d %s, %d failed",
		rep.Sent, plural(rep.Sent, "webhook"), keys, plural(keys, "key"), roundElapsed(rep.Elapsed),
		rep.Accepted, rep.Duplicates, plural(rep.Duplicates, "duplicate"), rep.Failed)
	if len(rep.Errors) == 0 {
		return s
	}
	causes := causesByCount(rep.Errors)
	for i, c := range causes {
		causes[i] = fmt.Sprintf("%s: %d", c, rep.Errors[c])
	}
	return s + " (" + strings.Join(causes, ", ") + ")"
}

// causesByCount returns the failure causes of errs, most frequent first,
// then by name.
func causesByCount(errs map[string]int) []string {
	causes := make([]string, 0, len(errs))
	for c := range errs {
		causes = append(causes, c)
	}
	slices.SortFunc(causes, func(a, b string) int {
		if d := errs[b] - errs[a]; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return causes
}

// plural returns word, with an "s" unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// roundElapsed rounds d for display: to the millisecond under a second,
// else to a tenth of a second.
func roundElapsed(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
