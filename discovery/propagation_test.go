package discovery

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// propagation measures, for n registrations of one key, the time from
// just before the Put to (a) a subscriber of a cache seeing it and (b) a
// raw clientv3 watch on the same key seeing it, in the same run, each on
// its own client. Registrations are sequential.
func propagation(tb testing.TB, n int) (cache, raw []time.Duration) {
	m := etcdtest.Start(tb)
	writer := m.Client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c := watch(tb, newDiscoverer(tb, etcdtest.NewClient(tb, m.Endpoints()...)), "svc")
	require.NoError(tb, c.WaitSynced(testContext(tb)))
	sub := c.Subscribe()
	defer sub.Close()
	_, err := sub.Next(ctx) // the initial, empty view
	require.NoError(tb, err)

	type seen struct {
		rev int64
		at  time.Time
	}
	cacheSeen, rawSeen := make(chan seen, 1), make(chan seen, 1)
	rawCli := etcdtest.NewClient(tb, m.Endpoints()...)
	wch := rawCli.Watch(ctx, instKey("svc", "a"), clientv3.WithRev(c.Snapshot().Revision+1))
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		for resp := range wch {
			at := time.Now()
			for _, ev := range resp.Events {
				rawSeen <- seen{ev.Kv.ModRevision, at}
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			ch, err := sub.Next(ctx)
			if err != nil {
				return
			}
			cacheSeen <- seen{ch.Snapshot.Revision, time.Now()}
		}
	}()

	in := inst("svc", "a")
	for i := range n {
		in.Weight = 1 + i%100 // every Put changes the instance
		start := time.Now()
		rev := put(tb, writer, in)
		for _, ch := range []chan seen{cacheSeen, rawSeen} {
			select {
			case s := <-ch:
				require.Equal(tb, rev, s.rev)
				d := s.at.Sub(start)
				if ch == cacheSeen {
					cache = append(cache, d)
				} else {
					raw = append(raw, d)
				}
			case <-time.After(converge):
				tb.Fatalf("registration %d not seen", i)
			}
		}
	}
	cancel()
	<-done
	<-done
	return cache, raw
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// Acceptance 4, as a check: the cache adds next to nothing to a raw
// watch. The bound is loose, because the race detector and a shared
// machine blur small figures; BenchmarkPropagation gives the numbers.
func TestPropagationMatchesRawWatch(t *testing.T) {
	cache, raw := propagation(t, 200)
	c50, r50 := percentile(cache, 0.5), percentile(raw, 0.5)
	t.Logf("p50 cache %v raw %v; p99 cache %v raw %v", c50, r50, percentile(cache, 0.99), percentile(raw, 0.99))
	assert.LessOrEqual(t, c50, r50*3/2+time.Millisecond)
}

// BenchmarkPropagation reports p50 and p99 latency from a registration
// Put to a cache subscriber, against a raw watch on the same key in the
// same run, and their ratios. Each iteration is one registration.
func BenchmarkPropagation(b *testing.B) {
	cache, raw := propagation(b, max(b.N, 50))
	b.StopTimer()
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p99", 0.99}} {
		c, r := percentile(cache, p.q), percentile(raw, p.q)
		b.ReportMetric(float64(c.Microseconds()), p.name+"-cache-µs")
		b.ReportMetric(float64(r.Microseconds()), p.name+"-raw-µs")
		b.ReportMetric(float64(c)/float64(r), p.name+"-ratio")
	}
	b.ReportMetric(0, "ns/op")
}
