package config

import (
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// redacted stands in for a secret in String and LogValue output.
const redacted = "[redacted]"

// The methods below have value receivers so that a Config, Route or Redis is
// redacted whether it is printed or logged by value or by pointer.

// LogValue implements slog.LogValuer: every setting, with the signing
// secrets, route secrets, header values and URL passwords redacted.
func (c Config) LogValue() slog.Value {
	lanes := make([]slog.Attr, 0, len(c.Lanes))
	for _, name := range slices.Sorted(maps.Keys(c.Lanes)) {
		l := c.Lanes[name]
		lanes = append(lanes, slog.Group(name,
			slog.Int("concurrency", l.Concurrency),
			slog.String("quantum", l.Quantum.String())))
	}
	routes := make([]slog.Attr, 0, len(c.Routes))
	for _, code := range slices.Sorted(maps.Keys(c.Routes)) {
		routes = append(routes, slog.Attr{Key: code, Value: c.Routes[code].LogValue()})
	}
	secrets := "none"
	if n := len(c.SigningSecrets); n > 0 {
		secrets = strconv.Itoa(n) + " " + redacted
	}
	verify := []slog.Attr{slog.String("scheme", string(c.Verify.Scheme))}
	if c.Verify.Header != "" {
		verify = append(verify, slog.String("header", c.Verify.Header))
	}
	if c.Verify.Encoding != "" {
		verify = append(verify, slog.String("encoding", c.Verify.Encoding))
	}
	if c.Verify.Prefix != "" {
		verify = append(verify, slog.String("prefix", c.Verify.Prefix))
	}
	if c.Verify.Tolerance != 0 {
		verify = append(verify, slog.String("tolerance", c.Verify.Tolerance.String()))
	}
	return slog.GroupValue(
		slog.Int("shards", c.Shards),
		slog.String("prefix", c.Prefix),
		slog.String("tenant", c.Tenant),
		slog.Attr{Key: "lanes", Value: slog.GroupValue(lanes...)},
		slog.Attr{Key: "routes", Value: slog.GroupValue(routes...)},
		slog.Attr{Key: "verify", Value: slog.GroupValue(verify...)},
		slog.Int64("max_body", c.MaxBody),
		slog.String("dedup_window", c.DedupWindow.String()),
		slog.Group("dead_letters",
			slog.Int("max_per_key", c.DeadLetters.MaxPerKey),
			slog.String("retention", c.DeadLetters.Retention.String())),
		slog.Group("scheduler",
			slog.String("poll", c.Scheduler.Poll.String()),
			slog.String("margin", c.Scheduler.Margin.String()),
			slog.String("lease_ttl", c.Scheduler.LeaseTTL.String()),
			slog.String("metrics_every", c.Scheduler.MetricsEvery.String())),
		slog.Group("drain",
			slog.Int("batch", c.Drain.Batch),
			slog.String("lease_ttl", c.Drain.LeaseTTL.String()),
			slog.String("claim_ttl", c.Drain.ClaimTTL.String()),
			slog.String("margin", c.Drain.Margin.String()),
			slog.String("max_rate_wait", c.Drain.MaxRateWait.String()),
			slog.String("rate_margin", c.Drain.RateMargin.String())),
		slog.Group("metrics",
			slog.String("namespace", c.Metrics.Namespace),
			slog.String("stack", c.Metrics.Stack)),
		slog.Attr{Key: "redis", Value: c.Redis.LogValue()},
		slog.String("signing_secrets", secrets),
		slog.String("drain_function", c.DrainFunction),
	)
}

// String returns every setting on one line, secrets redacted as in LogValue.
func (c Config) String() string { return formatValue(c.LogValue()) }

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return "config.Config" + c.String() }

// LogValue implements slog.LogValuer, with the secret, the header values
// and any password in the URL redacted.
func (r Route) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("lane", r.Lane),
		slog.String("handler", r.Handler),
	}
	if r.URL != "" {
		attrs = append(attrs, slog.String("url", redactURL(r.URL)))
	}
	if !r.Rate.IsZero() {
		attrs = append(attrs, slog.String("rate", r.Rate.String()))
	}
	attrs = append(attrs,
		slog.Int("max_attempts", r.MaxAttempts),
		slog.String("on_exhausted", string(r.OnExhausted)),
		slog.String("timeout", r.Timeout.String()))
	if r.Secret != "" {
		attrs = append(attrs, slog.String("secret", redacted))
	}
	if len(r.Headers) > 0 {
		h := make([]slog.Attr, 0, len(r.Headers))
		for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
			h = append(h, slog.String(name, redacted))
		}
		attrs = append(attrs, slog.Attr{Key: "headers", Value: slog.GroupValue(h...)})
	}
	if len(r.KeepHeaders) > 0 {
		attrs = append(attrs, slog.String("keep_headers", strings.Join(r.KeepHeaders, ",")))
	}
	return slog.GroupValue(attrs...)
}

// String returns the route on one line, redacted as in LogValue.
func (r Route) String() string { return formatValue(r.LogValue()) }

// GoString is String, so that %#v redacts too.
func (r Route) GoString() string { return "config.Route" + r.String() }

// LogValue implements slog.LogValuer, with the password in the URL
// redacted.
func (r Redis) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", redactURL(r.URL)),
		slog.Bool("cluster", r.Cluster),
		slog.String("auth", r.Auth),
		slog.String("user", r.User),
		slog.String("cache_name", r.CacheName),
		slog.Bool("serverless", r.Serverless),
		slog.String("token_arn", r.TokenARN))
}

// String returns the settings on one line, redacted as in LogValue.
func (r Redis) String() string { return formatValue(r.LogValue()) }

// GoString is String, so that %#v redacts too.
func (r Redis) GoString() string { return "config.Redis" + r.String() }

// redactURL returns s with the password and query values replaced by
// "xxxxx", or a placeholder when s does not parse (the error would quote it).
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL " + redacted + "]"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.Redacted()
}

// formatValue writes v as {key=value key={...}}, quoting values that need it.
func formatValue(v slog.Value) string {
	var b strings.Builder
	writeValue(&b, v)
	return b.String()
}

func writeValue(b *strings.Builder, v slog.Value) {
	v = v.Resolve()
	if v.Kind() != slog.KindGroup {
		s := v.String()
		if s == "" || strings.ContainsAny(s, " ={}\"") || strconv.Quote(s) != `"`+s+`"` {
			s = strconv.Quote(s)
		}
		b.WriteString(s)
		return
	}
	b.WriteByte('{')
	for i, a := range v.Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		writeValue(b, a.Value)
	}
	b.WriteByte('}')
}
