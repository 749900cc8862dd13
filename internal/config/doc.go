// Package config loads hookline's configuration: one YAML file, named by the
// environment variable HOOKLINE_CONFIG, plus a few environment variables for
// what is secret or differs per deployment.
//
// Every function loads it once at init with [Load]. A bad setting fails there,
// with an error naming the setting, never inside an invocation. Load reports
// every problem it finds at once, one per line:
//
//	config: routes.post-create.lane: "medium" is not a defined lane (line 9)
//	config: lanes.quick.quantum: want a duration such as "20s" or "1m30s", got "20" (line 4)
//	config: routes.post-create.max_attempt: unknown setting (line 12); did you mean "max_attempts"?
//	config: HOOKLINE_REDIS_URL: scheme must be redis or rediss
//
// Every problem with a setting of the file names its line (a missing
// setting: the line of the one that should hold it), and an unknown
// setting name gets the nearest known one as a hint.
//
// The names in the file are a public contract: they do not change.
//
// # File
//
// A complete file. Optional settings are shown at their defaults, except
// secret and headers, which have none:
//
//	shards: 16                      # fixed per deployment: changing it strands queued items
//	prefix: hl                      # starts every Redis key name
//	tenant: /data/customer_id       # JSON pointer into the webhook body: the tenant id
//
//	verify: standard-webhooks       # or: none, or a mapping (see Verify below)
//	max_body: 256KiB                # largest webhook body accepted
//	dedup_window: 24h               # a webhook id seen again within this is dropped
//
//	lanes:
//	  quick: {concurrency: 64, quantum: 20s}
//	  slow:  {concurrency: 8,  quantum: 60s}
//
//	routes:
//	  post-create:                  # the event code
//	    lane: quick
//	    handler: forward            # built-in: forward, log; or a registered Go handler
//	    url: https://api.example.com/hooks
//	    rate: 2/s                   # optional; no limit when absent
//	    max_attempts: 8
//	    on_exhausted: dead-letter   # or: park
//	    timeout: 10s
//	    secret: env:POST_CREATE_SECRET
//	    headers:
//	      Authorization: env:API_AUTHORIZATION
//	    keep_headers: [user-agent]
//
//	dead_letters:
//	  max_per_key: 10000
//	  retention: 720h
//
//	scheduler:
//	  poll: 1s
//	  margin: 5s
//	  lease_ttl: 10s
//	  metrics_every: 10s
//
//	drain:
//	  batch: 10
//	  lease_ttl: 30s
//	  claim_ttl: 60s
//	  margin: 3s
//	  max_rate_wait: 50ms
//	  rate_margin: 20ms
//
//	metrics:
//	  namespace: hookline
//	  stack: hookline               # HOOKLINE_STACK overrides it
//
// An absent setting, and one set to zero, takes its default. A setting the
// package does not know is an error, so a misspelt name never goes unnoticed.
//
// # Top-level settings
//
// shards (default 16, 1..4096) is the number of shards keys are spread over.
// Each shard is one Redis hash slot, so more shards spread a Redis Cluster's
// load wider. It is fixed for a deployment: items queued under one count are
// not found under another.
//
// prefix (default "hl", 1..32 of a-z, 0-9, '_', '-') starts every Redis key
// name, so several deployments can share one Redis. HOOKLINE_PREFIX overrides
// it.
//
// tenant (required) is a JSON pointer (RFC 6901) into the webhook body, such
// as "/data/customer_id", to the value that identifies the customer. Webhooks
// of one tenant and event code are handled in order; different tenants in
// parallel.
//
// verify (default standard-webhooks) says how ingest checks a webhook's
// signature; see Verify below.
//
// max_body (default 256KiB, at most 6MiB: the Lambda request limit) is the
// largest body ingest accepts. It is a number of bytes or a size with a unit:
// B, KB, MB (powers of 1000) or KiB, MiB (powers of 1024), such as "1MiB".
//
// dedup_window (default 24h, at least 1s) is how long a webhook id is
// remembered per key; a delivery with an id seen within it is acknowledged
// and dropped. Providers retry deliveries, so dedup cannot be turned off.
//
// # Lanes
//
// lanes (at least one) maps a lane name (1..64 of a-z, 0-9, '_', '-') to its
// capacity. Lanes isolate: a slow lane's backlog never takes a quick lane's
// capacity.
//
//   - concurrency (default 8, at least 1): drains working the lane at once.
//   - quantum (default 20s, 1s..14m): how long one drain works a key before
//     yielding it to the back of the ready order, so a hot key never starves
//     the others.
//
// # Routes
//
// routes (at least one) maps an event code to what is done with its
// webhooks. An event code is 1..128 printable ASCII characters without
// space, '{' or '}'.
//
//   - lane (required): a lane defined under lanes.
//   - handler (required): "forward" posts the webhook to url; "log" writes it
//     to the log; any other name ([a-zA-Z0-9_.-], at most 64) is a Go handler
//     registered by that name, checked when the function starts.
//   - url (required by forward): absolute http or https URL.
//   - rate (default unlimited): at most N calls per period, written "N/unit"
//     or "N/duration": "2/s", "10/m", "100/h", "5/2s", "3/500ms"; N is
//     1..1000000 and the period 1ms..24h. The drain enforces it for every
//     handler, built in or registered, before each call: per (tenant, url),
//     or per (tenant, handler name) for a route without url, shared by
//     every route with the same pair. A call whose slot is further than
//     drain.max_rate_wait away yields its key until then, with no attempt
//     used.
//   - max_attempts (default 8, 1..1000): attempts before on_exhausted applies.
//     A failing webhook is retried in place; its key waits, others do not.
//   - on_exhausted (default dead-letter): "dead-letter" moves the webhook to
//     its key's dead-letter list and goes on with the next; "park" pauses the
//     key with the webhook at its head for an operator to resume.
//   - timeout (default 10s, 1ms..14m): the deadline of one handler call, for
//     every handler (for forward, one HTTP call): the drain cancels the
//     call's context when it runs out.
//   - secret (optional): for forward, the Standard Webhooks secret
//     ("whsec_" and base64) forward signs outgoing calls with; a registered
//     handler factory receives it as is (handler.Route). Not allowed with
//     log.
//   - headers (optional): extra headers forward sends; a registered handler
//     factory receives them (handler.Route). Host, Content-Length,
//     Transfer-Encoding, Connection and the webhook-* signature headers cannot
//     be set. Not allowed with log.
//   - keep_headers (default none): request headers ingest stores with each
//     webhook of the route, for custom handlers that read them
//     (handler.Event.Headers). Each kept header costs its name and value in
//     Redis for every queued webhook; forward needs none.
//
// A secret or header value written "env:NAME" is read from the environment
// variable NAME at load, so the file holds no credentials; an unset or empty
// variable is an error.
//
// # Verify
//
// verify is either a scheme name or a mapping:
//
//	verify: none
//	verify: standard-webhooks
//	verify: {scheme: standard-webhooks, tolerance: 5m}
//	verify: {scheme: hmac, header: X-Hub-Signature-256, encoding: hex, prefix: "sha256="}
//
// Schemes:
//
//   - standard-webhooks (default): the Standard Webhooks signature in the
//     webhook-id, webhook-timestamp and webhook-signature headers, with the
//     secrets in HOOKLINE_SIGNING_SECRETS. tolerance (default 5m, 1s..1h) is
//     how far webhook-timestamp may be from now.
//   - hmac: an HMAC-SHA256 of the raw body in the request header named by
//     header (required), encoded as encoding ("hex", the default, or
//     "base64"), after prefix (optional, e.g. "sha256="). The keys are the
//     secrets in HOOKLINE_SIGNING_SECRETS, used as raw bytes.
//   - none: no check. Only for development or behind a trusted gateway.
//
// Settings that the chosen scheme does not use are errors.
//
// # Dead letters
//
// dead_letters bounds what is kept of webhooks that used their attempts
// under on_exhausted: dead-letter (or that an operator skipped). Both limits
// apply when one of a key's webhooks is dead-lettered: the key's oldest dead
// letters beyond them are dropped then.
//
//   - max_per_key (default 10000, 1..1000000): a key keeps its newest this
//     many dead letters.
//   - retention (default 720h, 30 days; 1h..87600h): a dead letter older
//     than this is dropped.
//
// `hookline dlq` lists, shows, redrives and purges dead letters; the engine
// counts them per lane for the dead-letter metric.
//
// # Scheduler and drain
//
// scheduler tunes the scheduler function:
//
//   - poll (default 1s, 10ms..5s): the longest it waits between looks for
//     ready keys when nothing wakes it. New work wakes it at once (ingest
//     and drains signal it), and so does the ready time of a key that
//     waits for a retry or a rate-limit slot.
//   - margin (default 5s, 1ms..14m): it stops this long before its Lambda
//     deadline.
//   - lease_ttl (default 10s, 1s..15m, at least twice poll): the singleton
//     lease that lets one scheduler dispatch at a time. The leader renews it
//     every poll and releases it when it stops; a scheduler started while
//     another leads stands by until its own deadline and takes over the
//     moment the lease is released, or within a poll of a dead leader's
//     lease running out. Lower it to replace a crashed leader sooner; keep
//     it well above the longest poll (claims and Invoke calls).
//   - metrics_every (default 10s, 1s..1h): how often it emits queue metrics.
//
// drain tunes the drain function and the leases it works under:
//
//   - batch (default 10, 1..1000): items fetched from a key at a time.
//   - lease_ttl (default 30s, 1s..15m): the lease an active drain holds and
//     extends; a crashed drain's key is ready again after it.
//   - claim_ttl (default 60s, 1s..15m): the lease a claim grants until its
//     drain starts; it bounds how long a lost dispatch keeps a key.
//   - margin (default 3s, 1ms..14m): a drain yields this long before its
//     Lambda deadline.
//   - max_rate_wait (default 50ms, 1ms..14m): a rate-limit wait longer than this
//     is not slept away: the key yields until the call is allowed.
//   - rate_margin (default 20ms, 1ms..1s): added to the spacing of
//     rate-limited calls (a 2/s route's calls start at least 520ms apart), to
//     absorb clock skew between drains and the jitter between a call's slot
//     and its arrival. Raise it if a provider counts arrivals strictly over a
//     jittery network.
//
// # Metrics
//
// metrics says where the functions' CloudWatch metrics go (Embedded Metric
// Format lines in their logs; README, Operations, lists them):
//
//   - namespace (default "hookline"): the CloudWatch namespace, 1..255 of
//     A-Z, a-z, 0-9, '.', '-', '_', '/', '#', ':' and space, not starting
//     with "AWS/".
//   - stack (default "hookline"): the value of the Stack dimension every
//     metric carries, so that two deployments in one account and namespace
//     keep their metrics apart. HOOKLINE_STACK overrides it; the SAM
//     template sets that to the stack name.
//
// # Durations
//
// Durations are Go duration strings: "500ms", "20s", "1m30s", "24h". A bare
// number is an error, since it has no unit.
//
// # Environment
//
//   - HOOKLINE_CONFIG (required by Load): path of the YAML file.
//   - HOOKLINE_PREFIX: overrides prefix.
//   - HOOKLINE_REDIS_URL: "redis://[user:password@]host:port[/db]", or
//     "rediss://..." for TLS. Empty leaves the choice to the caller (a local
//     Redis in development).
//   - HOOKLINE_REDIS_CLUSTER: "true" or "1" to speak the Redis Cluster
//     protocol (needed for ElastiCache Serverless); "false", "0" or empty not to.
//   - HOOKLINE_SIGNING_SECRETS: the verify secrets, separated by spaces. Give
//     several while rotating: a signature by any of them is accepted. For
//     standard-webhooks each is "whsec_" and base64. Ingest requires at least
//     one unless verify is none (see [Config.RequireSigningSecrets]).
//   - HOOKLINE_DRAIN_FUNCTION: name or ARN of the drain function the scheduler
//     invokes (see [Config.RequireDrainFunction]).
//   - HOOKLINE_STACK: overrides metrics.stack.
//
// Secrets are never printed: [Config.String] and [Config.LogValue] redact the
// signing secrets, route secrets and header values, and the passwords in
// URLs.
package config
