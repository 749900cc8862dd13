package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// cliResult is what one run of the CLI printed.
type cliResult struct {
	out, err string
	// fail is the error Execute returned (main exits 1 on it).
	fail error
}

// runCLIIn runs the hookline command with args and stdin.
func runCLIIn(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errw bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errw)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return cliResult{out: out.String(), err: errw.String(), fail: err}
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, "", args...)
}

// ok runs the CLI and fails the test unless it succeeded.
func ok(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := runCLI(t, args...)
	if r.fail != nil {
		t.Fatalf("hookline %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.fail, r.out, r.err)
	}
	t.Logf("$ hookline %s\n%s", strings.Join(args, " "), r.out)
	return r
}

// okJSON runs the CLI with --json and decodes what it printed.
func okJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	r := ok(t, append(args, "--json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(r.out), &m); err != nil {
		t.Fatalf("hookline %s --json printed no JSON object: %v\n%s", strings.Join(args, " "), err, r.out)
	}
	return m
}

// failJSON runs the CLI with --json, expects a failure and returns the
// error code and message it printed, checking the error document's shape.
func failJSON(t *testing.T, stdin string, args ...string) (code, msg string) {
	t.Helper()
	r := runCLIIn(t, stdin, append(args, "--json")...)
	if r.fail == nil {
		t.Fatalf("hookline %s --json succeeded, want a failure:\n%s", strings.Join(args, " "), r.out)
	}
	var doc map[string]map[string]string
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || len(doc) != 1 || len(doc["error"]) != 2 {
		t.Fatalf("hookline %s --json: want {\"error\": {\"code\", \"message\"}}, got %q (%v)", strings.Join(args, " "), r.out, err)
	}
	if strings.Contains(r.err, "Error:") {
		t.Fatalf("hookline %s --json also printed a text error on stderr: %q", strings.Join(args, " "), r.err)
	}
	t.Logf("$ hookline %s --json  (fails)\n%s", strings.Join(args, " "), r.out)
	return doc["error"]["code"], doc["error"]["message"]
}

// fields returns the sorted field names of a JSON object.
func fields(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func wantFields(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := fields(v); !slices.Equal(got, want) {
		t.Fatalf("%s has fields %v, want %v", what, got, want)
	}
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }
func num(v any) int            { f, _ := v.(float64); return int(f) }

func matches(t *testing.T, what, out string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("%s lacks %s:\n%s", what, re, out)
		}
	}
}

// opsSite is a deployment for the operator commands: a configuration file
// with its own prefix, the environment pointing the CLI at rdb, and an
// engine seeding it on a fake clock that starts at the wall clock's now.
type opsSite struct {
	t      *testing.T
	ctx    context.Context
	rdb    redis.UniversalClient
	prefix string
	clk    *clock.Fake
	e      *queue.Engine
	t0     time.Time
}

const opsConfig = `
tenant: /data/customer_id
lanes:
  quick: {concurrency: 4, quantum: 5s}
  slow:  {concurrency: 1, quantum: 5s}
routes:
  post.create: {lane: quick, handler: log}
  order.paid: {lane: quick, handler: log}
  invoice.paid: {lane: quick, handler: log}
  ping: {lane: quick, handler: log}
  report.build: {lane: slow, handler: log}
`

// newOpsSite writes the configuration and sets the environment (so the
// test cannot run in parallel).
func newOpsSite(t *testing.T, rdb redis.UniversalClient) *opsSite {
	t.Helper()
	prefix := redistest.Prefix(t)
	cfgPath := filepath.Join(t.TempDir(), "hookline.yaml")
	if err := os.WriteFile(cfgPath, []byte("prefix: "+prefix+"\n"+opsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKLINE_CONFIG", cfgPath)
	t.Setenv("HOOKLINE_PREFIX", "")
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		t.Setenv("HOOKLINE_REDIS_URL", "redis://"+c.Options().Addrs[0])
		t.Setenv("HOOKLINE_REDIS_CLUSTER", "true")
	case *redis.Client:
		t.Setenv("HOOKLINE_REDIS_URL", "redis://"+c.Options().Addr)
		t.Setenv("HOOKLINE_REDIS_CLUSTER", "false")
	}
	t.Setenv("USER", "opsbot")
	t0 := time.Now().Truncate(time.Millisecond)
	clk := clock.NewFake(t0)
	e, err := queue.New(rdb, queue.Options{Prefix: prefix, Lanes: []string{"quick", "slow"}, Clock: clk, Jitter: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	return &opsSite{t: t, ctx: context.Background(), rdb: rdb, prefix: prefix, clk: clk, e: e, t0: t0}
}

// enqueue stores items with ids on key, received from at on, 1 ms apart.
// The seeding clock moves on 1 ms first, so keys become ready (and are
// claimed) in the order they were first enqueued.
func (s *opsSite) enqueue(lane, key string, at time.Time, ids ...string) {
	s.t.Helper()
	s.clk.Advance(time.Millisecond)
	tenant, code, _ := strings.Cut(key, ":")
	for i, id := range ids {
		it := &queue.Item{ID: id, Tenant: tenant, Code: code, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond),
			Body: []byte(`{"code":"` + code + `","data":{"customer_id":"` + tenant + `","n":"` + id + `"}}`)}
		if _, err := s.e.Enqueue(s.ctx, lane, it); err != nil {
			s.t.Fatal(err)
		}
	}
}

// claim leases key (the oldest ready key of its lane must be key).
func (s *opsSite) claim(lane, key string) *queue.Lease {
	s.t.Helper()
	s.clk.Advance(time.Millisecond) // a key it yields goes behind the others
	ls, err := s.e.Claim(s.ctx, lane, 1)
	if err != nil || len(ls) != 1 || ls[0].Key != key {
		s.t.Fatalf("claim %s: %+v %v, want %s", lane, ls, err, key)
	}
	l := ls[0]
	if err := s.e.Activate(s.ctx, &l, "seed"); err != nil {
		s.t.Fatal(err)
	}
	return &l
}

// fail claims key, fails its head id with f and ends the lease.
func (s *opsSite) fail(lane, key, id string, f queue.Failure) queue.FailResult {
	s.t.Helper()
	l := s.claim(lane, key)
	b, err := s.e.Fetch(s.ctx, l, 1)
	if err != nil || len(b.Items) == 0 || b.Items[0].ID != id {
		s.t.Fatalf("head of %s: %+v %v, want %s", key, b, err, id)
	}
	res, err := s.e.Fail(s.ctx, l, id, f)
	if err != nil {
		s.t.Fatal(err)
	}
	if res.Outcome == queue.DeadLettered {
		if _, err := s.e.Yield(s.ctx, l, time.Time{}); err != nil {
			s.t.Fatal(err)
		}
	}
	return res
}

// logLines returns the change log lines a run wrote on stderr.
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(stderr, "\n") {
		// A line may follow a prompt or a progress bar's redraw.
		i := strings.Index(line, `{"time"`)
		if i < 0 {
			continue
		}
		line = line[i:]
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		if m["msg"] == "operator change" {
			out = append(out, m)
		}
	}
	return out
}

// TestOperatorCommands runs every operator command against real Redis
// (standalone and cluster) seeded through the engine: a dead letter, a
// parked key, a retrying key, a leased key; it checks each command's text
// and JSON, and fixes the keys with skip, pause, resume and redrive.
func TestOperatorCommands(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := newOpsSite(t, rdb)
		t0 := s.t0
		s.enqueue("slow", "globex:report.build", t0.Add(-90*time.Second), "g1", "g2")
		s.enqueue("quick", "acme:post.create", t0.Add(-60*time.Second), "a1", "a2", "a3")
		s.enqueue("quick", "initech:order.paid", t0.Add(-50*time.Second), "o1")
		s.enqueue("quick", "acme:invoice.paid", t0.Add(-40*time.Second), "i1")
		s.enqueue("quick", "hooli:ping", t0.Add(-30*time.Second), "h1")
		s.fail("slow", "globex:report.build", "g1", queue.Failure{Reason: "ledger closed", Permanent: true, Policy: queue.Park})
		s.fail("quick", "acme:post.create", "a1", queue.Failure{Reason: "HTTP 400 bad payload", Permanent: true})
		s.fail("quick", "initech:order.paid", "o1", queue.Failure{Reason: "HTTP 503", MaxAttempts: 5, RetryAt: t0.Add(time.Hour)})
		s.fail("quick", "acme:invoice.paid", "i1", queue.Failure{Reason: "timeout after 10s", Permanent: true})
		s.claim("quick", "hooli:ping") // a drain holds it

		// status: lanes with keys by state, parked apart from paused.
		r := ok(t, "status")
		matches(t, "status", r.out,
			`(?m)^LANE\s+ITEMS\s+READY\s+LEASED\s+DRAINS\s+DELAYED\s+RETRYING\s+PAUSED\s+PARKED\s+OLDEST\s+DEAD\s+LANE STATE$`,
			`(?m)^quick\s+4\s+1\s+1\s+0/4\s+0\s+1\s+0\s+0\s+1m\S*\s+2\s+running$`,
			`(?m)^slow\s+2\s+0\s+0\s+0/1\s+0\s+0\s+0\s+1\s+1m3\S*\s+0\s+running$`,
			`(?m)^KEYS BY DEPTH\s+LANE\s+STATE\s+DEPTH\s+OLDEST\s+ATTEMPTS$`,
			`(?m)^acme:post.create\s+quick\s+ready\s+2\s+\S+\s+0$`,
			`(?m)^globex:report.build\s+slow\s+parked\s+2\s+\S+\s+1$`,
			`(?m)^initech:order.paid\s+quick\s+retrying\s+1\s+\S+\s+1$`,
			`(?m)^hooli:ping\s+quick\s+leased\s+1\s+`,
			`(?m)^acme:invoice.paid\s+1\s+\S+ ago$`,
			`(?m)^acme:post.create\s+1\s+\S+ ago$`)
		st := okJSON(t, "status", "--top", "2", "--by", "age")
		wantFields(t, "status", st, "at", "prefix", "lanes", "top", "dead_keys")
		lanes := arr(st["lanes"])
		if len(lanes) != 2 {
			t.Fatalf("lanes = %v", lanes)
		}
		wantFields(t, "lane", lanes[0], "lane", "paused", "pause", "items", "keys", "slots", "concurrency", "oldest_age_ms", "dead_letters")
		wantFields(t, "lane keys", obj(lanes[0])["keys"], "ready", "leased", "delayed", "retrying", "paused", "parked")
		q, sl := obj(lanes[0]), obj(lanes[1])
		if q["lane"] != "quick" || num(q["items"]) != 4 || num(q["concurrency"]) != 4 || num(q["dead_letters"]) != 2 ||
			num(obj(q["keys"])["retrying"]) != 1 || num(obj(q["keys"])["leased"]) != 1 || num(q["oldest_age_ms"]) < 59_000 {
			t.Fatalf("quick lane = %v", q)
		}
		if sl["lane"] != "slow" || num(obj(sl["keys"])["parked"]) != 1 || num(obj(sl["keys"])["paused"]) != 0 || q["paused"] != false || q["pause"] != nil {
			t.Fatalf("slow lane = %v", sl)
		}
		top := obj(st["top"])
		if top["by"] != "age" || len(arr(top["keys"])) != 2 || obj(arr(top["keys"])[0])["key"] != "globex:report.build" ||
			obj(arr(top["keys"])[0])["state"] != "parked" || obj(arr(top["keys"])[1])["key"] != "acme:post.create" {
			t.Fatalf("top = %v", top)
		}
		wantFields(t, "top key", arr(top["keys"])[0], "key", "lane", "state", "depth", "oldest_age_ms", "attempts", "ready_at", "paused_at")
		wantFields(t, "dead key", arr(st["dead_keys"])[0], "key", "count", "last_dead_at")

		// status --watch refreshes until told to stop (here: 2 refreshes).
		r = ok(t, "status", "--watch", "--interval", "100ms", "--iterations", "2", "--json")
		if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 2 || !json.Valid([]byte(lines[0])) || !json.Valid([]byte(lines[1])) {
			t.Fatalf("status --watch --json printed %q", r.out)
		}
		r = ok(t, "status", "--watch", "--interval", "100ms", "--iterations", "2", "--top", "1")
		if n := strings.Count(r.out, "LANE STATE"); n != 2 {
			t.Fatalf("status --watch printed %d tables:\n%s", n, r.out)
		}

		// inspect: a parked key, a retrying key with its items and bodies.
		r = ok(t, "inspect", "globex:report.build")
		matches(t, "inspect parked", r.out, `(?m)^state\s+parked$`, `(?m)^head\s+g1, received \S+ \(1m3\S* ago\)$`,
			`(?m)^attempts\s+1$`, `(?m)^last error\s+ledger closed$`, `(?m)^paused\s+parked since `, `(?m)^lease\s+-$`, `(?m)^dead letters\s+0$`)
		in := okJSON(t, "inspect", "globex:report.build")
		wantFields(t, "inspect", in, "key", "tenant", "code", "lane", "state", "depth", "oldest_age_ms", "head", "attempts", "total_attempts",
			"last_error", "ready_at", "paused", "parked", "paused_at", "lane_paused", "lease", "dead_letters", "audit", "items")
		if in["state"] != "parked" || in["parked"] != true || in["paused"] != true || in["tenant"] != "globex" || in["ready_at"] != nil {
			t.Fatalf("inspect parked = %v", in)
		}
		in = okJSON(t, "inspect", "initech:order.paid", "--items", "5", "--body")
		wantFields(t, "head", in["head"], "id", "received_at", "prior_attempts", "body")
		if in["state"] != "retrying" || num(in["attempts"]) != 1 || in["last_error"] != "HTTP 503" || in["ready_at"] == nil ||
			len(arr(in["items"])) != 1 || obj(arr(in["items"])[0])["body"] != `{"code":"order.paid","data":{"customer_id":"initech","n":"o1"}}` {
			t.Fatalf("inspect retrying = %v", in)
		}
		r = ok(t, "inspect", "hooli:ping")
		matches(t, "inspect leased", r.out, `(?m)^state\s+leased$`, `(?m)^lease\s+token \d+, invocation seed, until `)
		r = ok(t, "inspect", "initech:order.paid", "--items", "2", "--body")
		matches(t, "inspect items", r.out, `(?m)^next attempt\s+\S+ \(in (59m|1h0m)`, `(?m)^1\s+o1\s+`, `(?m)^--- body of o1$`)

		// dlq: list (all, filtered), show with bodies.
		r = ok(t, "dlq")
		matches(t, "dlq", r.out, `(?m)^KEY\s+COUNT\s+MATCHING\s+LAST DEAD$`, `(?m)^acme:invoice.paid\s+1\s+1\s+`, `(?m)^acme:post.create\s+1\s+1\s+`, `2 dead letters in 2 keys`)
		dl := okJSON(t, "dlq", "list", "--tenant", "acme", "--reason", "TIMEOUT")
		wantFields(t, "dlq list", dl, "keys", "items")
		if len(arr(dl["keys"])) != 1 || obj(arr(dl["keys"])[0])["key"] != "acme:invoice.paid" || num(dl["items"]) != 1 {
			t.Fatalf("dlq list --reason = %v", dl)
		}
		wantFields(t, "dlq key", arr(dl["keys"])[0], "key", "count", "matching", "last_dead_at")
		if dl := okJSON(t, "dlq", "list", "--older-than", "1h"); len(arr(dl["keys"])) != 0 {
			t.Fatalf("dlq list --older-than 1h = %v", dl)
		}
		r = ok(t, "dlq", "show", "acme:post.create", "--body")
		matches(t, "dlq show", r.out, `(?m)^ID\s+RECEIVED\s+DEAD\s+ATTEMPTS\s+REASON$`, `(?m)^a1\s+\S+\s+\S+ \(\S+ ago\)\s+1\s+HTTP 400 bad payload$`,
			`(?m)^--- body of a1$`)
		sh := okJSON(t, "dlq", "acme:post.create")
		wantFields(t, "dlq show", sh, "key", "count", "dead_letters")
		wantFields(t, "dead letter", arr(sh["dead_letters"])[0], "id", "received_at", "prior_attempts", "dead_at", "attempts", "lane", "reason")

		// Fix the poisoned key: pause, skip, resume — each recorded and logged.
		r = ok(t, "pause", "acme:post.create", "--by", "ann", "--note", "ticket 7")
		matches(t, "pause", r.out, `^paused acme:post.create\n$`)
		if ll := logLines(t, r.err); len(ll) != 1 || ll[0]["action"] != "pause" || ll[0]["key"] != "acme:post.create" || ll[0]["by"] != "ann" || ll[0]["note"] != "ticket 7" {
			t.Fatalf("pause log = %v (stderr %q)", ll, r.err)
		}
		r = ok(t, "skip", "acme:post.create", "--note", "ticket 7")
		matches(t, "skip", r.out, `^skipped a2, the head item of acme:post.create: it is in the dead letters, the items behind it go on\n$`)
		if ll := logLines(t, r.err); len(ll) != 1 || ll[0]["action"] != "skip" || ll[0]["item"] != "a2" || ll[0]["by"] != "opsbot" {
			t.Fatalf("skip log = %v", ll)
		}
		sk := okJSON(t, "skip", "globex:report.build", "--by", "ann")
		wantFields(t, "skip", sk, "action", "keys", "failed")
		if k := obj(arr(sk["keys"])[0]); k["skipped"] != "g1" || k["changed"] != true {
			t.Fatalf("skip json = %v", sk)
		}
		r = ok(t, "inspect", "acme:post.create")
		matches(t, "inspect audit", r.out, `(?m)^state\s+paused$`, `(?m)^AUDIT \(newest first\)$`,
			`(?m)^\S+\s+skip\s+opsbot\s+item a2 after 0 attempt\(s\)\s+ticket 7$`, `(?m)^\S+\s+pause\s+ann\s+paused\s+ticket 7$`)
		rs := okJSON(t, "resume", "--tenant", "acme", "--by", "ann")
		if rs["tenant"] != "acme" || len(arr(rs["keys"])) != 1 || obj(arr(rs["keys"])[0])["was"] != "paused" || obj(arr(rs["keys"])[0])["ready"] != true {
			t.Fatalf("resume --tenant = %v", rs)
		}
		wantFields(t, "resumed key", arr(rs["keys"])[0], "key", "changed", "was", "ready")
		r = ok(t, "resume", "globex:report.build")
		matches(t, "resume parked", r.out, `^resumed globex:report.build \(ready; it was parked; head attempts reset\)\n$`)

		// A lane pause holds every key of the lane; paused lists it.
		r = ok(t, "pause", "--lane", "slow", "--note", "ledger migration")
		matches(t, "pause lane", r.out, `^paused lane slow: no drain takes its keys`)
		if ls, err := s.e.Claim(s.ctx, "slow", 5); err != nil || len(ls) != 0 {
			t.Fatalf("claim on a paused lane: %v %v", ls, err)
		}
		ok(t, "pause", "initech:order.paid", "--note", "hold")
		r = ok(t, "pause", "initech:order.piad")
		matches(t, "pause of a key Redis holds nothing of", r.out, `^paused initech:order.piad \(nothing of it was in Redis: check the key`)
		ok(t, "resume", "initech:order.piad")
		pz := okJSON(t, "paused")
		wantFields(t, "paused", pz, "lanes", "keys")
		if len(arr(pz["lanes"])) != 1 || obj(arr(pz["lanes"])[0])["lane"] != "slow" || obj(arr(pz["lanes"])[0])["by"] != "opsbot" ||
			len(arr(pz["keys"])) != 1 || obj(arr(pz["keys"])[0])["key"] != "initech:order.paid" || obj(arr(pz["keys"])[0])["note"] != "hold" {
			t.Fatalf("paused = %v", pz)
		}
		wantFields(t, "paused lane", arr(pz["lanes"])[0], "lane", "since", "by", "note", "partial")
		wantFields(t, "paused key", arr(pz["keys"])[0], "key", "lane", "state", "since", "depth", "attempts", "last_error", "by", "note")
		r = ok(t, "status")
		matches(t, "status of a paused lane", r.out, `(?m)^slow\s.*paused by opsbot \S+ ago: ledger migration$`)
		r = ok(t, "paused")
		matches(t, "paused", r.out, `(?m)^slow\s+\S+ \(\S+ ago\)\s+opsbot\s+ledger migration$`, `(?m)^initech:order.paid\s+quick\s+paused\s+`)
		ok(t, "resume", "--lane", "slow")
		ok(t, "resume", "initech:order.paid")
		s.clk.Set(time.Now().Add(time.Second)) // the CLI indexed the resumed keys at the wall clock's now
		if ls, err := s.e.Claim(s.ctx, "slow", 5); err != nil || len(ls) != 1 {
			t.Fatalf("claim after the lane's resume: %v %v", ls, err)
		}

		// purge: refused without --yes, a dry run changes nothing.
		r = runCLI(t, "dlq", "purge", "acme:invoice.paid")
		if r.fail == nil || !strings.Contains(r.fail.Error(), "add --yes") {
			t.Fatalf("purge without --yes: %v\n%s", r.fail, r.out)
		}
		pd := okJSON(t, "dlq", "purge", "acme:invoice.paid", "--dry-run")
		wantFields(t, "purge", pd, "action", "dry_run", "keys", "items", "failed")
		if pd["dry_run"] != true || num(pd["items"]) != 1 || obj(arr(obj(arr(pd["keys"])[0])["items"])[0])["id"] != "i1" {
			t.Fatalf("purge --dry-run = %v", pd)
		}
		// A redrive of several keys wants a confirmation: none without a
		// terminal; a "no" at the prompt; then yes.
		if code, _ := failJSON(t, "", "dlq", "redrive", "--tenant", "acme"); code != "confirmation_required" {
			t.Fatalf("bulk redrive without --yes: %s", code)
		}
		stdinIsTerminal = func(io.Reader) bool { return true }
		t.Cleanup(func() { stdinIsTerminal = func(r io.Reader) bool { return isTerminal(r) } })
		r = runCLIIn(t, "n\n", "dlq", "redrive", "--tenant", "acme")
		if r.fail == nil || !strings.Contains(r.err, "redrive 3 dead letters of 2 keys? [y/N]") {
			t.Fatalf("a no at the prompt: %v\n%s", r.fail, r.err)
		}
		r = runCLIIn(t, "y\n", "dlq", "redrive", "--tenant", "acme", "--note", "upstream fixed")
		if r.fail != nil {
			t.Fatalf("redrive confirmed: %v\n%s%s", r.fail, r.out, r.err)
		}
		matches(t, "bulk redrive", r.out, `(?m)^redrove 2 items of acme:post.create to the head of its queue in arrival order: a1 a2$`,
			`(?m)^redrove 1 item of acme:invoice.paid to the head of its queue in arrival order: i1$`)
		if !strings.Contains(r.err, "redrive") || len(logLines(t, r.err)) != 2 {
			t.Fatalf("bulk redrive: no progress or log on stderr:\n%s", r.err)
		}
		// A purge with --yes.
		ok(t, "skip", "acme:invoice.paid")
		r = ok(t, "dlq", "purge", "acme:invoice.paid", "--yes", "--by", "bob", "--note", "duplicate")
		matches(t, "purge", r.out, `^deleted 1 dead letter of acme:invoice.paid: i1\n$`)
		in = okJSON(t, "inspect", "acme:invoice.paid")
		if a := obj(arr(in["audit"])[0]); a["action"] != "purge" || a["by"] != "bob" || a["note"] != "duplicate" || a["detail"] != "1 item(s): i1" {
			t.Fatalf("audit after purge = %v", in["audit"])
		}
		wantFields(t, "audit record", arr(in["audit"])[0], "at", "action", "by", "detail", "note")

		// The queues now hold, in order: a1 a2 a3 and g2.
		for key, want := range map[string]string{"acme:post.create": "a1 a2 a3", "globex:report.build": "g2"} {
			items, err := s.e.Items(s.ctx, key, 0, 10)
			var ids []string
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			if err != nil || strings.Join(ids, " ") != want {
				t.Fatalf("%s holds %v (%v), want %s", key, ids, err, want)
			}
		}
	})
}

// TestOperatorCommandFailures: Redis down, a wrong prefix, an unknown key,
// a purge without --yes, bad flags and a missing Redis URL fail with a
// non-zero exit, a text error, and with --json an error document whose code
// names the failure.
func TestOperatorCommandFailures(t *testing.T) {
	s := newOpsSite(t, redistest.Standalone(t))
	s.enqueue("quick", "acme:post.create", s.t0, "a1")
	s.fail("quick", "acme:post.create", "a1", queue.Failure{Reason: "x", Permanent: true})

	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		code  string
		match string
	}{
		{"unknown key", nil, []string{"inspect", "nobody:nothing"}, "unknown_key", `unknown key: nobody:nothing: no queued item`},
		{"unknown key dlq", nil, []string{"dlq", "show", "nobody:nothing"}, "unknown_key", `unknown key`},
		{"invalid key", nil, []string{"inspect", "no-colon"}, "invalid_key", `invalid key`},
		{"purge without --yes", nil, []string{"dlq", "purge", "acme:post.create"}, "confirmation_required", `delete for good 1 dead letter of 1 key: add --yes to confirm`},
		{"wrong prefix", map[string]string{"HOOKLINE_PREFIX": "nothinghere"}, []string{"status"}, "no_data", `no hookline data under prefix "nothinghere"`},
		{"wrong prefix dlq", map[string]string{"HOOKLINE_PREFIX": "nothinghere"}, []string{"dlq"}, "no_data", `no hookline data`},
		{"redis down", map[string]string{"HOOKLINE_REDIS_URL": "redis://" + closedAddr(t)}, []string{"status"}, "redis_unavailable", `connect: connection refused`},
		{"redis down repair", map[string]string{"HOOKLINE_REDIS_URL": "redis://" + closedAddr(t)}, []string{"pause", "acme:x"}, "redis_unavailable", `refused`},
		{"no redis url", map[string]string{"HOOKLINE_REDIS_URL": ""}, []string{"status"}, "config", `HOOKLINE_REDIS_URL is required`},
		{"bad config", map[string]string{"HOOKLINE_CONFIG": "/nonexistent/hookline.yaml"}, []string{"paused"}, "config", `no such file`},
		{"no target", nil, []string{"pause"}, "usage", `name KEY..., or --tenant, or --lane`},
		{"two targets", nil, []string{"resume", "a:b", "--lane", "quick"}, "usage", `one of them`},
		{"unknown lane", nil, []string{"pause", "--lane", "nope"}, "unknown_lane", `unknown lane`},
		{"bad order", nil, []string{"status", "--by", "size"}, "usage", `--by "size": want depth or age`},
		{"too many args", nil, []string{"inspect", "a:b", "c:d"}, "usage", `accepts 1 arg`},
		{"redrive without key", nil, []string{"dlq", "--redrive"}, "usage", `--redrive needs a KEY`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r := runCLI(t, tc.args...)
			if r.fail == nil || !regexp.MustCompile(tc.match).MatchString(r.fail.Error()) {
				t.Fatalf("hookline %s: error %v, want one matching %q\n%s", strings.Join(tc.args, " "), r.fail, tc.match, r.out)
			}
			if code, msg := failJSON(t, "", tc.args...); code != tc.code || !regexp.MustCompile(tc.match).MatchString(msg) {
				t.Fatalf("hookline %s --json: code %q message %q, want %q matching %q", strings.Join(tc.args, " "), code, msg, tc.code, tc.match)
			}
		})
	}
	// A skip of a key a drain holds is refused: leased.
	s.enqueue("quick", "acme:busy", s.t0, "b1")
	s.claim("quick", "acme:busy")
	if code, msg := failJSON(t, "", "skip", "acme:busy"); code != "leased" || !strings.Contains(msg, "pause it, wait for the drain to yield") {
		t.Fatalf("skip of a leased key: %s %s", code, msg)
	}
	if code, _ := failJSON(t, "", "dlq", "redrive", "acme:post.create", "--output", "yaml"); code != "usage" {
		t.Fatalf("--output yaml: %s", code)
	}
	// The binary exits 1, with the JSON error on stdout and nothing else,
	// also for a flag that does not parse.
	for args, code := range map[string]string{"inspect nobody:nothing --json": "unknown_key", "status --bogus -o json": "usage"} {
		cmd := exec.Command(hooklineBinary(t), strings.Fields(args)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !json.Valid(stdout.Bytes()) || !strings.Contains(stdout.String(), `"code": "`+code+`"`) || stderr.Len() != 0 {
			t.Fatalf("hookline %s: %v, stdout %q, stderr %q", args, err, stdout.String(), stderr.String())
		}
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
