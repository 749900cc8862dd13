package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// The event codes of the generated configurations.
const (
	codeForward = "bench.forward"
	codeLog     = "bench.log"
)

// forwardConfig routes codeForward to the sink on one lane of conc drains.
func (e *suiteEnv) forwardConfig(sinkURL string, conc int) hooklineConfig {
	return hooklineConfig{
		lanes:  []lane{{"quick", conc}},
		routes: []route{{code: codeForward, lane: "quick", handler: "forward", url: sinkURL}},
		poll:   e.poll,
	}
}

// stack is what one measurement runs on: a fresh redis-server, a sink, and
// either a hookline dev process or the asynq pipeline.
type stack struct {
	e       *suiteEnv
	redis   *redisServer
	sink    *sink
	cfgPath string
	dev     *devProc
	ingest  *asynqProc // the asynq pipeline's front, a child process
	workers *asynqProc // its workers, another
}

// newStack starts a redis-server and a sink.
func (e *suiteEnv) newStack(ctx context.Context) (*stack, error) {
	r, err := startRedis(ctx)
	if err != nil {
		return nil, err
	}
	s, err := startSink()
	if err != nil {
		r.stop()
		return nil, err
	}
	return &stack{e: e, redis: r, sink: s}, nil
}

// stop stops everything the stack started.
func (st *stack) stop() {
	st.dev.stop()
	st.workers.stop()
	st.ingest.stop()
	st.sink.stop()
	st.redis.stop()
}

// startDev (re)starts hookline dev on the stack's Redis with cfg, which is
// written on first use.
func (st *stack) startDev(ctx context.Context, cfg hooklineConfig, extra ...string) error {
	st.dev.stop()
	st.dev = nil
	if st.cfgPath == "" {
		p, err := cfg.write(st.e.tmp)
		if err != nil {
			return err
		}
		st.cfgPath = p
	}
	d, err := startDev(ctx, st.e, st.cfgPath, st.redis.url(), extra...)
	if err != nil {
		return err
	}
	st.dev = d
	return nil
}

// startAsynqIngest starts the asynq pipeline's HTTP front.
func (st *stack) startAsynqIngest() error {
	in, err := startAsynqProc(context.Background(), st.e.secret, "--redis", st.redis.addr, "--ingest", "--pool", fmt.Sprint(st.e.c+8))
	if err != nil {
		return err
	}
	st.ingest = in
	return nil
}

// startAsynqWorkers starts an asynq server of n workers forwarding to the
// sink.
func (st *stack) startAsynqWorkers(n int) error {
	w, err := startAsynqProc(context.Background(), st.e.secret, "--redis", st.redis.addr,
		"--workers", fmt.Sprint(n), "--poll", st.e.poll.String(), "--sink", st.sink.url)
	if err != nil {
		return err
	}
	st.workers = w
	return nil
}

// ingestURL is where webhooks go: dev's ingest, else the asynq front.
func (st *stack) ingestURL() string {
	if st.dev != nil {
		return st.dev.ingestURL()
	}
	return st.ingest.url + "/webhooks"
}

// send sends w with conc senders and fails unless every webhook was
// accepted.
func (st *stack) send(ctx context.Context, w *workload, conc int) (*sendResult, error) {
	snd := newSender(st.ingestURL(), st.e.secret, conc)
	defer snd.close()
	res, err := snd.send(ctx, w)
	if err != nil {
		return res, err
	}
	if res.failed > 0 {
		return res, fmt.Errorf("ingest refused webhooks: %s", res.failureText())
	}
	return res, nil
}

// awaitDelivered waits until the sink has every accepted webhook of res. A
// wait that stalls or times out is not an error: what is missing counts as
// lost. It reports how the wait ended.
func (st *stack) awaitDelivered(ctx context.Context, res *sendResult) error {
	want := res.accepted
	_, err := waitUntil(ctx, 10*time.Millisecond, st.e.stall, func() (int64, bool) {
		n := st.sink.delivered(res.w.run)
		return int64(n), n >= want
	})
	if ctx.Err() != nil {
		return err
	}
	if err != nil && st.dev != nil {
		if derr := st.dev.alive(); derr != nil {
			return derr
		}
	}
	if err != nil {
		st.e.note("  waiting for the sink: %v", err)
	}
	return nil
}

// deliveryReport is what the sink got of a workload.
type deliveryReport struct {
	delivered  int       // distinct ids
	lost       int       // accepted, never delivered
	outOfOrder int       // keys whose first deliveries are not in send order
	last       time.Time // last first delivery
	// firstOfKey is the earliest delivery of any item of each key.
	firstOfKey []time.Time
}

// analyze compares the sink's deliveries with what was sent.
func analyze(res *sendResult, s *sink) deliveryReport {
	w := res.w
	rep := deliveryReport{firstOfKey: make([]time.Time, len(w.keys))}
	highest := make([]int, len(w.keys))
	for i := range highest {
		highest[i] = -1
	}
	bad := make([]bool, len(w.keys))
	seen := map[string]bool{}
	for _, d := range s.snapshot() {
		if seen[d.id] {
			continue
		}
		k, seq, ok := w.parseID(d.id)
		if !ok {
			continue
		}
		seen[d.id] = true
		rep.delivered++
		if seq < highest[k] {
			bad[k] = true
		}
		highest[k] = max(highest[k], seq)
		if d.at.After(rep.last) {
			rep.last = d.at
		}
		if rep.firstOfKey[k].IsZero() || d.at.Before(rep.firstOfKey[k]) {
			rep.firstOfKey[k] = d.at
		}
	}
	for _, id := range res.acceptedIDs() {
		if !seen[id] {
			rep.lost++
		}
	}
	for _, b := range bad {
		if b {
			rep.outOfOrder++
		}
	}
	return rep
}

// e2eResult is one end-to-end run.
type e2eResult struct {
	send        *sendResult
	rep         deliveryReport
	itemsPerSec float64
	cmdsPerItem float64
	p50, p99    float64
	// serverCPU and redisCPU are the CPU time per delivered item of the
	// pipeline's own processes (hookline dev; asynq's front and workers)
	// and of its redis-server, over the same span. They do not depend on
	// what else the machine runs, unlike items/s: on a loaded machine they
	// are what says which pipeline costs less.
	serverCPU, redisCPU time.Duration
}

// cpuSnapshot sums the CPU time of the stack's pipeline processes and of
// its redis-server.
func (st *stack) cpuSnapshot(ctx context.Context) (server, redis time.Duration, err error) {
	var pids []int
	if st.dev != nil {
		pids = append(pids, st.dev.cmd.Process.Pid)
	}
	for _, p := range []*asynqProc{st.ingest, st.workers} {
		if p != nil {
			pids = append(pids, p.pid())
		}
	}
	for _, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			return 0, 0, err
		}
		server += c
	}
	redis, err = st.redis.cpu(ctx)
	return server, redis, err
}

// e2e sends e.n webhooks on e.keys keys with e.c senders through hookline
// dev (asynq false) or the asynq pipeline with e.c workers, every one
// forwarded to the sink, and measures it from first send to last delivery.
func (e *suiteEnv) e2e(ctx context.Context, asynq bool) (e2eResult, error) {
	var out e2eResult
	st, err := e.newStack(ctx)
	if err != nil {
		return out, err
	}
	defer st.stop()
	if asynq {
		if err := st.startAsynqIngest(); err != nil {
			return out, err
		}
		if err := st.startAsynqWorkers(e.c); err != nil {
			return out, err
		}
	} else if err := st.startDev(ctx, e.forwardConfig(st.sink.url, e.c)); err != nil {
		return out, err
	}
	before, err := st.redis.commands(ctx)
	if err != nil {
		return out, err
	}
	server0, redis0, cpuErr := st.cpuSnapshot(ctx)
	w := newWorkload("t", codeForward, e.keys, e.n)
	res, err := st.send(ctx, w, e.c)
	if err != nil {
		return out, err
	}
	if err := st.awaitDelivered(ctx, res); err != nil {
		return out, err
	}
	server1, redis1, err := st.cpuSnapshot(ctx)
	if cpuErr == nil && err == nil {
		n := time.Duration(max(len(res.acceptedIDs()), 1))
		out.serverCPU, out.redisCPU = (server1-server0)/n, (redis1-redis0)/n
	}
	after, err := st.redis.commands(ctx)
	if err != nil {
		return out, err
	}
	if e.verbose {
		st.redis.printCommandStats(ctx, len(res.acceptedIDs()))
	}
	out.send, out.rep = res, analyze(res, st.sink)
	if e.verbose {
		printTimeline(res, st.sink)
	}
	out.itemsPerSec = perSec(out.rep.delivered, out.rep.last.Sub(res.start))
	out.cmdsPerItem = float64(after-before) / float64(max(out.rep.delivered, 1))
	out.p50, out.p99 = quantiles(res.latencies())
	return out, nil
}

// rawQueue runs the raw RPUSH+LPOP queue on a fresh redis-server.
func (e *suiteEnv) rawQueue(ctx context.Context, n int, prefill bool) (rawPipelineResult, error) {
	r, err := startRedis(ctx)
	if err != nil {
		return rawPipelineResult{}, err
	}
	defer r.stop()
	w := newWorkload("raw", codeForward, 1, 1)
	return rawPipeline(ctx, r, n, e.c, w.body(0, 0), prefill)
}

// throughput is figure 1.
func (e *suiteEnv) throughput(ctx context.Context) error {
	h, err := e.e2e(ctx, false)
	if err != nil {
		return fmt.Errorf("hookline: %w", err)
	}
	a, err := e.e2e(ctx, true)
	if err != nil {
		return fmt.Errorf("asynq: %w", err)
	}

	// The floor of ingest: one RPUSH per request.
	r, err := startRedis(ctx)
	if err != nil {
		return err
	}
	ri, err := startRawIngest(r.addr, e.c+8)
	if err != nil {
		r.stop()
		return err
	}
	snd := newSender(ri.url, e.secret, e.c)
	raw, err := snd.send(ctx, newWorkload("t", codeForward, e.keys, e.n))
	snd.close()
	ri.stop()
	r.stop()
	if err != nil {
		return fmt.Errorf("raw ingest: %w", err)
	}
	rawP50, _ := quantiles(raw.latencies())

	q, err := e.rawQueue(ctx, e.n, false)
	if err != nil {
		return fmt.Errorf("raw queue: %w", err)
	}
	qps := perSec(q.items, q.elapsed)
	qcmds := float64(q.commands) / float64(q.items)

	e.add(
		row{fig: 1, name: "accepted webhooks/s", unit: perSecond, hook: h.send.acceptedPerSec(), baseName: "asynq", base: a.send.acceptedPerSec()},
		row{fig: 1, name: "accepted webhooks/s", unit: perSecond, hook: h.send.acceptedPerSec(), baseName: "raw RPUSH handler", base: raw.acceptedPerSec()},
		row{fig: 1, name: "accept latency p50", unit: millis, hook: h.p50, baseName: "asynq", base: a.p50},
		row{fig: 1, name: "accept latency p50", unit: millis, hook: h.p50, baseName: "raw RPUSH handler", base: rawP50},
		row{fig: 1, name: "accept latency p99", unit: millis, hook: h.p99, baseName: "asynq", base: a.p99},
		row{fig: 1, name: "end-to-end items/s (forward)", unit: perSecond, hook: h.itemsPerSec, baseName: "asynq", base: a.itemsPerSec},
		row{fig: 1, name: "end-to-end items/s (forward)", unit: perSecond, hook: h.itemsPerSec, baseName: "raw RPUSH+LPOP", base: qps},
		row{fig: 1, name: "keys out of order", unit: count, hook: float64(h.rep.outOfOrder), baseName: "asynq", base: float64(a.rep.outOfOrder), noRatio: true},
		row{fig: 1, name: "lost (never delivered)", unit: count, hook: float64(h.rep.lost), baseName: "asynq", base: float64(a.rep.lost), noRatio: true},
		row{fig: 1, name: "Redis commands/item", unit: decimal, hook: h.cmdsPerItem, baseName: "asynq", base: a.cmdsPerItem},
		row{fig: 1, name: "Redis commands/item", unit: decimal, hook: h.cmdsPerItem, baseName: "raw RPUSH+LPOP", base: qcmds},
		row{fig: 1, name: "CPU/item: pipeline processes", unit: micros, hook: us(h.serverCPU), baseName: "asynq", base: us(a.serverCPU)},
		row{fig: 1, name: "CPU/item: redis-server", unit: micros, hook: us(h.redisCPU), baseName: "asynq", base: us(a.redisCPU)},
		row{fig: 1, name: "CPU/item: both", unit: micros, hook: us(h.serverCPU + h.redisCPU), baseName: "asynq", base: us(a.serverCPU + a.redisCPU)},
	)
	e.note("1 throughput: hookline/asynq = %.2fx end to end (%s vs %s), %.2fx accepted (%s vs %s); out of order %d vs %d keys of %d; lost %d vs %d",
		h.itemsPerSec/a.itemsPerSec, perSecond.format(h.itemsPerSec), perSecond.format(a.itemsPerSec),
		h.send.acceptedPerSec()/a.send.acceptedPerSec(), perSecond.format(h.send.acceptedPerSec()), perSecond.format(a.send.acceptedPerSec()),
		h.rep.outOfOrder, a.rep.outOfOrder, e.keys, h.rep.lost, a.rep.lost)
	return nil
}

// noop is figure 2: hookline with the log handler, logging nothing
// (--quiet), against the raw queue.
func (e *suiteEnv) noop(ctx context.Context) error {
	st, err := e.newStack(ctx)
	if err != nil {
		return err
	}
	cfg := hooklineConfig{
		lanes:  []lane{{"quick", e.c}},
		routes: []route{{code: codeLog, lane: "quick", handler: "log"}},
		poll:   e.poll,
	}
	err = st.startDev(ctx, cfg)
	var res *sendResult
	var end time.Time
	var before, after int64
	if err == nil {
		before, err = st.redis.commands(ctx)
	}
	if err == nil {
		res, err = st.send(ctx, newWorkload("t", codeLog, e.keys, e.n), e.c)
	}
	if err == nil {
		end, err = waitUntil(ctx, 10*time.Millisecond, e.stall, func() (int64, bool) {
			s, serr := st.dev.stats(ctx)
			if serr != nil {
				return -1, false
			}
			return s.ItemsHandled, s.ItemsHandled >= int64(res.accepted)
		})
		if err != nil {
			err = errors.Join(err, st.dev.alive())
		}
	}
	if err == nil {
		after, err = st.redis.commands(ctx)
	}
	st.stop()
	if err != nil {
		return fmt.Errorf("hookline: %w", err)
	}
	hps := perSec(res.accepted, end.Sub(res.start))
	hcmds := float64(after-before) / float64(res.accepted)

	q, err := e.rawQueue(ctx, e.n, false)
	if err != nil {
		return fmt.Errorf("raw queue: %w", err)
	}
	qps := perSec(q.items, q.elapsed)
	e.add(
		row{fig: 2, name: "end-to-end items/s (no-op handler)", unit: perSecond, hook: hps, baseName: "raw RPUSH+LPOP", base: qps},
		row{fig: 2, name: "Redis commands/item (no-op handler)", unit: decimal, hook: hcmds, baseName: "raw RPUSH+LPOP", base: float64(q.commands) / float64(q.items)},
	)
	e.note("2 no-op: hookline %s end to end = %.2fx the raw RPUSH+LPOP queue (%s)", perSecond.format(hps), hps/qps, perSecond.format(qps))
	return nil
}

// backlogRun queues w with dev --ingest-only, then drains it with a second
// dev, and reports the drain.
type backlogRun struct {
	res        *sendResult
	rep        deliveryReport
	stats      devStats
	commands   int64
	drainStart time.Time
}

func (e *suiteEnv) backlogDrain(ctx context.Context, w *workload, conc int) (backlogRun, error) {
	var out backlogRun
	st, err := e.newStack(ctx)
	if err != nil {
		return out, err
	}
	defer st.stop()
	cfg := e.forwardConfig(st.sink.url, e.c)
	if err := st.startDev(ctx, cfg, "--ingest-only"); err != nil {
		return out, err
	}
	if out.res, err = st.send(ctx, w, conc); err != nil {
		return out, err
	}
	st.dev.stop()
	st.dev = nil
	before, err := st.redis.commands(ctx)
	if err != nil {
		return out, err
	}
	if err := st.startDev(ctx, cfg); err != nil {
		return out, err
	}
	out.drainStart = time.Now()
	if err := st.awaitDelivered(ctx, out.res); err != nil {
		return out, err
	}
	if out.stats, err = st.dev.stats(ctx); err != nil {
		return out, err
	}
	after, err := st.redis.commands(ctx)
	if err != nil {
		return out, err
	}
	out.commands = after - before
	out.rep = analyze(out.res, st.sink)
	return out, nil
}

// Targets of the engine, per handled item in a backlog drain.
const (
	targetRoundTrips = 1.2
	targetCommands   = 8
)

// backlog is figure 3.
func (e *suiteEnv) backlog(ctx context.Context) error {
	b, err := e.backlogDrain(ctx, newWorkload("t", codeForward, e.keys, e.n), e.c)
	if err != nil {
		return fmt.Errorf("hookline: %w", err)
	}
	n := float64(max(b.rep.delivered, 1))
	trips := float64(b.stats.RedisRoundTrips) / n
	cmds := float64(b.commands) / n
	drainPS := perSec(b.rep.delivered, b.rep.last.Sub(b.drainStart))

	q, err := e.rawQueue(ctx, e.n, true)
	if err != nil {
		return fmt.Errorf("raw queue: %w", err)
	}
	qps := perSec(q.items, q.elapsed)
	e.add(
		row{fig: 3, name: "Redis round trips/handled item (backlog)", unit: decimal, hook: trips, baseName: "target", base: targetRoundTrips},
		row{fig: 3, name: "Redis round trips/handled item (backlog)", unit: decimal, hook: trips, baseName: "raw LPOP drain", base: float64(q.roundTrips) / float64(q.items)},
		row{fig: 3, name: "Redis commands/handled item (backlog)", unit: decimal, hook: cmds, baseName: "target", base: targetCommands},
		row{fig: 3, name: "Redis commands/handled item (backlog)", unit: decimal, hook: cmds, baseName: "raw LPOP drain", base: float64(q.commands) / float64(q.items)},
		row{fig: 3, name: "backlog drain items/s (forward)", unit: perSecond, hook: drainPS, baseName: "raw LPOP drain", base: qps},
		row{fig: 3, name: "lost in the backlog drain", unit: count, hook: float64(b.rep.lost), baseName: "ideal", base: 0, noRatio: true},
	)
	e.note("3 backlog: %.2f round trips/item (target <= %.1f: %s), %.2f commands/item (target <= %d: %s), %d drains for %d items; queued by an ingest-only dev at %s",
		trips, targetRoundTrips, met(trips <= targetRoundTrips), cmds, targetCommands, met(cmds <= targetCommands), b.stats.DrainInvocations, b.rep.delivered,
		perSecond.format(b.res.acceptedPerSec()))
	return nil
}

// met words a target check.
func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// invocations is figure 4.
func (e *suiteEnv) invocations(ctx context.Context) error {
	// Trickle: one webhook every few milliseconds, round the keys.
	st, err := e.newStack(ctx)
	if err != nil {
		return err
	}
	w := newWorkload("t", codeForward, e.trickleKeys, e.trickleN)
	w.interval = e.trickleEvery
	var stats devStats
	err = st.startDev(ctx, e.forwardConfig(st.sink.url, e.c))
	var res *sendResult
	if err == nil {
		res, err = st.send(ctx, w, 1)
	}
	if err == nil {
		err = st.awaitDelivered(ctx, res)
	}
	if err == nil {
		stats, err = st.dev.stats(ctx)
	}
	var trickleRep deliveryReport
	if err == nil {
		trickleRep = analyze(res, st.sink)
	}
	st.stop()
	if err != nil {
		return fmt.Errorf("trickle: %w", err)
	}
	tricklePer := 1000 * float64(stats.DrainInvocations) / float64(max(trickleRep.delivered, 1))

	b, err := e.backlogDrain(ctx, newWorkload("t", codeForward, e.trickleKeys, e.trickleN), e.c)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	backlogPer := 1000 * float64(b.stats.DrainInvocations) / float64(max(b.rep.delivered, 1))

	floor := 1000 * float64(e.trickleKeys) / float64(e.trickleN)
	e.add(
		row{fig: 4, name: fmt.Sprintf("drains/1,000 webhooks, trickle (1 per %s)", e.trickleEvery), unit: count, hook: tricklePer, baseName: "1 per key", base: floor},
		row{fig: 4, name: "drains/1,000 webhooks, backlog", unit: count, hook: backlogPer, baseName: "1 per key", base: floor},
	)
	e.note("4 drains per 1,000 webhooks on %d keys: trickle %.0f, backlog %.0f (floor, one per key: %.0f)", e.trickleKeys, tricklePer, backlogPer, floor)
	return nil
}

// coldWaits runs the cold-key scenario once on hookline or asynq, behind a
// hot key or not, and returns each cold key's wait from the 202 of its first
// webhook to its first delivery.
func (e *suiteEnv) coldWaits(ctx context.Context, asynq, hot bool) ([]time.Duration, error) {
	st, err := e.newStack(ctx)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	cfg := e.forwardConfig(st.sink.url, e.coldLane)
	hotW := &workload{run: newRun(), keys: []keySpec{{tenant: "hot", code: codeForward}}, counts: []int{e.hot}}
	// Queue the hot key's backlog first, with nothing draining.
	if asynq {
		err = st.startAsynqIngest()
	} else {
		err = st.startDev(ctx, cfg, "--ingest-only")
	}
	if err != nil {
		return nil, err
	}
	if hot {
		if _, err := st.send(ctx, hotW, e.c); err != nil {
			return nil, fmt.Errorf("hot key: %w", err)
		}
	}
	// Start draining, and wait until the hot key is being worked.
	if asynq {
		err = st.startAsynqWorkers(e.coldLane)
	} else {
		err = st.startDev(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if hot {
		if _, err := waitUntil(ctx, 5*time.Millisecond, e.stall, func() (int64, bool) {
			return 0, st.sink.delivered(hotW.run) > 0
		}); err != nil {
			return nil, fmt.Errorf("hot key's first delivery: %w", err)
		}
	}
	cold := newWorkload("c", codeForward, e.coldKeys, e.coldKeys*e.coldPerKey)
	res, err := st.send(ctx, cold, e.c)
	if err != nil {
		return nil, err
	}
	if err := st.awaitDelivered(ctx, res); err != nil {
		return nil, err
	}
	rep := analyze(res, st.sink)
	var waits []time.Duration
	missing := 0
	for k := range cold.keys {
		if rep.firstOfKey[k].IsZero() {
			missing++
			continue
		}
		waits = append(waits, max(rep.firstOfKey[k].Sub(res.recs[k][0].done), 0))
	}
	if missing > 0 {
		e.note("  %d cold keys never delivered", missing)
	}
	return waits, nil
}

// cold is figure 5.
func (e *suiteEnv) cold(ctx context.Context) error {
	type run struct {
		asynq, hot bool
		p50, p99   float64
	}
	runs := []*run{{false, false, 0, 0}, {true, false, 0, 0}, {false, true, 0, 0}, {true, true, 0, 0}}
	for _, r := range runs {
		waits, err := e.coldWaits(ctx, r.asynq, r.hot)
		if err != nil {
			return fmt.Errorf("asynq %v, hot key %v: %w", r.asynq, r.hot, err)
		}
		r.p50, r.p99 = quantiles(waits)
	}
	hotName := fmt.Sprintf("behind a %s-item hot key", thousands(int64(e.hot)))
	e.add(
		row{fig: 5, name: "cold key first-item wait p50, alone", unit: millis, hook: runs[0].p50, baseName: "asynq", base: runs[1].p50},
		row{fig: 5, name: "cold key first-item wait p99, alone", unit: millis, hook: runs[0].p99, baseName: "asynq", base: runs[1].p99},
		row{fig: 5, name: "cold key first-item wait p50, " + hotName, unit: millis, hook: runs[2].p50, baseName: "asynq", base: runs[3].p50},
		row{fig: 5, name: "cold key first-item wait p99, " + hotName, unit: millis, hook: runs[2].p99, baseName: "asynq", base: runs[3].p99},
	)
	e.note("5 cold keys (%dx%d, lane of %d): p99 wait alone %s vs asynq %s; %s %s vs asynq %s",
		e.coldKeys, e.coldPerKey, e.coldLane, ms(runs[0].p99), ms(runs[1].p99), hotName, ms(runs[2].p99), ms(runs[3].p99))
	return nil
}

// idleLatency sends e.idleN single webhooks, each to a key of its own, one
// every e.idleEvery, to an idle pipeline, and returns 202-to-sink latencies.
func (e *suiteEnv) idleLatency(ctx context.Context, asynq bool) ([]time.Duration, error) {
	st, err := e.newStack(ctx)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	if asynq {
		if err = st.startAsynqIngest(); err == nil {
			err = st.startAsynqWorkers(e.c)
		}
	} else {
		err = st.startDev(ctx, e.forwardConfig(st.sink.url, e.c))
	}
	if err != nil {
		return nil, err
	}
	// Let the pipeline settle into its idle loop.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(max(2*e.poll, time.Second)):
	}
	w := newWorkload("i", codeForward, e.idleN, e.idleN)
	w.interval = e.idleEvery
	res, err := st.send(ctx, w, 1)
	if err != nil {
		return nil, err
	}
	if err := st.awaitDelivered(ctx, res); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for k := range w.keys {
		if d, ok := st.sink.firstDelivery(w.id(k, 0)); ok {
			lat = append(lat, max(d.at.Sub(res.recs[k][0].done), 0))
		}
	}
	return lat, nil
}

// idle is figure 6.
func (e *suiteEnv) idle(ctx context.Context) error {
	h, err := e.idleLatency(ctx, false)
	if err != nil {
		return fmt.Errorf("hookline: %w", err)
	}
	a, err := e.idleLatency(ctx, true)
	if err != nil {
		return fmt.Errorf("asynq: %w", err)
	}
	hp50, hp99 := quantiles(h)
	ap50, ap99 := quantiles(a)
	e.add(
		row{fig: 6, name: "idle dispatch 202 -> sink p50", unit: millis, hook: hp50, baseName: "asynq", base: ap50},
		row{fig: 6, name: "idle dispatch 202 -> sink p99", unit: millis, hook: hp99, baseName: "asynq", base: ap99},
	)
	e.note("6 idle dispatch (poll %s): p50 %s vs asynq %s, p99 %s vs asynq %s", e.poll, ms(hp50), ms(ap50), ms(hp99), ms(ap99))
	return nil
}

// queuedBytes queues e.n webhooks on e.keys keys, with nothing draining, in
// hookline (dev --ingest-only) or asynq (enqueued, no server), and returns
// Redis's used_memory growth per item minus the body.
func (e *suiteEnv) queuedBytes(ctx context.Context, asynq bool) (float64, error) {
	st, err := e.newStack(ctx)
	if err != nil {
		return 0, err
	}
	defer st.stop()
	if asynq {
		err = st.startAsynqIngest()
	} else {
		err = st.startDev(ctx, e.forwardConfig(st.sink.url, e.c), "--ingest-only")
	}
	if err != nil {
		return 0, err
	}
	// A first round opens every connection, so that their buffers are in
	// the baseline, not in the growth.
	if _, err := st.send(ctx, newWorkload("warm", codeForward, e.c, 4*e.c), e.c); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	before, err := st.redis.usedMemory(ctx)
	if err != nil {
		return 0, err
	}
	res, err := st.send(ctx, newWorkload("t", codeForward, e.keys, e.n), e.c)
	if err != nil {
		return 0, err
	}
	after, err := st.redis.usedMemory(ctx)
	if err != nil {
		return 0, err
	}
	return float64(after-before)/float64(res.accepted) - bodySize, nil
}

// rawBytes pushes e.n bodies onto one list per key and returns the growth
// per item minus the body. The pushes go through a connection of their own,
// closed before the second measurement, so that its query buffer is not
// counted.
func (e *suiteEnv) rawBytes(ctx context.Context) (float64, error) {
	r, err := startRedis(ctx)
	if err != nil {
		return 0, err
	}
	defer r.stop()
	before, err := r.usedMemory(ctx)
	if err != nil {
		return 0, err
	}
	w := newWorkload("t", codeForward, e.keys, e.n)
	pusher := redis.NewClient(&redis.Options{Addr: r.addr, PoolSize: 1})
	pipe := pusher.Pipeline()
	for k, c := range w.counts {
		for seq := range c {
			pipe.RPush(ctx, "raw:{"+w.keys[k].name()+"}", w.body(k, seq))
			if pipe.Len() >= 100 {
				if _, err := pipe.Exec(ctx); err != nil {
					_ = pusher.Close()
					return 0, err
				}
			}
		}
	}
	_, err = pipe.Exec(ctx)
	_ = pusher.Close()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	if _, err := waitUntil(ctx, 5*time.Millisecond, 5*time.Second, func() (int64, bool) {
		n, err := r.infoInt(ctx, "clients", "connected_clients")
		return n, err == nil && n <= 1
	}); err != nil {
		return 0, fmt.Errorf("waiting for the pushing connection to close: %w", err)
	}
	after, err := r.usedMemory(ctx)
	if err != nil {
		return 0, err
	}
	return float64(after-before)/float64(w.total()) - bodySize, nil
}

// memory is figure 7.
func (e *suiteEnv) memory(ctx context.Context) error {
	h, err := e.queuedBytes(ctx, false)
	if err != nil {
		return fmt.Errorf("hookline: %w", err)
	}
	a, err := e.queuedBytes(ctx, true)
	if err != nil {
		return fmt.Errorf("asynq: %w", err)
	}
	raw, err := e.rawBytes(ctx)
	if err != nil {
		return fmt.Errorf("raw: %w", err)
	}
	name := fmt.Sprintf("Redis bytes/queued item beyond a %d B body", bodySize)
	e.add(
		row{fig: 7, name: name, unit: bytesUnit, hook: h, baseName: "asynq (enqueued)", base: a},
		row{fig: 7, name: name, unit: bytesUnit, hook: h, baseName: "raw RPUSH, list per key", base: raw},
	)
	e.note("7 memory: %.0f B per queued item beyond the body vs asynq %.0f B, raw list %.0f B", h, a, raw)
	return nil
}

// rate is figure 8.
// maxRateWait is hookline's default drain.max_rate_wait (ms): the longest a
// drain chooses to sleep for a rate-limit slot; a later slot yields the key.
const maxRateWait = 50.0

func (e *suiteEnv) rate(ctx context.Context) error {
	st, err := e.newStack(ctx)
	if err != nil {
		return err
	}
	defer st.stop()
	const perSecondLimit = 2
	codes := []string{"rate.a", "rate.b", "rate.c"}
	cfg := hooklineConfig{lanes: []lane{{"quick", 8}}, poll: e.poll}
	w := &workload{run: newRun(), ordered: true}
	for _, c := range codes {
		cfg.routes = append(cfg.routes, route{code: c, lane: "quick", handler: "forward", url: st.sink.url, rate: fmt.Sprintf("%d/s", perSecondLimit)})
		w.keys = append(w.keys, keySpec{tenant: "rated", code: c})
		// More than the limit lets through in the whole run, on each key.
		w.counts = append(w.counts, perSecondLimit*e.rateSeconds+10)
	}
	if err := st.startDev(ctx, cfg, "--ingest-only"); err != nil {
		return err
	}
	if _, err := st.send(ctx, w, len(codes)); err != nil {
		return err
	}
	if err := st.startDev(ctx, cfg); err != nil {
		return err
	}
	if _, err := waitUntil(ctx, 5*time.Millisecond, e.stall, func() (int64, bool) {
		return 0, st.sink.delivered(w.run) > 0
	}); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	t0 := st.sink.snapshot()[0].at
	window := time.Duration(e.rateSeconds) * time.Second
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t0.Add(window))):
	}
	var at []time.Time
	for _, d := range st.sink.snapshot() {
		if d.at.Before(t0.Add(window)) {
			at = append(at, d.at)
		}
	}
	violations := 0
	for i := 0; i+perSecondLimit < len(at); i++ {
		if at[i+perSecondLimit].Sub(at[i]) < time.Second {
			violations++
		}
	}
	ideal := float64(perSecondLimit * e.rateSeconds)
	util := 100 * float64(len(at)) / ideal
	// The drains that ended by now (each ends when its keys are all
	// throttled or it runs out of time) say how long they slept.
	stats, err := st.dev.stats(ctx)
	if err != nil {
		return err
	}
	e.add(
		row{fig: 8, name: fmt.Sprintf("calls at the sink in %ds (2/s, 3 keys)", e.rateSeconds), unit: count, hook: float64(len(at)), baseName: "ideal 2/s", base: ideal},
		row{fig: 8, name: "1 s windows with more than 2 calls", unit: count, hook: float64(violations), baseName: "ideal", base: 0, noRatio: true},
		row{fig: 8, name: "rate-limit utilisation", unit: percent, hook: util, baseName: "ideal", base: 100},
		row{fig: 8, name: "longest rate-limit sleep of a drain", unit: millis, hook: stats.RateWaitMaxMs, baseName: "bound max_rate_wait", base: maxRateWait},
	)
	e.note("8 rate 2/s over %ds: %d calls, %d violations, utilisation %.0f%%; longest sleep for a slot %.1f ms (bound %.0f ms)",
		e.rateSeconds, len(at), violations, math.Round(util), stats.RateWaitMaxMs, maxRateWait)
	return nil
}

// printTimeline says when the sending ended and when 50%, 90%, 99% and all
// of the items had been delivered, from the first send: where an
// end-to-end figure's time went.
func printTimeline(res *sendResult, s *sink) {
	seen := map[string]bool{}
	var at []time.Duration
	for _, d := range s.snapshot() {
		if !seen[d.id] {
			seen[d.id] = true
			at = append(at, d.at.Sub(res.start))
		}
	}
	if len(at) == 0 {
		return
	}
	slices.Sort(at)
	q := func(f float64) time.Duration {
		return at[min(int(f*float64(len(at))), len(at)-1)].Round(time.Millisecond)
	}
	sent := res.end.Sub(res.start)
	early, _ := slices.BinarySearch(at, sent)
	last := at[len(at)-1]
	fmt.Printf("  timeline: sent by %v, %d delivered by then; delivered 50%% by %v, 90%% by %v, 99%% by %v, all by %v; after the sending %s\n",
		sent.Round(time.Millisecond), early, q(0.5), q(0.9), q(0.99), last.Round(time.Millisecond), perSecond.format(perSec(len(at)-early, last-sent)))
}
