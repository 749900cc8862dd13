package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds the operator's repairs: redrive and purge of dead
// letters, skip, pause and resume of keys and lanes. Each change to a key
// is recorded, in the same script, in the key's audit list (who, when, why,
// what), which Inspect shows.

// AuditKeep is how many audit records a key keeps, newest first.
const AuditKeep = 20

// Change says who makes an operator change and why. It is recorded with
// every key the change touches.
type Change struct {
	// By names who made the change, such as an operator's user name; at
	// most 64 bytes on one line. Default "unknown".
	By string
	// Note says why, at most 512 bytes on one line. Default "".
	Note string
}

// head renders the start of an audit record: "<at ms>\t<action>\t<by>".
func (c Change) head(action string, now int64) string {
	return ms(now) + "\t" + action + "\t" + cmp.Or(cleanField(c.By, 64), "unknown")
}

func (c Change) note() string { return cleanField(c.Note, 512) }

// cleanField makes s one line without tabs or '|' of at most n bytes.
func cleanField(s string, n int) string {
	s = strings.TrimSpace(strings.NewReplacer("\t", " ", "\r", " ", "\n", " ", "|", "/").Replace(s))
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// AuditRecord is one operator change of a key.
type AuditRecord struct {
	At time.Time
	// Action is pause, resume, skip, redrive or purge.
	Action string
	By     string
	// Detail says what changed, such as the items moved.
	Detail string
	Note   string
}

func parseAudit(s string) (AuditRecord, bool) {
	f := strings.SplitN(s, "\t", 5)
	if len(f) != 5 {
		return AuditRecord{}, false
	}
	at, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return AuditRecord{}, false
	}
	return AuditRecord{At: time.UnixMilli(at), Action: f[1], By: f[2], Detail: f[3], Note: f[4]}, true
}

// Audit returns up to n of the key's audit records (all kept when n <= 0),
// newest first.
func (e *Engine) Audit(ctx context.Context, key string, n int) ([]AuditRecord, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	stop := int64(n) - 1
	if n <= 0 {
		stop = -1
	}
	recs, err := e.rdb.LRange(ctx, e.ks.audit(e.ks.shardOf(key), key), 0, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("queue: read audit of %s: %w", key, err)
	}
	return parseAudits(recs), nil
}

func parseAudits(recs []string) []AuditRecord {
	out := make([]AuditRecord, 0, len(recs))
	for _, r := range recs {
		if a, ok := parseAudit(r); ok {
			out = append(out, a)
		}
	}
	return out
}

// deadCap and deadKeep are the dead-letter cap and retention for the
// scripts (0 = none).
func (e *Engine) deadCap() int {
	return max(e.opt.DeadLetterMax, 0)
}

func (e *Engine) deadKeep() int64 {
	return max(e.opt.DeadLetterRetention.Milliseconds(), 0)
}

// keyLanes reads a key's recorded lane ("" when its queue is empty) and the
// lane of its oldest dead letter ("" when it has none).
func (e *Engine) keyLanes(ctx context.Context, key string) (lane, deadLane string, err error) {
	s := e.ks.shardOf(key)
	var meta *redis.StringCmd
	var dead *redis.StringCmd
	_, err = e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGet(ctx, e.ks.meta(s, key), "lane")
		dead = p.LIndex(ctx, e.ks.dlq(s, key), 0)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", "", fmt.Errorf("queue: read lane of %s: %w", key, err)
	}
	if rec := dead.Val(); rec != "" {
		if d, err := decodeDead([]byte(rec), key); err == nil {
			deadLane = d.Lane
		}
	}
	return meta.Val(), deadLane, nil
}

// keyOp is what the operator scripts are given about the key they change:
// where it lives and its lane, now, and the head and note of the audit
// record the change leaves.
type keyOp struct {
	ks         keyspace
	s          int
	key, lane  string
	now        int64
	head, note string
}

// deadLetterKeys are the KEYS of the operator scripts that move items
// between a key's queue and its dead letters, redriveCmd and skipCmd.
func (a keyOp) deadLetterKeys() []string {
	ks, s, key, lane := a.ks, a.s, a.key, a.lane
	return []string{
		ks.lease(s),        // KEYS[1]
		ks.ready(s, lane),  // KEYS[2]
		ks.queue(s, key),   // KEYS[3]
		ks.meta(s, key),    // KEYS[4]
		ks.dlq(s, key),     // KEYS[5]
		ks.dlqIndex(s),     // KEYS[6]
		ks.dedup(s, key),   // KEYS[7]
		ks.deadCount(s),    // KEYS[8]
		ks.audit(s, key),   // KEYS[9]
		ks.oldest(s, lane), // KEYS[10]
	}
}

// pauseArgv is the ARGV of pauseCmd and resumeCmd.
func (a keyOp) pauseArgv() []any {
	return []any{
		a.key,     // ARGV[1]
		a.now,     // ARGV[2]
		a.lane,    // ARGV[3]
		a.head,    // ARGV[4]
		a.note,    // ARGV[5]
		AuditKeep, // ARGV[6]
	}
}

// keyOp returns the keyOp of an operator's action on key of lane, in shard s.
func (e *Engine) keyOp(s int, key, lane, action string, c Change) keyOp {
	now := e.nowMs()
	return keyOp{ks: e.ks, s: s, key: key, lane: lane, now: now, head: c.head(action, now), note: c.note()}
}

// operatorOp runs an operator script that needs the key's lane, retrying
// when the lane changes between the read and the script. run returns the
// script's result code.
func (e *Engine) operatorOp(ctx context.Context, key string, run func(s int, lane, deadLane string) (int64, error)) (int64, error) {
	if _, _, err := SplitKey(key); err != nil {
		return 0, err
	}
	s := e.ks.shardOf(key)
	for range 5 {
		lane, deadLane, err := e.keyLanes(ctx, key)
		if err != nil {
			return 0, err
		}
		n, err := run(s, lane, deadLane)
		if err != nil {
			return 0, err
		}
		if err := codeErr(n); !errors.Is(err, errLaneChanged) {
			return n, err
		}
	}
	return 0, fmt.Errorf("queue: %s: lane kept changing", key)
}

// Selection picks some of a key's dead letters.
type Selection struct {
	// IDs names the items; none selects every dead letter of the key.
	IDs []string
	// Count takes only the first Count selected items in arrival order;
	// 0 takes them all.
	Count int
}

// Redriven reports what Redrive did (or, from PlanRedrive, would do).
type Redriven struct {
	Key string
	// IDs are the items moved back, in the order they now stand at the
	// head of the queue: the order they arrived in.
	IDs []string
	// Behind is the head item that is being retried (it has failed
	// attempts): it stays first, and the moved items stand right behind
	// it. "" when the moved items are the new head.
	Behind string
}

// Redrive batches: one script call moves at most redriveBatch items (the
// engine's redriveBatch, set from this in New; tests lower it), and holds
// the key out of reach for redriveHold until its last batch.
const (
	redriveBatch = 500
	redriveHold  = time.Minute
)

// Redrive moves a key's dead letters back to its queue: all of them, or
// those sel selects. They go back in the order they arrived (received-at,
// then their place in the dead-letter list), which is not the order they
// died in once a redriven item has died again, at the head of the queue:
// ahead of the items that arrived after them, and behind a head item that
// is being retried, which keeps its place, its attempts and its retry time.
// Each item keeps its attempt history (Item.PriorAttempts grows by the
// attempts of its dead letter). The key is ready at once unless it is
// paused or waits for a retry.
//
// Items move 500 per script call, earliest arrivals first, each batch
// merged by arrival behind the previous one; until the last batch the key
// is held (not claimable for a minute), so no drain takes it half
// redriven. Redrive refuses a leased key (ErrLeased) and records each batch
// in the key's audit list. On an error, Redriven holds what moved before.
func (e *Engine) Redrive(ctx context.Context, key string, sel Selection, c Change) (Redriven, error) {
	res := Redriven{Key: key}
	count := max(sel.Count, 0)
	for {
		rd, left, err := e.redrive(ctx, key, Selection{IDs: sel.IDs, Count: count}, c, false)
		res.IDs = append(res.IDs, rd.IDs...)
		if res.Behind == "" {
			res.Behind = rd.Behind
		}
		if err != nil || left == 0 || len(rd.IDs) == 0 {
			return res, err
		}
		if count > 0 {
			count -= len(rd.IDs)
		}
	}
}

// PlanRedrive returns what Redrive would do now, changing nothing.
func (e *Engine) PlanRedrive(ctx context.Context, key string, sel Selection) (Redriven, error) {
	rd, _, err := e.redrive(ctx, key, sel, Change{}, true)
	return rd, err
}

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

// redriveArgs fills redriveCmd's KEYS and ARGV.
type redriveArgs struct {
	keyOp
	count int
	dry   bool
	batch int
	hold  int64
	ids   []string
}

func (a redriveArgs) keys() []string { return a.deadLetterKeys() }

func (a redriveArgs) argv() []any {
	argv := make([]any, 0, 10+len(a.ids))
	argv = append(argv,
		a.key,       // ARGV[1]
		a.now,       // ARGV[2]
		a.count,     // ARGV[3]
		a.lane,      // ARGV[4]
		flag(a.dry), // ARGV[5]
		a.head,      // ARGV[6]
		a.note,      // ARGV[7]
		AuditKeep,   // ARGV[8]
		a.batch,     // ARGV[9]
		a.hold,      // ARGV[10]
	)
	for _, id := range a.ids {
		argv = append(argv, id) // ARGV[11..]
	}
	return argv
}

// redrive runs one redriveCmd call and returns what it moved and how many
// selected items are left.
func (e *Engine) redrive(ctx context.Context, key string, sel Selection, c Change, dry bool) (Redriven, int, error) {
	res := Redriven{Key: key}
	left := 0
	_, err := e.operatorOp(ctx, key, func(s int, lane, deadLane string) (int64, error) {
		lane = cmp.Or(lane, deadLane)
		if lane == "" {
			return 0, nil // no work and no dead letters
		}
		vals, err := e.run(ctx, redriveCmd, redriveArgs{keyOp: e.keyOp(s, key, lane, "redrive", c),
			count: max(sel.Count, 0), dry: dry, batch: e.redriveBatch, hold: redriveHold.Milliseconds(), ids: sel.IDs}).Slice()
		if err != nil {
			return 0, err
		}
		code, _ := vals[0].(int64)
		if code < 0 {
			return code, nil
		}
		res.Behind, _ = vals[1].(string)
		l, _ := vals[2].(int64)
		left = int(l)
		res.IDs = make([]string, 0, len(vals)-3)
		for _, v := range vals[3:] {
			id, _ := v.(string)
			res.IDs = append(res.IDs, id)
		}
		return code, nil
	})
	if err != nil {
		return Redriven{Key: key}, 0, fmt.Errorf("queue: redrive %s: %w", key, err)
	}
	return res, left, nil
}

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

// purgeDeadArgs fills purgeDeadCmd's KEYS and ARGV.
type purgeDeadArgs struct {
	keyOp
	dry   bool
	count int
	ids   []string
}

func (a purgeDeadArgs) keys() []string {
	ks, s, key := a.ks, a.s, a.key
	return []string{
		ks.dlq(s, key),   // KEYS[1]
		ks.dlqIndex(s),   // KEYS[2]
		ks.deadCount(s),  // KEYS[3]
		ks.audit(s, key), // KEYS[4]
	}
}

func (a purgeDeadArgs) argv() []any {
	argv := make([]any, 0, 6+len(a.ids))
	argv = append(argv,
		a.key,       // ARGV[1]
		flag(a.dry), // ARGV[2]
		a.count,     // ARGV[3]
		a.head,      // ARGV[4]
		a.note,      // ARGV[5]
		AuditKeep,   // ARGV[6]
	)
	for _, id := range a.ids {
		argv = append(argv, id) // ARGV[7..]
	}
	return argv
}

// PurgeDead deletes a key's dead letters: all of them, or those sel
// selects (sel.Count counts in arrival order). With dry set it changes
// nothing. It returns the ids deleted (or that would be), in arrival order,
// and records the change in the key's audit list.
func (e *Engine) PurgeDead(ctx context.Context, key string, sel Selection, c Change, dry bool) ([]string, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	vals, err := e.run(ctx, purgeDeadCmd, purgeDeadArgs{keyOp: e.keyOp(e.ks.shardOf(key), key, "", "purge", c),
		dry: dry, count: max(sel.Count, 0), ids: sel.IDs}).Slice()
	if err != nil {
		return nil, fmt.Errorf("queue: purge %s: %w", key, err)
	}
	ids := make([]string, 0, len(vals)-1)
	for _, v := range vals[1:] {
		id, _ := v.(string)
		ids = append(ids, id)
	}
	return ids, nil
}

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

// skipArgs fills skipCmd's KEYS and ARGV.
type skipArgs struct {
	keyOp
	reason   string
	window   int64
	deadCap  int
	deadKeep int64
}

func (a skipArgs) keys() []string { return a.deadLetterKeys() }

func (a skipArgs) argv() []any {
	return []any{
		a.key,      // ARGV[1]
		a.now,      // ARGV[2]
		a.lane,     // ARGV[3]
		a.reason,   // ARGV[4]
		a.window,   // ARGV[5]
		a.deadCap,  // ARGV[6]
		a.deadKeep, // ARGV[7]
		a.head,     // ARGV[8]
		a.note,     // ARGV[9]
		AuditKeep,  // ARGV[10]
	}
}

// Skip moves the head item of an unleased key to its dead-letter list with
// reason "skipped by operator: <note>", so the items behind it can go on,
// and records the change in the key's audit list. It refuses a leased key
// (ErrLeased; pause it first) and returns the id of the skipped item, ""
// when the queue was empty.
func (e *Engine) Skip(ctx context.Context, key string, c Change) (string, error) {
	var id string
	_, err := e.operatorOp(ctx, key, func(s int, lane, _ string) (int64, error) {
		if lane == "" {
			return 0, nil // nothing queued
		}
		vals, err := e.run(ctx, skipCmd, skipArgs{keyOp: e.keyOp(s, key, lane, "skip", c),
			reason: oneLine("skipped by operator: " + c.note()), window: e.window(), deadCap: e.deadCap(), deadKeep: e.deadKeep()}).Slice()
		if err != nil {
			return 0, err
		}
		code, _ := vals[0].(int64)
		if code == 1 && len(vals) > 1 {
			id, _ = vals[1].(string)
		}
		return code, nil
	})
	if err != nil {
		return "", fmt.Errorf("queue: skip %s: %w", key, err)
	}
	return id, nil
}

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

// pauseArgs fills pauseCmd's KEYS and ARGV.
type pauseArgs struct{ keyOp }

func (a pauseArgs) keys() []string {
	ks, s, key, lane := a.ks, a.s, a.key, a.lane
	return []string{
		ks.ready(s, lane), // KEYS[1]
		ks.meta(s, key),   // KEYS[2]
		ks.paused(s),      // KEYS[3]
		ks.audit(s, key),  // KEYS[4]
	}
}

func (a pauseArgs) argv() []any { return a.pauseArgv() }

// Pause stops a key from being claimed until Resume, and records the change
// in the key's audit list. A drain holding its lease sees Batch.Paused at
// its next fetch and should yield. It reports false when the key was paused
// (or parked) already.
func (e *Engine) Pause(ctx context.Context, key string, c Change) (bool, error) {
	n, err := e.operatorOp(ctx, key, func(s int, lane, _ string) (int64, error) {
		return e.run(ctx, pauseCmd, pauseArgs{e.keyOp(s, key, lane, "pause", c)}).Int64()
	})
	if err != nil {
		return false, fmt.Errorf("queue: pause %s: %w", key, err)
	}
	return n == 1, nil
}

// Resumed reports what Resume did.
type Resumed struct {
	// Ready is set when the key has work and is ready again.
	Ready bool
	// Was is "parked", "paused" or "" (the key was not paused).
	Was string
}

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

// resumeArgs fills resumeCmd's KEYS and ARGV.
type resumeArgs struct{ keyOp }

func (a resumeArgs) keys() []string {
	ks, s, key, lane := a.ks, a.s, a.key, a.lane
	return []string{
		ks.lease(s),       // KEYS[1]
		ks.ready(s, lane), // KEYS[2]
		ks.queue(s, key),  // KEYS[3]
		ks.meta(s, key),   // KEYS[4]
		ks.paused(s),      // KEYS[5]
		ks.audit(s, key),  // KEYS[6]
	}
}

func (a resumeArgs) argv() []any { return a.pauseArgv() }

// Resume lets a paused (or parked) key be claimed again, resetting its head
// attempts, and records the change in the key's audit list.
func (e *Engine) Resume(ctx context.Context, key string, c Change) (Resumed, error) {
	var res Resumed
	_, err := e.operatorOp(ctx, key, func(s int, lane, _ string) (int64, error) {
		vals, err := e.run(ctx, resumeCmd, resumeArgs{e.keyOp(s, key, lane, "resume", c)}).Slice()
		if err != nil {
			return 0, err
		}
		code, _ := vals[0].(int64)
		if code >= 0 && len(vals) > 1 {
			res.Ready = code == 1
			res.Was, _ = vals[1].(string)
		}
		return code, nil
	})
	if err != nil {
		return Resumed{}, fmt.Errorf("queue: resume %s: %w", key, err)
	}
	return res, nil
}

// LanePause is an operator's pause of a whole lane.
type LanePause struct {
	Lane  string
	Since time.Time
	By    string
	Note  string
	// Shards counts the shards that hold the pause; fewer than
	// Options.Shards means PauseLane or ResumeLane failed halfway (run it
	// again).
	Shards int
}

// PauseLane pauses a lane: Claim and Next lease none of its keys until
// ResumeLane, while its webhooks are still accepted and queued. Drains
// working one of its keys finish their quantum and take no other key.
// The flag is written to every shard, so the claim scripts read it in
// their own slot.
func (e *Engine) PauseLane(ctx context.Context, lane string, c Change) error {
	if !e.laneKnown(lane) {
		return fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	v := ms(e.nowMs()) + "|" + cmp.Or(cleanField(c.By, 64), "unknown") + "|" + c.note()
	_, err := perShard(ctx, e, "pause lane", func(p redis.Pipeliner, s int) *redis.BoolCmd {
		return p.HSetNX(ctx, e.ks.lanePaused(s), lane, v)
	})
	return err
}

// ResumeLane lifts a lane's pause and wakes the scheduler. It reports
// whether the lane was paused.
func (e *Engine) ResumeLane(ctx context.Context, lane string, c Change) (bool, error) {
	if !e.laneKnown(lane) {
		return false, fmt.Errorf("%w: %q", ErrUnknownLane, lane)
	}
	cmds, err := perShard(ctx, e, "resume lane", func(p redis.Pipeliner, s int) *redis.IntCmd {
		return p.HDel(ctx, e.ks.lanePaused(s), lane)
	})
	if err != nil {
		return false, err
	}
	was := false
	for _, c := range cmds {
		was = was || c.Val() > 0
	}
	if err := e.Wake(ctx); err != nil {
		return was, err
	}
	return was, nil
}

// PausedLanes returns the lanes an operator has paused, by name.
func (e *Engine) PausedLanes(ctx context.Context) ([]LanePause, error) {
	cmds, err := perShard(ctx, e, "read paused lanes", func(p redis.Pipeliner, s int) *redis.MapStringStringCmd {
		return p.HGetAll(ctx, e.ks.lanePaused(s))
	})
	if err != nil {
		return nil, err
	}
	byLane := map[string]*LanePause{}
	for _, c := range cmds {
		for lane, v := range c.Val() {
			lp := byLane[lane]
			if lp == nil {
				lp = &LanePause{Lane: lane}
				byLane[lane] = lp
				f := strings.SplitN(v, "|", 3)
				if at, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					lp.Since = time.UnixMilli(at)
				}
				if len(f) == 3 {
					lp.By, lp.Note = f[1], f[2]
				}
			}
			lp.Shards++
		}
	}
	var out []LanePause
	for _, lane := range e.opt.Lanes {
		if lp := byLane[lane]; lp != nil {
			out = append(out, *lp)
			delete(byLane, lane)
		}
	}
	for _, lp := range byLane { // lanes no longer configured
		out = append(out, *lp)
	}
	return out, nil
}

// DeadLetterCounts returns the number of dead letters per lane (the lane
// each item died on), over every shard, with every lane of Options.Lanes
// present. It reads one counter hash per shard, kept by the scripts that
// bury, redrive and purge; a shard whose counts were never taken (dead
// letters from before the counters existed) is counted once from its lists.
func (e *Engine) DeadLetterCounts(ctx context.Context) (map[string]int64, error) {
	type shardCmds struct {
		counts *redis.MapStringStringCmd
		keys   *redis.IntCmd
	}
	read := func(shards []int) ([]shardCmds, error) {
		cmds := make([]shardCmds, len(shards))
		_, err := e.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, s := range shards {
				cmds[i] = shardCmds{p.HGetAll(ctx, e.ks.deadCount(s)), p.ZCard(ctx, e.ks.dlqIndex(s))}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("queue: count dead letters: %w", err)
		}
		return cmds, nil
	}
	all := make([]int, e.opt.Shards)
	for s := range all {
		all[s] = s
	}
	cmds, err := read(all)
	if err != nil {
		return nil, err
	}
	var stale []int
	for s, c := range cmds {
		if c.counts.Val()["~v"] != "1" && c.keys.Val() > 0 {
			if err := e.recountDead(ctx, s); err != nil {
				return nil, err
			}
			stale = append(stale, s)
		}
	}
	if len(stale) > 0 {
		again, err := read(stale)
		if err != nil {
			return nil, err
		}
		for i, s := range stale {
			cmds[s] = again[i]
		}
	}
	out := make(map[string]int64, len(e.opt.Lanes))
	for _, lane := range e.opt.Lanes {
		out[lane] = 0
	}
	for _, c := range cmds {
		for lane, v := range c.counts.Val() {
			if lane == "~v" {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			out[lane] += n
		}
	}
	return out, nil
}

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

// recountDeadArgs fills recountDeadCmd's KEYS and ARGV.
type recountDeadArgs struct {
	ks      keyspace
	s       int
	members []string
}

func (a recountDeadArgs) keys() []string {
	keys := make([]string, 0, 2+len(a.members))
	keys = append(keys,
		a.ks.deadCount(a.s), // KEYS[1]
		a.ks.dlqIndex(a.s),  // KEYS[2]
	)
	for _, k := range a.members {
		keys = append(keys, a.ks.dlq(a.s, k)) // KEYS[3..]
	}
	return keys
}

func (a recountDeadArgs) argv() []any {
	argv := make([]any, len(a.members))
	for i, k := range a.members {
		argv[i] = k // ARGV[1..]
	}
	return argv
}

// recountDead sets shard s's dead-letter counts from its lists.
func (e *Engine) recountDead(ctx context.Context, s int) error {
	for range 5 {
		members, err := e.rdb.ZRange(ctx, e.ks.dlqIndex(s), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("queue: recount dead letters: %w", err)
		}
		n, err := e.run(ctx, recountDeadCmd, recountDeadArgs{ks: e.ks, s: s, members: members}).Int64()
		if err != nil {
			return fmt.Errorf("queue: recount dead letters: %w", err)
		}
		if err := codeErr(n); !errors.Is(err, errIndexChanged) {
			return err
		}
	}
	return fmt.Errorf("queue: recount dead letters: %w", errIndexChanged)
}
