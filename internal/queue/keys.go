package queue

import (
	"hash/crc32"
	"strconv"
)

// Rules for the names the engine puts into key names besides a webhook's
// tenant, code and id (webhook owns those): the prefix and the lane names.
// The configuration checks its settings with ValidPrefix and ValidLane, so
// the file and the engine accept the same names.
const (
	// MaxPrefixLen is the longest key prefix.
	MaxPrefixLen = 32
	// MaxLaneLen is the longest lane name.
	MaxLaneLen = 64
)

// ValidPrefix reports whether p may start every key name: 1 to MaxPrefixLen
// of a-z, 0-9, '_' and '-'. Nothing that needs escaping in a key pattern or
// a Redis ACL key rule can slip in, and one deployment's keys never start
// with another's prefix followed by ':'.
func ValidPrefix(p string) bool { return isName(p, MaxPrefixLen) }

// ValidLane reports whether name may be a lane: 1 to MaxLaneLen of a-z,
// 0-9, '_' and '-'.
func ValidLane(name string) bool { return isName(name, MaxLaneLen) }

// isName reports whether s is 1 to max bytes of a-z, 0-9, '_' and '-'.
func isName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// keyspace names every Redis key the engine uses. Key names are built here and
// nowhere else.
//
// A webhook key (tenant:code) belongs to shard crc32(key) mod S. The shard is
// the Redis Cluster hash tag of every key of that shard, so one script only
// ever touches one slot: a key's queue, meta, dedup markers and dead letters
// share the slot of its shard's ready index, lease hash and fencing counter.
//
//	<p>:{NN}:ready:<lane>   ZSET   key -> ready-at ms (lease deadline while leased)
//	<p>:{NN}:lease          HASH   key -> "token|deadline ms|invocation id"
//	<p>:{NN}:seq            STRING fencing-token counter
//	<p>:{NN}:paused         ZSET   key -> paused-at ms
//	<p>:{NN}:oldest:<lane>  ZSET   key -> received-at ms of its head item
//	                               (every key with work; see oldest.go)
//	<p>:{NN}:q:<key>        LIST   item envelopes, head = oldest
//	<p>:{NN}:m:<key>        HASH   lane, attempts, err, paused, parked
//	<p>:{NN}:dd:<key>       ZSET   dedup set: item id -> end of its window ms
//	                               (a TTL only once the key's queue is empty)
//	<p>:{NN}:dlq:<key>      LIST   dead-letter records, oldest first
//	<p>:{NN}:dlqidx         ZSET   key -> last dead-at ms
//	<p>:{NN}:dlqn           HASH   lane -> dead letters of the shard's keys
//	                               ("~v" -> 1 once counted exactly)
//	<p>:{NN}:audit:<key>    LIST   operator changes of the key, newest first
//	<p>:{NN}:lanepaused     HASH   lane -> "at ms|by|note" while the lane is
//	                               paused (the same in every shard, so each
//	                               claim script reads it in its own slot)
//	<p>:singleton:<name>    STRING "owner|deadline ms" of a singleton lease
//	<p>:handoff:<name>      LIST   at most one element: "the lease was released"
//	<p>:slots:<lane>        ZSET   drain slot id -> deadline ms (lane concurrency)
//	<p>:wake                LIST   at most one element: "there is new work"
type keyspace struct {
	prefix string
	shards int
	tags   []string // tag(s) of every shard, made once (newKeyspace)
}

// newKeyspace returns the keyspace of prefix with its shard tags made.
func newKeyspace(prefix string, shards int) keyspace {
	ks := keyspace{prefix: prefix, shards: shards}
	tags := make([]string, shards)
	for s := range shards {
		tags[s] = ks.tag(s)
	}
	ks.tags = tags
	return ks
}

// shardOf returns the shard of a webhook key.
func (ks keyspace) shardOf(key string) int {
	return int(crc32.ChecksumIEEE([]byte(key)) % uint32(ks.shards))
}

// tag returns "<p>:{NN}:", the common start of every key of shard s.
func (ks keyspace) tag(s int) string {
	if s >= 0 && s < len(ks.tags) {
		return ks.tags[s]
	}
	return ks.prefix + ":{" + shardNumber(s) + "}:"
}

// shardNumber is s with at least two digits, as fmt's "%02d" writes it
// (strconv answers small numbers from a table, without formatting).
func shardNumber(s int) string {
	if s >= 0 && s < 10 {
		return "0" + strconv.Itoa(s)
	}
	return strconv.Itoa(s)
}

func (ks keyspace) ready(s int, lane string) string { return ks.tag(s) + "ready:" + lane }
func (ks keyspace) lease(s int) string              { return ks.tag(s) + "lease" }
func (ks keyspace) seq(s int) string                { return ks.tag(s) + "seq" }
func (ks keyspace) paused(s int) string             { return ks.tag(s) + "paused" }
func (ks keyspace) dlqIndex(s int) string           { return ks.tag(s) + "dlqidx" }
func (ks keyspace) queue(s int, key string) string  { return ks.tag(s) + "q:" + key }
func (ks keyspace) meta(s int, key string) string   { return ks.tag(s) + "m:" + key }
func (ks keyspace) dlq(s int, key string) string    { return ks.tag(s) + "dlq:" + key }
func (ks keyspace) dedup(s int, key string) string  { return ks.tag(s) + "dd:" + key }
func (ks keyspace) audit(s int, key string) string  { return ks.tag(s) + "audit:" + key }
func (ks keyspace) deadCount(s int) string          { return ks.tag(s) + "dlqn" }
func (ks keyspace) lanePaused(s int) string         { return ks.tag(s) + "lanepaused" }

// oldest is the shard's oldest-item index of lane (see oldest.go).
func (ks keyspace) oldest(s int, lane string) string { return ks.tag(s) + "oldest:" + lane }

func (ks keyspace) singleton(name string) string { return ks.prefix + ":singleton:" + name }
func (ks keyspace) handoff(name string) string   { return ks.prefix + ":handoff:" + name }
func (ks keyspace) slots(lane string) string     { return ks.prefix + ":slots:" + lane }
func (ks keyspace) wake() string                 { return ks.prefix + ":wake" }

// ms renders a Unix millisecond time for ARGV.
func ms(v int64) string { return strconv.FormatInt(v, 10) }
