package sender

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/shared/webhook"
)

// Defaults for the zero values of Options.
const (
	// DefaultURL is the ingest endpoint of `hookline dev`.
	DefaultURL = "http://localhost:8080/webhooks"
	// DefaultCode is the event code sent when Options.Codes is empty.
	DefaultCode = "post.create"
	// DefaultTenantPointer is where the tenant id goes in the body.
	DefaultTenantPointer = "/data/customer_id"
	// DefaultConcurrency is how many keys are sent in parallel.
	DefaultConcurrency = 8
	// DefaultTimeout is the request timeout of the default HTTP client.
	DefaultTimeout = 10 * time.Second
)

// Retry policy for a 503 answer or a network error.
const (
	// MaxRetries is how often one webhook is retried before it counts as
	// failed.
	MaxRetries = 5
	// MaxRetryDelay caps the wait before a retry, Retry-After included.
	MaxRetryDelay = 5 * time.Second
	// firstBackoff is the wait before the first retry when the answer has no
	// Retry-After; it doubles with every further retry.
	firstBackoff = 250 * time.Millisecond
)

// ErrInvalidOptions is wrapped by every error Send returns for bad Options.
// The message names the setting and never includes the secret.
var ErrInvalidOptions = errors.New("sender: invalid options")

// Options configure Send. Zero values select the documented defaults.
type Options struct {
	// URL is the ingest endpoint, an absolute http or https URL. Default
	// DefaultURL.
	URL string
	// Secret is the Standard Webhooks signing secret ("whsec_" and base64).
	// Default "": the webhooks are sent unsigned.
	Secret string
	// Count is the number of webhooks per key. Default 1.
	Count int
	// Tenants is the number of tenants, named "tenant-1" to "tenant-N".
	// Default 1.
	Tenants int
	// Codes are the event codes. Default [DefaultCode]. Each is 1 to 128
	// bytes of printable ASCII without space, ':', '{' and '}' (':' because
	// the code is part of the webhook id), and no code may repeat.
	Codes []string
	// TenantPointer is the RFC 6901 JSON pointer at which the tenant id is
	// put into the body. Every token names an object member; missing objects
	// on the way are created. It must not point at or through "code",
	// "data", "data/seq" or "data/sent_at". Default DefaultTenantPointer.
	TenantPointer string
	// Concurrency is how many keys are sent in parallel. A key never has
	// more than one webhook in flight. Default DefaultConcurrency.
	Concurrency int
	// Run identifies this run in the webhook ids, so that runs do not
	// collide in the receiver's deduplication. Default NewRun().
	Run string
	// Client sends the requests. Default a client with DefaultTimeout that
	// keeps Concurrency idle connections to the endpoint.
	Client *http.Client
	// Progress, if not nil, is called after each webhook's final outcome
	// with the number of webhooks done and the total. Calls come one at a
	// time, with done increasing, from the sending goroutines, so it must
	// return quickly.
	Progress func(done, total int)
	// Clock supplies "now" for the webhook-timestamp header, the body's
	// sent_at, Retry-After dates and Report.Elapsed. Default time.Now.
	Clock func() time.Time

	// sleep waits before a retry; tests replace it. Default sleepCtx.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewRun returns a random run id: 6 lower-case hex digits.
func NewRun() string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// key is one (tenant, code) pair and the sequence number of its next webhook.
type key struct {
	tenant, code string
	next         int
}

// plan is a validated set of options with everything derived from them.
type plan struct {
	Options
	ptr  []string // reference tokens of TenantPointer
	keys []*key
}

// newPlan fills in the defaults of opt and checks it.
func newPlan(opt Options) (*plan, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}

	if opt.URL == "" {
		opt.URL = DefaultURL
	}
	// The URL may hold credentials: errors never repeat it.
	u, err := url.Parse(opt.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalid("URL must be an absolute http or https URL")
	}
	if opt.Secret != "" {
		if _, err := webhook.SignStandard(opt.Secret, "check", time.Unix(0, 0), nil); err != nil {
			return nil, invalid("Secret: %w", err)
		}
	}

	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{{"Count", &opt.Count, 1}, {"Tenants", &opt.Tenants, 1}, {"Concurrency", &opt.Concurrency, DefaultConcurrency}} {
		if *n.v < 0 {
			return nil, invalid("%s must be at least 1", n.name)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if opt.Count > int(^uint(0)>>1)/opt.Tenants/max(len(opt.Codes), 1) {
		return nil, invalid("Count times Tenants times the number of codes is too large")
	}

	if len(opt.Codes) == 0 {
		opt.Codes = []string{DefaultCode}
	}
	seen := make(map[string]bool, len(opt.Codes))
	longest := ""
	for i, code := range opt.Codes {
		if webhook.ValidateCode(code) != nil || strings.Contains(code, ":") {
			return nil, invalid("Codes[%d]: %q is not 1 to %d bytes of printable ASCII without space, ':', '{' and '}'", i, code, webhook.MaxCodeLen)
		}
		if seen[code] {
			return nil, invalid("Codes[%d]: %q appears twice", i, code)
		}
		seen[code] = true
		if len(code) > len(longest) {
			longest = code
		}
	}

	if opt.Run == "" {
		opt.Run = NewRun()
	}
	if webhook.ValidateID(opt.Run) != nil {
		return nil, invalid("Run: %q is not printable ASCII without space, ':', '{' and '}'", opt.Run)
	}
	if id := webhookID(opt.Run, tenantName(opt.Tenants), longest, opt.Count-1); webhook.ValidateID(id) != nil {
		return nil, invalid("webhook ids such as %q are longer than %d bytes: shorten Run or Codes", id, webhook.MaxIDLen)
	}

	if opt.TenantPointer == "" {
		opt.TenantPointer = DefaultTenantPointer
	}
	p := &plan{Options: opt}
	if p.ptr, err = splitPointer(opt.TenantPointer); err != nil {
		return nil, invalid("TenantPointer: %w", err)
	}
	// One sample body finds every conflict: all bodies have the same shape.
	if _, err := p.body(&key{tenant: "t", code: opt.Codes[0]}, time.Unix(0, 0)); err != nil {
		return nil, invalid("TenantPointer: %w", err)
	}

	if p.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = p.Concurrency
		p.Client = &http.Client{Timeout: DefaultTimeout, Transport: t}
	}
	if p.Clock == nil {
		p.Clock = time.Now
	}
	if p.sleep == nil {
		p.sleep = sleepCtx
	}

	// Tenant-major order; sending goes round-robin over this list.
	for t := 1; t <= p.Tenants; t++ {
		for _, code := range p.Codes {
			p.keys = append(p.keys, &key{tenant: tenantName(t), code: code})
		}
	}
	return p, nil
}

// tenantName returns the id of the n-th tenant, counting from 1.
func tenantName(n int) string { return "tenant-" + strconv.Itoa(n) }

// webhookID returns the webhook-id of the seq-th webhook of a key.
func webhookID(run, tenant, code string, seq int) string {
	return fmt.Sprintf("%s-%s-%s-%06d", run, tenant, code, seq)
}

// sleepCtx waits for d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
