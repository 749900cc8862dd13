package ratelimit

import "github.com/redis/go-redis/v9"

// Both scripts below touch a single key, named in KEYS, take every time from
// ARGV (the callers' clock, in Unix ms) and never call TIME, and use only
// GET and SET, so they run unchanged on Redis 7, Redis Cluster and
// ElastiCache Serverless.
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
