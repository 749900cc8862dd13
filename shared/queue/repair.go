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
		keys := []string{e.ks.lease(s), e.ks.ready(s, lane), e.ks.queue(s, key), e.ks.meta(s, key),
			e.ks.dlq(s, key), e.ks.dlqIndex(s), e.ks.dedup(s, key), e.ks.deadCount(s), e.ks.audit(s, key), e.ks.oldest(s, lane)}
		now := e.nowMs()
		args := []any{key, now, max(sel.Count, 0), lane, flag(dry), c.head("redrive", now), c.note(), AuditKeep,
			e.redriveBatch, redriveHold.Milliseconds()}
		for _, id := range sel.IDs {
			args = append(args, id)
		}
		vals, err := redriveCmd.Run(ctx, e.rdb, keys, args...).Slice()
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

// PurgeDead deletes a key's dead letters: all of them, or those sel
// selects (sel.Count counts in arrival order). With dry set it changes
// nothing. It returns the ids deleted (or that would be), in arrival order,
// and records the change in the key's audit list.
func (e *Engine) PurgeDead(ctx context.Context, key string, sel Selection, c Change, dry bool) ([]string, error) {
	if _, _, err := SplitKey(key); err != nil {
		return nil, err
	}
	s := e.ks.shardOf(key)
	keys := []string{e.ks.dlq(s, key), e.ks.dlqIndex(s), e.ks.deadCount(s), e.ks.audit(s, key)}
	now := e.nowMs()
	args := []any{key, flag(dry), max(sel.Count, 0), c.head("purge", now), c.note(), AuditKeep}
	for _, id := range sel.IDs {
		args = append(args, id)
	}
	vals, err := purgeDeadCmd.Run(ctx, e.rdb, keys, args...).Slice()
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
		keys := []string{e.ks.lease(s), e.ks.ready(s, lane), e.ks.queue(s, key), e.ks.meta(s, key),
			e.ks.dlq(s, key), e.ks.dlqIndex(s), e.ks.dedup(s, key), e.ks.deadCount(s), e.ks.audit(s, key), e.ks.oldest(s, lane)}
		now := e.nowMs()
		vals, err := skipCmd.Run(ctx, e.rdb, keys, key, now, lane, oneLine("skipped by operator: "+c.note()), e.window(),
			e.deadCap(), e.deadKeep(), c.head("skip", now), c.note(), AuditKeep).Slice()
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

// Pause stops a key from being claimed until Resume, and records the change
// in the key's audit list. A drain holding its lease sees Batch.Paused at
// its next fetch and should yield. It reports false when the key was paused
// (or parked) already.
func (e *Engine) Pause(ctx context.Context, key string, c Change) (bool, error) {
	n, err := e.operatorOp(ctx, key, func(s int, lane, _ string) (int64, error) {
		keys := []string{e.ks.ready(s, lane), e.ks.meta(s, key), e.ks.paused(s), e.ks.audit(s, key)}
		now := e.nowMs()
		return pauseCmd.Run(ctx, e.rdb, keys, key, now, lane, c.head("pause", now), c.note(), AuditKeep).Int64()
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

// Resume lets a paused (or parked) key be claimed again, resetting its head
// attempts, and records the change in the key's audit list.
func (e *Engine) Resume(ctx context.Context, key string, c Change) (Resumed, error) {
	var res Resumed
	_, err := e.operatorOp(ctx, key, func(s int, lane, _ string) (int64, error) {
		keys := []string{e.ks.lease(s), e.ks.ready(s, lane), e.ks.queue(s, key), e.ks.meta(s, key), e.ks.paused(s), e.ks.audit(s, key)}
		now := e.nowMs()
		vals, err := resumeCmd.Run(ctx, e.rdb, keys, key, now, lane, c.head("resume", now), c.note(), AuditKeep).Slice()
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

// recountDead sets shard s's dead-letter counts from its lists.
func (e *Engine) recountDead(ctx context.Context, s int) error {
	for range 5 {
		members, err := e.rdb.ZRange(ctx, e.ks.dlqIndex(s), 0, -1).Result()
		if err != nil {
			return fmt.Errorf("queue: recount dead letters: %w", err)
		}
		keys := []string{e.ks.deadCount(s), e.ks.dlqIndex(s)}
		args := make([]any, len(members))
		for i, k := range members {
			keys = append(keys, e.ks.dlq(s, k))
			args[i] = k
		}
		n, err := recountDeadCmd.Run(ctx, e.rdb, keys, args...).Int64()
		if err != nil {
			return fmt.Errorf("queue: recount dead letters: %w", err)
		}
		if err := codeErr(n); !errors.Is(err, errIndexChanged) {
			return err
		}
	}
	return fmt.Errorf("queue: recount dead letters: %w", errIndexChanged)
}
