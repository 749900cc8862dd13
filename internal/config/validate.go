package config

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/shared/webhook"
)

var (
	handlerRe = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// A Lambda function name, with an optional version or alias, or a
	// full or partial ARN.
	functionRe = regexp.MustCompile(`^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?[a-zA-Z0-9_-]{1,64}(:(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$`)
)

// Limits on settings.
const (
	maxMaxAttempts = 1000
	maxBatch       = 1000
	maxBodyLimit   = 6 << 20 // the Lambda request payload limit
	maxLambdaWait  = 14 * time.Minute

	maxDeadPerKey    = 1_000_000
	maxDeadRetention = 3650 * 24 * time.Hour
)

// reservedHeaders are set by forward itself and cannot be configured.
var reservedHeaders = []string{
	"host", "content-length", "transfer-encoding", "connection",
	"webhook-id", "webhook-timestamp", "webhook-signature",
}

// checker collects the problems validate finds.
type checker struct{ errs []error }

func (v *checker) add(setting, format string, args ...any) {
	v.errs = append(v.errs, &problem{setting: setting, msg: fmt.Sprintf(format, args...)})
}

func (v *checker) intRange(setting string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(setting, "%d is out of range %d..%d", n, lo, hi)
	}
}

func (v *checker) durRange(setting string, d Duration, lo, hi time.Duration) {
	if time.Duration(d) < lo || time.Duration(d) > hi {
		v.add(setting, "%s is out of range %s..%s", d, fmtDur(lo), fmtDur(hi))
	}
}

// validate checks every setting, after defaults, and returns every problem
// found, joined. Each names its setting.
func (c *Config) validate() error {
	var v checker
	v.intRange("shards", c.Shards, 1, queue.MaxShards)
	if !queue.ValidPrefix(c.Prefix) {
		v.add(cmp.Or(c.prefixFrom, "prefix"), "%q: want 1..%d of a-z, 0-9, '_', '-'", c.Prefix, queue.MaxPrefixLen)
	}
	c.validateTenant(&v)

	if len(c.Lanes) == 0 {
		v.add("lanes", "at least one lane is required")
	}
	for _, name := range c.LaneNames() {
		l, path := c.Lanes[name], joinPath("lanes", name)
		if !queue.ValidLane(name) {
			v.add(path, "lane name must be 1..%d of a-z, 0-9, '_', '-'", queue.MaxLaneLen)
		}
		if l.Concurrency < 1 {
			v.add(path+".concurrency", "%d must be at least 1", l.Concurrency)
		}
		v.durRange(path+".quantum", l.Quantum, time.Second, maxLambdaWait)
	}

	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is required")
	}
	for _, code := range slices.Sorted(maps.Keys(c.Routes)) {
		c.validateRoute(&v, code, c.Routes[code])
	}

	c.validateVerify(&v)
	if c.MaxBody < 1 || c.MaxBody > maxBodyLimit {
		v.add("max_body", "%d is out of range 1..%d (6MiB)", c.MaxBody, maxBodyLimit)
	}
	if c.DedupWindow < Duration(time.Second) {
		v.add("dedup_window", "%s must be at least 1s", c.DedupWindow)
	}

	v.intRange("dead_letters.max_per_key", c.DeadLetters.MaxPerKey, 1, maxDeadPerKey)
	v.durRange("dead_letters.retention", c.DeadLetters.Retention, time.Hour, maxDeadRetention)

	v.durRange("scheduler.poll", c.Scheduler.Poll, 10*time.Millisecond, 5*time.Second)
	v.durRange("scheduler.margin", c.Scheduler.Margin, time.Millisecond, maxLambdaWait)
	v.durRange("scheduler.metrics_every", c.Scheduler.MetricsEvery, time.Second, time.Hour)
	v.durRange("scheduler.lease_ttl", c.Scheduler.LeaseTTL, time.Second, 15*time.Minute)
	if c.Scheduler.LeaseTTL >= Duration(time.Second) && c.Scheduler.Poll <= Duration(5*time.Second) &&
		c.Scheduler.LeaseTTL < 2*c.Scheduler.Poll {
		v.add("scheduler.lease_ttl", "%s must be at least twice scheduler.poll (%s): the leader renews it every poll", c.Scheduler.LeaseTTL, c.Scheduler.Poll)
	}
	v.intRange("drain.batch", c.Drain.Batch, 1, maxBatch)
	v.durRange("drain.lease_ttl", c.Drain.LeaseTTL, time.Second, 15*time.Minute)
	v.durRange("drain.claim_ttl", c.Drain.ClaimTTL, time.Second, 15*time.Minute)
	v.durRange("drain.margin", c.Drain.Margin, time.Millisecond, maxLambdaWait)
	v.durRange("drain.max_rate_wait", c.Drain.MaxRateWait, time.Millisecond, maxLambdaWait)
	v.durRange("drain.rate_margin", c.Drain.RateMargin, time.Millisecond, time.Second)
	c.validateMetrics(&v)

	c.validateEnv(&v)
	return errors.Join(v.errs...)
}

// namespaceRe is what CloudWatch accepts as a namespace.
var namespaceRe = regexp.MustCompile(`^[A-Za-z0-9._/#: -]{1,255}$`)

func (c *Config) validateMetrics(v *checker) {
	m := c.Metrics
	switch {
	case !namespaceRe.MatchString(m.Namespace):
		v.add("metrics.namespace", "%q: want 1..255 of A-Z, a-z, 0-9, '.', '-', '_', '/', '#', ':' and space", m.Namespace)
	case strings.HasPrefix(m.Namespace, "AWS/"):
		v.add("metrics.namespace", "%q: namespaces starting with AWS/ are AWS's own", m.Namespace)
	}
	ok := len(m.Stack) >= 1 && len(m.Stack) <= 255
	for i := 0; ok && i < len(m.Stack); i++ {
		ok = m.Stack[i] > ' ' && m.Stack[i] <= '~'
	}
	if !ok {
		v.add(cmp.Or(m.stackFrom, "metrics.stack"), "%q: want 1..255 printable ASCII characters without space", m.Stack)
	}
}

// validateTenant checks that Tenant is a JSON pointer (RFC 6901).
func (c *Config) validateTenant(v *checker) {
	switch {
	case c.Tenant == "":
		v.add("tenant", `required: a JSON pointer to the tenant id in the webhook body, such as "/data/customer_id"`)
		return
	case c.Tenant[0] != '/':
		v.add("tenant", "%q: a JSON pointer must start with \"/\"", c.Tenant)
		return
	}
	for i := 0; i < len(c.Tenant); i++ {
		if c.Tenant[i] == '~' && (i+1 == len(c.Tenant) || c.Tenant[i+1] != '0' && c.Tenant[i+1] != '1') {
			v.add("tenant", "%q: \"~\" must be followed by 0 or 1 in a JSON pointer", c.Tenant)
			return
		}
	}
}

func (c *Config) validateRoute(v *checker, code string, r Route) {
	path := joinPath("routes", code)
	if webhook.ValidateCode(code) != nil {
		v.add(path, "not a valid event code: want 1..%d printable ASCII characters without space, '{' or '}'", webhook.MaxCodeLen)
	}
	switch _, ok := c.Lanes[r.Lane]; {
	case r.Lane == "":
		v.add(path+".lane", "required: one of %s", strings.Join(c.LaneNames(), ", "))
	case !ok:
		v.add(path+".lane", "%q is not a defined lane", r.Lane)
	}

	switch {
	case r.Handler == "":
		v.add(path+".handler", "required: forward, log or the name of a registered handler")
	case !handlerRe.MatchString(r.Handler):
		v.add(path+".handler", "%q: want forward, log or a handler name of 1..64 of a-z, A-Z, 0-9, '_', '.', '-'", r.Handler)
	}
	switch {
	case r.URL == "" && r.Handler == HandlerForward:
		v.add(path+".url", "required by the forward handler")
	case r.URL != "" && r.Handler == HandlerLog:
		v.add(path+".url", "not used by the log handler")
	case r.URL != "":
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(path+".url", "must be an absolute http or https URL")
		}
	}
	v.intRange(path+".max_attempts", r.MaxAttempts, 1, maxMaxAttempts)
	if r.OnExhausted != queue.DeadLetter && r.OnExhausted != queue.Park {
		v.add(path+".on_exhausted", "%q: want %s or %s", r.OnExhausted, queue.DeadLetter, queue.Park)
	}
	v.durRange(path+".timeout", r.Timeout, time.Millisecond, maxLambdaWait)
	switch {
	case r.Secret != "" && r.Handler == HandlerLog:
		v.add(path+".secret", "not used by the log handler")
	case r.Secret != "" && r.Handler == HandlerForward && !isWebhookSecret(r.Secret):
		v.add(path+".secret", `not a Standard Webhooks secret: want "whsec_" and base64`)
	}
	if len(r.Headers) > 0 && r.Handler == HandlerLog {
		v.add(path+".headers", "not used by the log handler")
	}
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		hp := joinPath(path+".headers", name)
		switch {
		case !isToken(name):
			v.add(hp, "not a valid header name")
		case slices.Contains(reservedHeaders, strings.ToLower(name)):
			v.add(hp, "set by hookline; cannot be configured")
		}
		if strings.ContainsAny(r.Headers[name], "\r\n\x00") {
			v.add(hp, "the value must not hold line breaks or NUL")
		}
	}
	for i, name := range r.KeepHeaders {
		if !isToken(name) {
			v.add(fmt.Sprintf("%s.keep_headers[%d]", path, i), "not a valid header name")
		}
	}
}

func (c *Config) validateVerify(v *checker) {
	vf := c.Verify
	unused := func(setting string, set bool, usedBy Scheme) {
		if set {
			v.add("verify."+setting, "only used by scheme %s", usedBy)
		}
	}
	switch vf.Scheme {
	case SchemeStandardWebhooks:
		v.durRange("verify.tolerance", vf.Tolerance, time.Second, time.Hour)
		unused("header", vf.Header != "", SchemeHMAC)
		unused("encoding", vf.Encoding != "", SchemeHMAC)
		unused("prefix", vf.Prefix != "", SchemeHMAC)
	case SchemeHMAC:
		switch {
		case vf.Header == "":
			v.add("verify.header", "required by scheme hmac: the request header holding the signature")
		case !isToken(vf.Header):
			v.add("verify.header", "%q is not a valid header name", vf.Header)
		}
		if vf.Encoding != EncodingHex && vf.Encoding != EncodingBase64 {
			v.add("verify.encoding", "%q: want %s or %s", vf.Encoding, EncodingHex, EncodingBase64)
		}
		unused("tolerance", vf.Tolerance != 0, SchemeStandardWebhooks)
	case SchemeNone:
		unused("header", vf.Header != "", SchemeHMAC)
		unused("encoding", vf.Encoding != "", SchemeHMAC)
		unused("prefix", vf.Prefix != "", SchemeHMAC)
		unused("tolerance", vf.Tolerance != 0, SchemeStandardWebhooks)
	default:
		v.add("verify.scheme", "%q: want %s, %s or %s", vf.Scheme, SchemeStandardWebhooks, SchemeHMAC, SchemeNone)
	}
}

// validateEnv checks the settings read from the environment. Messages never
// quote a secret.
func (c *Config) validateEnv(v *checker) {
	if c.Redis.URL != "" {
		// url.Parse's error holds the URL and so the password: not shown.
		switch u, err := url.Parse(c.Redis.URL); {
		case err != nil:
			v.add(EnvRedisURL, "not a valid URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add(EnvRedisURL, "scheme must be redis or rediss")
		case u.Host == "":
			v.add(EnvRedisURL, "the host is missing")
		}
	}
	if c.Verify.Scheme == SchemeStandardWebhooks {
		for i, s := range c.SigningSecrets {
			if !isWebhookSecret(s) {
				v.add(EnvSigningSecrets, `secret %d of %d is not a Standard Webhooks secret: want "whsec_" and base64`, i+1, len(c.SigningSecrets))
			}
		}
	}
	switch c.Redis.Auth {
	case RedisAuthNone, RedisAuthToken:
	case RedisAuthIAM:
		if c.Redis.User == "" {
			v.add(EnvRedisUser, "required when %s is iam", EnvRedisAuth)
		}
		if c.Redis.CacheName == "" {
			v.add(EnvRedisCacheName, "required when %s is iam", EnvRedisAuth)
		}
		if c.Redis.URL != "" && !strings.HasPrefix(c.Redis.URL, "rediss://") {
			v.add(EnvRedisURL, "IAM authentication needs TLS: use rediss://")
		}
	default:
		v.add(EnvRedisAuth, "must be none, token or iam")
	}
	for name, arn := range map[string]string{EnvRedisTokenARN: c.Redis.TokenARN, EnvSigningSecretsARN: c.SigningSecretsARN} {
		if arn != "" && !strings.HasPrefix(arn, "arn:") {
			v.add(name, "must be a Secrets Manager ARN (arn:aws:secretsmanager:...)")
		}
	}
	if c.DrainFunction != "" && !functionRe.MatchString(c.DrainFunction) {
		v.add(EnvDrainFunction, "%q is not a Lambda function name or ARN", c.DrainFunction)
	}
}

// isWebhookSecret reports whether s is a Standard Webhooks secret: base64,
// usually after "whsec_", of a non-empty key.
func isWebhookSecret(s string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	return err == nil && len(key) > 0
}

// isToken reports whether s is an HTTP token (RFC 9110), as header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
