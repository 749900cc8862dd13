package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
)

// bucketKey names the Redis key of the bucket (credential, endpoint). Key
// names are built here and nowhere else.
//
//	<p>:rl:{<h>}   STRING   TAT (theoretical arrival time), Unix ms; no TTL
//
// h is the first 32 hex digits (128 bits) of SHA-256(credential + "\x00" +
// endpoint). It keeps the raw credential out of key names (which show up in
// MONITOR, SLOWLOG, keyspace notifications and operators' SCANs), and as the
// Redis Cluster hash tag it spreads buckets over the slots.
func bucketKey(prefix, credential, endpoint string) string {
	h := sha256.New()
	h.Write([]byte(credential))
	h.Write([]byte{0})
	h.Write([]byte(endpoint))
	sum := h.Sum(nil)
	return prefix + ":rl:{" + hex.EncodeToString(sum[:16]) + "}"
}
