package queue

import "github.com/redis/go-redis/v9"

// Every script below touches one hash slot (all its keys share the shard's
// hash tag), names every key it touches in KEYS, takes "now" (Unix ms) from
// ARGV and never calls TIME, and uses only core commands and string functions,
// so it runs unchanged on Redis 7, Redis Cluster, ElastiCache Serverless and
// the embedded development server.
//
// A lease is a field of the shard's lease hash: key -> "token|deadline|inv",
// where inv is the invocation id bound by activate ("" until then). A lease
// is held by (token, inv) when the token matches, the deadline is after now,
// and the bound invocation is empty or inv. While a key is leased, its score
// in the ready index is the lease deadline, so a lease that runs out makes the
// key claimable again without anything else running.
//
// Numbers given to redis.call as arguments are passed as strings made by Lua
// (tostring, '..'), never as Lua numbers, whose conversion differs between
// server versions; ZADD scores are the exception (any float syntax parses).
//
// Result codes shared by all scripts (mapped to errors by codeErr):
//
//	-1 lease lost   -2 head is another item   -3 lease bound to another
//	invocation      -4 key is leased (operator action refused)
//	-5 lane changed since it was read (retried by the caller)

// leaseLua is prepended to the scripts that check leases.
const leaseLua = `
local function lease_of(h, k)
  local l = redis.call('HGET', h, k)
  if not l then return nil end
  local t, d, r = string.match(l, '^(%d+)|(%d+)|(.*)$')
  return t, tonumber(d), r
end
local function held(h, k, tok, inv, now)
  local t, d, r = lease_of(h, k)
  if t == nil or t ~= tok or d <= now then return false end
  return r == '' or r == inv
end
local function item_id(e)
  return string.match(e, '^hl%d+ ([^\n]*)\n')
end
-- bury moves the head envelope (already popped) to the dead letters and, when
-- the queue is left empty, takes the key out of the ready index.
local function bury(q, m, dlq, idx, rd, key, env, now, attempts, lane, reason)
  redis.call('RPUSH', dlq, 'dead1 ' .. now .. ' ' .. attempts .. ' ' .. lane .. '\n' .. reason .. '\n' .. env)
  redis.call('ZADD', idx, now, key)
  redis.call('HDEL', m, 'attempts', 'err')
  if redis.call('LLEN', q) == 0 then
    redis.call('ZREM', rd, key)
    redis.call('HDEL', m, 'lane')
  end
end
`

// enqueueCmd appends items to their keys' queues, skipping items whose dedup
// marker exists, and indexes keys that were idle.
//
// KEYS[1] -> <p>:{NN}:lease
// then for item i (j = 1 + 4*(i-1)):
// KEYS[j+1] -> q:<key>   KEYS[j+2] -> m:<key>   KEYS[j+3] -> d:<key>:<id>
// KEYS[j+4] -> ready:<lane>
// ARGV[1] -> now ms   ARGV[2] -> dedup window ms (0 = no dedup)
// then for item i (a = 2 + 3*(i-1)):
// ARGV[a+1] -> key    ARGV[a+2] -> lane    ARGV[a+3] -> envelope
//
// Returns, per item, new (1 stored, 0 duplicate) and ready (1 if the key
// became claimable now), flattened.
//
// A dedup marker holds the end of its window in ms, so the window follows the
// caller's clock; its PX expiry only cleans it up.
//
// A key that is leased with an empty queue is indexed at its lease deadline,
// so the running drain keeps it. A key whose recorded lane differs from the
// item's stays in its recorded lane until its queue empties.
var enqueueCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local out = {}
local n = (#KEYS - 1) / 4
for i = 1, n do
  local j = 1 + 4 * (i - 1)
  local a = 2 + 3 * (i - 1)
  local q, m, d, rd = KEYS[j+1], KEYS[j+2], KEYS[j+3], KEYS[j+4]
  local key, lane = ARGV[a+1], ARGV[a+2]
  local fresh = true
  if window > 0 then
    local seen = redis.call('GET', d)
    if seen and tonumber(seen) > now then
      fresh = false
    else
      redis.call('SET', d, tostring(now + window), 'PX', ARGV[2])
    end
  end
  local ready = 0
  if fresh then
    if redis.call('RPUSH', q, ARGV[a+3]) == 1 then
      redis.call('HSET', m, 'lane', lane)
    end
    if redis.call('HGET', m, 'paused') ~= '1' and redis.call('HGET', m, 'lane') == lane
       and not redis.call('ZSCORE', rd, key) then
      local score = now
      local t, dl = lease_of(KEYS[1], key)
      if t and dl > now then
        score = dl
      else
        ready = 1
        if t then redis.call('HDEL', KEYS[1], key) end -- a holder that died
      end
      redis.call('ZADD', rd, score, key)
    end
  end
  out[#out+1] = fresh and 1 or 0
  out[#out+1] = ready
end
return out
`)

// claimCmd leases the named keys of one shard and lane that are ready at now
// and not held by a live lease.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> leased:<lane>   KEYS[3] -> lease
// KEYS[4] -> seq
// ARGV[1] -> now ms   ARGV[2] -> lease ttl ms   ARGV[3..] -> candidate keys
//
// Returns {key, token, key, token, ...} for the keys it leased. It also
// prunes the lane's expired leases from leased:<lane>.
var claimCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local dl = now + tonumber(ARGV[2])
local out = {}
-- Leases that ran out are no longer live: drop them from the count.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for i = 3, #ARGV do
  local k = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], k)
  if s and tonumber(s) <= now then
    local t, ldl = lease_of(KEYS[3], k)
    if t and ldl > now then
      redis.call('ZADD', KEYS[1], ldl, k)
    else
      local tok = redis.call('INCR', KEYS[4])
      redis.call('HSET', KEYS[3], k, tok .. '|' .. dl .. '|')
      redis.call('ZADD', KEYS[1], dl, k)
      redis.call('ZADD', KEYS[2], dl, k)
      out[#out+1] = k
      out[#out+1] = tostring(tok)
    end
  end
end
return out
`)

// activateCmd binds a lease to one invocation and renews its deadline.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> leased:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> lease ttl ms
//
// Returns the new deadline, -1 if the lease is lost, -3 if another
// invocation holds it. Activating again with the same invocation succeeds.
var activateCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
local t, d, r = lease_of(KEYS[1], ARGV[1])
if t == nil or t ~= ARGV[2] or d <= now then return -1 end
if r ~= '' and r ~= ARGV[3] then return -3 end
local dl = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], t .. '|' .. dl .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', dl, ARGV[1])
redis.call('ZADD', KEYS[3], dl, ARGV[1])
return dl
`)

// extendCmd renews a held lease.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> leased:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> lease ttl ms
//
// Returns the new deadline, or -1 if the lease is lost.
var extendCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], now) then return -1 end
local dl = now + tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. dl .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', dl, ARGV[1])
redis.call('ZADD', KEYS[3], dl, ARGV[1])
return dl
`)

// fetchCmd peeks at the head of a leased key's queue. Items stay in the queue
// until acked.
//
// KEYS[1] -> lease   KEYS[2] -> q:<key>   KEYS[3] -> m:<key>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> batch size
//
// Returns {-1} if the lease is lost, else {head attempts, paused (0/1),
// queue length, envelope 1, envelope 2, ...}.
var fetchCmd = newScript(leaseLua + `
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])) then return {-1} end
local out = {
  tonumber(redis.call('HGET', KEYS[3], 'attempts') or '0'),
  redis.call('HGET', KEYS[3], 'paused') == '1' and 1 or 0,
  redis.call('LLEN', KEYS[2]),
}
local items = redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[5]) - 1)
for i = 1, #items do out[#out+1] = items[i] end
return out
`)

// ackCmd removes exactly the acknowledged items from the head of a leased
// key's queue. When the queue empties the key leaves the ready index (the
// lease stays until the drain yields).
//
// KEYS[1] -> lease   KEYS[2] -> q:<key>   KEYS[3] -> m:<key>
// KEYS[4] -> ready:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5..] -> item ids, head first
//
// Returns the queue length left, -1 if the lease is lost, -2 if the head
// items are not the given ids (nothing is removed then).
var ackCmd = newScript(leaseLua + `
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])) then return -1 end
local n = #ARGV - 4
local head = redis.call('LRANGE', KEYS[2], 0, n - 1)
if #head ~= n then return -2 end
for i = 1, n do
  if item_id(head[i]) ~= ARGV[4 + i] then return -2 end
end
redis.call('LTRIM', KEYS[2], n, -1)
redis.call('HDEL', KEYS[3], 'attempts', 'err')
local left = redis.call('LLEN', KEYS[2])
if left == 0 then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[3], 'lane')
end
return left
`)

// yieldCmd ends a lease. A key with work goes back to the ready index at
// max(now, not-before), the back of the ready order; an empty or paused key
// leaves the index.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> leased:<lane>
// KEYS[4] -> q:<key>   KEYS[5] -> m:<key>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> not-before ms (0 = now)   ARGV[6] -> lane
//
// Returns 1 if the key is ready again, 0 if it is empty, 2 if it is paused
// or indexed in another lane, -1 if the lease is lost.
var yieldCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], now) then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[4]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if redis.call('HGET', KEYS[5], 'paused') == '1' or redis.call('HGET', KEYS[5], 'lane') ~= ARGV[6] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 2
end
local at = math.max(now, tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], at, ARGV[1])
return 1
`)

// failCmd records a failed attempt of the head item of a leased key.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> leased:<lane>
// KEYS[4] -> q:<key>   KEYS[5] -> m:<key>   KEYS[6] -> dlq:<key>
// KEYS[7] -> dlqidx   KEYS[8] -> paused
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> item id   ARGV[6] -> reason (one line)
// ARGV[7] -> max attempts   ARGV[8] -> "dead-letter" or "park"
// ARGV[9] -> backoff base ms   ARGV[10] -> backoff cap ms
// ARGV[11] -> jitter in [0,1)   ARGV[12] -> retry-at ms (0 = backoff)
// ARGV[13] -> permanent (1 = exhaust now)   ARGV[14] -> lane
//
// Returns {outcome, attempts, ready-at ms}: outcome 1 = retry later (lease
// ended, key ready at ready-at), 2 = dead-lettered (lease kept, next item is
// the head), 3 = parked (key paused with the item at its head, lease ended);
// {-1} if the lease is lost, {-2} if the head is another item.
var failCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
local key = ARGV[1]
if not held(KEYS[1], key, ARGV[2], ARGV[3], now) then return {-1} end
local head = redis.call('LINDEX', KEYS[4], 0)
if not head or item_id(head) ~= ARGV[5] then return {-2} end
local attempts = redis.call('HINCRBY', KEYS[5], 'attempts', 1)
redis.call('HSET', KEYS[5], 'err', ARGV[6])
if ARGV[13] == '1' or attempts >= tonumber(ARGV[7]) then
  if ARGV[8] == 'park' then
    redis.call('HSET', KEYS[5], 'paused', '1')
    redis.call('ZADD', KEYS[8], now, key)
    redis.call('ZREM', KEYS[2], key)
    redis.call('HDEL', KEYS[1], key)
    redis.call('ZREM', KEYS[3], key)
    return {3, attempts, 0}
  end
  redis.call('LPOP', KEYS[4])
  bury(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[2], key, head, now, attempts, ARGV[14], ARGV[6])
  return {2, attempts, 0}
end
local at = tonumber(ARGV[12])
if at == 0 then
  local d = tonumber(ARGV[9]) * 2 ^ (attempts - 1)
  local cap = tonumber(ARGV[10])
  if d > cap then d = cap end
  at = now + math.floor(d / 2 + tonumber(ARGV[11]) * d / 2)
end
if at < now then at = now end
redis.call('HDEL', KEYS[1], key)
redis.call('ZREM', KEYS[3], key)
if redis.call('HGET', KEYS[5], 'lane') == ARGV[14] then
  redis.call('ZADD', KEYS[2], at, key)
else
  redis.call('ZREM', KEYS[2], key)
end
return {1, attempts, at}
`)

// redriveCmd moves the oldest dead-letter records of a key back to the head
// of its queue, in their original order, and makes the key ready.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> count (0 = all)
// ARGV[4] -> lane (the key's recorded lane, or the lane to record)
//
// Returns the number of items moved, -4 if the key is leased, -5 if its
// recorded lane is not ARGV[4].
var redriveCmd = newScript(leaseLua + `
local now = tonumber(ARGV[2])
local key = ARGV[1]
local t, d = lease_of(KEYS[1], key)
if t and d > now then return -4 end
local ml = redis.call('HGET', KEYS[4], 'lane')
if ml and ml ~= ARGV[4] then return -5 end
local total = redis.call('LLEN', KEYS[5])
local n = tonumber(ARGV[3])
if n == 0 or n > total then n = total end
if n == 0 then return 0 end
local recs = redis.call('LRANGE', KEYS[5], 0, n - 1)
for i = n, 1, -1 do
  local s = string.find(recs[i], '\n', 1, true)
  s = string.find(recs[i], '\n', s + 1, true)
  redis.call('LPUSH', KEYS[3], string.sub(recs[i], s + 1))
end
redis.call('LTRIM', KEYS[5], n, -1)
if n == total then redis.call('ZREM', KEYS[6], key) end
redis.call('HSET', KEYS[4], 'lane', ARGV[4])
redis.call('HDEL', KEYS[4], 'attempts', 'err')
if redis.call('HGET', KEYS[4], 'paused') ~= '1' then
  local s = redis.call('ZSCORE', KEYS[2], key)
  if not s or tonumber(s) > now then redis.call('ZADD', KEYS[2], now, key) end
end
return n
`)

// skipCmd moves the head item of an unleased key to its dead-letter list
// with the reason "skipped by operator", releasing the items behind it.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane   ARGV[4] -> reason
//
// Returns 1 if an item was skipped, 0 if the queue is empty, -4 if the key
// is leased, -5 if its recorded lane is not ARGV[3].
var skipCmd = newScript(leaseLua + `
local now = tonumber(ARGV[2])
local key = ARGV[1]
local t, d = lease_of(KEYS[1], key)
if t and d > now then return -4 end
local ml = redis.call('HGET', KEYS[4], 'lane')
if ml ~= ARGV[3] then
  if ml then return -5 end
  return 0
end
local head = redis.call('LPOP', KEYS[3])
if not head then return 0 end
local attempts = tonumber(redis.call('HGET', KEYS[4], 'attempts') or '0')
bury(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[2], key, head, now, attempts, ARGV[3], ARGV[4])
return 1
`)

// pauseCmd pauses a key: it leaves the ready index and is not claimed until
// resumed. A drain holding its lease sees the flag at its next fetch.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> m:<key>   KEYS[3] -> paused
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane ("" if the queue is empty)
//
// Returns 1, or -5 if the key's recorded lane is not ARGV[3].
var pauseCmd = newScript(`
if (redis.call('HGET', KEYS[2], 'lane') or '') ~= ARGV[3] then return -5 end
redis.call('HSET', KEYS[2], 'paused', '1')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`)

// resumeCmd clears a key's pause, resets its head attempts and indexes it
// again when it has work (at its lease deadline if a lease is still live).
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> paused
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane ("" if the queue is empty)
//
// Returns 1 if the key is ready, 0 if it has no work, -5 if its recorded
// lane is not ARGV[3].
var resumeCmd = newScript(leaseLua + `
local now = tonumber(ARGV[2])
if (redis.call('HGET', KEYS[4], 'lane') or '') ~= ARGV[3] then return -5 end
redis.call('HDEL', KEYS[4], 'paused', 'attempts', 'err')
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('LLEN', KEYS[3]) == 0 then return 0 end
local score = now
local t, d = lease_of(KEYS[1], ARGV[1])
if t and d > now then score = d end
redis.call('ZADD', KEYS[2], score, ARGV[1])
return 1
`)

// singletonCmd takes or renews a singleton lease (one scheduler at a time).
//
// KEYS[1] -> <p>:singleton:<name>
// ARGV[1] -> owner   ARGV[2] -> now ms   ARGV[3] -> ttl ms
//
// Returns 1 if owner holds the lease until now+ttl, 0 if another owner's
// lease is live. The PX expiry only cleans up; liveness follows ARGV now.
var singletonCmd = newScript(`
local v = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[2])
if v then
  local o, dl = string.match(v, '^(.*)|(%d+)$')
  if o ~= ARGV[1] and dl and tonumber(dl) > now then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. (now + tonumber(ARGV[3])), 'PX', ARGV[3])
return 1
`)

// unsingletonCmd gives up a singleton lease if owner holds it.
//
// KEYS[1] -> <p>:singleton:<name>
// ARGV[1] -> owner
//
// Returns 1 if released, 0 if owner did not hold it.
var unsingletonCmd = newScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)|%d+$') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// scripts lists every script, for loading before pipelines, and
// scriptSources their text, for tests.
var (
	scripts       []*redis.Script
	scriptSources = map[*redis.Script]string{}
)

func newScript(src string) *redis.Script {
	s := redis.NewScript(src)
	scripts = append(scripts, s)
	scriptSources[s] = src
	return s
}

func scriptSource(s *redis.Script) string { return scriptSources[s] }
