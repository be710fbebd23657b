package discovery_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// While a cache's connection is cut off, instances change and etcd is
// compacted past the cache's revision. Its watch cannot resume
// (ErrCompacted); the cache must re-list and match etcd.
func TestCacheRelistsAfterCompactionWhileCutOff(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			direct := m.Client()
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			for i := range 10 {
				putInstance(t, direct, instance("svc", fmt.Sprintf("n%d", i)))
			}
			c := cache(t, discoverer(t, etcdtest.NewClient(t, proxy.Endpoint())), "svc")
			require.NoError(t, c.WaitSynced(ctxT(t)))
			requireConverges(t, c, direct)
			lists, restarts := c.Stats().Lists, c.Stats().Restarts
			before := c.Snapshot().Revision()

			fault.start(proxy)
			for i := range 5 {
				deleteInstance(t, direct, "svc", fmt.Sprintf("n%d", i))
				putInstance(t, direct, instance("svc", fmt.Sprintf("m%d", i)))
			}
			rev := putInstance(t, direct, instance("svc", "last"))
			_, err := direct.Compact(ctxT(t), rev)
			require.NoError(t, err)
			require.Greater(t, rev, before)
			eventually(t, func() bool { return c.Err() != nil }, "the fault went unnoticed")
			// Hold the fault until the cache gave its watch up: behind a
			// paused proxy, etcd may have sent the events before the
			// compaction, and a watch still open would deliver them.
			eventually(t, func() bool { return c.Stats().Restarts > restarts }, "the watch was not given up")

			proxy.Restore()
			requireConverges(t, c, direct)
			assert.Greater(t, c.Stats().Lists, lists, "the cache re-listed")
			eventually(t, func() bool { return c.Err() == nil }, "cache still reports an error")
			assert.GreaterOrEqual(t, c.Snapshot().Revision(), rev)
			putInstance(t, direct, instance("svc", "after")) // the new watch works
			requireConverges(t, c, direct)
		})
	}
}

// The member a cache reads from dies. The cache's client first knows only
// that member, so the watch is certainly on it; it then learns the others.
// The cache must carry on through another member.
func TestCacheSurvivesLossOfItsMember(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	pinned := cl.Follower() // so the test does not also measure an election
	// The writer keeps off the member that dies: clientv3 does not retry a
	// Delete or Put whose connection broke, and this test is about the cache.
	writer := etcdtest.NewClient(t, cl.EndpointsExcept(pinned)...)
	for i := range 5 {
		putInstance(t, writer, instance("svc", fmt.Sprintf("n%d", i)))
	}
	cli := etcdtest.NewClient(t, pinned.Endpoints()...)
	c := cache(t, discoverer(t, cli), "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	requireConverges(t, c, writer)
	cli.SetEndpoints(cl.Endpoints()...)

	pinned.Kill()
	deleteInstance(t, writer, "svc", "n0")
	putInstance(t, writer, instance("svc", "n9"))
	requireConverges(t, c, writer)
}

// A cache is cut off (a black hole: bytes held, connections open) at the
// worst moments: while its first list is in flight, right when WaitSynced
// returns (the watch being created), during the re-list after a
// compaction, and in steady state. Whatever call is blocked, it reports
// stale within twice its progress interval, in each of 10 trials.
func TestCacheStaleWithinTwoIntervalsAtEveryTransition(t *testing.T) {
	const interval = 300 * time.Millisecond
	m := etcdtest.Start(t)
	direct := m.Client()
	putInstance(t, direct, instance("svc", "a"))
	ctx := ctxT(t)

	type trial struct {
		proxy *etcdtest.Proxy
		d     *discovery.Discoverer
	}
	transitions := []struct {
		name string
		// run starts the cache and the fault, and returns the cache and
		// when the fault started.
		run func(t *testing.T, tr trial) (*discovery.Cache, time.Time)
	}{
		{"during the first list", func(t *testing.T, tr trial) (*discovery.Cache, time.Time) {
			tr.proxy.Pause()
			at := time.Now()
			return cache(t, tr.d, "svc"), at
		}},
		{"right after sync, while the watch is created", func(t *testing.T, tr trial) (*discovery.Cache, time.Time) {
			c := cache(t, tr.d, "svc")
			require.NoError(t, c.WaitSynced(ctx))
			tr.proxy.Pause()
			return c, time.Now()
		}},
		{"during the re-list after a compaction", func(t *testing.T, tr trial) (*discovery.Cache, time.Time) {
			// Every byte takes 40 ms each way, so the watch asked for
			// after the first list reaches etcd only after the test has
			// compacted its start revision away: it fails with
			// ErrCompacted and the cache lists again, which is when the
			// fault starts.
			tr.proxy.Delay(40 * time.Millisecond)
			c := cache(t, tr.d, "svc")
			require.NoError(t, c.WaitSynced(ctx))
			putInstance(t, direct, instance("svc", "b"))
			rev := putInstance(t, direct, instance("svc", "b"))
			_, err := direct.Compact(ctx, rev)
			require.NoError(t, err)
			eventually(t, func() bool { return c.Stats().Lists >= 2 }, "no re-list after the compaction")
			tr.proxy.Pause()
			at := time.Now()
			require.ErrorIs(t, c.Err(), rpctypes.ErrCompacted, "the re-list follows the compaction")
			return c, at
		}},
		{"in steady state", func(t *testing.T, tr trial) (*discovery.Cache, time.Time) {
			c := cache(t, tr.d, "svc")
			require.NoError(t, c.WaitSynced(ctx))
			rev := putInstance(t, direct, instance("svc", "steady"))
			eventually(t, func() bool { return c.Snapshot().Revision() >= rev }, "put not seen")
			tr.proxy.Pause()
			return c, time.Now()
		}},
	}
	for _, tt := range transitions {
		t.Run(tt.name, func(t *testing.T) {
			var worst time.Duration
			for range 10 {
				proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
				d := discoverer(t, etcdtest.NewClient(t, proxy.Endpoint()), discovery.WithProgressInterval(interval))
				c, at := tt.run(t, trial{proxy, d})
				took := waitStale(t, c, at, 4*interval)
				worst = max(worst, took)
				require.LessOrEqual(t, took, 2*interval, "stale reported %v after the fault", took)
				proxy.Restore()
				requireConverges(t, c, direct)
				require.NoError(t, d.Close())
				proxy.Close()
			}
			t.Logf("%s: stale reported at most %v after the fault (progress interval %v, 10 trials)", tt.name, worst.Round(time.Millisecond), interval)
		})
	}
}

// waitStale waits until c reports stale and returns how long after since
// that was.
func waitStale(t *testing.T, c *discovery.Cache, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for time.Since(since) < limit {
		if err := c.Err(); errors.Is(err, discovery.ErrStale) && errors.Is(err, roster.ErrStale) {
			return time.Since(since)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("not reported stale within %v of the fault (err %v)", limit, c.Err())
	return 0
}

// A writer registers, updates and deregisters instances (singly and many
// at once through a revoked lease) while caches start, stop and lose their
// connection (cut, or black-holed); every cache ends exactly at what a
// plain Get returns: no lost instance, no ghost.
func TestCachesConvergeUnderConcurrentWrites(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) { convergeUnderWrites(t, fault.start) })
	}
}

func convergeUnderWrites(t *testing.T, cutOff func(*etcdtest.Proxy)) {
	m := etcdtest.Start(t)
	writer := m.Client()
	const svc = "gap"
	var (
		mu     sync.Mutex
		caches []*discovery.Cache
	)
	add := func(cli *clientv3.Client, opts ...discovery.Option) {
		c := cache(t, discoverer(t, cli, opts...), svc)
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
		ctx := ctxT(t)
		live := make(map[string]bool)
		put := func(in roster.Instance, opts ...clientv3.OpOption) error {
			v, err := roster.EncodeInstance(in)
			if err == nil {
				_, err = writer.Put(ctx, keys.InstanceKey(keys.DefaultNamespace, in.Service, in.ID), string(v), opts...)
			}
			return err
		}
		for i := range ops {
			id := fmt.Sprintf("n%02d", rng.IntN(40))
			var err error
			switch {
			case i%97 == 50:
				// Many instances under one lease, gone in one revision.
				var lease *clientv3.LeaseGrantResponse
				if lease, err = writer.Grant(ctx, 60); err == nil {
					for k := range 8 {
						if err == nil {
							err = put(instance(svc, fmt.Sprintf("l%d-%d", i, k)), clientv3.WithLease(lease.ID))
						}
					}
					if err == nil {
						_, err = writer.Revoke(ctx, lease.ID)
					}
				}
			case live[id] && rng.IntN(3) == 0:
				_, err = writer.Delete(ctx, keys.InstanceKey(keys.DefaultNamespace, svc, id))
				live[id] = false
			default:
				in := instance(svc, id)
				in.Weight = rng.IntN(10)
				err = put(in)
				live[id] = true
			}
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			step <- i
		}
	}()

	var restarted *discovery.Cache
	for i := range step {
		switch i {
		case 0:
			add(m.Client())
		case 100:
			add(m.Client(), discovery.WithPageSize(7)) // lists in pages while writes go on
		case 150:
			restarted = cache(t, discoverer(t, m.Client()), svc)
		case 200:
			add(flaky)
		case 300:
			cutOff(proxy) // the flaky cache loses its watch mid-stream
		case 350:
			require.NoError(t, restarted.Close())
			add(m.Client()) // and a new one takes its place
		case 420:
			flakyCache := caches[2] // let it notice before it gets its connection back
			eventually(t, func() bool { return flakyCache.Err() != nil }, "cut-off cache did not notice")
			proxy.Restore()
		case 500:
			add(m.Client())
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
	assert.GreaterOrEqual(t, caches[2].Stats().Restarts, uint64(1), "the cut-off cache re-listed")
}
