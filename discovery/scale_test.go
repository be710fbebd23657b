package discovery

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// registerMany writes n instances of svc in transactions of 128 puts
// (etcd's default limit of operations per transaction).
func registerMany(t testing.TB, cli *clientv3.Client, svc string, n int) {
	t.Helper()
	var ops []clientv3.Op
	flush := func() {
		_, err := cli.Txn(testContext(t)).Then(ops...).Commit()
		require.NoError(t, err)
		ops = ops[:0]
	}
	for i := range n {
		in := roster.Instance{Service: svc, ID: fmt.Sprintf("i%05d", i), Addr: fmt.Sprintf("10.%d.%d.%d:8080", i>>16, (i>>8)&255, i&255),
			Weight: 1 + i%10, Metadata: map[string]string{"zone": fmt.Sprint("z", i%3), "version": "1.2.3"}}
		v, err := roster.EncodeInstance(in)
		require.NoError(t, err)
		ops = append(ops, clientv3.OpPut(instKey(svc, in.ID), string(v)))
		if len(ops) == 128 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Acceptance 8: a cache of 10,000 instances syncs, then follows a burst of
// 1,000 changes made by concurrent writers. Times and memory per instance
// are logged. ROSTER_SCALE=N changes the size.
func TestScaleTenThousand(t *testing.T) {
	n := 10000
	if s := os.Getenv("ROSTER_SCALE"); s != "" {
		_, err := fmt.Sscan(s, &n)
		require.NoError(t, err)
	} else if testing.Short() {
		n = 2000
	}
	m := etcdtest.Start(t)
	writer := m.Client()
	registerMany(t, writer, "big", n)

	cli := etcdtest.NewClient(t, m.Endpoints()...)
	d := newDiscoverer(t, cli)
	heap0 := heapInUse()
	start := time.Now()
	c := watch(t, d, "big")
	require.NoError(t, c.WaitSynced(testContext(t)))
	syncTime := time.Since(start)
	require.Len(t, c.Snapshot().Instances, n)
	heap1 := heapInUse()

	// The burst: 1,000 individual writes from 8 writers: updates, new
	// instances and deregistrations.
	const burst = 1000
	start = time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < burst; i += 8 {
				switch i % 3 {
				case 0:
					del(t, writer, "big", fmt.Sprintf("i%05d", i*7%n))
				case 1:
					put(t, writer, inst("big", fmt.Sprintf("new%04d", i)))
				default:
					in := inst("big", fmt.Sprintf("i%05d", (i*13+1)%n))
					in.Weight = 42
					put(t, writer, in)
				}
			}
		})
	}
	wg.Wait()
	writeTime := time.Since(start)
	resp, err := writer.Get(testContext(t), "x", clientv3.WithCountOnly())
	require.NoError(t, err)
	last := resp.Header.Revision // every write of the burst is at or below it
	eventually(t, func() bool { return c.Snapshot().Revision >= last }, "cache did not follow the burst")
	followTime := time.Since(start)
	requireConverges(t, c, writer)
	t.Logf("%d instances: initial sync %v; %d-change burst written in %v, cache converged %v after its start; heap %.0f bytes/instance (snapshot + decoded instances)",
		n, syncTime.Round(time.Millisecond), burst, writeTime.Round(time.Millisecond), followTime.Round(time.Millisecond),
		float64(heap1-min(heap0, heap1))/float64(n))
	runtime.KeepAlive(c)
}
