package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/lock"
)

// A waiter cut off from etcd (by a reset or a black hole) while it waits
// its turn gives up when its session is presumed lost, never believing it
// holds, and its key is gone once etcd answers again: the holder and the
// next waiter are not blocked by it.
func TestWaiterCutOffWhileWaiting(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl = 2 * time.Second
	for _, o := range recipetest.Outages[:2] {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			m := etcdtest.Start(t)
			direct := m.Client()
			ctx := testCtx(t)
			holder := newMutex(t, direct, "wait", lock.WithTTL(ttl))
			h, err := holder.Lock(ctx)
			require.NoError(t, err)
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			waiter := newMutex(t, etcdtest.NewClient(t, proxy.Endpoint()), "wait", lock.WithTTL(ttl))
			res := async(ctx, waiter.Lock)
			// Its key can be there before the answer to its put is back:
			// waiting is watching its predecessor.
			require.Eventually(t, func() bool { return m.Watchers() > 0 }, 10*time.Second, 5*time.Millisecond,
				"the waiter watches its predecessor")
			waitKeys(t, direct, holder.Prefix(), 2)

			mend := o.Start(t, proxy, m)
			r := receive(t, res, ttl+time.Second)
			require.Error(t, r.err, "the waiter gives up, at its session's deadline at the latest")
			require.ErrorIs(t, r.err, roster.ErrLost)
			mend()
			waitKeys(t, direct, holder.Prefix(), 1)
			require.NoError(t, h.Err(), "the holder was never disturbed")
			next := newMutex(t, direct, "wait", lock.WithTTL(ttl))
			nres := async(ctx, next.Lock)
			require.NoError(t, h.Release(ctx))
			n := receive(t, nres, 5*time.Second)
			require.NoError(t, n.err)
			require.NoError(t, n.h.Release(ctx))
			recipetest.RequireNoKeys(t, direct, holder.Prefix(), ttl)
		})
	}
}

// A put that etcd applies but whose answer a reset loses leaves no key
// behind while the session lives: otherwise the key would wait in the
// queue, or hold a permit, for as long as the Semaphore is open, with no
// caller to release it. TryAcquire then fails; Acquire tries again and
// holds, with one key.
func TestPutAnswerLostToAReset(t *testing.T) {
	t.Parallel()
	for _, try := range []bool{true, false} {
		name := map[bool]string{true: "TryAcquire", false: "Acquire"}[try]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := "/answer-lost-" + name
			m := etcdtest.Start(t)
			observer := m.Client()
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			sem, err := lock.NewSemaphore(etcdtest.NewClient(t, proxy.Endpoint()), "s", 1,
				lock.WithTTL(30*time.Second), lock.WithNamespace(ns))
			require.NoError(t, err)
			t.Cleanup(func() { sem.Close() })
			h, err := sem.TryAcquire(testCtx(t)) // grants the session
			require.NoError(t, err)
			require.NoError(t, h.Release(testCtx(t)))
			acquire := sem.Acquire
			if try {
				acquire = sem.TryAcquire
			}

			// Every byte waits a second in the proxy: the put is applied a
			// second before its answer would arrive, and the reset lands in
			// between.
			proxy.Delay(time.Second)
			res := async(testCtx(t), acquire)
			first := keysUnder(t, observer, ns+"/")
			for deadline := time.Now().Add(10 * time.Second); len(first) == 0; first = keysUnder(t, observer, ns+"/") {
				select {
				case r := <-res:
					t.Fatalf("%s returned before its put was applied: %v", name, r.err)
				case <-time.After(5 * time.Millisecond): // polling etcd for the key
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s's put was not applied within 10 s", name)
				}
			}
			proxy.Cut()
			proxy.Restore()
			r := receive(t, res, 10*time.Second)
			if try {
				require.Error(t, r.err, "the answer was lost")
				require.Eventually(t, func() bool { return len(keysUnder(t, observer, ns+"/")) == 0 }, 5*time.Second, 10*time.Millisecond,
					"the key the lost put left is taken back, long before the session's 30 s TTL")
				h, err = sem.TryAcquire(testCtx(t))
				require.NoError(t, err, "and the permit is free")
			} else {
				require.NoError(t, r.err, "Acquire tries again once the client has reconnected")
				h = r.h
				require.Eventually(t, func() bool { return len(keysUnder(t, observer, ns+"/")) == 1 }, 5*time.Second, 10*time.Millisecond,
					"the key the lost put left is taken back")
				require.NotEqual(t, first, keysUnder(t, observer, ns+"/"), "the hold has a key of its own")
			}
			require.NoError(t, h.Release(testCtx(t)))
		})
	}
}
