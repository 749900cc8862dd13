package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/redis/go-redis/v9"
)

// Errors returned by the limiter. None of them, nor any error wrapping them,
// contains a credential or an endpoint.
var (
	// ErrTooLong is returned by Wait when the bucket's next slot starts later
	// than maxWait from now; nothing was reserved, and the Reservation
	// returned with it says when a slot will next be free.
	ErrTooLong = errors.New("ratelimit: next slot is further away than maxWait")
	// ErrInvalidRate reports a rate outside the limits MaxRateN, MinRatePer
	// and MaxRatePer, or a rate string ParseRate cannot read.
	ErrInvalidRate = errors.New("ratelimit: invalid rate")
	// ErrInvalidBucket reports an empty endpoint or a credential containing
	// a NUL byte (NUL separates the two in the bucket's hash).
	ErrInvalidBucket = errors.New("ratelimit: invalid bucket")
	// ErrBadState means the bucket's Redis key holds a value that is not a
	// time; nothing was changed. An operator may delete the key (see
	// Limiter.BucketKey).
	ErrBadState = errors.New("ratelimit: bucket key holds no valid state")
)

// codeErr maps the scripts' negative result codes to errors.
func codeErr(code int64) error {
	switch {
	case code == -1:
		return ErrBadState
	case code < 0:
		return fmt.Errorf("ratelimit: unexpected script result %d", code)
	}
	return nil
}

// MarginDefault is the default Options.Margin.
const MarginDefault = 20 * time.Millisecond

// Options configure a Limiter. The zero value of each field selects the
// default documented on it.
type Options struct {
	// Prefix starts every key name: 1..queue.MaxPrefixLen of a-z, 0-9, '_'
	// and '-' (queue.ValidPrefix). Default queue.PrefixDefault.
	Prefix string
	// Clock supplies "now". Default the wall clock (clock.Real{}).
	Clock clock.Clock
	// Margin is added to every interval between two slots of a bucket, so
	// slots are at least Rate.Interval()+Margin apart. It absorbs the clock
	// skew between the callers that share a bucket (each sleeps until a slot
	// start by its own clock) and the jitter between a caller's wake-up and
	// its request reaching the provider, which would otherwise let two calls
	// land closer together than the provider allows. Default MarginDefault;
	// a negative value means no margin.
	Margin time.Duration
}

func (o Options) withDefaults() Options {
	o.Prefix = cmp.Or(o.Prefix, queue.PrefixDefault)
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	switch {
	case o.Margin == 0:
		o.Margin = MarginDefault
	case o.Margin < 0:
		o.Margin = 0
	}
	return o
}

func (o Options) validate() error {
	// Buckets share the engine's key prefix, so they obey its rule.
	if !queue.ValidPrefix(o.Prefix) {
		return fmt.Errorf("ratelimit: Prefix %q: want 1..%d of a-z, 0-9, '_', '-'", o.Prefix, queue.MaxPrefixLen)
	}
	return nil
}

// Limiter spaces the calls of every bucket it is asked about. Buckets live
// in Redis, so every process using the same Redis and Prefix shares them. It
// is safe for concurrent use.
type Limiter struct {
	rdb redis.UniversalClient
	opt Options
	// sleep waits for d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Limiter over rdb, a *redis.Client or *redis.ClusterClient.
func New(rdb redis.UniversalClient, opt Options) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil Redis client")
	}
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	return &Limiter{rdb: rdb, opt: opt, sleep: clock.Sleep}, nil
}

// Options returns the limiter's options with defaults filled in.
func (l *Limiter) Options() Options { return l.opt }

// BucketKey returns the name of the Redis key that holds the bucket
// (credential, endpoint). The name contains a hash of both, never their
// text.
func (l *Limiter) BucketKey(credential, endpoint string) string {
	return bucketKey(l.opt.Prefix, credential, endpoint)
}

// Reservation says when the caller may make its call.
type Reservation struct {
	// OK reports whether a slot was reserved. If it was, the caller owns the
	// slot starting at At and must not call before it. If not, nothing was
	// reserved and the caller should yield its work until At rather than
	// sleep.
	OK bool
	// At is the start of the reserved slot, or, when OK is false, when the
	// bucket's next slot will be free (another caller may take it first).
	At time.Time
	// Wait is At minus now, never negative: with OK, exactly how long to
	// sleep before calling; without, how long until a slot is free.
	Wait time.Duration
}

// The limiter's two scripts, reserveCmd and pushCmd, each stand above the
// method that runs it, with an args type whose keys() and argv() fill KEYS
// and ARGV in the order of its contract. Both touch a single key, named in
// KEYS, take every time from ARGV (the callers' clock, in Unix ms) and never
// call TIME, and use only GET and SET, so they run unchanged on Redis 7,
// Redis Cluster and ElastiCache Serverless.
//
// A bucket's state is one STRING: its TAT (theoretical arrival time), the
// Unix ms at which its next slot may start. A missing key and a TAT in the
// past mean the same thing: the next slot may start now.
//
// The key is written with a plain SET and so never carries a TTL.
// ElastiCache Serverless evicts keys with a TTL first when memory runs short
// (volatile-lru), and an evicted bucket would forget a TAT in the future and
// let a burst through above the provider's limit. A bucket costs one small
// string per (credential, endpoint) pair, and a stale one does no harm: its
// TAT in the past behaves exactly like an absent key.
//
// A TAT is stored as a decimal integer, formatted by the script itself
// (string.format '%.0f'; Lua numbers are doubles, exact for integers below
// 2^53) rather than by redis.call's number conversion, which differs between
// server versions and may write a round number in exponent notation. A value
// that is not a decimal integer is reported, never guessed at.
//
// Result codes (mapped to errors by codeErr):
//
//	-1 the key holds something that is not a TAT

// scriptArgs fills a script's KEYS and ARGV.
type scriptArgs interface {
	keys() []string
	argv() []any
}

// run runs a script by SHA (EVALSHA), and with its source (EVAL) when the
// server answers NOSCRIPT.
func (l *Limiter) run(ctx context.Context, s *redis.Script, a scriptArgs) *redis.Cmd {
	return s.Run(ctx, l.rdb, a.keys(), a.argv()...)
}

// reserveCmd takes the next slot of a bucket if it starts within max wait.
//
// KEYS[1] -> <p>:rl:{<h>}
// ARGV[1] -> now ms   ARGV[2] -> spacing ms (interval + margin)
// ARGV[3] -> max wait ms
//
// Returns {1, start ms} when the slot was taken (the TAT moves to start +
// spacing), {0, start ms} when the next slot starts later than now + max
// wait (nothing is written), {-1, 0} when the key holds no TAT.
var reserveCmd = redis.NewScript(`
local now = tonumber(ARGV[1])
local tat = now
local cur = redis.call('GET', KEYS[1])
if cur then
  if not string.match(cur, '^%-?%d+$') then return {-1, 0} end
  local v = tonumber(cur)
  if v > now then tat = v end
end
if tat - now > tonumber(ARGV[3]) then return {0, tat} end
redis.call('SET', KEYS[1], string.format('%.0f', tat + tonumber(ARGV[2])))
return {1, tat}
`)

// reserveArgs fills reserveCmd's KEYS and ARGV.
type reserveArgs struct {
	key                   string
	now, spacing, maxWait int64
}

func (a reserveArgs) keys() []string {
	return []string{
		a.key, // KEYS[1]
	}
}

func (a reserveArgs) argv() []any {
	return []any{
		a.now,     // ARGV[1]
		a.spacing, // ARGV[2]
		a.maxWait, // ARGV[3]
	}
}

// Reserve takes the next slot of the bucket (credential, endpoint) at rate
// if it starts within maxWait of now. Then OK is true, At is the slot's
// start and Wait = At - now; the caller owns the slot and must sleep exactly
// Wait before making its call. If the next slot starts later than now +
// maxWait, nothing is reserved: OK is false and At says when a slot will
// next be free, so the caller can yield its work until then instead of
// sleeping in a billed Lambda.
//
// Slots of a bucket start at least rate.Interval()+Margin apart, so no window
// of length rate.Per holds more than rate.N slot starts. Every caller of a
// bucket should pass the same rate; a reservation spaces the next slot by its
// own rate. Times are kept to the millisecond: now is rounded up to it, and
// intervals too.
func (l *Limiter) Reserve(ctx context.Context, credential, endpoint string, rate Rate, maxWait time.Duration) (Reservation, error) {
	if err := checkBucket(credential, endpoint); err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: reserve: %w", err)
	}
	if err := rate.validate(); err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: reserve: %w", err)
	}
	now := l.opt.Clock.Now()
	nowMs := ceilUnixMilli(now)
	waitMs := int64(0)
	if maxWait > 0 {
		waitMs = int64(maxWait / time.Millisecond)
	}
	vals, err := l.run(ctx, reserveCmd, reserveArgs{key: l.BucketKey(credential, endpoint), now: nowMs,
		spacing: rate.spacingMs(l.opt.Margin), maxWait: waitMs}).Int64Slice()
	if err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: reserve: %w", err)
	}
	if len(vals) != 2 {
		return Reservation{}, fmt.Errorf("ratelimit: reserve: unexpected script result %v", vals)
	}
	if err := codeErr(vals[0]); err != nil {
		return Reservation{}, fmt.Errorf("ratelimit: reserve: %w", err)
	}
	at := time.UnixMilli(vals[1])
	return Reservation{OK: vals[0] == 1, At: at, Wait: max(at.Sub(now), 0)}, nil
}

// Wait reserves a slot as Reserve does and sleeps until it starts, for
// callers that can afford to sleep. If the next slot starts later than
// maxWait from now, it reserves nothing and returns an error wrapping
// ErrTooLong with the Reservation (OK false, At when a slot will next be
// free). If ctx ends while it sleeps it returns ctx's error; the slot stays
// reserved and unused.
func (l *Limiter) Wait(ctx context.Context, credential, endpoint string, rate Rate, maxWait time.Duration) (Reservation, error) {
	r, err := l.Reserve(ctx, credential, endpoint, rate, maxWait)
	if err != nil {
		return r, err
	}
	if !r.OK {
		return r, fmt.Errorf("ratelimit: wait: %w: next slot at %s", ErrTooLong, r.At.UTC().Format(time.RFC3339Nano))
	}
	if err := l.sleep(ctx, r.Wait); err != nil {
		return r, fmt.Errorf("ratelimit: wait: %w", err)
	}
	return r, nil
}

// pushCmd records an upstream Retry-After: no slot starts before until.
//
// KEYS[1] -> <p>:rl:{<h>}
// ARGV[1] -> until ms (a decimal integer, stored as is)
//
// Returns 1 when the TAT moved to until, 0 when it was already at or after
// until (nothing is written), -1 when the key holds no TAT.
var pushCmd = redis.NewScript(`
local u = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur then
  if not string.match(cur, '^%-?%d+$') then return -1 end
  if tonumber(cur) >= u then return 0 end
end
redis.call('SET', KEYS[1], u)
return 1
`)

// pushArgs fills pushCmd's KEYS and ARGV.
type pushArgs struct {
	key   string
	until int64
}

func (a pushArgs) keys() []string {
	return []string{
		a.key, // KEYS[1]
	}
}

func (a pushArgs) argv() []any {
	return []any{
		a.until, // ARGV[1]
	}
}

// Push records an upstream 429 or 503 with Retry-After for the bucket
// (credential, endpoint): no slot of the bucket starts before until, and the
// next one starts at until unless one is already reserved later. A Push with
// an earlier time than the bucket's next slot changes nothing. rate is
// checked like Reserve's; the pushed time does not depend on it.
func (l *Limiter) Push(ctx context.Context, credential, endpoint string, rate Rate, until time.Time) error {
	if err := checkBucket(credential, endpoint); err != nil {
		return fmt.Errorf("ratelimit: push: %w", err)
	}
	if err := rate.validate(); err != nil {
		return fmt.Errorf("ratelimit: push: %w", err)
	}
	code, err := l.run(ctx, pushCmd, pushArgs{key: l.BucketKey(credential, endpoint), until: ceilUnixMilli(until)}).Int64()
	if err != nil {
		return fmt.Errorf("ratelimit: push: %w", err)
	}
	if err := codeErr(code); err != nil {
		return fmt.Errorf("ratelimit: push: %w", err)
	}
	return nil
}

// checkBucket validates a bucket's names without ever quoting them.
func checkBucket(credential, endpoint string) error {
	if endpoint == "" {
		return fmt.Errorf("%w: empty endpoint", ErrInvalidBucket)
	}
	if strings.IndexByte(credential, 0) >= 0 {
		return fmt.Errorf("%w: credential contains a NUL byte", ErrInvalidBucket)
	}
	return nil
}

// ceilUnixMilli returns t in Unix ms, rounded up, so a slot start computed
// from it is never before t.
func ceilUnixMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}
