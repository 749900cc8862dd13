package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// delivery is one call the sink received.
type delivery struct {
	id  string
	at  time.Time
	seq int // arrival order at the sink
}

// sink is the HTTP endpoint the forward handlers of both pipelines call. It
// records the webhook-id and arrival time of every call and answers 204.
type sink struct {
	srv *http.Server
	url string

	mu    sync.Mutex
	calls []delivery
	first map[string]int // id -> index in calls of its first delivery
	runs  map[string]int // run -> distinct ids delivered
}

// startSink serves a sink on a free loopback port.
func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: listen: %w", err)
	}
	s := &sink{first: map[string]int{}, runs: map[string]int{}, url: "http://" + ln.Addr().String() + "/sink"}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("sink: %v\n", err)
		}
	}()
	return s, nil
}

// ServeHTTP records one call.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("webhook-id")
	now := time.Now()
	s.mu.Lock()
	d := delivery{id: id, at: now, seq: len(s.calls)}
	s.calls = append(s.calls, d)
	if _, ok := s.first[id]; !ok {
		s.first[id] = d.seq
		run, _, _ := strings.Cut(id, "-")
		s.runs[run]++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// stop closes the sink's server.
func (s *sink) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// distinct returns how many distinct ids were delivered.
func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.first)
}

// delivered returns how many distinct ids of the workload with run id run
// were delivered.
func (s *sink) delivered(run string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[run]
}

// firstDelivery returns the first delivery of id, if any.
func (s *sink) firstDelivery(id string) (delivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.first[id]
	if !ok {
		return delivery{}, false
	}
	return s.calls[i], true
}

// snapshot returns every call so far, in arrival order.
func (s *sink) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.calls...)
}
