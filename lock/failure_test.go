package lock_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/lock"
)

// Every blocking call returns within its bound, with an error that says
// what failed, while etcd does not answer, and nothing is left behind: no
// goroutine (the package's leak check), no key, no lease.
func TestBlockingCallsFailInBound(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl, wait = 3 * time.Second, 500 * time.Millisecond
	for i, o := range recipetest.Outages {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			m := etcdtest.Start(t)
			observer := m.Client()
			ns := "/outage" + string(rune('a'+i))
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			opts := []lock.Option{lock.WithTTL(ttl), lock.WithNamespace(ns)}
			mu, err := lock.NewMutex(cli, "m", opts...)
			require.NoError(t, err)
			sem, err := lock.NewSemaphore(cli, "s", 1, opts...)
			require.NoError(t, err)
			rw, err := lock.NewRWMutex(cli, "rw", opts...)
			require.NoError(t, err)
			// Held, so that the calls below would wait even if etcd answered.
			held := newMutex(t, observer, "m", lock.WithNamespace(ns))
			hm, err := held.Lock(testCtx(t))
			require.NoError(t, err)
			hs, err := sem.Acquire(testCtx(t))
			require.NoError(t, err)
			hw, err := rw.Lock(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, hm.Release(testCtx(t)))

			mend := o.Start(t, proxy, m)
			// The holders' calls first, while their session still lives.
			recipetest.Bounded(t, "Release", wait, hs.Release)
			recipetest.Bounded(t, "Hold.Do", wait, func(ctx context.Context) error { _, err := hw.Do(ctx); return err })
			var wg sync.WaitGroup
			for name, call := range map[string]func(context.Context) (*lock.Hold, error){
				"Lock": mu.Lock, "TryLock": mu.TryLock, "Acquire": sem.Acquire, "TryAcquire": sem.TryAcquire,
				"RLock": rw.RLock, "TryRLock": rw.TryRLock,
			} {
				wg.Go(func() {
					recipetest.BoundedWithin(t, name, wait, recipetest.WithdrawSlack, func(ctx context.Context) error {
						_, err := call(ctx)
						return err
					})
				})
			}
			wg.Wait()
			start := time.Now()
			_ = rw.Shutdown(shortCtx(t, wait))
			require.Less(t, time.Since(start), wait+time.Second, "Shutdown is bounded by its context")
			<-hw.Done() // closed, or lost before
			start = time.Now()
			for _, c := range []interface{ Close() error }{mu, sem} {
				wg.Go(func() { _ = c.Close() })
			}
			wg.Wait()
			require.Less(t, time.Since(start), ttl+time.Second, "Close is bounded by the TTL")
			mend()
			require.NoError(t, held.Close())
			recipetest.RequireNoKeys(t, observer, ns+"/", ttl+2*time.Second)
			recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
		})
	}
	t.Run("client closed", func(t *testing.T) {
		t.Parallel()
		m := etcdtest.Start(t)
		observer := m.Client()
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		mu, err := lock.NewMutex(cli, "closed", lock.WithTTL(ttl))
		require.NoError(t, err)
		sem, err := lock.NewSemaphore(cli, "closed", 1, lock.WithTTL(ttl))
		require.NoError(t, err)
		h, err := mu.Lock(testCtx(t))
		require.NoError(t, err, "lock before closing the client")
		require.NoError(t, cli.Close())
		start := time.Now()
		_, err = h.Do(context.Background())
		require.ErrorIs(t, err, roster.ErrClosed)
		require.ErrorContains(t, err, "client closed")
		require.ErrorIs(t, h.Release(context.Background()), roster.ErrClosed)
		_, err = sem.Acquire(context.Background())
		require.ErrorIs(t, err, roster.ErrClosed)
		_, err = mu.TryLock(context.Background())
		require.ErrorIs(t, err, roster.ErrClosed)
		require.NoError(t, mu.Close())
		require.NoError(t, sem.Close())
		require.Less(t, time.Since(start), time.Second, "a closed client fails at once")
		recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
	})
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
