package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
)

// exampleYAML is the file from the configuration contract, verbatim.
const exampleYAML = `
shards: 16
tenant: /data/customer_id        # JSON pointer into the webhook body giving the tenant id
lanes:
  quick: {concurrency: 64, quantum: 20s}
  slow:  {concurrency: 8,  quantum: 60s}
routes:
  post-create:
    lane: quick
    handler: forward             # built-in: forward, log; or the name of a registered Go handler
    url: https://api.example.com/hooks
    rate: 2/s                    # per (tenant, url) for forward; shared by all routes with the same pair
    max_attempts: 8
    on_exhausted: dead-letter    # or: park
`

// minimalYAML has only the required settings.
const minimalYAML = `
tenant: /tenant
lanes: {main: {}}
routes:
  ping: {lane: main, handler: log}
`

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustParse(t *testing.T, yml string, getenv func(string) string) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), getenv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParseExample(t *testing.T) {
	c := mustParse(t, exampleYAML, nil)
	if c.Shards != 16 || c.Tenant != "/data/customer_id" {
		t.Fatalf("shards %d tenant %q", c.Shards, c.Tenant)
	}
	wantLanes := map[string]Lane{
		"quick": {Concurrency: 64, Quantum: Duration(20 * time.Second)},
		"slow":  {Concurrency: 8, Quantum: Duration(60 * time.Second)},
	}
	if !reflect.DeepEqual(c.Lanes, wantLanes) {
		t.Fatalf("lanes %+v, want %+v", c.Lanes, wantLanes)
	}
	r, ok := c.Route("post-create")
	if !ok {
		t.Fatalf("route post-create missing")
	}
	want := Route{
		Lane:        "quick",
		Handler:     HandlerForward,
		URL:         "https://api.example.com/hooks",
		Rate:        ratelimit.Rate{N: 2, Per: time.Second},
		MaxAttempts: 8,
		OnExhausted: queue.DeadLetter,
		Timeout:     Duration(10 * time.Second),
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("route %#v\nwant %#v", r, want)
	}
	if _, ok := c.Route("nope"); ok {
		t.Fatalf("Route(nope) found")
	}
	if got := c.LaneNames(); !reflect.DeepEqual(got, []string{"quick", "slow"}) {
		t.Fatalf("LaneNames %v", got)
	}
	if c.Verify.Scheme != SchemeStandardWebhooks || c.Verify.Tolerance != Duration(5*time.Minute) {
		t.Fatalf("verify %+v", c.Verify)
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimalYAML, nil)
	want := &Config{
		Shards: 16,
		Prefix: "hl",
		Tenant: "/tenant",
		Lanes:  map[string]Lane{"main": {Concurrency: 8, Quantum: Duration(20 * time.Second)}},
		Routes: map[string]Route{"ping": {
			Lane: "main", Handler: HandlerLog, MaxAttempts: 8,
			OnExhausted: queue.DeadLetter, Timeout: Duration(10 * time.Second),
		}},
		Verify:      Verify{Scheme: SchemeStandardWebhooks, Tolerance: Duration(5 * time.Minute)},
		MaxBody:     256 << 10,
		DedupWindow: Duration(24 * time.Hour),
		DeadLetters: DeadLetters{MaxPerKey: 10_000, Retention: Duration(720 * time.Hour)},
		Scheduler: Scheduler{
			Poll:         Duration(time.Second),
			Margin:       Duration(5 * time.Second),
			MetricsEvery: Duration(10 * time.Second),
			LeaseTTL:     Duration(10 * time.Second),
		},
		Drain: Drain{
			Batch:       10,
			LeaseTTL:    Duration(30 * time.Second),
			ClaimTTL:    Duration(60 * time.Second),
			Margin:      Duration(3 * time.Second),
			MaxRateWait: Duration(50 * time.Millisecond),
			RateMargin:  Duration(20 * time.Millisecond),
		},
		Metrics:    Metrics{Namespace: "hookline", Stack: "hookline", stackFrom: "metrics.stack"},
		Redis:      Redis{Auth: RedisAuthNone},
		prefixFrom: "prefix",
		lines:      settingLines([]byte(minimalYAML)),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", c, want)
	}
	// Zero is the default, as documented.
	z := mustParse(t, minimalYAML+"shards: 0\nmax_body: 0\ndrain: {batch: 0}\n", nil)
	if z.Shards != 16 || z.MaxBody != 256<<10 || z.Drain.Batch != 10 {
		t.Fatalf("zero settings: shards %d max_body %d batch %d", z.Shards, z.MaxBody, z.Drain.Batch)
	}
}

func TestEverySetting(t *testing.T) {
	yml := `
shards: 64
prefix: hook-2
tenant: /a~1b/c~0d
verify: {scheme: hmac, header: X-Hub-Signature-256, encoding: base64, prefix: "sha256="}
max_body: 1MiB
dedup_window: 1h30m
lanes:
  bulk_1: {concurrency: 2, quantum: 14m}
routes:
  invoice.paid:
    lane: bulk_1
    handler: billing.Sync
    url: http://localhost:8080/x
    rate: 5/2s
    max_attempts: 1000
    on_exhausted: park
    secret: plain-for-custom-handler
    timeout: 1500ms
    headers: {X-Api-Version: "2"}
    keep_headers: [User-Agent, x-request-id]
scheduler: {poll: 10ms, margin: 1s, metrics_every: 1m, lease_ttl: 2s}
drain: {batch: 1000, lease_ttl: 15m, claim_ttl: 1s, margin: 500ms, max_rate_wait: 0s, rate_margin: 150ms}
dead_letters: {max_per_key: 1000000, retention: 87600h}
`
	c := mustParse(t, yml, nil)
	if c.Shards != 64 || c.Prefix != "hook-2" || c.Tenant != "/a~1b/c~0d" || c.MaxBody != 1<<20 || c.DedupWindow != Duration(90*time.Minute) {
		t.Fatalf("top level: %+v", c)
	}
	if want := (Verify{Scheme: SchemeHMAC, Header: "X-Hub-Signature-256", Encoding: EncodingBase64, Prefix: "sha256="}); c.Verify != want {
		t.Fatalf("verify %+v", c.Verify)
	}
	r := c.Routes["invoice.paid"]
	if r.Handler != "billing.Sync" || r.Rate != (ratelimit.Rate{N: 5, Per: 2 * time.Second}) || r.MaxAttempts != 1000 ||
		r.OnExhausted != queue.Park || r.Secret != "plain-for-custom-handler" || r.Timeout != Duration(1500*time.Millisecond) ||
		r.Headers["X-Api-Version"] != "2" || !slices.Equal(r.KeepHeaders, []string{"user-agent", "x-request-id"}) {
		t.Fatalf("route %#v", r)
	}
	if c.DeadLetters != (DeadLetters{MaxPerKey: 1_000_000, Retention: Duration(87600 * time.Hour)}) {
		t.Fatalf("dead_letters %+v", c.DeadLetters)
	}
	if c.Scheduler != (Scheduler{Poll: Duration(10 * time.Millisecond), Margin: Duration(time.Second), MetricsEvery: Duration(time.Minute), LeaseTTL: Duration(2 * time.Second)}) {
		t.Fatalf("scheduler %+v", c.Scheduler)
	}
	// max_rate_wait: 0s is zero, so the default.
	if c.Drain != (Drain{Batch: 1000, LeaseTTL: Duration(15 * time.Minute), ClaimTTL: Duration(time.Second), Margin: Duration(500 * time.Millisecond), MaxRateWait: Duration(50 * time.Millisecond), RateMargin: Duration(150 * time.Millisecond)}) {
		t.Fatalf("drain %+v", c.Drain)
	}
}

func TestEnv(t *testing.T) {
	c := mustParse(t, minimalYAML+"prefix: fromfile\n", env(map[string]string{
		EnvPrefix:         "fromenv",
		EnvRedisURL:       "rediss://user:pw@cache.example.com:6379/0",
		EnvRedisCluster:   "TRUE",
		EnvSigningSecrets: " whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \n\twhsec_c2Vjb25k ",
		EnvDrainFunction:  "arn:aws:lambda:eu-west-1:123456789012:function:hookline-drain:live",
	}))
	if c.Prefix != "fromenv" {
		t.Fatalf("prefix %q", c.Prefix)
	}
	if c.Redis != (Redis{URL: "rediss://user:pw@cache.example.com:6379/0", Cluster: true, Auth: RedisAuthNone}) {
		t.Fatalf("redis %+v", c.Redis)
	}
	if !reflect.DeepEqual(c.SigningSecrets, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2Vjb25k"}) {
		t.Fatalf("%d signing secrets", len(c.SigningSecrets))
	}
	if c.DrainFunction != "arn:aws:lambda:eu-west-1:123456789012:function:hookline-drain:live" {
		t.Fatalf("drain function %q", c.DrainFunction)
	}
	for _, v := range []string{"1", "true", "0", "false", ""} {
		c := mustParse(t, minimalYAML, env(map[string]string{EnvRedisCluster: v}))
		if want := v == "1" || v == "true"; c.Redis.Cluster != want {
			t.Fatalf("%s=%q: cluster %v", EnvRedisCluster, v, c.Redis.Cluster)
		}
	}
	for _, f := range []string{"hookline-drain", "hookline-drain:$LATEST", "123456789012:function:d"} {
		if c := mustParse(t, minimalYAML, env(map[string]string{EnvDrainFunction: f})); c.DrainFunction != f {
			t.Fatalf("drain function %q", c.DrainFunction)
		}
	}
	// Environment settings are not read from the file.
	if _, err := Parse([]byte(minimalYAML+"redis: {url: redis://x}\n"), nil); err == nil || !strings.Contains(err.Error(), "config: redis: unknown setting") {
		t.Fatalf("redis in file: %v", err)
	}
}

func TestVerifyForms(t *testing.T) {
	tests := []struct {
		yml  string
		want Verify
	}{
		{"verify: none", Verify{Scheme: SchemeNone}},
		{"verify: standard-webhooks", Verify{Scheme: SchemeStandardWebhooks, Tolerance: Duration(5 * time.Minute)}},
		{"verify: {scheme: standard-webhooks, tolerance: 30s}", Verify{Scheme: SchemeStandardWebhooks, Tolerance: Duration(30 * time.Second)}},
		{"verify: {tolerance: 1m}", Verify{Scheme: SchemeStandardWebhooks, Tolerance: Duration(time.Minute)}},
		{"verify: {scheme: hmac, header: X-Signature}", Verify{Scheme: SchemeHMAC, Header: "X-Signature", Encoding: EncodingHex}},
		{"verify:\n  scheme: hmac\n  header: X-Hub-Signature-256\n  encoding: hex\n  prefix: \"sha256=\"",
			Verify{Scheme: SchemeHMAC, Header: "X-Hub-Signature-256", Encoding: EncodingHex, Prefix: "sha256="}},
		{"verify:", Verify{Scheme: SchemeStandardWebhooks, Tolerance: Duration(5 * time.Minute)}},
	}
	for _, tt := range tests {
		c := mustParse(t, minimalYAML+tt.yml+"\n", nil)
		if c.Verify != tt.want {
			t.Fatalf("%s: got %+v, want %+v", tt.yml, c.Verify, tt.want)
		}
	}
}

func TestSecretFromEnv(t *testing.T) {
	yml := minimalYAML + `
  hook:
    lane: main
    handler: forward
    url: https://example.com/
    secret: env:HOOK_SECRET
    headers:
      Authorization: env:HOOK_TOKEN
      X-Literal: env-less
`
	c := mustParse(t, yml, env(map[string]string{"HOOK_SECRET": "whsec_c2VjcmV0", "HOOK_TOKEN": "Bearer t0k"}))
	r := c.Routes["hook"]
	if r.Secret != "whsec_c2VjcmV0" || r.Headers["Authorization"] != "Bearer t0k" || r.Headers["X-Literal"] != "env-less" {
		t.Fatalf("route %#v: secret or headers not resolved", r.Headers)
	}

	_, err := Parse([]byte(yml), env(map[string]string{"HOOK_SECRET": "whsec_c2VjcmV0"}))
	if err == nil || !strings.Contains(err.Error(), "config: routes.hook.headers.Authorization: environment variable HOOK_TOKEN is unset or empty") {
		t.Fatalf("unset HOOK_TOKEN: %v", err)
	}
	_, err = Parse([]byte(yml), nil)
	if err == nil || !strings.Contains(err.Error(), "config: routes.hook.secret: environment variable HOOK_SECRET is unset or empty") {
		t.Fatalf("unset HOOK_SECRET: %v", err)
	}
	_, err = Parse([]byte(strings.Replace(yml, "env:HOOK_SECRET", "env:1BAD", 1)), env(map[string]string{"HOOK_TOKEN": "x"}))
	if err == nil || !strings.Contains(err.Error(), `config: routes.hook.secret: "1BAD": not a valid environment variable name`) {
		t.Fatalf("bad variable name: %v", err)
	}
	// The resolved value is validated like a literal one.
	_, err = Parse([]byte(yml), env(map[string]string{"HOOK_SECRET": "not base64!", "HOOK_TOKEN": "x"}))
	if err == nil || !strings.Contains(err.Error(), "config: routes.hook.secret: not a Standard Webhooks secret") {
		t.Fatalf("bad secret: %v", err)
	}
	if strings.Contains(err.Error(), "not base64!") {
		t.Fatalf("error quotes the secret: %v", err)
	}
}

func TestValidationErrors(t *testing.T) {
	// base is valid; each case appends to it or replaces part of it.
	const base = `
tenant: /t
lanes:
  quick: {}
routes:
  post-create: {lane: quick, handler: forward, url: "https://api.example.com/hooks"}
`
	route := func(s string) string { return "  r: {lane: quick, " + s + "}\n" }
	lanes := func(s string) string {
		return "tenant: /t\nlanes: " + s + "\nroutes: {r: {lane: quick, handler: log}}\n"
	}
	tests := []struct {
		name string
		yml  string // replaces base when it does not start with "+"
		env  map[string]string
		want string
	}{
		{"shards high", "+shards: 4097", nil, "config: shards: 4097 is out of range 1..4096"},
		{"keep header name", "+" + route(`handler: log, keep_headers: [ok, "bad name"]`), nil, "config: routes.r.keep_headers[1]: not a valid header name"},
		{"shards negative", "+shards: -1", nil, "config: shards: -1 is out of range 1..4096"},
		{"dead letters cap", "+dead_letters: {max_per_key: 1000001}", nil, "config: dead_letters.max_per_key: 1000001 is out of range 1..1000000"},
		{"dead letters retention", "+dead_letters: {retention: 30m}", nil, "config: dead_letters.retention: 30m is out of range 1h..87600h"},
		{"prefix", "+prefix: Hook", nil, `config: prefix: "Hook": want 1..32 of a-z`},
		{"prefix env", "", map[string]string{EnvPrefix: "a b"}, `config: HOOKLINE_PREFIX: "a b": want 1..32`},
		{"tenant missing", strings.Replace(base, "tenant: /t", "", 1), nil, "config: tenant: required"},
		{"tenant no slash", strings.Replace(base, "tenant: /t", "tenant: data.id", 1), nil, `config: tenant: "data.id": a JSON pointer must start with "/"`},
		{"tenant bad escape", strings.Replace(base, "tenant: /t", "tenant: /a~2", 1), nil, `config: tenant: "/a~2": "~" must be followed by 0 or 1`},
		{"no lanes", "tenant: /t\nroutes: {r: {lane: x, handler: log}}", nil, "config: lanes: at least one lane is required"},
		{"lane name", lanes("{Quick: {}, quick: {}}"), nil, "config: lanes.Quick: lane name must be 1..64"},
		{"lane name odd", lanes("{\"a b\": {}, quick: {}}"), nil, `config: lanes["a b"]: lane name must be`},
		{"concurrency", lanes("{quick: {concurrency: -1}}"), nil, "config: lanes.quick.concurrency: -1 must be at least 1"},
		{"quantum low", lanes("{quick: {quantum: 500ms}}"), nil, "config: lanes.quick.quantum: 500ms is out of range 1s..14m"},
		{"quantum high", lanes("{quick: {quantum: 15m}}"), nil, "config: lanes.quick.quantum: 15m is out of range 1s..14m"},
		{"no routes", "tenant: /t\nlanes: {quick: {}}", nil, "config: routes: at least one route is required"},
		{"route code", "+  \"a b\": {lane: quick, handler: log}", nil, `config: routes["a b"]: not a valid event code`},
		{"route code braces", "+  \"a{b}\": {lane: quick, handler: log}", nil, `config: routes["a{b}"]: not a valid event code`},
		{"lane undefined", strings.Replace(base, "lane: quick", "lane: medium", 1), nil, `config: routes.post-create.lane: "medium" is not a defined lane`},
		{"lane missing", "+  r: {handler: log}", nil, "config: routes.r.lane: required: one of quick"},
		{"handler missing", "+" + route("url: https://x.example"), nil, "config: routes.r.handler: required"},
		{"handler name", "+" + route("handler: 'my handler'"), nil, `config: routes.r.handler: "my handler": want forward, log or a handler name`},
		{"forward url missing", "+" + route("handler: forward"), nil, "config: routes.r.url: required by the forward handler"},
		{"forward url relative", "+" + route("handler: forward, url: /hooks"), nil, "config: routes.r.url: must be an absolute http or https URL"},
		{"forward url scheme", "+" + route("handler: forward, url: 'ftp://x.example/'"), nil, "config: routes.r.url: must be an absolute http or https URL"},
		{"custom url bad", "+" + route("handler: mine, url: 'x.example'"), nil, "config: routes.r.url: must be an absolute http or https URL"},
		{"log url", "+" + route("handler: log, url: 'https://x.example'"), nil, "config: routes.r.url: not used by the log handler"},
		{"log secret", "+" + route("handler: log, secret: whsec_c2Vj"), nil, "config: routes.r.secret: not used by the log handler"},
		{"log headers", "+" + route("handler: log, headers: {X-A: b}"), nil, "config: routes.r.headers: not used by the log handler"},
		{"forward secret", "+" + route("handler: forward, url: 'https://x.example', secret: 'hunter2!'"), nil, "config: routes.r.secret: not a Standard Webhooks secret"},
		{"max_attempts", "+" + route("handler: log, max_attempts: 1001"), nil, "config: routes.r.max_attempts: 1001 is out of range 1..1000"},
		{"on_exhausted", "+" + route("handler: log, on_exhausted: drop"), nil, `config: routes.r.on_exhausted: "drop": want dead-letter or park`},
		{"timeout", "+" + route("handler: mine, timeout: 15m"), nil, "config: routes.r.timeout: 15m is out of range 1ms..14m"},
		{"header name", "+" + route("handler: mine, headers: {'X A': b}"), nil, `config: routes.r.headers["X A"]: not a valid header name`},
		{"header reserved", "+" + route("handler: mine, headers: {content-length: '1'}"), nil, "config: routes.r.headers.content-length: set by hookline"},
		{"header value", "+" + route("handler: mine, headers: {X-A: \"a\\nb\"}"), nil, "config: routes.r.headers.X-A: the value must not hold line breaks"},
		{"verify scheme", "+verify: github", nil, `config: verify.scheme: "github": want standard-webhooks, hmac or none`},
		{"hmac header missing", "+verify: hmac", nil, "config: verify.header: required by scheme hmac"},
		{"hmac header bad", "+verify: {scheme: hmac, header: 'X Sig'}", nil, `config: verify.header: "X Sig" is not a valid header name`},
		{"hmac encoding", "+verify: {scheme: hmac, header: X-Sig, encoding: base32}", nil, `config: verify.encoding: "base32": want hex or base64`},
		{"hmac tolerance", "+verify: {scheme: hmac, header: X-Sig, tolerance: 5m}", nil, "config: verify.tolerance: only used by scheme standard-webhooks"},
		{"sw header", "+verify: {header: X-Sig}", nil, "config: verify.header: only used by scheme hmac"},
		{"sw tolerance", "+verify: {tolerance: 2h}", nil, "config: verify.tolerance: 2h is out of range 1s..1h"},
		{"none prefix", "+verify: {scheme: none, prefix: x}", nil, "config: verify.prefix: only used by scheme hmac"},
		{"max_body", "+max_body: 7MiB", nil, "config: max_body: 7340032 is out of range 1..6291456 (6MiB)"},
		{"dedup_window", "+dedup_window: 500ms", nil, "config: dedup_window: 500ms must be at least 1s"},
		{"poll", "+scheduler: {poll: 6s}", nil, "config: scheduler.poll: 6s is out of range 10ms..5s"},
		{"scheduler margin", "+scheduler: {margin: -1s}", nil, "config: scheduler.margin: -1s is out of range 1ms..14m"},
		{"metrics_every", "+scheduler: {metrics_every: 100ms}", nil, "config: scheduler.metrics_every: 100ms is out of range 1s..1h"},
		{"scheduler lease_ttl", "+scheduler: {lease_ttl: 500ms}", nil, "config: scheduler.lease_ttl: 500ms is out of range 1s..15m"},
		{"scheduler lease_ttl under two polls", "+scheduler: {poll: 2s, lease_ttl: 3s}", nil, "config: scheduler.lease_ttl: 3s must be at least twice scheduler.poll (2s): the leader renews it every poll"},
		{"batch", "+drain: {batch: 1001}", nil, "config: drain.batch: 1001 is out of range 1..1000"},
		{"lease_ttl", "+drain: {lease_ttl: 16m}", nil, "config: drain.lease_ttl: 16m is out of range 1s..15m"},
		{"claim_ttl", "+drain: {claim_ttl: 10ms}", nil, "config: drain.claim_ttl: 10ms is out of range 1s..15m"},
		{"drain margin", "+drain: {margin: 20m}", nil, "config: drain.margin: 20m is out of range 1ms..14m"},
		{"max_rate_wait", "+drain: {max_rate_wait: -2s}", nil, "config: drain.max_rate_wait: -2s is out of range 1ms..14m"},
		{"rate_margin", "+drain: {rate_margin: 2s}", nil, "config: drain.rate_margin: 2s is out of range 1ms..1s"},
		{"redis scheme", "", map[string]string{EnvRedisURL: "http://user:hunter2@h:6379"}, "config: HOOKLINE_REDIS_URL: scheme must be redis or rediss"},
		{"redis host", "", map[string]string{EnvRedisURL: "redis://"}, "config: HOOKLINE_REDIS_URL: the host is missing"},
		{"redis unparsable", "", map[string]string{EnvRedisURL: "redis://:hunter2@h:port"}, "config: HOOKLINE_REDIS_URL: not a valid URL"},
		{"redis cluster", "", map[string]string{EnvRedisCluster: "yes"}, `config: HOOKLINE_REDIS_CLUSTER: "yes" must be true, false, 1 or 0`},
		{"signing secret", "", map[string]string{EnvSigningSecrets: "whsec_c2Vj hunter2!"}, "config: HOOKLINE_SIGNING_SECRETS: secret 2 of 2 is not a Standard Webhooks secret"},
		{"drain function", "", map[string]string{EnvDrainFunction: "arn:aws:s3:::bucket"}, `config: HOOKLINE_DRAIN_FUNCTION: "arn:aws:s3:::bucket" is not a Lambda function name or ARN`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yml := tt.yml
			if rest, ok := strings.CutPrefix(yml, "+"); ok || yml == "" {
				yml = base + rest + "\n"
			}
			_, err := Parse([]byte(yml), env(tt.env))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error quotes a secret: %v", err)
			}
		})
	}
}

// HMAC secrets are raw bytes, not Standard Webhooks secrets.
func TestHMACSecretsAnyForm(t *testing.T) {
	c := mustParse(t, minimalYAML+"verify: {scheme: hmac, header: X-Sig}\n", env(map[string]string{EnvSigningSecrets: "s3cr3t!"}))
	if len(c.SigningSecrets) != 1 || c.RequireSigningSecrets() != nil {
		t.Fatalf("hmac secret rejected")
	}
}

func TestDecodeErrorsNameSetting(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"unknown top", minimalYAML + "shard: 4\n", "config: shard: unknown setting (line 6)"},
		{"unknown lane field", "tenant: /t\nlanes:\n  main: {concurency: 2}\nroutes: {r: {lane: main, handler: log}}\n", "config: lanes.main.concurency: unknown setting (line 3)"},
		{"unknown route field", minimalYAML + "  other:\n    lane: main\n    handler: log\n    retries: 3\n", "config: routes.other.retries: unknown setting (line 9)"},
		{"unknown verify field", minimalYAML + "verify:\n  scheme: hmac\n  algo: sha1\n", "config: verify.algo: unknown setting (line 8)"},
		{"unknown drain field", minimalYAML + "drain: {batch_size: 3}\n", "config: drain.batch_size: unknown setting (line 6)"},
		{"duration no unit", "tenant: /t\nlanes:\n  main: {quantum: 20}\nroutes: {r: {lane: main, handler: log}}\n", `config: lanes.main.quantum: want a duration with a unit such as "20s", got 20 (line 3)`},
		{"duration garbage", minimalYAML + "dedup_window: one day\n", `config: dedup_window: want a duration such as "20s" or "1m30s", got "one day" (line 6)`},
		{"duration mapping", minimalYAML + "scheduler:\n  poll:\n    ms: 5\n", `config: scheduler.poll: want a duration such as "20s" or "1m30s", got a mapping (line 8)`},
		{"rate syntax", minimalYAML + "  r2: {lane: main, handler: log, rate: 2 per second}\n", `config: routes.r2.rate: "2 per second": want N/unit`},
		{"rate number", minimalYAML + "  r2: {lane: main, handler: log, rate: 2}\n", `config: routes.r2.rate: want a rate with a period such as "2/s", got 2`},
		{"rate zero", minimalYAML + "  r2: {lane: main, handler: log, rate: 0/s}\n", `config: routes.r2.rate: "0/s": N must be 1..1000000`},
		{"size", minimalYAML + "max_body: 1 MeB\n", `config: max_body: size "1 MeB": unit must be`},
		{"size float", minimalYAML + "max_body: 1.5\n", `config: max_body: want a size such as "256KiB" or "1MiB", got "1.5"`},
		{"type int", minimalYAML + "shards: many\n", "config: shards: want an integer, got `many` (line 6)"},
		{"type mapping", "tenant: /t\nlanes: [quick]\nroutes: {r: {lane: main, handler: log}}\n", "config: lanes: want a mapping, got a list (line 2)"},
		{"type string", minimalYAML + "  r2: {lane: [a], handler: log}\n", "config: routes.r2.lane: want a string, got a list (line 6)"},
		{"verify type", minimalYAML + "verify: [none]\n", "config: verify: want a scheme name or a mapping, got a list (line 6)"},
		{"verify inner type", minimalYAML + "verify: {tolerance: 5}\n", `config: verify.tolerance: want a duration with a unit such as "5s", got 5 (line 6)`},
		{"duplicate", minimalYAML + "shards: 1\nshards: 2\n", "config: shards: set twice; first at line 6 (line 7)"},
		{"two documents", minimalYAML + "---\nshards: 2\n", "config: line 6: the file holds more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "config: line 1: want a mapping, got a list"},
		{"syntax", "tenant: /t\n  lanes: x\n", "config: yaml: line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), nil)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	yml := `
shards: 5000
tenant: x
lanes:
  quick: {quantum: 20}
routes:
  a: {lane: medium, handler: forward}
  b: {lane: quick, handler: log, bogus: 1}
`
	_, err := Parse([]byte(yml), env(map[string]string{EnvRedisURL: "http://h"}))
	if err == nil {
		t.Fatalf("no error")
	}
	for _, want := range []string{
		"config: lanes.quick.quantum: want a duration with a unit",
		"config: routes.b.bogus: unknown setting",
		"config: shards: 5000 is out of range",
		"config: tenant: \"x\": a JSON pointer",
		`config: routes.a.lane: "medium" is not a defined lane`,
		"config: routes.a.url: required by the forward handler",
		"config: HOOKLINE_REDIS_URL: scheme must be redis or rediss",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, want)
		}
	}
	// A setting that failed to decode is reported once, not again by validation.
	if strings.Contains(err.Error(), "lanes.quick.quantum: 0") || strings.Count(err.Error(), "lanes.quick.quantum") != 1 {
		t.Fatalf("quantum reported twice:\n%v", err)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 7 {
		t.Fatalf("%d errors, want 7:\n%v", n, err)
	}
}

// yaml.v3 decodes nothing of a mapping with a duplicate key: what is
// missing because of it is not reported as well.
func TestDuplicateKeyNoFollowOn(t *testing.T) {
	_, err := Parse([]byte(exampleYAML+"shards: 4\n"), env(map[string]string{EnvRedisURL: "http://h"}))
	want := "config: shards: set twice; first at line 2 (line 15)\nconfig: HOOKLINE_REDIS_URL: scheme must be redis or rediss"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	_, err = Parse([]byte(exampleYAML+"  post-create: {lane: quick, handler: log}\n"), nil)
	want = "config: routes.post-create: set twice; first at line 8 (line 15)"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestLoad(t *testing.T) {
	_, err := Load(env(nil))
	if err == nil || !strings.Contains(err.Error(), "config: HOOKLINE_CONFIG: required") {
		t.Fatalf("no HOOKLINE_CONFIG: %v", err)
	}

	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err = Load(env(map[string]string{EnvConfig: missing}))
	if err == nil || !strings.Contains(err.Error(), "HOOKLINE_CONFIG") || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// A directory cannot be read as a file.
	_, err = Load(env(map[string]string{EnvConfig: dir}))
	if err == nil || !strings.Contains(err.Error(), "HOOKLINE_CONFIG") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("directory: %v", err)
	}

	path := filepath.Join(dir, "hookline.yaml")
	if err := os.WriteFile(path, []byte(exampleYAML), 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	c, err := Load(env(map[string]string{EnvConfig: path, EnvRedisURL: "redis://localhost:6379"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Tenant != "/data/customer_id" || c.Redis.URL != "redis://localhost:6379" {
		t.Fatalf("loaded %v", c)
	}
}

func TestRequire(t *testing.T) {
	c := mustParse(t, minimalYAML, nil)
	if err := c.RequireSigningSecrets(); err == nil || err.Error() != "config: HOOKLINE_SIGNING_SECRETS: required unless verify is none (or give HOOKLINE_SIGNING_SECRETS_ARN)" {
		t.Fatalf("RequireSigningSecrets: %v", err)
	}
	if err := c.RequireDrainFunction(); err == nil || !strings.HasPrefix(err.Error(), "config: HOOKLINE_DRAIN_FUNCTION: required") {
		t.Fatalf("RequireDrainFunction: %v", err)
	}
	c = mustParse(t, minimalYAML+"verify: none\n", env(map[string]string{EnvDrainFunction: "drain"}))
	if err := c.RequireSigningSecrets(); err != nil {
		t.Fatalf("RequireSigningSecrets with verify none: %v", err)
	}
	if err := c.RequireDrainFunction(); err != nil {
		t.Fatalf("RequireDrainFunction: %v", err)
	}
	c = mustParse(t, minimalYAML, env(map[string]string{EnvSigningSecrets: "whsec_c2Vj"}))
	if err := c.RequireSigningSecrets(); err != nil {
		t.Fatalf("RequireSigningSecrets with a secret: %v", err)
	}
}

func TestParseEmpty(t *testing.T) {
	_, err := Parse(nil, nil)
	if err == nil || !strings.Contains(err.Error(), "config: tenant: required") || !strings.Contains(err.Error(), "config: lanes: at least one lane") {
		t.Fatalf("empty file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleYAML))
	f.Add([]byte(minimalYAML + "verify: {scheme: hmac, header: X, tolerance: 5}\nmax_body: 9GiB\n"))
	f.Add([]byte("lanes: &a {x: {}}\nroutes: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, nil)
		if err == nil {
			if c.validate() != nil {
				t.Fatalf("Parse returned an invalid config")
			}
			_ = c.String()
		}
	})
}

// TestRedisAuthSettings: the AWS connection settings are read and checked,
// and their errors name the variable.
func TestRedisAuthSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c := mustParse(t, minimalYAML, env(map[string]string{
		EnvRedisURL: "rediss://hl.serverless.use1.cache.amazonaws.com:6379", EnvRedisCluster: "true",
		EnvRedisAuth: "IAM", EnvRedisUser: "hookline-app", EnvRedisCacheName: "hookline", EnvRedisServerless: "1",
		EnvSigningSecretsARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:hookline/signing-AbCdEf",
	}))
	want := Redis{URL: "rediss://hl.serverless.use1.cache.amazonaws.com:6379", Cluster: true, Auth: RedisAuthIAM,
		User: "hookline-app", CacheName: "hookline", Serverless: true}
	if c.Redis != want || c.SigningSecretsARN == "" {
		t.Fatalf("redis %+v, signing secrets ARN %q", c.Redis, c.SigningSecretsARN)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvRedisAuth: "kerberos"}, "config: HOOKLINE_REDIS_AUTH: must be none, token or iam"},
		{map[string]string{EnvRedisAuth: "iam", EnvRedisURL: "rediss://h:6379", EnvRedisCacheName: "c"}, "config: HOOKLINE_REDIS_USER: required when HOOKLINE_REDIS_AUTH is iam"},
		{map[string]string{EnvRedisAuth: "iam", EnvRedisURL: "rediss://h:6379", EnvRedisUser: "u"}, "config: HOOKLINE_REDIS_CACHE_NAME: required when HOOKLINE_REDIS_AUTH is iam"},
		{map[string]string{EnvRedisAuth: "iam", EnvRedisURL: "redis://h:6379", EnvRedisUser: "u", EnvRedisCacheName: "c"}, "config: HOOKLINE_REDIS_URL: IAM authentication needs TLS: use rediss://"},
		{map[string]string{EnvRedisTokenARN: "hookline/token"}, "config: HOOKLINE_REDIS_TOKEN_ARN: must be a Secrets Manager ARN (arn:aws:secretsmanager:...)"},
		{map[string]string{EnvRedisServerless: "yes"}, `config: HOOKLINE_REDIS_SERVERLESS: "yes" must be true, false, 1 or 0`},
	} {
		_, err := Parse([]byte(minimalYAML), env(tc.env))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: got %v, want %s", tc.env, err, tc.want)
		}
	}
}
