// Package queue is hookline's Redis engine: per-key FIFO queues of webhook
// items, a ready index per lane and shard, leases with fencing tokens, dedup,
// retries in place, dead letters, pause and redrive, and the reads operators
// need.
//
// A key is "<tenant>:<event code>". Its items are handed out strictly in
// order: the head item stays at the head until it is acked, dead-lettered or
// skipped, and a failed head is retried in place while its key waits. A key
// is worked by one lease holder at a time: Claim hands out a fencing token,
// Activate binds the token to one invocation, and every mutating call checks
// the token, so a holder whose lease ran out changes nothing (ErrLeaseLost).
//
// The life of a key:
//
//	Enqueue -> ready (scored by ready-at) -> Claim -> leased (scored by
//	deadline) -> Activate -> Fetch / Ack / Fail / Extend ... -> Yield ->
//	ready again at the back of the order, or gone when empty
//
// A lease that is never yielded (a crash, a timeout) runs out and the key
// becomes claimable again by itself.
//
// Every operation is one Lua script on one hash slot, with every key in KEYS
// and "now" from the injected clock, so the engine runs on Redis 7
// standalone, Redis Cluster and ElastiCache Serverless alike. Queue data has
// no TTL; only dedup markers expire.
package queue
