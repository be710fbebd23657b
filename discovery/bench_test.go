package discovery_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// Benchmarks against the raw consumer (raw_test.go), in the same run. The
// 100,000-instance sizes run when ROSTER_SCALE is set:
//
//	ROSTER_SCALE=1 go test -run '^$' -bench 'Propagation|CacheSync' -benchtime 200x ./discovery

// sizes are the service sizes of the benchmarks.
func sizes() []int {
	if os.Getenv("ROSTER_SCALE") != "" {
		return []int{10, 1000, 10000, 100000}
	}
	return []int{10, 1000, 10000}
}

// propEnv is one service of n instances on its own member, followed by a
// cache subscriber and a raw consumer, each on its own client.
type propEnv struct {
	writer       *clientv3.Client
	n            int
	cacheSeen    chan seen
	rawSeen      chan seen
	cacheLatency []time.Duration
	rawLatency   []time.Duration
	i            int
}

func newPropEnv(tb testing.TB, n int) *propEnv {
	m := etcdtest.Start(tb)
	e := &propEnv{writer: m.Client(), n: n, cacheSeen: make(chan seen, 16), rawSeen: make(chan seen, 16)}
	registerMany(tb, e.writer, "svc", n)
	ctx, cancel := context.WithCancel(context.Background())
	c := cache(tb, discoverer(tb, etcdtest.NewClient(tb, m.Endpoints()...)), "svc")
	require.NoError(tb, c.WaitSynced(ctxT(tb)))
	changes := c.Changes(ctx)
	require.Equal(tb, n, len(next(tb, changes).Added))
	var wg sync.WaitGroup
	wg.Go(func() {
		for ch := range changes {
			select {
			case e.cacheSeen <- seen{ch.Snapshot.Revision(), time.Now()}:
			case <-ctx.Done():
			}
		}
	})
	raw, err := startRaw(ctx, etcdtest.NewClient(tb, m.Endpoints()...), "svc", e.rawSeen)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		raw.stop()
	})
	return e
}

// measure makes k sequential updates of one instance each and records, for
// each, the time from just before the Put until the cache's subscriber and
// the raw consumer have it.
func (e *propEnv) measure(tb testing.TB, k int) {
	for range k {
		in := instanceN(e.i % e.n)
		in.Weight = 11 + (e.i/e.n)%1000 // every Put changes the instance: an equal value is no change
		e.i++
		start := time.Now()
		rev := putInstance(tb, e.writer, in)
		for _, ch := range []chan seen{e.cacheSeen, e.rawSeen} {
			var got seen
			for got.rev < rev {
				select {
				case got = <-ch:
				case <-time.After(within):
					tb.Fatalf("update at revision %d not seen", rev)
				}
			}
			if ch == e.cacheSeen {
				e.cacheLatency = append(e.cacheLatency, got.at.Sub(start))
			} else {
				e.rawLatency = append(e.rawLatency, got.at.Sub(start))
			}
		}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkPropagation reports p50 and p99 latency from a Put of one
// instance to a cache subscriber (Changes), against the raw consumer, and
// their ratios, at several service sizes:
//
//	go test -run '^$' -bench Propagation -benchtime 200x ./discovery
func BenchmarkPropagation(b *testing.B) {
	for _, n := range sizes() {
		e := newPropEnv(b, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			e.cacheLatency, e.rawLatency = nil, nil
			e.measure(b, b.N)
			b.StopTimer()
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}} {
				c, r := percentile(e.cacheLatency, p.q), percentile(e.rawLatency, p.q)
				b.ReportMetric(float64(c.Microseconds()), p.name+"-cache-µs")
				b.ReportMetric(float64(r.Microseconds()), p.name+"-raw-µs")
				b.ReportMetric(float64(c)/float64(r), p.name+"-ratio")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// The cache adds next to nothing to a raw consumer. The bound is loose,
// because the race detector and a shared machine blur small figures;
// BenchmarkPropagation gives the numbers.
func TestPropagationMatchesRawConsumer(t *testing.T) {
	e := newPropEnv(t, 1000)
	e.measure(t, 100)
	c50, r50 := percentile(e.cacheLatency, 0.5), percentile(e.rawLatency, 0.5)
	t.Logf("1,000 instances: p50 cache %v raw %v; p99 cache %v raw %v", c50, r50,
		percentile(e.cacheLatency, 0.99), percentile(e.rawLatency, 0.99))
	assert.LessOrEqual(t, c50, r50*2+2*time.Millisecond)
}

// syncRoster is a cache's first sync: Watch, WaitSynced, Close.
func syncRoster(ctx context.Context, d *discovery.Discoverer, service string) (int, error) {
	c, err := d.Watch(service)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.WaitSynced(ctx); err != nil {
		return 0, err
	}
	return c.Snapshot().Len(), nil
}

// syncRaw is the raw consumer's first sync without its watch: one Get of
// the prefix, every value decoded into a map.
func syncRaw(ctx context.Context, cli *clientv3.Client, service string) (int, error) {
	prefix := keys.ServicePrefix(keys.DefaultNamespace, service)
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	byID := make(map[string]roster.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id := strings.TrimPrefix(string(kv.Key), prefix)
		if in, err := roster.DecodeInstance(service, id, kv.Value); err == nil {
			byID[id] = in
		}
	}
	return len(byID), nil
}

// BenchmarkCacheSync measures a cache's first sync (Watch to WaitSynced)
// against the raw consumer's Get and decode, alternating them in each
// iteration, and reports both and their ratio:
//
//	go test -run '^$' -bench CacheSync -benchtime 20x ./discovery
func BenchmarkCacheSync(b *testing.B) {
	m := etcdtest.Start(b)
	cli := m.Client()
	d := discoverer(b, cli)
	ctx := context.Background()
	for _, n := range append([]int{100}, sizes()[1:]...) {
		service := fmt.Sprintf("sync%d", n)
		registerMany(b, cli, service, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var tRoster, tRaw time.Duration
			for b.Loop() {
				for k, run := range []func() (int, error){
					func() (int, error) { return syncRoster(ctx, d, service) },
					func() (int, error) { return syncRaw(ctx, cli, service) },
				} {
					start := time.Now()
					got, err := run()
					if err != nil {
						b.Fatal(err)
					}
					if got != n {
						b.Fatalf("synced %d instances, want %d", got, n)
					}
					if k == 0 {
						tRoster += time.Since(start)
					} else {
						tRaw += time.Since(start)
					}
				}
			}
			b.ReportMetric(float64(tRoster.Microseconds())/float64(b.N)/1000, "roster-ms")
			b.ReportMetric(float64(tRaw.Microseconds())/float64(b.N)/1000, "raw-ms")
			b.ReportMetric(float64(tRoster)/float64(tRaw), "ratio")
			b.ReportMetric(0, "ns/op")
		})
	}
}
