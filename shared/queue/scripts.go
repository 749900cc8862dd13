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
//	-6 the shard's dead-letter index changed while it was being counted

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
  return string.match(e, '^@([^ \n]*) ') or string.match(e, '^hl%d+ ([^\n]*)\n')
end
-- item_at returns the received-at (ms, as a string) of an envelope.
local function item_at(e)
  return string.match(e, '^@[^ \n]* (%d+)') or string.match(e, '^hl%d+ [^\n]*\n(%d+)\n')
end
-- emptied runs when a key's queue has just become empty: the key leaves
-- the ready index and the oldest-item index and forgets its lane, and its
-- dedup set, which needs no TTL while items are queued, lives one more
-- window (its newest entry ends no later than that).
local function emptied(rd, m, d, od, key, window)
  redis.call('ZREM', rd, key)
  redis.call('ZREM', od, key)
  redis.call('HDEL', m, 'lane')
  if window ~= '0' then redis.call('PEXPIRE', d, window) end
end
-- dead_parts splits a dead-letter record ("dead1 <dead-at> <attempts>
-- <lane>\n<reason>\n<envelope>") into attempts, lane and envelope.
local function dead_parts(rec)
  local att, lane = string.match(rec, '^dead1 %d+ (%d+) ([^\n]*)\n')
  local s = string.find(rec, '\n', 1, true)
  if s then s = string.find(rec, '\n', s + 1, true) end
  if not att or not s then return nil end
  return tonumber(att), lane, string.sub(rec, s + 1)
end
-- count_dead adds n to the shard's count of dead letters of lane, never
-- letting it go below zero.
local function count_dead(cnt, lane, n)
  if not lane then return end
  if redis.call('HINCRBY', cnt, lane, tostring(n)) < 0 then redis.call('HSET', cnt, lane, '0') end
end
-- bury moves the head envelope (already popped) to the dead letters; the
-- new head's received-at goes to the oldest-item index, or, when the queue
-- is left empty, the key leaves the indexes. Then it
-- enforces the dead-letter cap (the newest cap records of the key; '0' = no
-- cap) and retention (records dead longer than keep ms go; '0' = forever),
-- dropping at most 256 old records per call.
local function bury(q, m, dlq, idx, rd, d, cnt, od, key, env, now, attempts, lane, reason, window, cap, keep)
  redis.call('RPUSH', dlq, 'dead1 ' .. now .. ' ' .. attempts .. ' ' .. lane .. '\n' .. reason .. '\n' .. env)
  redis.call('ZADD', idx, now, key)
  count_dead(cnt, lane, 1)
  redis.call('HDEL', m, 'attempts', 'err')
  local h = redis.call('LINDEX', q, 0)
  if h then
    redis.call('ZADD', od, item_at(h) or now, key)
  else
    emptied(rd, m, d, od, key, window)
  end
  local drop = 0
  if cap ~= '0' then drop = redis.call('LLEN', dlq) - tonumber(cap) end
  local oldest = nil
  if keep ~= '0' then oldest = tonumber(now) - tonumber(keep) end
  for _ = 1, 256 do
    local old = drop > 0
    if not old and oldest then
      local at = string.match(redis.call('LINDEX', dlq, 0) or '', '^dead1 (%d+) ')
      old = at ~= nil and tonumber(at) < oldest
    end
    if not old then break end
    local _, l = dead_parts(redis.call('LPOP', dlq))
    count_dead(cnt, l, -1)
    drop = drop - 1
  end
end
-- audit records an operator change in the key's audit list, newest first,
-- keeping the last keep records. head is "<at ms>\t<action>\t<by>".
local function audit(a, head, detail, note, keep)
  redis.call('LPUSH', a, head .. '\t' .. detail .. '\t' .. note)
  redis.call('LTRIM', a, '0', tostring(tonumber(keep) - 1))
end
`

// enqueueCmd appends items to their keys' queues, skipping items whose id
// is in the key's dedup set inside its window, and indexes keys that were
// idle.
//
// KEYS[1] -> <p>:{NN}:lease
// then for item i (j = 1 + 5*(i-1)):
// KEYS[j+1] -> q:<key>   KEYS[j+2] -> m:<key>   KEYS[j+3] -> dd:<key>
// KEYS[j+4] -> ready:<lane>   KEYS[j+5] -> oldest:<lane>
// ARGV[1] -> now ms   ARGV[2] -> dedup window ms (0 = no dedup)
// ARGV[3] -> prune (1 = drop the expired ids of each dedup set touched)
// then for item i (a = 3 + 3*(i-1)):
// ARGV[a+1] -> key    ARGV[a+2] -> lane    ARGV[a+3] -> envelope
//
// Returns, per item, new (1 stored, 0 duplicate) and ready (1 if the key
// became claimable now), flattened.
//
// The dedup set of a key is a ZSET id -> end of its window (ms), so the
// window follows the caller's clock. Expired ids are dropped when the caller
// asks (one call in a few), and the whole set expires one window after the
// key's queue empties.
//
// A key with queued items is always indexed (ready, leased, delayed) or
// paused, and is in its lane's oldest-item index, so only an item that
// finds its queue empty does the indexing. A key that is leased with an
// empty queue is indexed at its lease deadline, so the running drain keeps
// it. A key whose recorded lane differs from the item's stays in its
// recorded lane until its queue empties.
var enqueueCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local out = {}
local n = (#KEYS - 1) / 5
for i = 1, n do
  local j = 1 + 5 * (i - 1)
  local a = 3 + 3 * (i - 1)
  local q, m, d, rd, od = KEYS[j+1], KEYS[j+2], KEYS[j+3], KEYS[j+4], KEYS[j+5]
  local key, lane, env = ARGV[a+1], ARGV[a+2], ARGV[a+3]
  local fresh = true
  if window > 0 then
    local id = item_id(env)
    local till = tostring(now + window)
    if redis.call('ZADD', d, 'NX', till, id) == 0 then
      if tonumber(redis.call('ZSCORE', d, id)) > now then
        fresh = false
      else
        redis.call('ZADD', d, 'XX', till, id)
      end
    end
    if ARGV[3] == '1' then redis.call('ZREMRANGEBYSCORE', d, '-inf', ARGV[1]) end
  end
  local ready = 0
  if fresh and redis.call('RPUSH', q, env) == 1 then
    if window > 0 then redis.call('PERSIST', d) end
    redis.call('HSET', m, 'lane', lane)
    redis.call('ZADD', od, item_at(env) or ARGV[1], key)
    if redis.call('HGET', m, 'paused') ~= '1' then
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
// KEYS[1] -> ready:<lane>   KEYS[2] -> lease   KEYS[3] -> seq
// KEYS[4] -> lanepaused
// ARGV[1] -> now ms   ARGV[2] -> lease ttl ms   ARGV[3] -> lane
// ARGV[4..] -> candidate keys
//
// Returns {key, token, key, token, ...} for the keys it leased: none while
// an operator has paused the lane.
var claimCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local dl = now + tonumber(ARGV[2])
local out = {}
if redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then return out end
for i = 4, #ARGV do
  local k = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], k)
  if s and tonumber(s) <= now then
    local t, ldl = lease_of(KEYS[2], k)
    if t and ldl > now then
      redis.call('ZADD', KEYS[1], ldl, k)
    else
      local tok = redis.call('INCR', KEYS[3])
      redis.call('HSET', KEYS[2], k, tok .. '|' .. dl .. '|')
      redis.call('ZADD', KEYS[1], dl, k)
      out[#out+1] = k
      out[#out+1] = tostring(tok)
    end
  end
end
return out
`)

// claimNextCmd leases the oldest key of one shard and lane that is ready at
// now, bound at once to the calling invocation: a work-conserving drain
// takes its next key with it. The key is chosen inside the script, so two
// drains asking at once get different keys.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> lease   KEYS[3] -> seq
// KEYS[4] -> lanepaused
// ARGV[1] -> now ms   ARGV[2] -> lease ttl ms   ARGV[3] -> invocation id
// ARGV[4] -> lane
//
// Returns {key, token, next} where key is "" when nothing is ready, and next
// is the ready-at of the shard's next ready key after the one taken (-1 when
// it has none ready at now); {"", "0", "-1", "paused"} while an operator has
// paused the lane.
var claimNextCmd = newScript(leaseLua + `
local now = tonumber(ARGV[1])
local dl = now + tonumber(ARGV[2])
local key, tok, nxt = '', '0', '-1'
if redis.call('HEXISTS', KEYS[4], ARGV[4]) == 1 then return {key, tok, nxt, 'paused'} end
for _ = 1, 8 do
  local z = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 2, 'WITHSCORES')
  if #z == 0 then break end
  local k = z[1]
  if #z == 4 then nxt = z[4] else nxt = '-1' end
  local t, ldl = lease_of(KEYS[2], k)
  if t and ldl > now then
    redis.call('ZADD', KEYS[1], ldl, k) -- a live lease: its deadline is its score
  else
    tok = tostring(redis.call('INCR', KEYS[3]))
    redis.call('HSET', KEYS[2], k, tok .. '|' .. dl .. '|' .. ARGV[3])
    redis.call('ZADD', KEYS[1], dl, k)
    key = k
    break
  end
end
return {key, tok, nxt}
`)

// stepCmd is a drain's one round trip per item: it optionally activates the
// lease (binds it to the invocation), acks the head items, and reads the
// next items, in one script.
//
// KEYS[1] -> lease   KEYS[2] -> q:<key>   KEYS[3] -> m:<key>
// KEYS[4] -> ready:<lane>   KEYS[5] -> dd:<key>   KEYS[6] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> activate ttl ms (0 = no activation)
// ARGV[6] -> 1 to reset the head attempts with the ack
// ARGV[7] -> items to read (0 = none)   ARGV[8] -> 1 to return the length
// ARGV[9] -> 1 to end the lease when the queue is found empty
// ARGV[10] -> dedup window ms   ARGV[11..] -> ids to ack, head first
//
// Returns {-1} if the lease is lost, {-3} if activation finds it bound to
// another invocation, {-2} if the head items are not the acked ids (nothing
// changed); else {deadline, depth or -1, head attempts, paused, envelope...}
// where deadline is the lease's (0 when it ended because the queue is
// empty). Attempts and paused are read only along with items.
//
// A step that reads items records the head's received-at in the
// oldest-item index; a step that only acks leaves it as it was, so between
// reads the index holds an older time than the head's (see
// docs/ENGINE.md, "The oldest-item index").
var stepCmd = newScript(leaseLua + `
local key = ARGV[1]
local now = tonumber(ARGV[4])
local t, dl, r = lease_of(KEYS[1], key)
if t == nil or t ~= ARGV[2] or dl <= now then return {-1} end
if r ~= ARGV[3] then
  if r ~= '' then return {ARGV[5] == '0' and -1 or -3} end
  if ARGV[5] ~= '0' then
    dl = now + tonumber(ARGV[5])
    redis.call('HSET', KEYS[1], key, t .. '|' .. dl .. '|' .. ARGV[3])
    redis.call('ZADD', KEYS[4], 'XX', dl, key)
  end
end
if #ARGV > 10 then
  local popped = {}
  for i = 11, #ARGV do
    local head = redis.call('LPOP', KEYS[2])
    if head then popped[#popped+1] = head end
    if not head or item_id(head) ~= ARGV[i] then
      for k = #popped, 1, -1 do redis.call('LPUSH', KEYS[2], popped[k]) end
      return {-2}
    end
  end
  if ARGV[6] == '1' then redis.call('HDEL', KEYS[3], 'attempts', 'err') end
end
local depth = -1
local want = tonumber(ARGV[7])
local items = {}
if want > 0 then items = redis.call('LRANGE', KEYS[2], 0, want - 1) end
if want > 0 and #items == 0 then
  depth = 0
elseif ARGV[8] == '1' then
  depth = redis.call('LLEN', KEYS[2])
end
if depth == 0 then
  emptied(KEYS[4], KEYS[3], KEYS[5], KEYS[6], key, ARGV[10])
  if ARGV[9] == '1' then
    redis.call('HDEL', KEYS[1], key)
    dl = 0
  end
end
local out = {dl, depth, 0, 0}
if #items > 0 then
  redis.call('ZADD', KEYS[6], item_at(items[1]) or ARGV[4], key)
  local mm = redis.call('HMGET', KEYS[3], 'attempts', 'paused')
  out[3] = tonumber(mm[1] or '0')
  out[4] = mm[2] == '1' and 1 or 0
  for i = 1, #items do out[#out+1] = items[i] end
end
return out
`)

// extendCmd renews a held lease.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>
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
return dl
`)

// yieldCmd ends a lease. A key with work goes back to the ready index at
// max(now, not-before), the back of the ready order; an empty or paused key
// leaves the index.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> not-before ms (0 = now)   ARGV[6] -> lane
//
// Returns 1 if the key is ready again, 0 if it is empty, 2 if it is paused
// or indexed in another lane, -1 if the lease is lost.
var yieldCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
if not held(KEYS[1], ARGV[1], ARGV[2], ARGV[3], now) then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  return 0
end
if redis.call('HGET', KEYS[4], 'paused') == '1' or redis.call('HGET', KEYS[4], 'lane') ~= ARGV[6] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 2
end
local at = math.max(now, tonumber(ARGV[5]))
redis.call('ZADD', KEYS[2], at, ARGV[1])
return 1
`)

// failCmd records a failed attempt of the head item of a leased key.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// KEYS[7] -> paused   KEYS[8] -> dd:<key>   KEYS[9] -> dlqn   KEYS[10] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> token   ARGV[3] -> invocation id
// ARGV[4] -> now ms   ARGV[5] -> item id   ARGV[6] -> reason (one line)
// ARGV[7] -> max attempts   ARGV[8] -> "dead-letter" or "park"
// ARGV[9] -> backoff base ms   ARGV[10] -> backoff cap ms
// ARGV[11] -> jitter in [0,1)   ARGV[12] -> retry-at ms (0 = backoff)
// ARGV[13] -> permanent (1 = exhaust now)   ARGV[14] -> lane
// ARGV[15] -> dedup window ms   ARGV[16] -> dead letters kept per key (0 = all)
// ARGV[17] -> dead-letter retention ms (0 = forever)
//
// Returns {outcome, attempts, ready-at ms}: outcome 1 = retry later (lease
// ended, key ready at ready-at), 2 = dead-lettered (lease kept, next item is
// the head), 3 = parked (key paused with the item at its head, lease ended;
// meta paused=1 and parked=1); {-1} if the lease is lost, {-2} if the head
// is another item.
var failCmd = newScript(leaseLua + `
local now = tonumber(ARGV[4])
local key = ARGV[1]
if not held(KEYS[1], key, ARGV[2], ARGV[3], now) then return {-1} end
local head = redis.call('LINDEX', KEYS[3], 0)
if not head or item_id(head) ~= ARGV[5] then return {-2} end
local attempts = redis.call('HINCRBY', KEYS[4], 'attempts', 1)
redis.call('HSET', KEYS[4], 'err', ARGV[6])
if ARGV[13] == '1' or attempts >= tonumber(ARGV[7]) then
  if ARGV[8] == 'park' then
    redis.call('HSET', KEYS[4], 'paused', '1', 'parked', '1')
    redis.call('ZADD', KEYS[7], now, key)
    redis.call('ZREM', KEYS[2], key)
    redis.call('HDEL', KEYS[1], key)
    return {3, attempts, 0}
  end
  redis.call('LPOP', KEYS[3])
  bury(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[2], KEYS[8], KEYS[9], KEYS[10], key, head, now, attempts, ARGV[14], ARGV[6], ARGV[15], ARGV[16], ARGV[17])
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
if redis.call('HGET', KEYS[4], 'lane') == ARGV[14] then
  redis.call('ZADD', KEYS[2], at, key)
else
  redis.call('ZREM', KEYS[2], key)
end
return {1, attempts, at}
`)

// opLua is prepended to the operator scripts that move dead letters. They
// read a key's dead letters 256 at a time and keep only small tables of the
// records they select, so a long dead-letter list of large items never sits
// in the script's memory at once.
const opLua = `
-- item_ms is item_at as a number (0 if the envelope has none), for
-- ordering by arrival. opLua follows leaseLua, which defines item_at.
local function item_ms(e)
  return tonumber(item_at(e) or '0')
end
-- dead_fields reads a dead-letter record's attempts, lane, item id and the
-- item's received-at, without copying its envelope.
local function dead_fields(rec)
  local att, lane = string.match(rec, '^dead1 %d+ (%d+) ([^\n]*)\n')
  local s = string.find(rec, '\n', 1, true)
  if s then s = string.find(rec, '\n', s + 1, true) end
  if not att or not s then return nil end
  local id, at = string.match(rec, '^@([^ \n]*) (%d+)', s + 1)
  if not id then id, at = string.match(rec, '^hl%d+ ([^\n]*)\n(%d+)\n', s + 1) end
  if not id then return nil end
  return tonumber(att), lane, id, tonumber(at)
end
-- with_prior returns env with add more prior attempts in its first line
-- (" a<n>", the attempts it used before it was dead-lettered), rewriting an
-- envelope of the first format in the current one.
local function with_prior(env, add)
  local nl = string.find(env, '\n', 1, true)
  if not nl then return env end
  local first, rest = string.sub(env, 1, nl - 1), string.sub(env, nl)
  if string.sub(first, 1, 1) ~= '@' then
    local id, at, hn, p = string.match(env, '^hl%d+ ([^\n]*)\n(%d+)\n[^\n]*\n[^\n]*\n(%d+)\n()')
    if not id then return env end
    first = '@' .. id .. ' ' .. at
    if hn ~= '0' then first = first .. ' ' .. hn end
    rest = '\n' .. string.sub(env, p)
  end
  local base, prior = string.match(first, '^(.-) a(%d+)$')
  if base then
    first = base
    add = add + tonumber(prior)
  end
  if add > 0 then first = first .. ' a' .. tostring(add) end
  return first .. rest
end
-- select_dead returns the key's dead letters selected by ARGV[from..]
-- (item ids; all records when there are none) as {i = place in the list,
-- at = received-at, att = attempts, lane, id}, in arrival order:
-- received-at, then place in the list. The list is in the order items
-- died, which is not arrival order once a redriven item has died again.
-- count > 0 keeps the first count of them.
local function select_dead(dlq, from, count)
  local want = nil
  if #ARGV >= from then
    want = {}
    for i = from, #ARGV do want[ARGV[i]] = true end
  end
  local pick = {}
  local n = redis.call('LLEN', dlq)
  for s = 0, n - 1, 256 do
    local recs = redis.call('LRANGE', dlq, tostring(s), tostring(s + 255))
    for j = 1, #recs do
      local att, lane, id, at = dead_fields(recs[j])
      if id and (want == nil or want[id]) then
        pick[#pick+1] = {i = s + j, at = at, att = att, lane = lane, id = id}
      end
    end
  end
  table.sort(pick, function(a, b)
    if a.at ~= b.at then return a.at < b.at end
    return a.i < b.i
  end)
  if count > 0 then
    while #pick > count do table.remove(pick) end
  end
  return pick
end
-- take_dead removes the records of pick from the dead letters (the others
-- keep their order: the list is rotated once, one record at a time), counts
-- them out, and takes the key out of the dead-letter index when none is
-- left. With envs set it returns the picked envelopes, by pick's order.
local function take_dead(dlq, idx, cnt, key, pick, envs)
  local at = {}
  for k = 1, #pick do
    at[pick[k].i] = k
    count_dead(cnt, pick[k].lane, -1)
  end
  local out = {}
  local n = redis.call('LLEN', dlq)
  if #pick == n and not envs then
    redis.call('DEL', dlq)
  else
    for i = 1, n do
      local rec = redis.call('LPOP', dlq)
      local k = at[i]
      if k == nil then
        redis.call('RPUSH', dlq, rec)
      elseif envs then
        local _, _, env = dead_parts(rec)
        out[k] = env
      end
    end
  end
  if redis.call('EXISTS', dlq) == 0 then redis.call('ZREM', idx, key) end
  return out
end
-- id_list renders up to 20 ids for an audit record.
local function id_list(pick)
  local ids = {}
  for i = 1, math.min(#pick, 20) do ids[#ids+1] = pick[i].id end
  local s = #pick .. ' item(s): ' .. table.concat(ids, ' ')
  if #pick > 20 then s = s .. ' ...' end
  return s
end
`

// redriveCmd moves a key's dead letters back to its queue in the order they
// arrived (received-at, then their place in the dead-letter list), merged
// into the head of the queue by arrival: ahead of every queued item that
// arrived later (normally all of them), behind any that arrived earlier (an
// earlier batch of the same redrive), and always behind a head item that is
// being retried (attempts > 0): that item stays first, with its attempts.
// Each moved item keeps its attempt history: the attempts of its
// dead-letter record are added to the prior attempts in its envelope.
//
// One call moves at most a batch (ARGV[9]) of the selected items, the
// earliest arrivals, never splitting items received in the same ms; the
// caller calls again while some are left. Until the last batch the key is
// held out of reach for hold ms (its ready time is at least now+hold), so
// no drain takes it half redriven; after the last, it is ready at once
// unless it is paused or waits for a retry.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// KEYS[7] -> dd:<key>   KEYS[8] -> dlqn   KEYS[9] -> audit:<key>
// KEYS[10] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> count (0 = all selected)
// ARGV[4] -> lane (the key's recorded lane, or the lane to record)
// ARGV[5] -> 1 for a dry run (nothing changes, no batch limit)
// ARGV[6] -> audit head "<now>\t<action>\t<by>"   ARGV[7] -> note
// ARGV[8] -> audit records kept   ARGV[9] -> batch   ARGV[10] -> hold ms
// ARGV[11..] -> item ids to move (none = all)
//
// Returns {n, kept head id or "", left, id...}: the ids moved (would be,
// for a dry run), in arrival order, and how many selected items are left
// for further calls; {-4} if the key is leased, {-5} if its recorded lane
// is not ARGV[4].
var redriveCmd = newScript(leaseLua + opLua + `
local now = tonumber(ARGV[2])
local key = ARGV[1]
local t, d = lease_of(KEYS[1], key)
if t and d > now then return {-4} end
local ml = redis.call('HGET', KEYS[4], 'lane')
if ml and ml ~= ARGV[4] then return {-5} end
local pick = select_dead(KEYS[5], 11, tonumber(ARGV[3]))
local head = redis.call('LINDEX', KEYS[3], 0)
local keep = ''
if head and tonumber(redis.call('HGET', KEYS[4], 'attempts') or '0') > 0 then keep = item_id(head) end
local left = 0
if ARGV[5] ~= '1' then
  local b = math.max(tonumber(ARGV[9]), 1)
  while b < #pick and pick[b + 1].at == pick[b].at do b = b + 1 end -- never split a ms
  left = math.max(#pick - b, 0)
  while #pick > b do table.remove(pick) end
end
local out = {#pick, keep, left}
for i = 1, #pick do out[#out+1] = pick[i].id end
if ARGV[5] == '1' or #pick == 0 then return out end
local envs = take_dead(KEYS[5], KEYS[6], KEYS[8], key, pick, true)
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('PERSIST', KEYS[7]) end
-- The queued items ahead of which the batch goes: skip the retrying head,
-- then those that arrived before the batch's last item (an earlier batch
-- still queued), 10000 at most.
local base = 0
if keep ~= '' then base = 1 end
local last = pick[#pick].at
local ahead = {}
while #ahead < 10000 do
  local chunk = redis.call('LRANGE', KEYS[3], tostring(base + #ahead), tostring(base + #ahead + 63))
  local stop = #chunk == 0
  for j = 1, #chunk do
    if item_ms(chunk[j]) >= last then
      stop = true
      break
    end
    ahead[#ahead+1] = chunk[j]
  end
  if stop then break end
end
for _ = 1, base + #ahead do redis.call('LPOP', KEYS[3]) end
-- Merge by arrival (a dead item first on equal times: it died at the head).
local merged, a, p = {}, 1, 1
while a <= #ahead or p <= #pick do
  if p <= #pick and (a > #ahead or pick[p].at <= item_ms(ahead[a])) then
    merged[#merged+1] = with_prior(envs[p], pick[p].att)
    p = p + 1
  else
    merged[#merged+1] = ahead[a]
    a = a + 1
  end
end
for i = #merged, 1, -1 do redis.call('LPUSH', KEYS[3], merged[i]) end
if keep ~= '' then redis.call('LPUSH', KEYS[3], head) end
redis.call('ZADD', KEYS[10], item_at(redis.call('LINDEX', KEYS[3], 0)) or ARGV[2], key)
redis.call('HSET', KEYS[4], 'lane', ARGV[4])
if keep == '' then redis.call('HDEL', KEYS[4], 'attempts', 'err') end
if redis.call('HGET', KEYS[4], 'paused') ~= '1' then
  local s = redis.call('ZSCORE', KEYS[2], key)
  if left > 0 then
    local hold = now + tonumber(ARGV[10])
    if not s or tonumber(s) < hold then redis.call('ZADD', KEYS[2], hold, key) end
  elseif not s or (keep == '' and tonumber(s) > now) then
    redis.call('ZADD', KEYS[2], now, key)
  end
end
local detail = id_list(pick)
if keep ~= '' then detail = detail .. ', behind ' .. keep .. ' (being retried)' end
if left > 0 then detail = detail .. ', ' .. left .. ' more to come' end
audit(KEYS[9], ARGV[6], detail, ARGV[7], ARGV[8])
return out
`)

// purgeDeadCmd deletes a key's dead letters.
//
// KEYS[1] -> dlq:<key>   KEYS[2] -> dlqidx   KEYS[3] -> dlqn
// KEYS[4] -> audit:<key>
// ARGV[1] -> key   ARGV[2] -> 1 for a dry run (nothing changes)
// ARGV[3] -> count (0 = all selected)
// ARGV[4] -> audit head "<now>\t<action>\t<by>"   ARGV[5] -> note
// ARGV[6] -> audit records kept   ARGV[7..] -> item ids to delete (none = all)
//
// Returns {n, id...}: the ids deleted (or that would be), in arrival order.
var purgeDeadCmd = newScript(leaseLua + opLua + `
local pick = select_dead(KEYS[1], 7, tonumber(ARGV[3]))
local out = {#pick}
for i = 1, #pick do out[#out+1] = pick[i].id end
if ARGV[2] == '1' or #pick == 0 then return out end
take_dead(KEYS[1], KEYS[2], KEYS[3], ARGV[1], pick, false)
audit(KEYS[4], ARGV[4], id_list(pick), ARGV[5], ARGV[6])
return out
`)

// recountDeadCmd sets a shard's dead-letter counts from its dead-letter
// lists: each key's records count for the lane of its oldest record (a key
// whose lane changed between deaths is counted in one lane).
//
// KEYS[1] -> dlqn   KEYS[2] -> dlqidx   KEYS[3..] -> dlq:<key> of every key
// in the index
// ARGV[1..] -> those keys, in the same order
//
// Returns the number of dead letters counted, or -6 if the index does not
// hold exactly the keys given (it changed since it was read).
var recountDeadCmd = newScript(leaseLua + `
if redis.call('ZCARD', KEYS[2]) ~= #ARGV then return -6 end
local per, total = {}, 0
for i = 1, #ARGV do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then return -6 end
  local n = redis.call('LLEN', KEYS[i + 2])
  if n > 0 then
    local _, lane = dead_parts(redis.call('LINDEX', KEYS[i + 2], 0))
    if lane then
      per[lane] = (per[lane] or 0) + n
      total = total + n
    end
  end
end
redis.call('DEL', KEYS[1])
for lane, n in pairs(per) do redis.call('HSET', KEYS[1], lane, tostring(n)) end
redis.call('HSET', KEYS[1], '~v', '1')
return total
`)

// skipCmd moves the head item of an unleased key to its dead-letter list
// with the given reason, releasing the items behind it.
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> dlq:<key>   KEYS[6] -> dlqidx
// KEYS[7] -> dd:<key>   KEYS[8] -> dlqn   KEYS[9] -> audit:<key>
// KEYS[10] -> oldest:<lane>
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane   ARGV[4] -> reason
// ARGV[5] -> dedup window ms   ARGV[6] -> dead letters kept per key (0 = all)
// ARGV[7] -> dead-letter retention ms (0 = forever)
// ARGV[8] -> audit head "<now>\t<action>\t<by>"   ARGV[9] -> note
// ARGV[10] -> audit records kept
//
// Returns {1, skipped id, its attempts} if an item was skipped, {0} if the
// queue is empty, {-4} if the key is leased, {-5} if its recorded lane is
// not ARGV[3].
var skipCmd = newScript(leaseLua + `
local now = tonumber(ARGV[2])
local key = ARGV[1]
local t, d = lease_of(KEYS[1], key)
if t and d > now then return {-4} end
local ml = redis.call('HGET', KEYS[4], 'lane')
if ml ~= ARGV[3] then
  if ml then return {-5} end
  return {0}
end
local head = redis.call('LPOP', KEYS[3])
if not head then return {0} end
local attempts = tonumber(redis.call('HGET', KEYS[4], 'attempts') or '0')
bury(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[2], KEYS[7], KEYS[8], KEYS[10], key, head, now, attempts, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
local id = item_id(head) or ''
audit(KEYS[9], ARGV[8], 'item ' .. id .. ' after ' .. attempts .. ' attempt(s)', ARGV[9], ARGV[10])
return {1, id, attempts}
`)

// pauseCmd pauses a key: it leaves the ready index and is not claimed until
// resumed. A drain holding its lease sees the flag at its next fetch.
//
// KEYS[1] -> ready:<lane>   KEYS[2] -> m:<key>   KEYS[3] -> paused
// KEYS[4] -> audit:<key>
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane ("" if the queue is empty)
// ARGV[4] -> audit head "<now>\t<action>\t<by>"   ARGV[5] -> note
// ARGV[6] -> audit records kept
//
// Returns 1 if the key was paused now, 2 if it was paused (or parked)
// already, -5 if the key's recorded lane is not ARGV[3].
var pauseCmd = newScript(leaseLua + `
if (redis.call('HGET', KEYS[2], 'lane') or '') ~= ARGV[3] then return -5 end
local was = redis.call('HGET', KEYS[2], 'paused') == '1'
redis.call('HSET', KEYS[2], 'paused', '1')
if not was then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1]) end
redis.call('ZREM', KEYS[1], ARGV[1])
local detail = 'paused'
if was then detail = 'already paused' end
audit(KEYS[4], ARGV[4], detail, ARGV[5], ARGV[6])
if was then return 2 end
return 1
`)

// resumeCmd clears a key's pause (or park), resets its head attempts and
// indexes it again when it has work (at its lease deadline if a lease is
// still live).
//
// KEYS[1] -> lease   KEYS[2] -> ready:<lane>   KEYS[3] -> q:<key>
// KEYS[4] -> m:<key>   KEYS[5] -> paused   KEYS[6] -> audit:<key>
// ARGV[1] -> key   ARGV[2] -> now ms   ARGV[3] -> lane ("" if the queue is empty)
// ARGV[4] -> audit head "<now>\t<action>\t<by>"   ARGV[5] -> note
// ARGV[6] -> audit records kept
//
// Returns {ready, was}: ready 1 if the key is ready, 0 if it has no work;
// was "parked", "paused" or "" (it was not paused); {-5} if its recorded
// lane is not ARGV[3].
var resumeCmd = newScript(leaseLua + `
local now = tonumber(ARGV[2])
if (redis.call('HGET', KEYS[4], 'lane') or '') ~= ARGV[3] then return {-5} end
local m = redis.call('HMGET', KEYS[4], 'paused', 'parked', 'attempts')
local was = ''
if m[2] == '1' then was = 'parked' elseif m[1] == '1' then was = 'paused' end
redis.call('HDEL', KEYS[4], 'paused', 'parked', 'attempts', 'err')
redis.call('ZREM', KEYS[5], ARGV[1])
local ready = 0
if redis.call('LLEN', KEYS[3]) > 0 then
  local score = now
  local t, d = lease_of(KEYS[1], ARGV[1])
  if t and d > now then score = d end
  redis.call('ZADD', KEYS[2], score, ARGV[1])
  ready = 1
end
local detail = 'was not paused'
if was ~= '' then detail = 'was ' .. was end
if m[3] and m[3] ~= '0' then detail = detail .. ', head attempts ' .. m[3] .. ' reset' end
if ready == 0 then detail = detail .. ', no work queued' end
audit(KEYS[6], ARGV[4], detail, ARGV[5], ARGV[6])
return {ready, was}
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

// acquireSlotsCmd takes lane slots: a slot is the right of one drain
// invocation to work the lane's keys, one after another, and a lane has as
// many as its concurrency. Slots that ran out (a drain that crashed) are
// dropped first.
//
// KEYS[1] -> <p>:slots:<lane>
// ARGV[1] -> now ms   ARGV[2] -> slot ttl ms   ARGV[3] -> lane concurrency
// ARGV[4..] -> slot ids wanted
//
// Returns how many slots were taken: the first that many ids of ARGV[4..].
var acquireSlotsCmd = newScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local dl = tostring(tonumber(ARGV[1]) + tonumber(ARGV[2]))
local n = 0
for i = 4, #ARGV do
  if n >= free then break end
  redis.call('ZADD', KEYS[1], dl, ARGV[i])
  n = n + 1
end
return n
`)

// renewSlotCmd renews a live slot.
//
// KEYS[1] -> <p>:slots:<lane>
// ARGV[1] -> slot id   ARGV[2] -> now ms   ARGV[3] -> slot ttl ms
//
// Returns 1 if renewed, 0 if the slot ran out or was released.
var renewSlotCmd = newScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tostring(tonumber(ARGV[2]) + tonumber(ARGV[3])), ARGV[1])
return 1
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
