package redistest_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hookline/hookline/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEachSetGet(t *testing.T) {
	t.Parallel()
	redistest.Each(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel()
		c := ctx(t)
		p := redistest.Prefix(t)
		// A plain key and hash-tagged keys that must share a slot.
		plain := p + ":plain"
		k1, k2 := "{"+p+"}:a", "{"+p+"}:b"
		if err := rdb.Set(c, plain, "v0", time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", plain, err)
		}
		if err := rdb.MSet(c, k1, "v1", k2, "v2").Err(); err != nil {
			t.Fatalf("MSET %s %s: %v", k1, k2, err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), plain, k1, k2) })
		if got, err := rdb.Get(c, plain).Result(); err != nil || got != "v0" {
			t.Fatalf("GET %s = %q, %v; want v0", plain, got, err)
		}
		got, err := rdb.MGet(c, k1, k2).Result()
		if err != nil || len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
			t.Fatalf("MGET %s %s = %v, %v; want [v1 v2]", k1, k2, got, err)
		}
	})
}

func TestSharedClientsAreReused(t *testing.T) {
	t.Parallel()
	if a, b := redistest.Standalone(t), redistest.Standalone(t); a != b {
		t.Errorf("Standalone returned different clients: %p, %p", a, b)
	}
	if a, b := redistest.Cluster(t), redistest.Cluster(t); a != b {
		t.Errorf("Cluster returned different clients: %p, %p", a, b)
	}
}

func TestClusterSpreadsKeys(t *testing.T) {
	t.Parallel()
	c := ctx(t)
	rdb := redistest.Cluster(t)

	err := rdb.ForEachShard(c, func(c context.Context, node *redis.Client) error {
		info, err := node.ClusterInfo(c).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			t.Errorf("node %s: CLUSTER INFO lacks cluster_state:ok:\n%s", node.Options().Addr, info)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("CLUSTER INFO on every node: %v", err)
	}

	masters := map[string][]string{}
	for _, tag := range []string{"a", "b", "c", "d", "e", "f"} {
		key := "{" + tag + "}x"
		node, err := rdb.MasterForKey(c, key)
		if err != nil {
			t.Fatalf("MasterForKey(%s): %v", key, err)
		}
		addr := node.Options().Addr
		masters[addr] = append(masters[addr], key)

		// The node that owns the slot according to CLUSTER SLOTS must be
		// the one the client routes to.
		slot, err := rdb.ClusterKeySlot(c, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		slots, err := rdb.ClusterSlots(c).Result()
		if err != nil {
			t.Fatalf("CLUSTER SLOTS: %v", err)
		}
		owner := ""
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) {
				owner = s.Nodes[0].Addr
			}
		}
		if owner != addr {
			t.Errorf("%s: slot %d is owned by %q per CLUSTER SLOTS, client routes to %q", key, slot, owner, addr)
		}
	}
	if len(masters) < 2 {
		t.Errorf("keys landed on %d node(s), want at least 2: %v", len(masters), masters)
	}
	t.Logf("key placement: %v", masters)
}

var prefixRE = regexp.MustCompile(`^[a-z0-9]+$`)

func TestPrefixUnique(t *testing.T) {
	t.Parallel()
	const goroutines, perGoroutine = 4, 250
	var (
		mu   sync.Mutex
		seen = make(map[string]bool, goroutines*perGoroutine)
		wg   sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				p := redistest.Prefix(t)
				mu.Lock()
				dup := seen[p]
				seen[p] = true
				mu.Unlock()
				if dup {
					t.Errorf("Prefix returned %q twice", p)
				}
				if !prefixRE.MatchString(p) {
					t.Errorf("Prefix %q has characters outside [a-z0-9]", p)
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != goroutines*perGoroutine {
		t.Errorf("got %d distinct prefixes, want %d", len(seen), goroutines*perGoroutine)
	}
}

func TestServerKillRestart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := s.Client(t)
	c := ctx(t)
	addr := s.Addr()

	if err := rdb.Set(c, "durable", "v1", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Kill(t)
	s.Kill(t) // no-op

	down, cancel := context.WithTimeout(c, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(down).Err(); err == nil {
		t.Fatal("PING succeeded while the server was killed")
	} else {
		t.Logf("PING while down: %v", err)
	}

	s.Restart(t)
	if s.Addr() != addr {
		t.Errorf("Addr changed across restart: %s -> %s", addr, s.Addr())
	}
	if got, err := rdb.Get(c, "durable").Result(); err != nil || got != "v1" {
		t.Fatalf("GET after restart = %q, %v; want v1 (fsynced before SIGKILL)", got, err)
	}
}

func TestServerStopRestart(t *testing.T) {
	t.Parallel()
	// No AOF; the RDB snapshot taken on graceful shutdown keeps the data.
	s := redistest.Start(t, "--save", "3600 1", "--dbfilename", "dump.rdb")
	rdb := s.Client(t)
	c := ctx(t)

	if err := rdb.Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Stop(t)
	s.Stop(t) // idempotent
	if err := rdb.Ping(c).Err(); err == nil {
		t.Fatal("PING succeeded after Stop")
	}
	s.Restart(t)
	if got, err := rdb.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after graceful stop and restart = %q, %v; want v", got, err)
	}
	// Restart of a running server stops it gracefully first.
	s.Restart(t)
	if got, err := rdb.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after restart of a running server = %q, %v; want v", got, err)
	}
}

// TestServerPauseResume: a paused server accepts connections but answers
// nothing; resumed, it answers again, with what was written before. Stop of
// a paused server is quick (it is resumed first, so SIGTERM takes effect).
func TestServerPauseResume(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	rdb := s.Client(t)
	c := ctx(t)
	if err := rdb.Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Pause(t)
	// A client that gives up after 300 ms.
	quick := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true, MaxRetries: -1, DialerRetries: 1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	defer quick.Close()
	var d net.Dialer
	conn, err := d.DialContext(c, "tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial a paused server: %v (the kernel should accept)", err)
	}
	_ = conn.Close()
	if err := quick.Ping(c).Err(); err == nil {
		t.Fatal("PING answered by a paused server")
	} else {
		t.Logf("PING while paused: %v", err)
	}
	s.Resume(t)
	s.Resume(t) // no-op
	if got, err := rdb.Get(c, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after Resume = %q, %v; want v", got, err)
	}
	s.Pause(t)
	began := time.Now()
	s.Stop(t)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Stop of a paused server took %v; it should resume it and stop at once", d)
	}
	s.Restart(t)
	s.Pause(t) // the cleanup resumes and stops it
}

func TestServerWithoutPersistenceLosesData(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t) // defaults: --save "" --appendonly no
	rdb := s.Client(t)
	c := ctx(t)
	if err := rdb.Set(c, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Stop(t)
	s.Restart(t)
	if n, err := rdb.Exists(c, "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after restart = %d, %v; want 0 (no persistence by default)", n, err)
	}
}

// fatalTB records the message of a Fatalf call and ends the goroutine, like
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
	runtime.Goexit()
}

// runFatal runs fn with a fatalTB in its own goroutine and returns the Fatalf
// message, or "" if fn returned normally.
func runFatal(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestMissingBinary(t *testing.T) {
	// Not parallel: it changes the environment.
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	msg := runFatal(t, func(tb testing.TB) { redistest.Start(tb) })
	want := "redis-server not found on PATH: install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)"
	if !strings.Contains(msg, want) {
		t.Errorf("Start without redis-server on PATH: Fatalf message %q does not contain %q", msg, want)
	}

	// The override must point at an existing binary.
	t.Setenv("HOOKLINE_REDIS_SERVER", filepath.Join(empty, "no-such-redis-server"))
	msg = runFatal(t, func(tb testing.TB) { redistest.Start(tb) })
	if !strings.Contains(msg, "HOOKLINE_REDIS_SERVER") {
		t.Errorf("Start with a bad HOOKLINE_REDIS_SERVER: Fatalf message %q does not name the variable", msg)
	}
}

func TestBadArgsReportLog(t *testing.T) {
	t.Parallel()
	msg := runFatal(t, func(tb testing.TB) { redistest.Start(tb, "--no-such-option", "1") })
	if msg == "" {
		t.Fatal("Start with an invalid option did not fail")
	}
	if strings.Count(msg, "attempt ") != 1 {
		t.Errorf("a configuration error was retried: %s", msg)
	}
	t.Logf("message: %s", msg)
	if !strings.Contains(msg, "no-such-option") {
		t.Errorf("failure message does not include the server's complaint: %s", msg)
	}
}
