package deploy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/app"
	"github.com/hookline/hookline/internal/config"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// appUserAccess returns the AccessString of the created cache's application
// user, CacheAppUser, with ${KeyPrefix} still in it.
func appUserAccess(t *testing.T) string {
	t.Helper()
	n := get(loadTemplate(t), "Resources", "CacheAppUser", "Properties", "AccessString")
	fn, arg, _ := intrinsic(n)
	if fn != "Fn::Sub" || arg.Kind != yaml.ScalarNode {
		t.Fatalf("CacheAppUser AccessString %s: want !Sub \"on ~${KeyPrefix}:* ...\"", describe(n))
	}
	return strings.Join(strings.Fields(arg.Value), " ")
}

// TestTemplateCacheUserAccess checks item 9 of issue 8 on the template: the
// application user may touch keys under KeyPrefix only (the prefix the
// functions run with), starts from no command, and holds nothing @dangerous
// (FLUSHALL, FLUSHDB, CONFIG, KEYS, DEBUG, SHUTDOWN, ...).
func TestTemplateCacheUserAccess(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	rules := strings.Fields(appUserAccess(t))
	if len(rules) < 3 || rules[0] != "on" || rules[1] != "~${KeyPrefix}:*" || rules[2] != "-@all" {
		t.Fatalf("CacheAppUser AccessString %q: want it to start with \"on ~${KeyPrefix}:* -@all\"", strings.Join(rules, " "))
	}
	lastGrant, dangerous := -1, -1
	for i, r := range rules[1:] {
		i++
		switch {
		case i > 1 && (strings.HasPrefix(r, "~") || strings.HasPrefix(r, "%") || r == "allkeys" || r == "resetkeys"):
			t.Fatalf("CacheAppUser AccessString: %q: one key pattern only, ~${KeyPrefix}:*", r)
		case r == "+@all" || r == "allcommands" || r == "+@dangerous" || r == "+@admin":
			t.Fatalf("CacheAppUser AccessString: %q grants what the application must not have", r)
		case r == "-@dangerous":
			dangerous = i
		case strings.HasPrefix(r, "+@"):
			lastGrant = i
		case strings.HasPrefix(r, "&") || r == "allchannels":
			t.Fatalf("CacheAppUser AccessString: %q: the engine uses no Pub/Sub channel", r)
		}
	}
	if dangerous < 0 || dangerous < lastGrant {
		t.Fatalf("CacheAppUser AccessString %q: want -@dangerous after the last +@category", strings.Join(rules, " "))
	}

	// KeyPrefix takes what internal/config accepts as a prefix, nothing that
	// would be a pattern, and is what the functions run with.
	pattern, _ := str(get(root, "Parameters", "KeyPrefix", "AllowedPattern"))
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("parameter KeyPrefix: AllowedPattern %q: %v", pattern, err)
	}
	for v, ok := range map[string]bool{"hl": true, "hook_2-b": true, strings.Repeat("a", 32): true,
		"": false, "Hl": false, "a:b": false, "a*": false, "a?": false, "[a]": false, strings.Repeat("a", 33): false} {
		if re.MatchString(v) != ok {
			t.Fatalf("parameter KeyPrefix: AllowedPattern %q accepts %q: %v, want %v", pattern, v, !ok, ok)
		}
		if _, err := config.Parse([]byte(fmt.Sprintf("prefix: %q\ntenant: /data/customer_id\nlanes: {quick: {}}\nroutes: {a: {lane: quick, handler: log}}\nverify: none\n", v)), nil); ok && err != nil {
			t.Fatalf("parameter KeyPrefix accepts %q, which internal/config refuses: %v", v, err)
		}
	}
	user, err := openTemplate(t).GetElastiCacheUserWithName("CacheAppUser")
	if err != nil || user.AccessString == nil {
		t.Fatalf("goformation: CacheAppUser: %v", err)
	}
	if def, _ := str(get(root, "Parameters", "KeyPrefix", "Default")); *user.AccessString != strings.ReplaceAll(strings.Join(rules, " "), "${KeyPrefix}", def) {
		t.Fatalf("goformation: CacheAppUser AccessString %q, want the template's with KeyPrefix %q", *user.AccessString, def)
	}
	if mode, _ := str(get(root, "Resources", "CacheAppUser", "Properties", "AuthenticationMode", "Type")); mode != "iam" {
		t.Fatalf("CacheAppUser AuthenticationMode.Type %q, want iam", mode)
	}
}

// TestCacheUserRunsTheEngine runs hookline as the cache's application user
// would, on a real Redis (standalone and cluster): a user is created with
// CacheAppUser's access rules from template.yaml, and ingest, the scheduler
// (singleton, wake signal, slots), drains (log and forward routes, a rate
// limit, a dead letter) and the operator reads and redrive work through it.
// Then it checks that the user is refused keys outside its prefix and
// dangerous commands. ElastiCache applies the same Valkey/Redis ACL rules;
// this is as close to the cache as a test here gets.
func TestCacheUserRunsTheEngine(t *testing.T) {
	t.Parallel()
	access := appUserAccess(t)
	redistest.Each(t, func(t *testing.T, admin redis.UniversalClient) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		prefix := redistest.Prefix(t)
		user, pass := "app-"+prefix, "pw-"+prefix
		rules := strings.Fields(strings.ReplaceAll(access, "${KeyPrefix}", prefix))
		setUser := func(args ...any) error {
			if c, ok := admin.(*redis.ClusterClient); ok {
				return c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Do(ctx, args...).Err() })
			}
			return admin.Do(ctx, args...).Err()
		}
		args := []any{"ACL", "SETUSER", user, "reset", ">" + pass}
		for _, r := range rules {
			args = append(args, r)
		}
		if err := setUser(args...); err != nil {
			t.Fatalf("ACL SETUSER with the template's rules %q: %v", rules, err)
		}
		t.Cleanup(func() { _ = setUser("ACL", "DELUSER", user) })

		_, cluster := admin.(*redis.ClusterClient)
		addr := ""
		if c, ok := admin.(*redis.ClusterClient); ok {
			addr = c.Options().Addrs[0]
		} else {
			addr = admin.(*redis.Client).Options().Addr
		}
		rdb, err := app.RedisClient(config.Redis{URL: "redis://" + addr, Cluster: cluster, User: user}, app.RedisAuth{Token: pass})
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		defer rdb.Close()

		runPipelineAs(ctx, t, rdb, prefix)
		checkRefused(ctx, t, admin, rdb, user, prefix)
	})
}

// runPipelineAs runs ingest, the scheduler and drains on rdb until every
// webhook is handled, then the operator reads and a redrive.
func runPipelineAs(ctx context.Context, t *testing.T, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	var delivered atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/bad") {
			w.WriteHeader(http.StatusBadRequest) // permanent: dead-lettered
			return
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer sink.Close()

	cfg, err := config.Parse(fmt.Appendf(nil, `prefix: %s
shards: 4
tenant: /data/customer_id
verify: none
lanes:
  quick: {concurrency: 2, quantum: 2s}
  slow: {concurrency: 1, quantum: 2s}
routes:
  ok.log: {lane: quick, handler: log}
  ok.fwd: {lane: slow, handler: forward, url: %q, rate: 50/s}
  bad.fwd: {lane: quick, handler: forward, url: %q, max_attempts: 1, on_exhausted: dead-letter}
scheduler: {poll: 50ms}
`, prefix, sink.URL+"/ok", sink.URL+"/bad"), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := app.NewWith(cfg, rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("ping as the cache user: %v", err)
	}
	srv, err := a.Ingest()
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	d, err := a.Drainer(nil)
	if err != nil {
		t.Fatalf("drainer: %v", err)
	}
	async := drain.NewAsync(d)
	sched, err := a.Scheduler(async, "acl-test", nil)
	if err != nil {
		t.Fatalf("scheduler: %v", err)
	}

	post := func(id, code, tenant string) int {
		body := fmt.Sprintf(`{"code":%q,"data":{"customer_id":%q}}`, code, tenant)
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/webhooks", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	const perKey = 3
	wantDelivered := 0
	for _, code := range []string{"ok.log", "ok.fwd", "bad.fwd"} {
		for _, tenant := range []string{"t1", "t2"} {
			for i := range perKey {
				id := fmt.Sprintf("%s-%s-%d", code, tenant, i)
				if got := post(id, code, tenant); got != http.StatusAccepted {
					t.Fatalf("POST %s as the cache user: status %d, want 202", id, got)
				}
				if code == "ok.fwd" {
					wantDelivered++
				}
			}
		}
	}
	if got := post("ok.log-t1-0", "ok.log", "t1"); got != http.StatusOK {
		t.Fatalf("duplicate POST as the cache user: status %d, want 200", got)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := sched.Run(runCtx, time.Time{})
		done <- err
	}()
	idle := func() bool {
		for _, lane := range cfg.LaneNames() {
			st, err := a.Engine.Stats(ctx, lane)
			if err != nil {
				t.Fatalf("stats as the cache user: %v", err)
			}
			if st.Ready+st.Leased+st.Delayed > 0 {
				return false
			}
		}
		return delivered.Load() == int64(wantDelivered)
	}
	for !idle() {
		select {
		case err := <-done:
			t.Fatalf("scheduler stopped early: %v", err)
		case <-ctx.Done():
			t.Fatalf("webhooks not all handled as the cache user: %d of %d forwarded", delivered.Load(), wantDelivered)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil && ctx.Err() == nil && runCtx.Err() == nil {
		t.Fatalf("scheduler: %v", err)
	}
	async.Stop()
	async.Wait()

	// Operator reads and a redrive (hookline status, inspect, dlq).
	dead, err := a.Engine.DeadKeys(ctx, 10)
	if err != nil {
		t.Fatalf("dead keys as the cache user: %v", err)
	}
	if len(dead) != 2 {
		t.Fatalf("dead keys: %d, want 2 (bad.fwd of t1 and t2)", len(dead))
	}
	key := "t1:bad.fwd"
	r, err := a.Engine.Redrive(ctx, key, queue.Selection{}, queue.Change{By: "cacheuser-test", Note: "redrive as the cache user"})
	if err != nil || len(r.IDs) != perKey {
		t.Fatalf("redrive %s as the cache user: %d, %v; want %d", key, len(r.IDs), err, perKey)
	}
	if _, err := a.Engine.Inspect(ctx, key); err != nil {
		t.Fatalf("inspect %s as the cache user: %v", key, err)
	}
}

// checkRefused checks that the cache user cannot touch keys outside its
// prefix, directly or from a script, nor run dangerous commands. The
// dangerous ones are asked with ACL DRYRUN (as admin), so a broken rule
// cannot flush the shared test servers.
func checkRefused(ctx context.Context, t *testing.T, admin, rdb redis.UniversalClient, user, prefix string) {
	t.Helper()
	if err := rdb.Set(ctx, prefix+":probe", "1", time.Minute).Err(); err != nil {
		t.Fatalf("SET under the prefix: %v", err)
	}
	for _, cmd := range [][]any{
		{"SET", "other:" + prefix, "1"},
		{"GET", prefix + "x:key"},
		{"EVAL", "return redis.call('SET', KEYS[1], '1')", 1, "other:" + prefix},
		{"PUBLISH", prefix + ":chan", "x"},
	} {
		err := rdb.Do(ctx, cmd...).Err()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("%v as the cache user: %v; want NOPERM", cmd, err)
		}
	}
	for _, cmd := range [][]any{
		{"FLUSHALL"},
		{"FLUSHDB"},
		{"CONFIG", "SET", "maxmemory", "1"},
		{"KEYS", "*"},
		{"DEBUG", "SLEEP", "0"},
		{"SHUTDOWN"},
		{"CLIENT", "LIST"},
		{"CLIENT", "KILL", "ID", "1"},
		{"ACL", "SETUSER", user, "+@all"},
		{"MONITOR"},
		{"SCRIPT", "FLUSH"},
		{"SCRIPT", "KILL"},
		{"FUNCTION", "FLUSH"},
		{"CLUSTER", "RESET"},
		{"SWAPDB", "0", "1"},
		{"MIGRATE", "127.0.0.1", "1", prefix + ":probe", "0", "1"},
	} {
		res, err := admin.Do(ctx, append([]any{"ACL", "DRYRUN", user}, cmd...)...).Text()
		if err != nil {
			t.Fatalf("ACL DRYRUN %s %v: %v", user, cmd, err)
		}
		if res == "OK" {
			t.Fatalf("the cache user may run %v", cmd)
		}
	}
	// What go-redis sends on its own keeps working.
	for _, cmd := range [][]any{{"PING"}, {"SCRIPT", "LOAD", "return 1"}} {
		if err := rdb.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v as the cache user: %v", cmd, err)
		}
	}
}
