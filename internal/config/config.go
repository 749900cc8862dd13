package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/ingest"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/ratelimit"
	"github.com/hookline/hookline/internal/schedule"
	"github.com/hookline/hookline/internal/telemetry"
	"github.com/hookline/hookline/shared/webhook"
	"gopkg.in/yaml.v3"
)

// Environment variables read by Load and Parse.
const (
	EnvConfig         = "HOOKLINE_CONFIG"
	EnvPrefix         = "HOOKLINE_PREFIX"
	EnvRedisURL       = "HOOKLINE_REDIS_URL"
	EnvRedisCluster   = "HOOKLINE_REDIS_CLUSTER"
	EnvSigningSecrets = "HOOKLINE_SIGNING_SECRETS"
	EnvDrainFunction  = "HOOKLINE_DRAIN_FUNCTION"
	// EnvSigningSecretsARN names a Secrets Manager secret whose value holds
	// the signing secrets (space-separated), read at init.
	EnvSigningSecretsARN = "HOOKLINE_SIGNING_SECRETS_ARN"
	// EnvRedisAuth selects how to authenticate to Redis: none, token or iam.
	EnvRedisAuth = "HOOKLINE_REDIS_AUTH"
	// EnvRedisUser is the Redis user (an ElastiCache user id for iam).
	EnvRedisUser = "HOOKLINE_REDIS_USER"
	// EnvRedisCacheName is the ElastiCache cache name that IAM tokens are
	// signed for.
	EnvRedisCacheName = "HOOKLINE_REDIS_CACHE_NAME"
	// EnvRedisServerless marks an ElastiCache Serverless cache, whose IAM
	// tokens carry ResourceType=ServerlessCache.
	EnvRedisServerless = "HOOKLINE_REDIS_SERVERLESS"
	// EnvRedisTokenARN names a Secrets Manager secret holding the Redis AUTH
	// token, read at init.
	EnvRedisTokenARN = "HOOKLINE_REDIS_TOKEN_ARN"
	// EnvStack overrides metrics.stack: the Stack dimension of every
	// metric (the SAM template sets it to the stack name).
	EnvStack = "HOOKLINE_STACK"
)

// Defaults that only the configuration has: the others belong to the
// package that applies them (queue.ShardsDefault, drain.QuantumDefault, ...),
// and setDefaults refers to them there.
const (
	// ConcurrencyDefault is a lane's default concurrency.
	ConcurrencyDefault = 8
	// SchemeDefault is the default signature scheme.
	SchemeDefault = SchemeStandardWebhooks
	// StackDefault is the default value of the Stack metric dimension.
	StackDefault = "hookline"
)

// Built-in handler names. Any other handler name is a registered Go handler.
const (
	// HandlerForward posts each webhook to the route's URL.
	HandlerForward = "forward"
	// HandlerLog writes each webhook to the log.
	HandlerLog = "log"
)

// Config is hookline's whole configuration. Load and Parse return it with
// every default filled in and every setting validated; treat it as
// read-only afterwards. The zero value of each field stands for the default
// documented on it.
type Config struct {
	// Shards is the number of shards keys are spread over,
	// 1..queue.MaxShards. It is fixed for a deployment. Default
	// queue.ShardsDefault.
	Shards int `yaml:"shards"`
	// Prefix starts every Redis key name (queue.ValidPrefix).
	// HOOKLINE_PREFIX overrides it. Default queue.PrefixDefault.
	Prefix string `yaml:"prefix"`
	// Tenant is a JSON pointer (RFC 6901) into the webhook body to the
	// tenant id, such as "/data/customer_id". Required: no default.
	Tenant string `yaml:"tenant"`
	// Lanes maps lane names (queue.ValidLane) to their capacity. At least
	// one is required.
	Lanes map[string]Lane `yaml:"lanes"`
	// Routes maps event codes (webhook.ValidateCode) to what is done with
	// their webhooks. At least one is required.
	Routes map[string]Route `yaml:"-"` // read from routes by Parse
	// Verify says how ingest checks signatures. Default scheme
	// standard-webhooks.
	Verify Verify `yaml:"verify"`
	// MaxBody is the largest webhook body accepted, in bytes, at most 6 MiB.
	// In the file (max_body) it is a number or a size such as "1MiB".
	// Default ingest.MaxBodyDefault.
	MaxBody int64 `yaml:"-"` // read from max_body by Parse
	// DedupWindow is how long a webhook id is remembered per key to drop
	// duplicate deliveries; at least 1s. Default queue.DedupWindowDefault.
	DedupWindow Duration `yaml:"dedup_window"`
	// DeadLetters bounds the dead letters kept per key.
	DeadLetters DeadLetters `yaml:"dead_letters"`
	// Scheduler tunes the scheduler function.
	Scheduler Scheduler `yaml:"scheduler"`
	// Drain tunes the drain function and its leases.
	Drain Drain `yaml:"drain"`
	// Metrics says where the functions' CloudWatch metrics go.
	Metrics Metrics `yaml:"metrics"`

	// Redis says how to reach Redis. From the environment only.
	Redis Redis `yaml:"-"`
	// SigningSecrets are the secrets webhook signatures are checked with,
	// from HOOKLINE_SIGNING_SECRETS (separated by white space). Several are
	// given during a rotation. Default none; see RequireSigningSecrets.
	SigningSecrets []string `yaml:"-"`
	// SigningSecretsARN, from HOOKLINE_SIGNING_SECRETS_ARN, names a Secrets
	// Manager secret holding the signing secrets; the functions read it at
	// init into SigningSecrets. Default "".
	SigningSecretsARN string `yaml:"-"`
	// DrainFunction is the name or ARN of the drain Lambda function, from
	// HOOKLINE_DRAIN_FUNCTION. Default ""; see RequireDrainFunction.
	DrainFunction string `yaml:"-"`

	// prefixFrom names where Prefix came from, for error messages.
	prefixFrom string
	// lines maps the path of each setting in the file to its line.
	lines map[string]int
}

// Lane is the capacity of one lane.
type Lane struct {
	// Concurrency is how many drains work the lane at once, at least 1.
	// Default ConcurrencyDefault.
	Concurrency int `yaml:"concurrency"`
	// Quantum is how long a drain works one key before yielding it, 1s..14m.
	// Default drain.QuantumDefault.
	Quantum Duration `yaml:"quantum"`
}

// Route says what is done with the webhooks of one event code.
type Route struct {
	// Lane is the lane the route's keys are drained on. Required.
	Lane string `yaml:"lane"`
	// Handler is HandlerForward, HandlerLog or the name of a registered Go
	// handler ([a-zA-Z0-9_.-], at most 64). Required.
	Handler string `yaml:"handler"`
	// URL is where forward posts webhooks: an absolute http or https URL.
	// Required by forward; default "".
	URL string `yaml:"url"`
	// Rate limits the handler's calls, whatever the handler: per (tenant,
	// URL), or per (tenant, Handler) without a URL, shared by all routes
	// with the same pair. In the file it is written as ratelimit.ParseRate
	// reads it ("2/s"). The zero Rate, the default, is unlimited.
	Rate ratelimit.Rate `yaml:"-"` // read from rate by Parse
	// MaxAttempts is how many attempts a webhook gets before OnExhausted
	// applies, 1..1000. Default drain.MaxAttemptsDefault.
	MaxAttempts int `yaml:"max_attempts"`
	// OnExhausted is what happens to a webhook whose attempts are used up:
	// queue.DeadLetter or queue.Park. Default drain.PolicyDefault.
	OnExhausted queue.Policy `yaml:"on_exhausted"`
	// Secret is, for forward, the Standard Webhooks secret outgoing calls are
	// signed with; a registered handler factory gets it as is. Written "env:NAME" in the
	// file, it holds the value of environment variable NAME. Default "": no
	// signature.
	Secret string `yaml:"secret"`
	// Timeout bounds one handler call, whatever the handler (for forward,
	// one HTTP call), 1ms..14m. Default drain.TimeoutDefault.
	Timeout Duration `yaml:"timeout"`
	// Headers are extra headers forward sends; a registered handler factory
	// gets them as is. Values written "env:NAME" in
	// the file hold the value of environment variable NAME. Default none.
	Headers map[string]string `yaml:"headers"`
	// KeepHeaders names the request headers ingest stores with each webhook
	// of the route (lower-cased), for handlers that need them
	// (handler.Event.Headers). Default none: an item stores only its id,
	// receipt time and body.
	KeepHeaders []string `yaml:"keep_headers"`
}

// Redis says how to reach Redis.
type Redis struct {
	// URL is "redis://..." or "rediss://..." (TLS), from HOOKLINE_REDIS_URL.
	// Default "": the caller decides (a local Redis in development).
	URL string
	// Cluster selects the Redis Cluster protocol, from HOOKLINE_REDIS_CLUSTER.
	// Default false.
	Cluster bool
	// Auth is how to authenticate, from HOOKLINE_REDIS_AUTH: RedisAuthNone
	// (the default; a password may still be in URL), RedisAuthToken (an AUTH
	// token from TokenARN or the URL) or RedisAuthIAM (ElastiCache IAM
	// tokens, SigV4-presigned, refreshed before their 15 minutes run out).
	Auth string
	// User is the Redis user, from HOOKLINE_REDIS_USER; required with iam.
	User string
	// CacheName is the ElastiCache cache name, from
	// HOOKLINE_REDIS_CACHE_NAME; required with iam.
	CacheName string
	// Serverless marks an ElastiCache Serverless cache, from
	// HOOKLINE_REDIS_SERVERLESS. Default false.
	Serverless bool
	// TokenARN names a Secrets Manager secret holding the AUTH token, from
	// HOOKLINE_REDIS_TOKEN_ARN. Default "".
	TokenARN string
}

// Redis authentication modes.
const (
	RedisAuthNone  = "none"
	RedisAuthToken = "token"
	RedisAuthIAM   = "iam"
)

// DeadLetters bounds what is kept of webhooks that used their attempts
// under the dead-letter policy. Both limits apply when a key's webhook is
// dead-lettered: its oldest dead letters beyond them are dropped.
type DeadLetters struct {
	// MaxPerKey is how many dead letters a key keeps, its newest,
	// 1..1000000. Default queue.DeadLetterMaxDefault.
	MaxPerKey int `yaml:"max_per_key"`
	// Retention is how long a dead letter is kept, 1h..87600h (10 years).
	// Default queue.DeadLetterRetentionDefault.
	Retention Duration `yaml:"retention"`
}

// Scheduler tunes the scheduler function.
type Scheduler struct {
	// Poll is the longest the scheduler waits between looks for ready keys,
	// 10ms..5s. Default schedule.PollDefault.
	Poll Duration `yaml:"poll"`
	// Margin is how long before its Lambda deadline the scheduler stops,
	// 1ms..14m. Default schedule.MarginDefault.
	Margin Duration `yaml:"margin"`
	// LeaseTTL is the scheduler's singleton lease, renewed every poll: a
	// leader that dies is replaced by a standing-by scheduler within about
	// this long. 1s..15m and at least twice Poll. Default
	// schedule.SingletonTTLDefault.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// MetricsEvery is how often the scheduler emits queue metrics, 1s..1h.
	// Default schedule.MetricsEveryDefault.
	MetricsEvery Duration `yaml:"metrics_every"`
}

// Drain tunes the drain function and the leases it works under.
type Drain struct {
	// Batch is how many items a drain fetches from its key at a time,
	// 1..1000. Default drain.BatchDefault.
	Batch int `yaml:"batch"`
	// LeaseTTL is the lease an active drain holds and extends, 1s..15m.
	// Default queue.LeaseTTLDefault.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// ClaimTTL is the lease a claim grants until its drain activates it,
	// 1s..15m. Default queue.ClaimTTLDefault.
	ClaimTTL Duration `yaml:"claim_ttl"`
	// Margin is how long before its Lambda deadline a drain yields, 1ms..14m.
	// Default drain.MarginDefault.
	Margin Duration `yaml:"margin"`
	// MaxRateWait is the longest rate-limit wait a drain sleeps; a longer
	// one yields the key until the call is allowed, 1ms..14m. Default
	// drain.MaxRateWaitDefault.
	MaxRateWait Duration `yaml:"max_rate_wait"`
	// RateMargin is added to the spacing of rate-limited calls, to absorb
	// clock skew between drains and jitter between a call's slot and its
	// arrival at the provider, 1ms..1s. Default ratelimit.MarginDefault.
	RateMargin Duration `yaml:"rate_margin"`
}

// Metrics says where the functions' CloudWatch metrics (Embedded Metric
// Format lines in their logs) go.
type Metrics struct {
	// Namespace is the CloudWatch namespace: 1..255 of A-Z, a-z, 0-9, '.',
	// '-', '_', '/', '#', ':' and space, not starting with "AWS/". Default
	// "hookline".
	Namespace string `yaml:"namespace"`
	// Stack is the value of the Stack dimension every metric carries, so
	// that two deployments in one account and namespace keep their metrics
	// apart: 1..255 printable ASCII characters without space.
	// HOOKLINE_STACK overrides it. Default StackDefault.
	Stack string `yaml:"stack"`
	// stackFrom names where Stack came from, for error messages.
	stackFrom string
}

// document is the file's shape: Config, with max_body read as a size and
// the routes' rates as text.
type document struct {
	Config  `yaml:",inline"`
	MaxBody byteSize            `yaml:"max_body"`
	Routes  map[string]routeDoc `yaml:"routes"`
}

// routeDoc is a route's shape in the file: Route, with its rate as text.
type routeDoc struct {
	Route `yaml:",inline"`
	Rate  rateSetting `yaml:"rate"`
}

// Load reads the YAML file named by HOOKLINE_CONFIG, applies the environment
// (see the package documentation), fills in defaults and validates the
// result. getenv is usually os.Getenv. The error lists every problem found.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = noEnv
	}
	path := getenv(EnvConfig)
	if path == "" {
		return nil, fmt.Errorf("config: %s: required: the path of the configuration file", EnvConfig)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// err (a *fs.PathError) names the path.
		return nil, fmt.Errorf("config: %s: %w", EnvConfig, err)
	}
	return Parse(data, getenv)
}

// Parse is Load with the file's content given: it parses data as the YAML
// file, applies the environment read through getenv (nil reads nothing),
// fills in defaults and validates the result.
func Parse(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = noEnv
	}
	var p problems
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(&doc); {
	case err == nil, errors.Is(err, io.EOF):
	default:
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("config: %w", err) // a syntax error
		}
		p.decodeErrors(te.Errors, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err == nil:
		p.add(&problem{msg: "the file holds more than one YAML document", line: extra.Line})
	default:
		return nil, fmt.Errorf("config: %w", err)
	}

	c := &doc.Config
	c.MaxBody = int64(doc.MaxBody)
	if doc.Routes != nil {
		c.Routes = make(map[string]Route, len(doc.Routes))
		for code, rd := range doc.Routes {
			rd.Route.Rate = rd.Rate.Rate
			c.Routes[code] = rd.Route
		}
	}
	c.lines = settingLines(data)
	c.applyEnv(getenv, &p)
	c.setDefaults()
	p.addJoined(c.validate())
	p.locate(c.lines)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

func noEnv(string) string { return "" }

// applyEnv reads the environment variables and resolves "env:NAME" values.
func (c *Config) applyEnv(getenv func(string) string, p *problems) {
	c.prefixFrom = "prefix"
	if v := getenv(EnvPrefix); v != "" {
		c.Prefix, c.prefixFrom = v, EnvPrefix
	}
	c.Redis.URL = strings.TrimSpace(getenv(EnvRedisURL))
	c.Redis.Cluster = c.envBool(getenv, EnvRedisCluster, p)
	c.Redis.Auth = cmp.Or(strings.ToLower(strings.TrimSpace(getenv(EnvRedisAuth))), RedisAuthNone)
	c.Redis.User = strings.TrimSpace(getenv(EnvRedisUser))
	c.Redis.CacheName = strings.TrimSpace(getenv(EnvRedisCacheName))
	c.Redis.TokenARN = strings.TrimSpace(getenv(EnvRedisTokenARN))
	c.SigningSecretsARN = strings.TrimSpace(getenv(EnvSigningSecretsARN))
	c.Redis.Serverless = c.envBool(getenv, EnvRedisServerless, p)
	if secrets := strings.Fields(getenv(EnvSigningSecrets)); len(secrets) > 0 {
		c.SigningSecrets = secrets
	}
	c.DrainFunction = strings.TrimSpace(getenv(EnvDrainFunction))
	c.Metrics.stackFrom = "metrics.stack"
	if v := strings.TrimSpace(getenv(EnvStack)); v != "" {
		c.Metrics.Stack, c.Metrics.stackFrom = v, EnvStack
	}

	for _, code := range slices.Sorted(maps.Keys(c.Routes)) {
		r := c.Routes[code]
		path := joinPath("routes", code)
		r.Secret = resolveEnv(r.Secret, path+".secret", getenv, p)
		if len(r.Headers) > 0 {
			h := make(map[string]string, len(r.Headers))
			for name, v := range r.Headers {
				h[name] = resolveEnv(v, joinPath(path+".headers", name), getenv, p)
			}
			r.Headers = h
		}
		c.Routes[code] = r
	}
}

// envBool reads a boolean environment variable: true, false, 1, 0 or unset
// (false).
func (c *Config) envBool(getenv func(string) string, name string, p *problems) bool {
	switch v := strings.ToLower(strings.TrimSpace(getenv(name))); v {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	default:
		p.add(&problem{setting: name, msg: fmt.Sprintf("%q must be true, false, 1 or 0", v)})
		return false
	}
}

// resolveEnv returns v, or the value of the environment variable it names
// when it is "env:NAME".
func resolveEnv(v, setting string, getenv func(string) string, p *problems) string {
	name, ok := strings.CutPrefix(v, "env:")
	if !ok {
		return v
	}
	if !envName.MatchString(name) {
		p.add(&problem{setting: setting, msg: fmt.Sprintf("%q: not a valid environment variable name", name)})
		return ""
	}
	val := getenv(name)
	if val == "" {
		p.add(&problem{setting: setting, msg: fmt.Sprintf("environment variable %s is unset or empty", name)})
	}
	return val
}

// setDefaults fills in every zero setting with its default.
func (c *Config) setDefaults() {
	c.Shards = cmp.Or(c.Shards, queue.ShardsDefault)
	c.Prefix = cmp.Or(c.Prefix, queue.PrefixDefault)
	for name, l := range c.Lanes {
		l.Concurrency = cmp.Or(l.Concurrency, ConcurrencyDefault)
		l.Quantum = cmp.Or(l.Quantum, Duration(drain.QuantumDefault))
		c.Lanes[name] = l
	}
	for code, r := range c.Routes {
		r.MaxAttempts = cmp.Or(r.MaxAttempts, drain.MaxAttemptsDefault)
		r.OnExhausted = cmp.Or(r.OnExhausted, drain.PolicyDefault)
		r.Timeout = cmp.Or(r.Timeout, Duration(drain.TimeoutDefault))
		for i, h := range r.KeepHeaders {
			r.KeepHeaders[i] = strings.ToLower(h)
		}
		c.Routes[code] = r
	}
	c.Verify.Scheme = cmp.Or(c.Verify.Scheme, SchemeDefault)
	// Only the scheme's own settings get defaults, so validate can tell
	// that another scheme's setting was given.
	switch c.Verify.Scheme {
	case SchemeStandardWebhooks:
		c.Verify.Tolerance = cmp.Or(c.Verify.Tolerance, Duration(webhook.ToleranceDefault))
	case SchemeHMAC:
		c.Verify.Encoding = cmp.Or(c.Verify.Encoding, EncodingHex)
	}
	c.MaxBody = cmp.Or(c.MaxBody, ingest.MaxBodyDefault)
	c.DedupWindow = cmp.Or(c.DedupWindow, Duration(queue.DedupWindowDefault))
	c.DeadLetters.MaxPerKey = cmp.Or(c.DeadLetters.MaxPerKey, queue.DeadLetterMaxDefault)
	c.DeadLetters.Retention = cmp.Or(c.DeadLetters.Retention, Duration(queue.DeadLetterRetentionDefault))
	c.Scheduler.Poll = cmp.Or(c.Scheduler.Poll, Duration(schedule.PollDefault))
	c.Scheduler.Margin = cmp.Or(c.Scheduler.Margin, Duration(schedule.MarginDefault))
	c.Scheduler.LeaseTTL = cmp.Or(c.Scheduler.LeaseTTL, Duration(schedule.SingletonTTLDefault))
	c.Scheduler.MetricsEvery = cmp.Or(c.Scheduler.MetricsEvery, Duration(schedule.MetricsEveryDefault))
	c.Drain.Batch = cmp.Or(c.Drain.Batch, drain.BatchDefault)
	c.Drain.LeaseTTL = cmp.Or(c.Drain.LeaseTTL, Duration(queue.LeaseTTLDefault))
	c.Drain.ClaimTTL = cmp.Or(c.Drain.ClaimTTL, Duration(queue.ClaimTTLDefault))
	c.Drain.Margin = cmp.Or(c.Drain.Margin, Duration(drain.MarginDefault))
	c.Drain.MaxRateWait = cmp.Or(c.Drain.MaxRateWait, Duration(drain.MaxRateWaitDefault))
	c.Drain.RateMargin = cmp.Or(c.Drain.RateMargin, Duration(ratelimit.MarginDefault))
	c.Metrics.Namespace = cmp.Or(c.Metrics.Namespace, telemetry.NamespaceDefault)
	c.Metrics.Stack = cmp.Or(c.Metrics.Stack, StackDefault)
}

// Route returns the route for event code, and whether there is one.
func (c *Config) Route(code string) (Route, bool) {
	r, ok := c.Routes[code]
	return r, ok
}

// LaneNames returns the names of the lanes, sorted.
func (c *Config) LaneNames() []string {
	return slices.Sorted(maps.Keys(c.Lanes))
}

// RequireSigningSecrets reports an error naming HOOKLINE_SIGNING_SECRETS
// when signatures are to be verified but no secret is set. Ingest calls it at
// init; the other functions do not need the secrets.
func (c *Config) RequireSigningSecrets() error {
	if c.Verify.Scheme != SchemeNone && len(c.SigningSecrets) == 0 {
		return &problem{setting: EnvSigningSecrets, msg: "required unless verify is none (or give " + EnvSigningSecretsARN + ")"}
	}
	return nil
}

// SettingError returns an error about the setting at path in the file
// ("routes.post-create.handler"), in the form of Load's errors, with the
// line of the setting, or of the closest enclosing one the file has, and
// hint, if not empty, after it:
//
//	config: routes.post-create.handler: "fwd" is not registered (line 12); did you mean "forward"?
//
// Use it for problems found after Load, such as an unknown handler name.
func (c *Config) SettingError(path, msg, hint string) error {
	return &problem{setting: path, msg: msg, line: lineOf(c.lines, path), hint: hint}
}

// RouteSetting returns the path of setting field of the route for code,
// for SettingError: "routes.<code>.<field>", quoting an unusual code.
func RouteSetting(code, field string) string {
	return joinPath(joinPath("routes", code), field)
}

// RequireDrainFunction reports an error naming HOOKLINE_DRAIN_FUNCTION when
// it is not set. The scheduler calls it at init.
func (c *Config) RequireDrainFunction() error {
	if c.DrainFunction == "" {
		return &problem{setting: EnvDrainFunction, msg: "required by the scheduler: the name or ARN of the drain function"}
	}
	return nil
}
