package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/hookline/hookline/shared/webhook"
)

// asynqTaskType is the type of the tasks the asynq pipeline enqueues.
const asynqTaskType = "webhook"

// asynqIngest is the front half of the asynq baseline: an HTTP server that
// verifies the Standard Webhooks signature with hookline's verifier, takes
// the key from the body as hookline does, and enqueues one asynq task per
// webhook, deduplicated by webhook id (asynq.TaskID). It answers 202 after
// asynq acknowledged the task, 200 for a duplicate.
type asynqIngest struct {
	srv    *http.Server
	url    string
	client *asynq.Client
	verify *webhook.Standard
}

// startAsynqIngest serves the asynq ingest on a free loopback port.
func startAsynqIngest(redisAddr, secret string, poolSize int) (*asynqIngest, error) {
	v, err := webhook.NewStandard([]string{secret}, 0)
	if err != nil {
		return nil, fmt.Errorf("asynq ingest: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("asynq ingest: listen: %w", err)
	}
	a := &asynqIngest{
		url:    "http://" + ln.Addr().String(),
		client: asynq.NewClient(asynq.RedisClientOpt{Addr: redisAddr, PoolSize: poolSize}),
		verify: v,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks", a.webhook)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

func (a *asynqIngest) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 256<<10))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	if err := a.verify.Verify(webhook.HTTPHeaders(r.Header), body, time.Now()); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	p, err := webhook.Parse(body, tenantPointer)
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	key := p.Tenant + ":" + p.Code
	// The payload is the key, a newline and the exact body.
	payload := append([]byte(key+"\n"), body...)
	_, err = a.client.EnqueueContext(r.Context(), asynq.NewTask(asynqTaskType, payload), asynq.TaskID(id), asynq.MaxRetry(7))
	status := http.StatusAccepted
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		status = http.StatusOK
	case err != nil:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "key": key, "duplicate": status == http.StatusOK})
}

// stop closes the server and the asynq client.
func (a *asynqIngest) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	_ = a.client.Close()
}

// asynqWorkers is the back half: an asynq server whose handler forwards each
// task's body to the sink with a keep-alive client, as hookline's forward
// handler does.
type asynqWorkers struct {
	srv *asynq.Server
}

// startAsynqWorkers starts an asynq server with n workers. poll is its
// TaskCheckInterval, the pause when the queues are empty.
func startAsynqWorkers(redisAddr string, n int, poll time.Duration, sinkURL string) (*asynqWorkers, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = n + 8
	t.MaxIdleConnsPerHost = n + 8
	client := &http.Client{Timeout: 10 * time.Second, Transport: t}
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: redisAddr, PoolSize: n + 8}, asynq.Config{
		Concurrency:       n,
		Queues:            map[string]int{"default": 1},
		TaskCheckInterval: poll,
		LogLevel:          asynq.ErrorLevel,
		ShutdownTimeout:   5 * time.Second,
	})
	h := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		key, body, _ := strings.Cut(string(task.Payload()), "\n")
		id, _ := asynq.GetTaskID(ctx)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, sinkURL, bytes.NewReader([]byte(body)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("hookline-key", key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("sink: %s", resp.Status)
		}
		return nil
	})
	if err := srv.Start(h); err != nil {
		return nil, fmt.Errorf("asynq server: %w", err)
	}
	return &asynqWorkers{srv: srv}, nil
}

// stop shuts the asynq server down.
func (a *asynqWorkers) stop() {
	if a != nil {
		a.srv.Shutdown()
	}
}
