package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
	"github.com/hookline/hookline/internal/drain"
	"github.com/hookline/hookline/internal/queue"
	"github.com/hookline/hookline/internal/redistest"
	"github.com/hookline/hookline/shared/handler"
	"github.com/redis/go-redis/v9"
)

// TestRedriveDeliversInArrivalOrder builds a key whose dead letters died out
// of arrival order — an operator skips a retried item, redrives it while the
// next item is being retried (so it goes in behind that one), and later
// failures bury them in the order they died — and proves that `dlq redrive`
// delivers them in arrival order, never ahead of the item being retried,
// and that `--dry-run` prints that order. The items are delivered by the
// real drain.
func TestRedriveDeliversInArrivalOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := newOpsSite(t, rdb)
		key := "acme:order.paid"
		ids := []string{"000000", "000001", "000002", "000003", "000004", "000005"}
		s.enqueue("quick", key, s.t0.Add(-time.Minute), ids...)
		once := queue.Failure{Reason: "HTTP 503", MaxAttempts: 5}
		dead := queue.Failure{Reason: "HTTP 400 bad payload", Permanent: true}

		// 000000 fails once; an operator skips it.
		s.fail("quick", key, "000000", once)
		ok(t, "skip", key, "--by", "ann", "--note", "poison?")
		// 000001 fails once: it is being retried when the operator redrives
		// 000000, which goes in behind it.
		s.clk.Advance(time.Minute)
		s.fail("quick", key, "000001", once)
		rd := okJSON(t, "dlq", "redrive", key, "--id", "000000", "--by", "ann", "--note", "was not poison")
		if k := obj(arr(rd["keys"])[0]); k["behind"] != "000001" || len(arr(k["items"])) != 1 {
			t.Fatalf("redrive of 000000 behind the retrying 000001: %v", rd)
		}
		// Later failures: 000001, 000000, 000002, 000003 die in that order;
		// 000004 fails and is being retried (in an hour).
		s.clk.Advance(time.Minute)
		for _, id := range []string{"000001", "000000", "000002", "000003"} {
			s.fail("quick", key, id, dead)
		}
		s.fail("quick", key, "000004", queue.Failure{Reason: "HTTP 503", MaxAttempts: 5, RetryAt: s.clk.Now().Add(time.Hour)})

		// The dead-letter list is in death order, not arrival order.
		r := ok(t, "dlq", "show", key)
		if got := rowIDs(r.out); !slices.Equal(got, []string{"000001", "000000", "000002", "000003"}) {
			t.Fatalf("dlq show lists %v, want death order 000001 000000 000002 000003", got)
		}
		// --dry-run prints the arrival order, behind the retrying item.
		want := []string{"000000", "000001", "000002", "000003"}
		r = ok(t, "dlq", "redrive", key, "--dry-run")
		matches(t, "dry run", r.out,
			`(?m)^would redrive 4 items of acme:order.paid, in this order, behind 000004 \(being retried: it stays first\):$`,
			`(?m)^  1\.\s+000000\s+received \S+\s+attempts 1 \(\+1 before\)\s+HTTP 400 bad payload$`,
			`(?m)^  2\.\s+000001\s+received \S+\s+attempts 2\s+HTTP 400 bad payload$`,
			`(?m)^  3\.\s+000002\s+`, `(?m)^  4\.\s+000003\s+`, `(?m)^dry run at \S+: nothing changed$`)
		if got := orderedIDs(r.out); !slices.Equal(got, want) {
			t.Fatalf("--dry-run order = %v, want %v", got, want)
		}
		plan := okJSON(t, "dlq", "redrive", key, "--dry-run")
		pk := obj(arr(plan["keys"])[0])
		wantFields(t, "redrive key", pk, "key", "behind", "items")
		if plan["dry_run"] != true || pk["behind"] != "000004" || !slices.Equal(jsonIDs(pk["items"]), want) {
			t.Fatalf("--dry-run --json = %v", plan)
		}
		if legacy := okJSON(t, "dlq", key, "--redrive", "--dry-run"); !slices.Equal(jsonIDs(obj(arr(legacy["keys"])[0])["items"]), want) {
			t.Fatalf("dlq KEY --redrive --dry-run = %v", legacy)
		}
		if r := ok(t, "dlq", "show", key); len(rowIDs(r.out)) != 4 {
			t.Fatalf("a dry run changed the dead letters:\n%s", r.out)
		}

		// The redrive, then the real drain delivers the key's items.
		r = ok(t, "dlq", "redrive", key, "--note", "upstream fixed")
		matches(t, "redrive", r.out, `^redrove 4 items of acme:order.paid to its queue in arrival order, behind 000004 \(being retried\): 000000 000001 000002 000003\n$`)
		in := okJSON(t, "inspect", key, "--items", "10")
		if h := obj(in["head"]); h["id"] != "000004" || num(in["attempts"]) != 1 || in["state"] != "retrying" {
			t.Fatalf("the retrying head lost its place or its attempts: %v", in)
		}
		prior := map[string]int{}
		for _, it := range arr(in["items"]) {
			prior[obj(it)["id"].(string)] = num(obj(it)["prior_attempts"])
		}
		if fmt.Sprint(prior) != fmt.Sprint(map[string]int{"000000": 2, "000001": 2, "000002": 1, "000003": 1, "000004": 0, "000005": 0}) {
			t.Fatalf("attempt history after the redrive: %v", prior)
		}
		r = ok(t, "inspect", key)
		matches(t, "inspect", r.out, `(?m)^\S+\s+redrive\s+opsbot\s+4 item\(s\): 000000 000001 000002 000003, behind 000004 \(being retried\)\s+upstream fixed$`)

		delivered := drainKey(t, rdb, s.prefix, s.clk.Now().Add(2*time.Hour), key)
		wantDelivered := []string{"000004@2", "000000@1", "000001@1", "000002@1", "000003@1", "000005@1"}
		if !slices.Equal(delivered, wantDelivered) {
			t.Fatalf("the drain delivered %v, want %v", delivered, wantDelivered)
		}
		t.Logf("delivered (id@attempt): %s", strings.Join(delivered, " "))
	})
}

// drainKey runs the real drain on key with a clock at now and returns what
// its handler saw, "id@attempt" in order.
func drainKey(t *testing.T, rdb redis.UniversalClient, prefix string, now time.Time, key string) []string {
	t.Helper()
	clk := clock.NewFake(now)
	e, err := queue.New(rdb, queue.Options{Prefix: prefix, Lanes: []string{"quick", "slow"}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	route := drain.Route{Handler: handler.HandlerFunc(func(_ context.Context, ev *handler.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s@%d", ev.ID, ev.Attempt))
		return nil
	})}
	d, err := drain.New(e, drain.Options{Routes: func(string) (drain.Route, bool) { return route, true }, Clock: clk,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ls, err := e.Claim(ctx, "quick", 1)
	if err != nil || len(ls) != 1 || ls[0].Key != key {
		t.Fatalf("claim: %+v %v", ls, err)
	}
	res, err := d.Run(ctx, ls[0], "drain-test", now.Add(time.Minute))
	if err != nil || res.Outcome != drain.Emptied {
		t.Fatalf("drain: %+v %v", res, err)
	}
	return seen
}

// rowIDs returns the first column of a table's rows (after its header).
func rowIDs(out string) []string {
	var ids []string
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			break
		}
		ids = append(ids, f[0])
	}
	return ids
}

// orderedIDs returns the ids of a dry run's numbered lines, in order.
func orderedIDs(out string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^  \d+\.\s+(\S+)`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func jsonIDs(v any) []string {
	var ids []string
	for _, it := range arr(v) {
		ids = append(ids, fmt.Sprint(obj(it)["id"]))
	}
	return ids
}
