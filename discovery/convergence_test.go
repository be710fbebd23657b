package discovery

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// Acceptance 1: a writer registers, updates and deregisters instances
// (singly and many at once through a revoked lease) while caches start,
// stop and lose their connection; every cache ends exactly at what a plain
// Get returns: no lost instance, no ghost.
func TestCachesConvergeUnderConcurrentWrites(t *testing.T) {
	m := etcdtest.Start(t)
	writer := m.Client()
	const svc = "gap"

	var (
		mu     sync.Mutex
		caches []*Cache
	)
	addCache := func(cli *clientv3.Client, opts ...Option) {
		c := watch(t, newDiscoverer(t, cli, opts...), svc)
		mu.Lock()
		caches = append(caches, c)
		mu.Unlock()
	}
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	flaky := etcdtest.NewClient(t, proxy.Endpoint())

	const ops = 600
	step := make(chan int, ops)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := testContext(t)
		live := make(map[string]bool)
		for i := range ops {
			id := fmt.Sprintf("n%02d", rng.IntN(40))
			var err error
			switch {
			case i%97 == 50:
				// Many instances under one lease, gone in one revision.
				var lease *clientv3.LeaseGrantResponse
				if lease, err = writer.Grant(ctx, 60); err == nil {
					for k := range 8 {
						in := inst(svc, fmt.Sprintf("l%d-%d", i, k))
						putErr(writer, in, &err, clientv3.WithLease(lease.ID))
					}
					_, err = writer.Revoke(ctx, lease.ID)
				}
			case live[id] && rng.IntN(3) == 0:
				_, err = writer.Delete(ctx, instKey(svc, id))
				live[id] = false
			default:
				in := inst(svc, id)
				in.Weight = rng.IntN(10)
				putErr(writer, in, &err)
				live[id] = true
			}
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			step <- i
		}
	}()

	var restarted *Cache
	for i := range step {
		switch i {
		case 0:
			addCache(m.Client())
		case 100:
			addCache(m.Client(), WithPageSize(7)) // lists in pages while writes go on
		case 150:
			restarted = watch(t, newDiscoverer(t, m.Client()), svc)
		case 200:
			addCache(flaky)
		case 300:
			proxy.Cut() // the flaky cache loses its watch mid-stream
		case 350:
			require.NoError(t, restarted.Close())
			addCache(m.Client()) // and a new one takes its place
		case 420:
			// Let the cut cache notice before it gets its connection back.
			flakyCache := caches[2]
			eventually(t, func() bool { return flakyCache.Err() != nil }, "cut cache did not notice")
			proxy.Restore()
		case 500:
			addCache(m.Client())
		}
		if i == ops-1 {
			break
		}
	}
	<-done
	require.False(t, t.Failed())
	for i, c := range caches {
		t.Run(fmt.Sprint(i), func(t *testing.T) { requireConverges(t, c, writer) })
	}
	assert.GreaterOrEqual(t, caches[2].Stats().Restarts, uint64(1), "the cut cache re-listed")
}

func putErr(cli *clientv3.Client, in rosterInstance, err *error, opts ...clientv3.OpOption) {
	if *err != nil {
		return
	}
	v, e := encode(in)
	if e == nil {
		_, e = cli.Put(cli.Ctx(), instKey(in.Service, in.ID), string(v), opts...)
	}
	*err = e
}
