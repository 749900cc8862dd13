package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// asynqServeArg, as the first argument, makes the suite's binary run (part
// of) the asynq pipeline in a process of its own until SIGTERM, so that its
// CPU time is counted apart from the suite's senders and sink, as hookline
// dev's is.
const asynqServeArg = "asynq-serve"

// secretEnv passes the signing secret to the asynq child (never argv).
const secretEnv = "HOOKLINE_BENCH_SECRET"

// asynqServe is the child's main: the ingest front (--ingest) and/or workers
// (--workers > 0). It prints "asynq ready <url>" once serving.
func asynqServe(args []string) error {
	fs := flag.NewFlagSet(asynqServeArg, flag.ContinueOnError)
	redisAddr := fs.String("redis", "", "redis-server address")
	ingest := fs.Bool("ingest", false, "serve the HTTP ingest front")
	pool := fs.Int("pool", 72, "the ingest's Redis pool size")
	workers := fs.Int("workers", 0, "asynq workers forwarding to --sink (0: none)")
	poll := fs.Duration("poll", 200*time.Millisecond, "asynq's TaskCheckInterval")
	sinkURL := fs.String("sink", "", "where workers forward")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	url := "-"
	if *ingest {
		in, err := startAsynqIngest(*redisAddr, os.Getenv(secretEnv), *pool)
		if err != nil {
			return err
		}
		defer in.stop()
		url = in.url
	}
	if *workers > 0 {
		w, err := startAsynqWorkers(*redisAddr, *workers, *poll, *sinkURL)
		if err != nil {
			return err
		}
		defer w.stop()
	}
	fmt.Println("asynq ready", url)
	<-ctx.Done()
	return nil
}

// asynqProc is a running asynq-serve child.
type asynqProc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// startAsynqProc starts an asynq-serve child with args and waits until it
// serves.
func startAsynqProc(ctx context.Context, secret string, args ...string) (*asynqProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{asynqServeArg}, args...)...)
	cmd.Env = append(os.Environ(), secretEnv+"="+secret)
	cmd.SysProcAttr = childAttr()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start asynq child: %w", err)
	}
	p := &asynqProc{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan string, 1)
	out := &tail{max: 50}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "asynq ready "); ok {
				ready <- u
				continue
			}
			out.add(line)
		}
	}()
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		close(p.exited)
	}()
	select {
	case u := <-ready:
		p.url = u // "-" when it serves no HTTP
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("asynq child exited: %s", out.text())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("asynq child did not start in 30s: %s", out.text())
	}
}

// stop ends the child gracefully, or kills it after 10 s.
func (p *asynqProc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// pid is the child's process id.
func (p *asynqProc) pid() int { return p.cmd.Process.Pid }
