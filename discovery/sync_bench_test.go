package discovery

import (
	"context"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// syncRaw is the baseline for a cache's first sync: what a hand-written
// cache does with clientv3 alone. One Get of the prefix, every value
// decoded into a map, a watch opened from the next revision and confirmed
// by etcd, then closed. It has no compaction handling, no snapshot and no
// subscribers.
func syncRaw(ctx context.Context, cli *clientv3.Client, service string) (int, error) {
	prefix := keys.ServicePrefix(keys.DefaultNamespace, service)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	byID := make(map[string]roster.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), prefix)
		in, err := roster.DecodeInstance(service, id, kv.Value)
		if err != nil {
			continue
		}
		byID[id] = in
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(),
		clientv3.WithRev(resp.Header.Revision+1), clientv3.WithCreatedNotify())
	if w := <-wch; w.Err() != nil {
		return 0, w.Err()
	}
	return len(byID), nil
}

// syncRoster is a cache's first sync: Watch, WaitSynced, Close.
func syncRoster(ctx context.Context, d *Discoverer, service string) (int, error) {
	c, err := d.Watch(service)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.WaitSynced(ctx); err != nil {
		return 0, err
	}
	return len(c.Snapshot().Instances), nil
}

// BenchmarkCacheSync measures how a cache's first sync grows from 100 to
// 10,000 instances, against a raw Get + decode + watch in the same run:
//
//	go test -run '^$' -bench CacheSync -benchtime 20x ./discovery
func BenchmarkCacheSync(b *testing.B) {
	m := etcdtest.Start(b)
	cli := m.Client()
	d := newDiscoverer(b, cli)
	ctx := context.Background()
	for _, n := range []int{100, 1000, 10000} {
		service := fmt.Sprintf("sync%d", n)
		registerMany(b, cli, service, n)
		for _, c := range []struct {
			name string
			run  func() (int, error)
		}{
			{"roster", func() (int, error) { return syncRoster(ctx, d, service) }},
			{"raw", func() (int, error) { return syncRaw(ctx, cli, service) }},
		} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				for b.Loop() {
					got, err := c.run()
					if err != nil {
						b.Fatal(err)
					}
					if got != n {
						b.Fatalf("synced %d instances, want %d", got, n)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/instance")
			})
		}
	}
}
