package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// rawIngest is the floor of an ingest endpoint: an HTTP handler that does
// one RPUSH of the body per request and answers 202.
type rawIngest struct {
	srv *http.Server
	url string
	rdb *redis.Client
}

// startRawIngest serves it on a free loopback port.
func startRawIngest(redisAddr string, poolSize int) (*rawIngest, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("raw ingest: listen: %w", err)
	}
	r := &rawIngest{url: "http://" + ln.Addr().String() + "/webhooks", rdb: redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: poolSize})}
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 256<<10))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := r.rdb.RPush(req.Context(), "raw:ingest", body).Err(); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// stop closes the server and its client.
func (r *rawIngest) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	_ = r.rdb.Close()
}

// rawPipelineResult is what one raw RPUSH+LPOP run measured.
type rawPipelineResult struct {
	items      int
	elapsed    time.Duration
	commands   int64 // Redis commands processed, empty pops included
	roundTrips int64
}

// rawPipeline pushes n bodies with conc producers (one RPUSH each) while
// conc consumers pop them (one LPOP each, a short pause after an empty pop),
// and times first push to last pop. With prefill, every item is pushed
// first and only the pops are timed: the raw form of a backlog drain.
func rawPipeline(ctx context.Context, r *redisServer, n, conc int, body []byte, prefill bool) (rawPipelineResult, error) {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, PoolSize: 2*conc + 4})
	defer rdb.Close()
	const list = "raw:pipeline"
	var (
		pushed, popped, trips atomic.Int64
		firstErr              error
		errOnce               sync.Once
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	push := func() {
		for pushed.Add(1) <= int64(n) {
			trips.Add(1)
			if err := rdb.RPush(ctx, list, body).Err(); err != nil {
				fail(fmt.Errorf("RPUSH: %w", err))
				cancel()
				return
			}
		}
	}
	var wg sync.WaitGroup
	if prefill {
		for range conc {
			wg.Go(push)
		}
		wg.Wait()
		if firstErr != nil {
			return rawPipelineResult{}, firstErr
		}
		trips.Store(0)
	}
	before, err := r.commands(ctx)
	if err != nil {
		return rawPipelineResult{}, err
	}
	start := time.Now()
	var last atomic.Int64 // unix nanos of the last pop
	for range conc {
		if !prefill {
			wg.Go(push)
		}
		wg.Go(func() {
			for ctx.Err() == nil && popped.Load() < int64(n) {
				trips.Add(1)
				_, err := rdb.LPop(ctx, list).Result()
				if errors.Is(err, redis.Nil) {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("LPOP: %w", err))
						cancel()
					}
					return
				}
				if popped.Add(1) == int64(n) {
					last.Store(time.Now().UnixNano())
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return rawPipelineResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return rawPipelineResult{}, err
	}
	after, err := r.commands(ctx)
	if err != nil {
		return rawPipelineResult{}, err
	}
	return rawPipelineResult{
		items:      n,
		elapsed:    time.Unix(0, last.Load()).Sub(start),
		commands:   after - before - 1, // the first INFO
		roundTrips: trips.Load(),
	}, nil
}
