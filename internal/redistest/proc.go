package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// binaryEnv overrides the redis-server binary (a path or a name on PATH).
	binaryEnv = "HOOKLINE_REDIS_SERVER"
	// startAttempts is how many times a server is started on fresh ports
	// before giving up (another process may grab a port we picked).
	startAttempts = 5
	// readyTimeout bounds the wait for a started server to answer PING.
	readyTimeout = 10 * time.Second
	// pollInterval is the delay between readiness probes.
	pollInterval = 20 * time.Millisecond
	// logTailLines is how many lines of a server's log go into errors.
	logTailLines = 25
	// clusterBusOffset is the distance of the cluster bus port from the
	// client port.
	clusterBusOffset = 10000
)

// errBadConfig marks a start failure caused by the server's arguments.
var errBadConfig = errors.New("redis-server rejected its configuration")

// redisBinary resolves the redis-server binary.
func redisBinary() (string, error) {
	if name := os.Getenv(binaryEnv); name != "" {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", binaryEnv, name, err)
		}
		return path, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH: install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or set %s: %w", binaryEnv, err)
	}
	return path, nil
}

// proc is one running (or exited) redis-server process.
type proc struct {
	addr    string
	port    int
	dir     string
	logPath string
	outPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // result of cmd.Wait, valid once done is closed
}

// serverArgs returns the redis-server arguments for a server on port with
// its files in dir; extra comes last so that it overrides the defaults.
func serverArgs(port int, dir string, extra []string) []string {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
		"--daemonize", "no",
		"--protected-mode", "no",
	}
	return append(args, extra...)
}

// startProc starts redis-server on port with its files in dir and waits
// until it answers PING. It returns the process and the server version. On
// failure the process has been killed and the error includes its log tail.
func startProc(bin string, port int, dir string, extra []string) (*proc, string, error) {
	p := &proc{
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		port:    port,
		dir:     dir,
		logPath: filepath.Join(dir, "redis.log"),
		outPath: filepath.Join(dir, "redis.out"),
		done:    make(chan struct{}),
	}
	// Anything redis-server prints before it opens its log file (such as
	// configuration errors) goes to redis.out. Using a file rather than a
	// pipe means Wait never blocks on a forked child holding the pipe open.
	out, err := os.OpenFile(p.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", p.outPath, err)
	}
	defer out.Close() // the child has its own copy once started

	p.cmd = exec.Command(bin, serverArgs(port, dir, extra)...)
	p.cmd.Dir = dir
	p.cmd.Stdout = out
	p.cmd.Stderr = out
	setProcAttrs(p.cmd)

	// Start from a fresh goroutine: the parent-death signal set by
	// setProcAttrs on Linux fires when the forking OS thread exits, and a
	// fresh goroutine never runs on a thread locked (runtime.LockOSThread) by
	// a caller, which could exit with that caller's goroutine.
	startErr := make(chan error, 1)
	go func() { startErr <- p.cmd.Start() }()
	if err := <-startErr; err != nil {
		return nil, "", fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := background(readyTimeout)
	defer cancel()
	version, err := p.waitReady(ctx)
	if err != nil {
		p.kill()
		if out, _ := os.ReadFile(p.outPath); bytes.Contains(out, []byte("FATAL CONFIG FILE ERROR")) {
			err = fmt.Errorf("%w: %w", errBadConfig, err)
		}
		return nil, "", fmt.Errorf("redis-server on %s: %w%s", p.addr, err, p.logTail())
	}
	return p, version, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls the server until it answers PING and reports the pid of
// our process (not of some other server that took the port first). It
// returns the server version.
func (p *proc) waitReady(ctx context.Context) (string, error) {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if p.exited() {
			return "", fmt.Errorf("exited during start-up: %v", p.waitErr)
		}
		version, err := p.probe(ctx)
		if err == nil {
			return version, nil
		}
		lastErr = err
		select {
		case <-p.done:
			return "", fmt.Errorf("exited during start-up: %v", p.waitErr)
		case <-ctx.Done():
			return "", fmt.Errorf("not ready within %s: %w", readyTimeout, lastErr)
		case <-ticker.C:
		}
	}
}

// probe checks once whether the server is ready.
func (p *proc) probe(ctx context.Context) (string, error) {
	// A plain TCP dial first keeps go-redis from logging dial failures while
	// the server is still starting.
	var d net.Dialer
	dialCtx, cancel := context.WithTimeout(ctx, time.Second)
	conn, err := d.DialContext(dialCtx, "tcp", p.addr)
	cancel()
	if err != nil {
		return "", err
	}
	_ = conn.Close()

	client := redis.NewClient(&redis.Options{
		Addr:            p.addr,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1,
		DialTimeout:     time.Second,
		ReadTimeout:     time.Second,
		WriteTimeout:    time.Second,
		PoolSize:        1,
	})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("PING: %w", err)
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("INFO server: %w", err)
	}
	fields := parseInfo(info)
	if pid := fields["process_id"]; pid != strconv.Itoa(p.cmd.Process.Pid) {
		return "", fmt.Errorf("port %d is served by another process (pid %s, ours is %d)", p.port, pid, p.cmd.Process.Pid)
	}
	return fields["redis_version"], nil
}

// stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns an error if the process had to be killed. It is a
// no-op for a process that has already exited.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		// Already gone, or SIGTERM unsupported (Windows): kill instead.
		p.kill()
		return nil
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		p.kill()
		return fmt.Errorf("redis-server on %s did not exit within %s of SIGTERM; killed it%s", p.addr, grace, p.logTail())
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill() // fails only if it has already exited
	}
	<-p.done
}

// logTail returns the last lines of the server's output and log file,
// formatted for appending to an error message.
func (p *proc) logTail() string {
	var b strings.Builder
	for _, path := range []string{p.outPath, p.logPath} {
		lines, err := tailLines(path, logTailLines)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "\n--- %s: %v", path, err)
			continue
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n--- last lines of %s:\n%s", path, strings.Join(lines, "\n"))
	}
	return b.String()
}

// tailLines returns up to n last lines of the file at path.
func tailLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const maxTail = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		if _, err := f.Seek(-maxTail, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("seek: %w", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// parseInfo parses the "key:value" lines of an INFO reply.
func parseInfo(info string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// freePort returns a loopback port that was free a moment ago. With bus set,
// port+clusterBusOffset is below 65536 and was free too.
func freePort(bus bool) (int, error) {
	var lastErr error
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			_ = l.Close()
			return port, nil
		}
		if port+clusterBusOffset > 65535 {
			_ = l.Close()
			lastErr = fmt.Errorf("port %d: bus port %d out of range", port, port+clusterBusOffset)
			continue
		}
		lb, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+clusterBusOffset)))
		_ = l.Close()
		if err != nil {
			lastErr = fmt.Errorf("bus port %d: %w", port+clusterBusOffset, err)
			continue
		}
		_ = lb.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port with a free cluster bus port: %w", lastErr)
}

// startWithRetry starts redis-server with its files in dir on a fresh free
// port, retrying on new ports when a start fails (a picked port may be taken
// by someone else before the server binds it).
func startWithRetry(bin, dir string, bus bool, extra []string) (*proc, string, error) {
	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port, err := freePort(bus)
		if err != nil {
			return nil, "", err
		}
		p, version, err := startProc(bin, port, dir, extra)
		if err == nil {
			return p, version, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		if errors.Is(err, errBadConfig) {
			break // a new port will not help
		}
		if bus {
			// A cluster node that got as far as writing its config before
			// failing must not carry it over to the next attempt.
			if err := os.Remove(filepath.Join(dir, clusterConfigFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, "", fmt.Errorf("remove stale cluster config: %w", err)
			}
		}
	}
	return nil, "", fmt.Errorf("redis-server failed to start (%d attempts): %w", len(errs), errors.Join(errs...))
}
