package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process of the suite's own: a free loopback
// port, a temporary directory, no persistence.
type redisServer struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	client *redis.Client
	exited chan struct{}
}

// startRedis starts a fresh redis-server, retrying on another port if the
// one it picked was taken in the meantime.
func startRedis(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (Debian/Ubuntu: apt-get install redis-server; or `make redis-server`): %w", err)
	}
	var lastErr error
	for range 5 {
		r, err := tryStartRedis(ctx, bin)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func tryStartRedis(ctx context.Context, bin string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hookline-bench-redis-")
	if err != nil {
		return nil, fmt.Errorf("redis temp dir: %w", err)
	}
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{cmd: cmd, addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.exited) }()
	r.client = redis.NewClient(&redis.Options{Addr: r.addr, PoolSize: 4, MaxRetries: -1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := r.client.Ping(pctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		select {
		case <-r.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			r.stop()
			return nil, fmt.Errorf("redis-server on port %d exited: %s", port, lastLines(string(log), 5))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("redis-server on port %d does not answer: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// url is the HOOKLINE_REDIS_URL of the server.
func (r *redisServer) url() string { return "redis://" + r.addr }

// stop ends the server and removes its directory.
func (r *redisServer) stop() {
	if r == nil {
		return
	}
	if r.client != nil {
		_ = r.client.Close()
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	_ = os.RemoveAll(r.dir)
}

// info returns the fields of an INFO section.
func (r *redisServer) info(ctx context.Context, section string) (map[string]string, error) {
	text, err := r.client.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO %s: %w", section, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// infoInt returns one integer field of an INFO section.
func (r *redisServer) infoInt(ctx context.Context, section, field string) (int64, error) {
	fields, err := r.info(ctx, section)
	if err != nil {
		return 0, err
	}
	v, ok := fields[field]
	if !ok {
		return 0, fmt.Errorf("INFO %s has no %s", section, field)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("INFO %s %s=%q: %w", section, field, v, err)
	}
	return n, nil
}

// commands returns INFO stats total_commands_processed.
func (r *redisServer) commands(ctx context.Context) (int64, error) {
	return r.infoInt(ctx, "stats", "total_commands_processed")
}

// cpu returns the CPU time redis-server has used so far (INFO cpu,
// used_cpu_user + used_cpu_sys, of the main process and its threads).
func (r *redisServer) cpu(ctx context.Context) (time.Duration, error) {
	f, err := r.info(ctx, "cpu")
	if err != nil {
		return 0, err
	}
	var sec float64
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(f[k], 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s = %q: %w", k, f[k], err)
		}
		sec += v
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// printCommandStats prints INFO commandstats' calls per item, most first:
// which commands (scripts' own among them) the items cost.
func (r *redisServer) printCommandStats(ctx context.Context, items int) {
	f, err := r.info(ctx, "commandstats")
	if err != nil {
		fmt.Println("  commandstats:", err)
		return
	}
	type stat struct {
		name  string
		calls int64
		usec  float64 // time spent, from usec=
	}
	var stats []stat
	for k, v := range f {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		fields := map[string]string{}
		for kv := range strings.SplitSeq(v, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		n, err := strconv.ParseInt(fields["calls"], 10, 64)
		u, _ := strconv.ParseFloat(fields["usec"], 64)
		if ok && err == nil {
			stats = append(stats, stat{name, n, u})
		}
	}
	sort.Slice(stats, func(i, j int) bool { return stats[i].calls > stats[j].calls })
	per := float64(max(items, 1))
	var b strings.Builder
	for _, s := range stats {
		fmt.Fprintf(&b, " %s %.2f (%.1f µs)", s.name, float64(s.calls)/per, s.usec/per)
	}
	fmt.Println("  Redis calls per item (INFO commandstats, since start), with their time per item (a script's includes its commands'):" + b.String())
}

// usedMemory returns INFO memory used_memory.
func (r *redisServer) usedMemory(ctx context.Context) (int64, error) {
	return r.infoInt(ctx, "memory", "used_memory")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: not a TCP address")
	}
	return addr.Port, nil
}

// lastLines returns the last n lines of s, indented, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
