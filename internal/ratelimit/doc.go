// Package ratelimit is hookline's distributed rate limiter for outbound
// calls (guarantee G6): every drain that calls the same provider endpoint
// with the same customer credential shares one bucket, one Redis key, so the
// provider never sees more than the limit from all of them together.
//
// # GCRA
//
// A bucket runs the generic cell rate algorithm with a burst of one. Its only
// state is the theoretical arrival time (TAT): the time at which its next
// slot may start. Reserve takes the slot at max(TAT, now) and moves the TAT
// one spacing further, where the spacing is the rate's interval (Per/N) plus
// Options.Margin, both rounded up to the millisecond. Consecutive slots thus
// start at least Interval+Margin apart, and no half-open window of length Per
// ever holds more than N slot starts, however many processes reserve at the
// same time. There is deliberately no burst allowance: providers count
// requests in windows whose alignment nobody knows, and only even spacing is
// safe against every alignment.
//
// # Margin
//
// Each caller computes "now" with its own clock and sleeps until its slot
// starts by that clock; its request then crosses the network. Two callers
// whose clocks disagree, or whose requests travel at different speeds, could
// land two requests closer together than the spacing. The margin (default
// 20ms) widens every interval to absorb that skew and jitter. It costs a
// little throughput: at 2/s, slots start every 520ms instead of 500ms.
//
// # Reserve, then sleep or yield
//
// A Lambda is billed while it sleeps, so a drain asks for a slot only if it
// starts soon:
//
//	r, err := lim.Reserve(ctx, cred, endpoint, rate, 2*time.Second)
//	if err != nil {
//		return err
//	}
//	if !r.OK {
//		// Nothing reserved: give the key back to the queue with
//		// ready-at = r.At, so no Lambda sleeps until then.
//		return yieldUntil(r.At)
//	}
//	time.Sleep(r.Wait) // the slot is ours: call at its start, never before
//	resp, err := call()
//	if err == nil && (resp.StatusCode == 429 || resp.StatusCode == 503) {
//		// Slow the bucket down for every caller.
//		err = lim.Push(ctx, cred, endpoint, rate, retryAfter(resp))
//	}
//
// A reservation is a promise to the other callers: a caller that reserved a
// slot and then does not call only wastes the slot, but one that calls before
// its slot starts breaks the limit. Wait is Reserve plus the sleep for
// callers that can afford it. Push records an upstream Retry-After: no slot
// of the bucket starts before it.
//
// # Redis
//
// A bucket is one STRING holding its TAT in Unix ms, at
// "<prefix>:rl:{<hash>}", where the hash is the first 32 hex digits of
// SHA-256(credential + "\x00" + endpoint): the raw credential never appears
// in a key name, and the hash is the Redis Cluster hash tag. Each operation is
// one Lua script on that one key, with "now" taken from Options.Clock and
// passed in ARGV (ElastiCache Serverless refuses TIME in scripts), so the
// limiter runs on Redis 7 standalone, Redis Cluster and ElastiCache
// Serverless alike.
//
// The key has no TTL. ElastiCache Serverless evicts keys that have a TTL
// first when it runs short of memory, and a bucket evicted while its TAT is
// in the future would let a burst through above the limit. A TAT in the past
// behaves exactly like an absent key, so a bucket nobody uses any more is
// harmless; it costs one short string per (credential, endpoint) pair ever
// used, and an operator may delete idle ones.
package ratelimit
