package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// scriptCounter is a go-redis hook that counts the script commands a
// client sends, pipelined or not, and can refuse SCRIPT LOAD the way a proxy
// that does not forward it to every backend would leave it without effect.
type scriptCounter struct {
	mu         sync.Mutex
	n          map[string]int // "evalsha", "eval", "script load"
	refuseLoad bool
}

func (c *scriptCounter) count(cmd redis.Cmder) {
	name := cmd.Name()
	if name == "script" {
		name += " " + strings.ToLower(fmt.Sprint(cmd.Args()[1]))
	}
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

func (c *scriptCounter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *scriptCounter) reset(refuseLoad bool) {
	c.mu.Lock()
	c.n, c.refuseLoad = map[string]int{}, refuseLoad
	c.mu.Unlock()
}

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count(cmd)
		c.mu.Lock()
		refuse := c.refuseLoad
		c.mu.Unlock()
		if refuse && cmd.Name() == "script" {
			cmd.SetErr(errors.New("ERR SCRIPT LOAD refused by the test"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}

func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// evalCalls returns the EVAL calls every master has served so far
// (INFO commandstats, cmdstat_eval).
func evalCalls(t *testing.T, rdb redis.UniversalClient) int {
	t.Helper()
	var mu sync.Mutex
	total := 0
	read := func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		for line := range strings.Lines(info) {
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_eval:calls=")
			if !ok {
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			v, err := strconv.Atoi(calls)
			if err != nil {
				return fmt.Errorf("cmdstat_eval %q: %w", line, err)
			}
			mu.Lock()
			total += v
			mu.Unlock()
		}
		return nil
	}
	var err error
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(context.Background(), read)
	} else {
		err = read(context.Background(), rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	return total
}

// flushScripts empties the script cache of every master.
func flushScripts(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	var err error
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.ScriptFlush(ctx).Err() })
	} else {
		err = rdb.ScriptFlush(ctx).Err()
	}
	if err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
}

// TestPipelineNoScriptFallsBackToEval: a pipelined EVALSHA that meets
// NOSCRIPT (the script cache was flushed, as after a restart or failover,
// or a Serverless backend never got SCRIPT LOAD) runs again as EVAL with
// the script's source, and the script is loaded for next time. Counted on
// both sides: a client hook sees one EVAL per refused call, and the servers'
// cmdstat_eval grows by as much. With SCRIPT LOAD refused, pipelines still
// work. Not parallel: it flushes the script cache of the shared servers and
// reads their command counters.
func TestPipelineNoScriptFallsBackToEval(t *testing.T) {
	redistest.Each(t, func(t *testing.T, shared redis.UniversalClient) {
		// A client of its own to the same servers, so the hook sees only
		// this test's commands.
		var rdb redis.UniversalClient
		switch c := shared.(type) {
		case *redis.ClusterClient:
			rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Options().Addrs, DisableIdentity: true})
		case *redis.Client:
			rdb = redis.NewClient(&redis.Options{Addr: c.Options().Addr, DisableIdentity: true})
		}
		t.Cleanup(func() { _ = rdb.Close() })
		hook := &scriptCounter{n: map[string]int{}}
		rdb.AddHook(hook)
		f := setup(t, rdb)

		batch := func(round string) int {
			t.Helper()
			var entries []Entry
			shards := map[int]bool{}
			for i := range 40 {
				key := fmt.Sprintf("r%d:c", i)
				shards[f.e.shard(key)] = true
				entries = append(entries, Entry{Lane: "quick", Item: f.item(key, round)})
			}
			res, err := f.e.EnqueueBatch(f.ctx, entries)
			if err != nil {
				t.Fatalf("%s: enqueue: %v", round, err)
			}
			for _, r := range res {
				if !r.New {
					t.Fatalf("%s: %s was not stored: %+v", round, r.Key, r)
				}
			}
			return len(shards) // one script call per shard
		}

		// Scripts loaded: EVALSHA only.
		if err := f.e.LoadScripts(f.ctx); err != nil {
			t.Fatal(err)
		}
		hook.reset(false)
		calls := batch("a")
		if calls < 2 || hook.get("evalsha") != calls || hook.get("eval") != 0 {
			t.Fatalf("loaded scripts: %d calls, hook saw %v; want %d EVALSHA and no EVAL", calls, hook.n, calls)
		}

		// Flushed: every call meets NOSCRIPT and runs again as EVAL.
		flushScripts(t, shared)
		hook.reset(false)
		before := evalCalls(t, shared)
		calls = batch("b")
		served := evalCalls(t, shared) - before
		t.Logf("after SCRIPT FLUSH: %d pipelined calls; client sent %d EVALSHA, %d EVAL, %d SCRIPT LOAD; servers ran %d EVAL",
			calls, hook.get("evalsha"), hook.get("eval"), hook.get("script load"), served)
		if hook.get("evalsha") != calls || hook.get("eval") != calls || served != calls {
			t.Fatalf("after flush: %d calls; client %v, servers ran %d EVAL; want %d EVALSHA then %d EVAL", calls, hook.n, served, calls, calls)
		}
		if hook.get("script load") != 1 {
			t.Fatalf("the missing script was loaded %d times, want once (best effort, for next time)", hook.get("script load"))
		}

		// Loaded again for next time: EVALSHA alone succeeds.
		hook.reset(false)
		before = evalCalls(t, shared)
		calls = batch("c")
		if hook.get("eval") != 0 || evalCalls(t, shared) != before {
			t.Fatalf("after the reload: %d calls, client %v; want no EVAL", calls, hook.n)
		}

		// The claim pipeline falls back the same way.
		flushScripts(t, shared)
		hook.reset(false)
		before = evalCalls(t, shared)
		ls, err := f.e.Claim(f.ctx, "quick", 40)
		if err != nil || len(ls) != 40 {
			t.Fatalf("claim after flush: %d leases, %v", len(ls), err)
		}
		if served := evalCalls(t, shared) - before; hook.get("eval") != calls || served != calls {
			t.Fatalf("claim after flush: client %v, servers ran %d EVAL; want %d", hook.n, served, calls)
		}

		// SCRIPT LOAD without effect (refused here): pipelines still work.
		flushScripts(t, shared)
		hook.reset(true)
		calls = batch("d")
		if hook.get("eval") != calls || hook.get("script load") != 1 {
			t.Fatalf("with SCRIPT LOAD refused: %d calls, client %v", calls, hook.n)
		}
	})
}
