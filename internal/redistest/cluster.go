package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterConfigFile is the cluster state file of each node, in its dir.
	clusterConfigFile = "nodes.conf"
	// clusterSlotCount is the number of hash slots in a Redis Cluster.
	clusterSlotCount = 16384
	// clusterReadyTimeout bounds the wait for the cluster to converge. A
	// fresh master waits about 2 s before it declares the cluster ok.
	clusterReadyTimeout = 20 * time.Second
)

// clusterRanges are the slot ranges assigned to the nodes, one per node.
var clusterRanges = [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}

// clusterArgs are the extra redis-server arguments of a cluster node.
var clusterArgs = []string{
	"--cluster-enabled", "yes",
	"--cluster-config-file", clusterConfigFile,
	"--cluster-node-timeout", "5000",
	// Announce the loopback address so that every node reports the same
	// addresses in CLUSTER SLOTS from the start.
	"--cluster-announce-ip", "127.0.0.1",
}

// startCluster starts the nodes of the shared cluster, forms the cluster and
// returns a verified client to it.
func startCluster(tb testing.TB) (*redis.ClusterClient, error) {
	tb.Helper()
	bin, err := redisBinary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "redistest-cluster-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	var procs []*proc
	fail := func(err error) (*redis.ClusterClient, error) {
		for _, p := range procs {
			p.kill()
		}
		_ = os.RemoveAll(root)
		return nil, err
	}

	var version string
	for i := range clusterRanges {
		dir := filepath.Join(root, "node"+strconv.Itoa(i+1))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fail(fmt.Errorf("create node dir: %w", err))
		}
		p, v, err := startWithRetry(bin, dir, true, clusterArgs)
		if err != nil {
			return fail(fmt.Errorf("node %d: %w", i+1, err))
		}
		procs = append(procs, p)
		version = v
	}

	if err := formCluster(procs); err != nil {
		return fail(err)
	}
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = p.addr
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DisableIdentity: true})
	if err := verifyCluster(client, procs, Prefix(tb)); err != nil {
		_ = client.Close()
		return fail(err)
	}
	registerShared(procs, []string{root}, client.Close)
	announce(tb, "redistest: %d-node cluster redis-server %s on %s", len(procs), version, strings.Join(addrs, ","))
	return client, nil
}

// formCluster joins the nodes, assigns one slot range per node and waits
// until every node sees a healthy cluster.
func formCluster(procs []*proc) error {
	ctx, cancel := background(clusterReadyTimeout)
	defer cancel()

	nodes := make([]*redis.Client, len(procs))
	addrs := make(map[string]bool, len(procs))
	for i, p := range procs {
		nodes[i] = newClient(p.addr)
		defer nodes[i].Close()
		addrs[p.addr] = true
	}
	seed := strconv.Itoa(procs[0].port)
	for i, node := range nodes[1:] {
		if err := node.ClusterMeet(ctx, "127.0.0.1", seed).Err(); err != nil {
			return fmt.Errorf("node %d: CLUSTER MEET 127.0.0.1 %s: %w", i+2, seed, err)
		}
	}
	for i, node := range nodes {
		r := clusterRanges[i]
		if err := node.ClusterAddSlotsRange(ctx, r[0], r[1]).Err(); err != nil {
			return fmt.Errorf("node %d: CLUSTER ADDSLOTSRANGE %d %d: %w", i+1, r[0], r[1], err)
		}
	}

	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		err := clusterHealthy(ctx, nodes, addrs)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			var tails strings.Builder
			for i, p := range procs {
				fmt.Fprintf(&tails, "\n=== node %d (%s):%s", i+1, p.addr, p.logTail())
			}
			return fmt.Errorf("cluster not ready within %s: %w%s", clusterReadyTimeout, err, tails.String())
		case <-ticker.C:
		}
	}
}

// clusterHealthy checks every node once and returns the first problem found.
func clusterHealthy(ctx context.Context, nodes []*redis.Client, addrs map[string]bool) error {
	for i, node := range nodes {
		if err := nodeHealthy(ctx, node, addrs); err != nil {
			return fmt.Errorf("node %d (%s): %w", i+1, node.Options().Addr, err)
		}
	}
	return nil
}

// nodeHealthy checks that node reports cluster_state:ok, knows exactly the
// cluster's nodes and serves a slot map covering every slot with one of them.
func nodeHealthy(ctx context.Context, node *redis.Client, addrs map[string]bool) error {
	info, err := node.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER INFO: %w", err)
	}
	fields := parseInfo(info)
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_known_nodes":    strconv.Itoa(len(addrs)),
		"cluster_slots_assigned": strconv.Itoa(clusterSlotCount),
	}
	for k, v := range want {
		if fields[k] != v {
			return fmt.Errorf("CLUSTER INFO reports %s:%s, want %s", k, fields[k], v)
		}
	}

	slots, err := node.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	var covered [clusterSlotCount]bool
	n := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 || !addrs[s.Nodes[0].Addr] {
			return fmt.Errorf("CLUSTER SLOTS: slots %d-%d have unexpected nodes %v", s.Start, s.End, s.Nodes)
		}
		if s.Start < 0 || s.End >= clusterSlotCount || s.Start > s.End {
			return fmt.Errorf("CLUSTER SLOTS: invalid range %d-%d", s.Start, s.End)
		}
		for slot := s.Start; slot <= s.End; slot++ {
			if covered[slot] {
				return fmt.Errorf("CLUSTER SLOTS: slot %d listed twice", slot)
			}
			covered[slot] = true
			n++
		}
	}
	if n != clusterSlotCount {
		return fmt.Errorf("CLUSTER SLOTS covers %d of %d slots", n, clusterSlotCount)
	}
	return nil
}

// verifyCluster writes and reads back, through client, one key in each
// node's slot range and checks that the key landed on that node.
func verifyCluster(client *redis.ClusterClient, procs []*proc, prefix string) error {
	ctx, cancel := background(readyTimeout)
	defer cancel()

	keys := make([]string, len(clusterRanges)) // keys[i] hashes to clusterRanges[i]
	found := 0
	for i := 0; found < len(keys) && i < 1000; i++ {
		key := prefix + ":verify:" + strconv.Itoa(i)
		slot, err := client.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER KEYSLOT %s: %w", key, err)
		}
		for r, rng := range clusterRanges {
			if keys[r] == "" && int(slot) >= rng[0] && int(slot) <= rng[1] {
				keys[r] = key
				found++
			}
		}
	}
	if found < len(keys) {
		return errors.New("found no verification key for some slot range")
	}

	for i, key := range keys {
		if err := client.Set(ctx, key, "ok", time.Minute).Err(); err != nil {
			return fmt.Errorf("SET %s through cluster client: %w", key, err)
		}
		got, err := client.Get(ctx, key).Result()
		if err != nil || got != "ok" {
			return fmt.Errorf("GET %s through cluster client = %q, %v; want \"ok\"", key, got, err)
		}
		node := newClient(procs[i].addr)
		n, err := node.Exists(ctx, key).Result()
		_ = node.Close()
		if err != nil || n != 1 {
			return fmt.Errorf("EXISTS %s on node %d (%s) = %d, %v; want 1", key, i+1, procs[i].addr, n, err)
		}
		if err := client.Del(ctx, key).Err(); err != nil {
			return fmt.Errorf("DEL %s through cluster client: %w", key, err)
		}
	}
	return nil
}
