package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// This file holds what the engine's Lua scripts share: the Lua functions
// prepended to them, and how they are run (one call, or a pipeline, by SHA
// with the source as fallback). Each script stands above the Go function
// that calls it, with its KEYS/ARGV contract and an args type whose keys()
// and argv() fill KEYS and ARGV in the contract's order.
//
// Every script touches one hash slot (all its keys share the shard's
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

// scriptArgs fills a script's KEYS and ARGV. Each script has its own args
// type, declared below the script, whose methods list the values in the
// order of the script's KEYS/ARGV contract.
type scriptArgs interface {
	keys() []string
	argv() []any
}

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

// LoadScripts loads every script into the script cache of every node, so
// pipelines can call them by SHA. Operations do not need it: a pipelined call
// that meets NOSCRIPT runs again with the script's source (see pipeline).
func (e *Engine) LoadScripts(ctx context.Context) error {
	for _, s := range scripts {
		if err := s.Load(ctx, e.rdb).Err(); err != nil {
			return fmt.Errorf("queue: load scripts: %w", err)
		}
	}
	return nil
}

// run runs one script call by SHA (EVALSHA), and with its source (EVAL)
// when the server answers NOSCRIPT.
func (e *Engine) run(ctx context.Context, s *redis.Script, a scriptArgs) *redis.Cmd {
	return s.Run(ctx, e.rdb, a.keys(), a.argv()...)
}

// scriptCall is one script invocation inside a pipeline.
type scriptCall struct {
	script *redis.Script
	args   scriptArgs
}

// pipeline runs calls in one round trip per node, by SHA (EVALSHA). Calls a
// node refused with NOSCRIPT, which did not run, are sent again with their
// script's source (EVAL) in a second pipeline; then the scripts that were
// missing are loaded for next time, best effort. EVAL rather than SCRIPT
// LOAD and EVALSHA again, because a proxy such as ElastiCache Serverless's
// may not send SCRIPT LOAD to the backend that answered NOSCRIPT. The
// returned commands carry each call's result or error; the error is the
// first a call met (a nil reply is not one).
func (e *Engine) pipeline(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	keys := make([][]string, len(calls))
	argv := make([][]any, len(calls))
	for i, c := range calls {
		keys[i], argv[i] = c.args.keys(), c.args.argv()
	}
	run := func(idx []int, eval bool) {
		_, _ = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				if eval {
					cmds[i] = calls[i].script.Eval(ctx, p, keys[i], argv[i]...)
				} else {
					cmds[i] = calls[i].script.EvalSha(ctx, p, keys[i], argv[i]...)
				}
			}
			return nil
		}) // each command carries its own error, checked below
	}
	all := make([]int, len(calls))
	for i := range all {
		all[i] = i
	}
	run(all, false)
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		run(again, true)
		loaded := make(map[*redis.Script]bool)
		for _, i := range again {
			if s := calls[i].script; !loaded[s] {
				loaded[s] = true
				_ = s.Load(ctx, e.rdb).Err() // best effort: EVAL above did the work
			}
		}
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return cmds, fmt.Errorf("queue: pipeline: %w", err)
		}
	}
	return cmds, nil
}
