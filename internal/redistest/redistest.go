// Package redistest starts real redis-server processes for tests.
//
// It offers two kinds of servers:
//
//   - Shared servers, started once per test binary on first use and stopped by
//     [Main]: a standalone server ([Standalone]) and a 3-node Redis Cluster
//     ([Cluster]). Tests share them, may run in parallel against them, and
//     isolate their data by building keys from a unique [Prefix]; nothing is
//     ever flushed.
//   - Dedicated servers ([Start]) owned by a single test, for tests that stop,
//     kill, pause (SIGSTOP) and restart Redis. They are stopped when the test
//     ends.
//
// Every server listens on a free loopback port and keeps its data and log in
// a temporary directory. redis-server must be installed (it is looked up on
// PATH, or taken from the HOOKLINE_REDIS_SERVER environment variable); when it
// is missing, tests fail rather than skip.
//
// A package that uses the shared servers must run its tests through [Main]:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// sharedStopGrace is how long Main waits for a shared server to exit after
// SIGTERM before it sends SIGKILL.
const sharedStopGrace = 5 * time.Second

var (
	// mainRunning is set by Main; the shared servers refuse to start without
	// it, since nothing else would stop them and remove their directories.
	mainRunning atomic.Bool

	sharedMu      sync.Mutex
	sharedProcs   []*proc
	sharedDirs    []string
	sharedClosers []func() error

	standaloneOnce   sync.Once
	standaloneClient *redis.Client
	standaloneErr    error

	clusterOnce   sync.Once
	clusterClient *redis.ClusterClient
	clusterErr    error
)

// Main runs the package's tests and then stops every shared server this
// package started (SIGTERM, then SIGKILL after 5 s), removes their temporary
// directories and exits with the tests' exit code. Use it as:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "redistest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// stopShared closes the shared clients, stops the shared servers in parallel
// and removes their directories.
func stopShared() error {
	sharedMu.Lock()
	procs, dirs, closers := sharedProcs, sharedDirs, sharedClosers
	sharedProcs, sharedDirs, sharedClosers = nil, nil, nil
	sharedMu.Unlock()

	for _, closeFn := range closers {
		_ = closeFn() // the servers are going away; errors do not matter
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.stop(sharedStopGrace) })
	}
	wg.Wait()
	for _, dir := range dirs {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
		}
	}
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("stopping shared servers: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// registerShared records processes, directories and clients for Main to
// clean up.
func registerShared(procs []*proc, dirs []string, closers ...func() error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sharedProcs = append(sharedProcs, procs...)
	sharedDirs = append(sharedDirs, dirs...)
	sharedClosers = append(sharedClosers, closers...)
}

// requireMain fails tb when the test binary does not run through Main.
func requireMain(tb testing.TB) {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatalf("redistest: shared servers need redistest.Main; add `func TestMain(m *testing.M) { redistest.Main(m) }` to the package's tests")
	}
}

// announce prints a start-up line to stderr and to the log of the test that
// started the server.
func announce(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, msg)
	tb.Log(msg)
}

// Standalone returns a client to a standalone redis-server shared by all tests
// of the test binary. The server is started on first use and stopped by Main.
// The client is safe for concurrent use; tests must isolate their keys with
// Prefix and must not close the client or flush the server. Standalone fails
// the test if the server cannot be started.
func Standalone(tb testing.TB) *redis.Client {
	tb.Helper()
	requireMain(tb)
	standaloneOnce.Do(func() {
		standaloneClient, standaloneErr = startStandalone(tb)
	})
	if standaloneErr != nil {
		tb.Fatalf("redistest: standalone redis-server: %v", standaloneErr)
	}
	return standaloneClient
}

func startStandalone(tb testing.TB) (*redis.Client, error) {
	tb.Helper()
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redistest-standalone-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	p, version, err := startWithRetry(bin, dir, false, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	client := redis.NewClient(&redis.Options{Addr: p.addr, DisableIdentity: true})
	registerShared([]*proc{p}, []string{dir}, client.Close)
	announce(tb, "redistest: standalone redis-server %s on %s", version, p.addr)
	return client, nil
}

// Cluster returns a client to a Redis Cluster shared by all tests of the test
// binary: 3 masters without replicas, all 16384 slots assigned, started on
// first use and stopped by Main. Before Cluster returns for the first time,
// every node has reported cluster_state:ok, knows the 3 masters and serves the
// full slot map, and keys in all three slot ranges have been written and read
// back. The client is safe for concurrent use; tests must isolate their keys
// with Prefix and must not close the client or flush the cluster. Cluster
// fails the test if the cluster cannot be started.
func Cluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	requireMain(tb)
	clusterOnce.Do(func() {
		clusterClient, clusterErr = startCluster(tb)
	})
	if clusterErr != nil {
		tb.Fatalf("redistest: redis cluster: %v", clusterErr)
	}
	return clusterClient
}

// Each runs fn as two subtests of t, "standalone" and "cluster", passing the
// shared Standalone and Cluster client respectively. Each does not call
// t.Parallel; fn may do so.
func Each(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	t.Run("standalone", func(t *testing.T) {
		fn(t, Standalone(t))
	})
	t.Run("cluster", func(t *testing.T) {
		fn(t, Cluster(t))
	})
}

var (
	prefixOnce    sync.Once
	prefixRandom  string
	prefixCounter atomic.Uint64
)

// Prefix returns a key prefix that is unique within the test binary and, with
// overwhelming probability, across test binaries running at the same time
// against the same server. It is "t", 12 random hex digits and a decimal
// counter, so it contains only [a-z0-9] and can be used inside a hash tag
// (e.g. "{"+Prefix(t)+"}:key") as well as in plain key names.
func Prefix(tb testing.TB) string {
	tb.Helper()
	prefixOnce.Do(func() {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
		prefixRandom = "t" + hex.EncodeToString(b[:])
	})
	return prefixRandom + strconv.FormatUint(prefixCounter.Add(1), 10)
}

// newClient returns a client suited to tests against addr. It makes one dial
// attempt per try, so commands fail fast while the server is down.
func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		DisableIdentity: true,
		DialerRetries:   1,
		DialTimeout:     2 * time.Second,
	})
}

// background returns a context bounded by d, for set-up work done outside of
// any test's context.
func background(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// InfoInt returns the integer field of INFO section of the server rdb talks
// to, such as ("stats", "total_commands_processed") or ("memory",
// "used_memory"), for benchmarks that count what the server did. It fails
// tb when the field is missing.
func InfoInt(tb testing.TB, rdb *redis.Client, section, field string) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		tb.Fatalf("redistest: INFO %s: %v", section, err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("redistest: INFO %s %s: %q is not an integer", section, field, v)
			}
			return n
		}
	}
	tb.Fatalf("redistest: INFO %s has no %s", section, field)
	return 0
}
