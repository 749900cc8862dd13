package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// start is the fake clock's starting time in every limiter test.
var start = time.UnixMilli(1_763_900_000_000)

// Rates used by the tests.
var (
	twoPerSecond = Rate{N: 2, Per: time.Second}
	// spacing2 is the slot spacing at 2/s with the default 20ms margin.
	spacing2 = 520 * time.Millisecond
)

type fixture struct {
	t   *testing.T
	ctx context.Context
	rdb redis.UniversalClient
	clk *clock.Fake
	l   *Limiter
}

// setup returns a limiter on rdb with a key prefix of its own, a fake clock
// at start, the default margin, and opts applied.
func setup(t *testing.T, rdb redis.UniversalClient, opts ...func(*Options)) *fixture {
	t.Helper()
	clk := clock.NewFake(start)
	o := Options{Prefix: redistest.Prefix(t), Clock: clk}
	for _, f := range opts {
		f(&o)
	}
	l, err := New(rdb, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, ctx: context.Background(), rdb: rdb, clk: clk, l: l}
}

// reserve calls Reserve and fails the test on an error.
func (f *fixture) reserve(cred, ep string, rate Rate, maxWait time.Duration) Reservation {
	f.t.Helper()
	r, err := f.l.Reserve(f.ctx, cred, ep, rate, maxWait)
	if err != nil {
		f.t.Fatalf("Reserve: %v", err)
	}
	return r
}

// wantSlot fails the test unless r is a reservation (ok) or a refusal (!ok)
// at the given time, with Wait = at - now.
func (f *fixture) wantSlot(r Reservation, ok bool, at time.Time) {
	f.t.Helper()
	wait := at.Sub(f.clk.Now())
	if r.OK != ok || !r.At.Equal(at) || r.Wait != wait {
		f.t.Fatalf("reservation = {OK:%v At:+%v Wait:%v}, want {OK:%v At:+%v Wait:%v}",
			r.OK, r.At.Sub(start), r.Wait, ok, at.Sub(start), wait)
	}
}

// checkWindows fails the test if two slot starts coincide or if any
// half-open window of length rate.Per holds more than rate.N of them.
func checkWindows(t *testing.T, ats []time.Time, rate Rate) {
	t.Helper()
	s := slices.Clone(ats)
	slices.SortFunc(s, time.Time.Compare)
	for i := 1; i < len(s); i++ {
		if s[i].Equal(s[i-1]) {
			t.Fatalf("two slots start at %v", s[i])
		}
	}
	for i := 0; i+rate.N < len(s); i++ {
		if d := s[i+rate.N].Sub(s[i]); d < rate.Per {
			t.Fatalf("%d slot starts within %v (from %v to %v), limit %v", rate.N+1, d, s[i], s[i+rate.N], rate)
		}
	}
}

func TestG6NeverMoreThanLimitInAnyWindow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()

		t.Run("backlog", func(t *testing.T) {
			// Reservations made at one instant queue up exactly
			// Interval+Margin apart.
			f := setup(t, rdb)
			var ats []time.Time
			for i := range 10 {
				r := f.reserve("cred", "GET /v1/things", twoPerSecond, time.Hour)
				f.wantSlot(r, true, start.Add(time.Duration(i)*spacing2))
				ats = append(ats, r.At)
			}
			checkWindows(t, ats, twoPerSecond)
		})

		t.Run("random arrivals", func(t *testing.T) {
			// Callers arrive at random, non-millisecond-aligned times at
			// various rates and margins; every slot is where the model says
			// and no window holds more than N starts.
			for _, tc := range []struct {
				rate   Rate
				margin time.Duration
			}{
				{twoPerSecond, 0},
				{twoPerSecond, -1},
				{Rate{3, time.Second}, -1}, // interval 333.33ms, rounded up
				{Rate{3, 500 * time.Millisecond}, 0},
				{Rate{5, 2 * time.Second}, 7 * time.Millisecond},
			} {
				f := setup(t, rdb, func(o *Options) { o.Margin = tc.margin })
				spacing := time.Duration(tc.rate.spacingMs(f.l.Options().Margin)) * time.Millisecond
				rng := rand.New(rand.NewPCG(1, uint64(tc.rate.N)))
				var ats []time.Time
				var next time.Time // the model's TAT
				for range 200 {
					now := f.clk.Advance(time.Duration(rng.Int64N(int64(2 * tc.rate.Interval()))))
					want := now.Truncate(time.Millisecond)
					if want.Before(now) {
						want = want.Add(time.Millisecond)
					}
					if next.After(want) {
						want = next
					}
					r := f.reserve("cred", "POST /v1/x", tc.rate, time.Hour)
					f.wantSlot(r, true, want)
					if r.Wait < 0 {
						t.Fatalf("negative wait %v", r.Wait)
					}
					next = want.Add(spacing)
					ats = append(ats, r.At)
				}
				checkWindows(t, ats, tc.rate)
			}
		})
	})
}

func TestG6ConcurrentCallersShareOneBucket(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		// Six callers, each its own Limiter as six Lambdas would be, on the
		// real clock, reserve 4 slots each of one bucket at the same time.
		const callers, each = 6, 4
		prefix := redistest.Prefix(t)
		var (
			mu   sync.Mutex
			ats  []time.Time
			wg   sync.WaitGroup
			errs = make(chan error, callers*each)
		)
		for range callers {
			l, err := New(rdb, Options{Prefix: prefix})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			wg.Go(func() {
				for range each {
					before := time.Now()
					r, err := l.Reserve(context.Background(), "tok_shared", "POST /v1/messages", twoPerSecond, time.Hour)
					if err != nil {
						errs <- err
						return
					}
					if !r.OK || r.At.Before(before.Truncate(time.Millisecond)) || r.Wait < 0 {
						errs <- errors.New("bad reservation: " + strconv.FormatBool(r.OK) + " " + r.At.String() + " " + r.Wait.String())
						return
					}
					mu.Lock()
					ats = append(ats, r.At)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Reserve: %v", err)
		}
		if len(ats) != callers*each {
			t.Fatalf("got %d slots, want %d", len(ats), callers*each)
		}
		checkWindows(t, ats, twoPerSecond)
		slices.SortFunc(ats, time.Time.Compare)
		for i := 1; i < len(ats); i++ {
			if d := ats[i].Sub(ats[i-1]); d < spacing2 {
				t.Fatalf("slots %d and %d are %v apart, want at least %v", i-1, i, d, spacing2)
			}
		}
	})
}

func TestSeparateBucketsAreIndependent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.wantSlot(f.reserve("c1", "e1", twoPerSecond, 0), true, start)
		f.wantSlot(f.reserve("c1", "e1", twoPerSecond, 0), false, start.Add(spacing2))
		// Another credential, another endpoint, and the two swapped: each
		// is a fresh bucket with its slot free now.
		for _, b := range [][2]string{{"c2", "e1"}, {"c1", "e2"}, {"e1", "c1"}, {"c1", "e1 "}} {
			f.wantSlot(f.reserve(b[0], b[1], twoPerSecond, 0), true, start)
		}
		if f.l.BucketKey("a", "bc") == f.l.BucketKey("ab", "c") {
			t.Fatalf("buckets (a, bc) and (ab, c) share a key")
		}
		// Another prefix is another set of buckets.
		g := setup(t, rdb)
		f.wantSlot(g.reserve("c1", "e1", twoPerSecond, 0), true, start)
		// The first bucket is unchanged.
		f.wantSlot(f.reserve("c1", "e1", twoPerSecond, time.Hour), true, start.Add(spacing2))
	})
}

func TestMaxWaitExceededReservesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		key := f.l.BucketKey("c", "e")
		f.wantSlot(f.reserve("c", "e", twoPerSecond, 0), true, start)
		tat := f.get(key)

		// The next slot is 520ms away: refused with maxWait 519ms, again and
		// again, and the bucket is untouched.
		for range 3 {
			f.wantSlot(f.reserve("c", "e", twoPerSecond, 519*time.Millisecond), false, start.Add(spacing2))
			if got := f.get(key); got != tat {
				t.Fatalf("refused reservation changed the TAT from %s to %s", tat, got)
			}
		}
		// maxWait is inclusive: a slot exactly maxWait away is taken.
		f.wantSlot(f.reserve("c", "e", twoPerSecond, spacing2), true, start.Add(spacing2))
		f.wantSlot(f.reserve("c", "e", twoPerSecond, -time.Second), false, start.Add(2*spacing2))

		// Later the refused slot is still the next one.
		f.clk.Advance(300 * time.Millisecond)
		f.wantSlot(f.reserve("c", "e", twoPerSecond, time.Second), true, start.Add(2*spacing2))

		// A TAT in the past behaves like an absent bucket.
		now := f.clk.Advance(time.Hour)
		f.wantSlot(f.reserve("c", "e", twoPerSecond, 0), true, now)
		f.wantSlot(f.reserve("c", "e", twoPerSecond, 0), false, now.Add(spacing2))
	})
}

func TestPushMovesTheNextSlot(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		f.wantSlot(f.reserve("c", "e", twoPerSecond, 0), true, start)

		until := start.Add(5 * time.Second)
		if err := f.l.Push(f.ctx, "c", "e", twoPerSecond, until); err != nil {
			t.Fatalf("Push: %v", err)
		}
		f.wantSlot(f.reserve("c", "e", twoPerSecond, time.Second), false, until)
		f.wantSlot(f.reserve("c", "e", twoPerSecond, time.Minute), true, until)

		// An earlier Retry-After changes nothing: the next slot stays one
		// spacing after the last.
		if err := f.l.Push(f.ctx, "c", "e", twoPerSecond, start.Add(time.Second)); err != nil {
			t.Fatalf("Push: %v", err)
		}
		f.wantSlot(f.reserve("c", "e", twoPerSecond, time.Minute), true, until.Add(spacing2))

		// Push on a fresh bucket; until is rounded up to the millisecond, so
		// no slot starts before it.
		until = start.Add(2*time.Second + 300*time.Microsecond)
		if err := f.l.Push(f.ctx, "c", "e2", twoPerSecond, until); err != nil {
			t.Fatalf("Push: %v", err)
		}
		f.wantSlot(f.reserve("c", "e2", twoPerSecond, time.Minute), true, start.Add(2001*time.Millisecond))

		// A Retry-After already in the past leaves a fresh bucket free now.
		if err := f.l.Push(f.ctx, "c", "e3", twoPerSecond, start.Add(-time.Minute)); err != nil {
			t.Fatalf("Push: %v", err)
		}
		f.wantSlot(f.reserve("c", "e3", twoPerSecond, 0), true, start)
	})
}

func TestWait(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		var slept []time.Duration
		f.l.sleep = func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			f.clk.Advance(d)
			return nil
		}
		for i := range 3 {
			r, err := f.l.Wait(f.ctx, "c", "e", twoPerSecond, time.Second)
			if err != nil {
				t.Fatalf("Wait %d: %v", i, err)
			}
			if !r.At.Equal(start.Add(time.Duration(i) * spacing2)) {
				t.Fatalf("Wait %d: slot at +%v, want +%v", i, r.At.Sub(start), time.Duration(i)*spacing2)
			}
			if !f.clk.Now().Equal(r.At) {
				t.Fatalf("Wait %d returned at +%v, before or after its slot at +%v", i, f.clk.Now().Sub(start), r.At.Sub(start))
			}
		}
		if want := []time.Duration{0, spacing2, spacing2}; !slices.Equal(slept, want) {
			t.Fatalf("slept %v, want %v", slept, want)
		}

		// Too long: ErrTooLong with when the slot will be free, nothing
		// reserved, no sleep.
		r, err := f.l.Wait(f.ctx, "c", "e", twoPerSecond, 100*time.Millisecond)
		if !errors.Is(err, ErrTooLong) {
			t.Fatalf("Wait beyond maxWait: err = %v, want ErrTooLong", err)
		}
		f.wantSlot(r, false, start.Add(3*spacing2))
		f.wantSlot(f.reserve("c", "e", twoPerSecond, time.Second), true, start.Add(3*spacing2))
		if len(slept) != 3 {
			t.Fatalf("Wait slept although it reserved nothing: %v", slept)
		}

		// A context that ends during the sleep.
		ctx, cancel := context.WithCancel(f.ctx)
		f.l.sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			return clock.Sleep(ctx, time.Hour)
		}
		if _, err := f.l.Wait(ctx, "c", "e", twoPerSecond, time.Hour); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with a canceled context: err = %v, want context.Canceled", err)
		}
	})
}

// get returns the value of a Redis key, "" if it is absent.
func (f *fixture) get(key string) string {
	f.t.Helper()
	v, err := f.rdb.Get(f.ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		f.t.Fatalf("GET: %v", err)
	}
	return v
}

// keysWithPrefix lists every key starting with prefix, on every node.
func keysWithPrefix(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("unexpected client type %T", rdb)
	}
	if err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	slices.Sort(keys)
	return keys
}

func TestKeyHidesCredentialAndHasNoTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		const cred, ep = "sk_live_S3CR3T_4242", "POST https://api.example.com/v1/charges"
		secrets := []string{cred, ep, "S3CR3T", "sk_live", "charges", "example"}
		clean := func(what, s string) {
			t.Helper()
			for _, sec := range secrets {
				if strings.Contains(s, sec) {
					t.Fatalf("%s %q contains %q", what, s, sec)
				}
			}
		}
		f := setup(t, rdb)
		prefix := f.l.Options().Prefix

		sum := sha256.Sum256([]byte(cred + "\x00" + ep))
		key := f.l.BucketKey(cred, ep)
		if want := prefix + ":rl:{" + hex.EncodeToString(sum[:])[:32] + "}"; key != want {
			t.Fatalf("BucketKey = %q, want %q", key, want)
		}
		clean("key", key)

		f.wantSlot(f.reserve(cred, ep, twoPerSecond, 0), true, start)
		if got := keysWithPrefix(t, rdb, prefix); !slices.Equal(got, []string{key}) {
			t.Fatalf("keys after Reserve = %q, want only %q", got, key)
		}
		wantTAT := strconv.FormatInt(start.Add(spacing2).UnixMilli(), 10)
		if got := f.get(key); got != wantTAT {
			t.Fatalf("bucket holds %q, want the TAT %s", got, wantTAT)
		}
		pttl := func() int64 {
			t.Helper()
			v, err := rdb.Do(f.ctx, "PTTL", key).Int64()
			if err != nil {
				t.Fatalf("PTTL: %v", err)
			}
			return v
		}
		if got := pttl(); got != -1 {
			t.Fatalf("PTTL after Reserve = %d, want -1 (no TTL)", got)
		}
		if err := f.l.Push(f.ctx, cred, ep, twoPerSecond, start.Add(time.Minute)); err != nil {
			t.Fatalf("Push: %v", err)
		}
		if got := pttl(); got != -1 {
			t.Fatalf("PTTL after Push = %d, want -1 (no TTL)", got)
		}
		// A TTL set from outside is dropped by the next reservation.
		if err := rdb.PExpire(f.ctx, key, time.Hour).Err(); err != nil {
			t.Fatalf("PEXPIRE: %v", err)
		}
		f.reserve(cred, ep, twoPerSecond, time.Hour)
		if got := pttl(); got != -1 {
			t.Fatalf("PTTL after Reserve on a key with a TTL = %d, want -1", got)
		}

		// Errors never quote the credential or endpoint.
		var errs []error
		record := func(_ any, err error) {
			if err == nil {
				t.Fatalf("expected an error")
			}
			errs = append(errs, err)
		}
		record(f.l.Reserve(f.ctx, cred, ep, Rate{0, time.Second}, 0))
		record(f.l.Reserve(f.ctx, cred+"\x00", ep, twoPerSecond, 0))
		record(f.l.Reserve(f.ctx, cred, "", twoPerSecond, 0))
		record(f.l.Wait(f.ctx, cred, ep, twoPerSecond, 0))
		record(nil, f.l.Push(f.ctx, cred, ep, Rate{1, 0}, start))
		canceled, cancel := context.WithCancel(f.ctx)
		cancel()
		record(f.l.Reserve(canceled, cred, ep, twoPerSecond, 0))

		badKey := f.l.BucketKey(cred, ep+"/bad")
		for _, bad := range []string{"not a time", "inf", "nan", "1.7639e+12", "0x10", " 5", ""} {
			if err := rdb.Set(f.ctx, badKey, bad, 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			_, err := f.l.Reserve(f.ctx, cred, ep+"/bad", twoPerSecond, time.Hour)
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("Reserve on a bucket holding %q: err = %v, want ErrBadState", bad, err)
			}
			errs = append(errs, err)
			err = f.l.Push(f.ctx, cred, ep+"/bad", twoPerSecond, start.Add(time.Hour))
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("Push on a bucket holding %q: err = %v, want ErrBadState", bad, err)
			}
			errs = append(errs, err)
			if got := f.get(badKey); got != bad {
				t.Fatalf("corrupt bucket changed from %q to %q", bad, got)
			}
		}

		wrongKey := f.l.BucketKey(cred, ep+"/list")
		if err := rdb.LPush(f.ctx, wrongKey, "x").Err(); err != nil {
			t.Fatalf("LPUSH: %v", err)
		}
		record(f.l.Reserve(f.ctx, cred, ep+"/list", twoPerSecond, 0))
		record(nil, f.l.Push(f.ctx, cred, ep+"/list", twoPerSecond, start))

		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), "ratelimit: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			clean("error", err.Error())
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		f := setup(t, rdb)
		if _, err := f.l.Reserve(f.ctx, "c", "", twoPerSecond, 0); !errors.Is(err, ErrInvalidBucket) {
			t.Fatalf("Reserve with an empty endpoint: err = %v, want ErrInvalidBucket", err)
		}
		if _, err := f.l.Reserve(f.ctx, "a\x00b", "e", twoPerSecond, 0); !errors.Is(err, ErrInvalidBucket) {
			t.Fatalf("Reserve with a NUL in the credential: err = %v, want ErrInvalidBucket", err)
		}
		for _, r := range []Rate{{0, time.Second}, {-1, time.Second}, {1, 0}, {1, -time.Second}} {
			if _, err := f.l.Reserve(f.ctx, "c", "e", r, 0); !errors.Is(err, ErrInvalidRate) {
				t.Fatalf("Reserve at %+v: err = %v, want ErrInvalidRate", r, err)
			}
			if err := f.l.Push(f.ctx, "c", "e", r, start); !errors.Is(err, ErrInvalidRate) {
				t.Fatalf("Push at %+v: err = %v, want ErrInvalidRate", r, err)
			}
		}
		if err := f.l.Push(f.ctx, "c", "", twoPerSecond, start); !errors.Is(err, ErrInvalidBucket) {
			t.Fatalf("Push with an empty endpoint: err = %v, want ErrInvalidBucket", err)
		}
		// An empty credential is a bucket of its own (unauthenticated calls).
		f.wantSlot(f.reserve("", "e", twoPerSecond, 0), true, start)
		if got := keysWithPrefix(t, rdb, f.l.Options().Prefix); !slices.Equal(got, []string{f.l.BucketKey("", "e")}) {
			t.Fatalf("invalid calls wrote keys: %q", got)
		}

		if _, err := New(rdb, Options{Prefix: "Bad{prefix}"}); err == nil {
			t.Fatalf("New accepted a prefix with braces")
		}
		if _, err := New(nil, Options{}); err == nil {
			t.Fatalf("New accepted a nil client")
		}
		l, err := New(rdb, Options{})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		o := l.Options()
		if o.Prefix != "hl" || o.Margin != 20*time.Millisecond || o.Clock != (clock.Real{}) {
			t.Fatalf("defaults = %+v", o)
		}
		if !strings.HasPrefix(l.BucketKey("c", "e"), "hl:rl:{") {
			t.Fatalf("default key %q", l.BucketKey("c", "e"))
		}
	})
}

func TestStateIsADecimalInteger(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		// A round TAT (here 1763900000000) must not be written in exponent
		// notation, which some servers' number conversion produces.
		f := setup(t, rdb, func(o *Options) { o.Margin = -1 })
		f.clk.Set(start.Add(-time.Second))
		f.reserve("c", "e", Rate{1, time.Second}, 0)
		if got, want := f.get(f.l.BucketKey("c", "e")), strconv.FormatInt(start.UnixMilli(), 10); got != want {
			t.Fatalf("bucket holds %q, want %q", got, want)
		}
		f.wantSlot(f.reserve("c", "e", Rate{1, time.Second}, time.Hour), true, start)
	})
}
