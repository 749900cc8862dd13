package redistest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// serverStopGrace is how long Server.Stop waits after SIGTERM.
const serverStopGrace = 10 * time.Second

// Server is a standalone redis-server process owned by a single test, for
// tests that stop, kill and restart Redis. Its port and data directory stay
// the same across restarts. Its methods are safe for concurrent use.
type Server struct {
	bin  string
	dir  string
	port int
	args []string

	mu     sync.Mutex
	p      *proc // the current or last process
	paused bool  // p was stopped by Pause
}

// Start starts a dedicated standalone redis-server on a free loopback port
// with its data in tb.TempDir(). args are extra redis-server arguments, which
// override the defaults (e.g. "--appendonly", "yes"). The server is stopped
// when the test ends. Start fails the test if the server cannot be started.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := redisBinary()
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{bin: bin, dir: tb.TempDir(), args: append([]string(nil), args...)}
	p, version, err := startWithRetry(s.bin, s.dir, false, s.args)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s.p, s.port = p, p.port
	// Registered after tb.TempDir, so it runs before the dir is removed.
	tb.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.resumeLocked()
		if err := s.p.stop(serverStopGrace); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	tb.Logf("redistest: dedicated redis-server %s on %s (dir %s)", version, p.addr, s.dir)
	return s
}

// Addr returns the server's address, "127.0.0.1:port". It does not change
// across restarts.
func (s *Server) Addr() string {
	return "127.0.0.1:" + strconv.Itoa(s.port)
}

// Client returns a new client to the server, closed when the test ends. The
// client makes a single dial attempt per try, so commands fail quickly while
// the server is down, and it reconnects once the server is back.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := newClient(s.Addr())
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop stops the server gracefully: it sends SIGTERM and waits for the
// process to exit, so the server saves its data as its configuration says
// (AOF fsync, RDB snapshot if save points are set). Stop is a no-op if the
// server is not running. It fails the test if the server does not exit within
// 10 s (it is then killed). A paused server is resumed first.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumeLocked()
	if err := s.p.stop(serverStopGrace); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
}

// Kill sends SIGKILL to the server and waits for the process to exit; data
// not yet persisted is lost. Kill is a no-op if the server is not running.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.kill()
	s.paused = false
}

// Pause stops the server process with SIGSTOP, so it looks to its clients
// like a hung server: the kernel still accepts connections and takes what
// clients write, but nothing is answered until Resume. Pause fails the test
// if the server is not running, or where SIGSTOP does not exist (Windows).
// Stop, Kill, Restart and the test's cleanup handle a paused server.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !canPause {
		tb.Fatalf("redistest: Pause needs SIGSTOP, which this system does not have")
	}
	if s.p.exited() {
		tb.Fatalf("redistest: Pause: redis-server on %s is not running", s.Addr())
	}
	if err := s.p.cmd.Process.Signal(pauseSignals.stop); err != nil {
		tb.Fatalf("redistest: Pause: SIGSTOP redis-server on %s: %v", s.Addr(), err)
	}
	s.paused = true
}

// Resume continues a server stopped by Pause (SIGCONT). It is a no-op if the
// server is not paused.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumeLocked()
}

// resumeLocked sends SIGCONT to a paused server; s.mu is held.
func (s *Server) resumeLocked() {
	if s.paused && !s.p.exited() {
		_ = s.p.cmd.Process.Signal(pauseSignals.cont) // fails only if it has exited
	}
	s.paused = false
}

// Restart starts the server again on the same port, in the same directory and
// with the same arguments, so that persisted data is loaded again, and waits
// until it answers PING. A server that is still running is first stopped as
// by Stop. Restart fails the test if the server cannot be started.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumeLocked()
	if err := s.p.stop(serverStopGrace); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	// The port must stay the same, so retry on it alone: it can be held for
	// a moment by someone else probing for free ports.
	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if attempt > 1 {
			time.Sleep(100 * time.Millisecond) // back off before retrying the same port
		}
		p, _, err := startProc(s.bin, s.port, s.dir, s.args)
		if err == nil {
			s.p = p
			return
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
	}
	tb.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), errors.Join(errs...))
}
