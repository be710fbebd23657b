package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
)

const semPrefix = "/roster/semaphores/pool/"

// semContender takes a permit of a Semaphore.
type semContender struct{ s *lock.Semaphore }

func (c semContender) lock(ctx context.Context) (func(context.Context) error, error) {
	h, err := c.s.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return h.Release, nil
}

func (c semContender) close() { c.s.Close() }

func TestSemaphoreNeverAdmitsMoreThanN(t *testing.T) {
	const limit, contenders, each = 3, 8, 15
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	var cs []contender
	for range contenders {
		cs = append(cs, semContender{newSemaphore(t, m.Client(), "pool", limit)})
	}
	// Holding for a while makes holders overlap, so that the limit, not
	// luck, is what keeps their number down.
	h, elapsed, err := contend(ctx, cs, each, func(ctx context.Context, _ int) error {
		return sleepCtx(ctx, 2*time.Millisecond)
	})
	require.NoError(t, err)
	most, example := h.maxConcurrent()
	require.LessOrEqual(t, most, limit, "holders at once: %+v", example)
	require.Equal(t, limit, most, "the limit is reached under contention")
	t.Logf("semaphore of %d, %d contenders × %d: %d acquisitions in %v, at most %d at once",
		limit, contenders, each, contenders*each, elapsed.Round(time.Millisecond), most)
	require.Empty(t, keysUnder(t, m.Client(), semPrefix))
}

func newSemaphore(t testing.TB, cli *clientv3.Client, name string, n int, opts ...lock.Option) *lock.Semaphore {
	t.Helper()
	s, err := lock.NewSemaphore(cli, name, n, opts...)
	if err != nil {
		t.Fatalf("NewSemaphore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sleepCtx stands for work done while holding.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSemaphoreOneSessionHoldsSeveralPermits(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	sem := newSemaphore(t, m.Client(), "pool", 2)
	a, err := sem.Acquire(ctx)
	require.NoError(t, err)
	b, err := sem.TryAcquire(ctx)
	require.NoError(t, err, "a second permit on the same session")
	require.NotEqual(t, a.Key(), b.Key())

	_, err = sem.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Len(t, keysUnder(t, m.Client(), semPrefix), 2, "TryAcquire left no key")
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = sem.Acquire(cctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, keysUnder(t, m.Client(), semPrefix), 2, "a cancelled Acquire left no key")

	res := async(ctx, sem.Acquire)
	waitKeys(t, m.Client(), semPrefix, 3)
	require.NoError(t, b.Release(ctx))
	r := receive(t, res, 5*time.Second)
	require.NoError(t, r.err)
	require.Greater(t, r.h.Token(), b.Token())
}

func TestSemaphoreDeadHoldersPermitsFreedWithinTTL(t *testing.T) {
	const ttl = 2 * time.Second
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	deadCli := etcdtest.NewClient(t, m.Endpoints()...)
	dead := newSemaphore(t, deadCli, "pool", 2, lock.WithTTL(ttl))
	for range 2 {
		_, err := dead.Acquire(ctx)
		require.NoError(t, err)
	}
	waiter := newSemaphore(t, m.Client(), "pool", 2)
	res := async(ctx, waiter.Acquire)
	waitKeys(t, m.Client(), semPrefix, 3)

	killed := time.Now()
	require.NoError(t, deadCli.Close())
	r := receive(t, res, ttl+5*time.Second)
	require.NoError(t, r.err)
	t.Logf("dead holder's permits freed after %v (TTL %v)", r.at.Sub(killed), ttl)
	require.Less(t, r.at.Sub(killed), ttl+time.Second)
}

func TestSemaphoreLimitMismatch(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	three := newSemaphore(t, m.Client(), "pool", 3)
	two := newSemaphore(t, m.Client(), "pool", 2)
	h, err := three.Acquire(ctx)
	require.NoError(t, err)

	_, err = two.Acquire(ctx)
	require.ErrorIs(t, err, lock.ErrLimitMismatch)
	require.ErrorContains(t, err, `holds with "3"`)
	_, err = two.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLimitMismatch)
	require.Equal(t, []string{h.Key()}, keysUnder(t, m.Client(), semPrefix), "the refused key was withdrawn")

	// Once the holders of the old limit are gone, the new one takes over.
	require.NoError(t, h.Release(ctx))
	h2, err := two.Acquire(ctx)
	require.NoError(t, err)
	_, err = three.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLimitMismatch)
	require.NoError(t, h2.Release(ctx))
}

func TestSemaphoreForeignValue(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	_, err := m.Client().Put(ctx, semPrefix+"garbage", "\xff not a number")
	require.NoError(t, err)
	sem := newSemaphore(t, m.Client(), "pool", 2)
	_, err = sem.Acquire(ctx)
	require.ErrorIs(t, err, lock.ErrLimitMismatch)
	require.Equal(t, []string{semPrefix + "garbage"}, keysUnder(t, m.Client(), semPrefix))
}

func TestSemaphoreInvalidArguments(t *testing.T) {
	cli := etcdtest.Start(t).Client()
	for _, name := range []string{"", "a/b", "..", "a b"} {
		_, err := lock.NewSemaphore(cli, name, 2)
		require.ErrorIs(t, err, roster.ErrInvalidName, "%q", name)
	}
	for _, n := range []int{0, -1} {
		_, err := lock.NewSemaphore(cli, "x", n)
		require.ErrorIs(t, err, lock.ErrInvalidLimit)
	}
	_, err := lock.NewSemaphore(cli, "x", 2, lock.WithNamespace("/a//b"))
	require.ErrorIs(t, err, roster.ErrInvalidName)
}

// A key of another limit that is not the oldest (an acquirer refused for
// its limit, its withdrawal not yet landed) must not let holders of two
// limits in at once once it becomes the oldest: those behind it wait for
// it, and an acquirer of its limit waits for those of the old one.
func TestSemaphoreMixedLimitsNeverExceedTheOld(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	a, err := newSemaphore(t, cli, "pool", 2).Acquire(ctx)
	require.NoError(t, err)
	b, err := newSemaphore(t, cli, "pool", 2).Acquire(ctx)
	require.NoError(t, err)
	// A limit-5 acquirer's key, put after A and B, not yet withdrawn.
	lease, err := cli.Grant(ctx, 60)
	require.NoError(t, err)
	stray := semPrefix + "5eed-00000000"
	_, err = cli.Put(ctx, stray, "5", clientv3.WithLease(lease.ID))
	require.NoError(t, err)
	cres := async(ctx, newSemaphore(t, cli, "pool", 2).Acquire)
	waitKeys(t, cli, semPrefix, 4)
	dres := async(ctx, newSemaphore(t, cli, "pool", 2).Acquire)
	waitKeys(t, cli, semPrefix, 5)

	require.NoError(t, a.Release(ctx))
	require.NoError(t, b.Release(ctx))
	// The stray key is now the oldest: a limit-5 acquirer agrees with it,
	// but the limit-2 keys behind it are ahead of this one.
	_, err = newSemaphore(t, cli, "pool", 5).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a limit-5 acquirer must not join two limit-2 waiters")

	_, err = cli.Delete(ctx, stray) // the withdrawal lands
	require.NoError(t, err)
	c, d := receive(t, cres, 5*time.Second), receive(t, dres, 5*time.Second)
	require.NoError(t, c.err)
	require.NoError(t, d.err)
	require.NoError(t, c.h.Err())
	require.NoError(t, d.h.Err())
}
