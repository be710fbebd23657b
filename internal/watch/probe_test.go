package watch_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/watch"
)

// countingClient is a client whose Range requests (lists and progress
// checks' reads) are counted.
func countingClient(t *testing.T, endpoints []string) (*clientv3.Client, *atomic.Int64) {
	var ranges atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == "/etcdserverpb.KV/Range" {
			ranges.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(count)}})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli, &ranges
}

// idleReads starts n idle followers on one client, with or without a
// shared Probe, and counts their reads over rounds progress intervals.
func idleReads(t *testing.T, m *etcdtest.Member, n, rounds int, shared bool) int64 {
	// Not shorter: 50 followers' reads an interval on a loaded machine can
	// take a 200 ms interval's grace (CI saw one stale at 301 ms).
	const interval = 400 * time.Millisecond
	cli, ranges := countingClient(t, m.Endpoints())
	var probe *watch.Probe
	if shared {
		probe = watch.NewProbe(cli)
	}
	var fs []*watch.Follower
	for i := range n {
		prefix := fmt.Sprintf("/probe-%v/%d/", shared, i)
		f := watch.Start(watch.Config{
			Client: cli, Prefix: prefix, What: prefix, Interval: interval,
			Backoff: backoff.Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond},
			Stale:   errStale, Closed: errClosed, Probe: probe,
		}, newState())
		t.Cleanup(f.Stop)
		fs = append(fs, f)
	}
	for _, f := range fs {
		select {
		case <-f.Synced():
		case <-time.After(10 * time.Second):
			t.Fatal("not synced within 10 s")
		}
	}
	before := ranges.Load()
	deadline := time.Now().Add(time.Duration(rounds) * interval)
	for time.Now().Before(deadline) {
		for _, f := range fs {
			require.NoError(t, f.Err(), "idle and healthy")
		}
		time.Sleep(10 * time.Millisecond) // sampling over a fixed window
	}
	return ranges.Load() - before
}

// Idle followers of one client that share a Probe stay fresh with a few
// reads a round instead of one each.
func TestProbeSharesIdleReads(t *testing.T) {
	const n, rounds = 50, 10
	m := etcdtest.Start(t)
	own := idleReads(t, m, n, rounds, false)
	shared := idleReads(t, m, n, rounds, true)
	t.Logf("%d idle followers over %d progress intervals: %d reads on their own, %d sharing a probe", n, rounds, own, shared)
	require.GreaterOrEqual(t, own, int64(n*rounds/2), "each follower checks about once an interval")
	require.Less(t, shared, own/5, "a shared read answers the checks begun within its jitter")
}
