package lock_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
)

const rwPrefix = "/roster/rwlocks/config/"

// rwContender takes a read or a write lock of an RWMutex.
type rwContender struct {
	rw    *lock.RWMutex
	write bool
}

func (c rwContender) lock(ctx context.Context) (func(context.Context) error, error) {
	acquire := c.rw.RLock
	if c.write {
		acquire = c.rw.Lock
	}
	h, err := acquire(ctx)
	if err != nil {
		return nil, err
	}
	return h.Release, nil
}

func (c rwContender) close() { c.rw.Close() }

func newRWMutex(t testing.TB, cli *clientv3.Client, name string, opts ...lock.Option) *lock.RWMutex {
	t.Helper()
	rw, err := lock.NewRWMutex(cli, name, opts...)
	if err != nil {
		t.Fatalf("NewRWMutex: %v", err)
	}
	t.Cleanup(func() { rw.Close() })
	return rw
}

func TestRWMutexReadersShareWritersExclude(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	readers := newRWMutex(t, m.Client(), "config")
	writer := newRWMutex(t, m.Client(), "config")

	var held []*lock.Hold
	for range 3 {
		h, err := readers.TryRLock(ctx)
		require.NoError(t, err, "readers share")
		held = append(held, h)
	}
	_, err := writer.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Len(t, keysUnder(t, m.Client(), rwPrefix), 3, "TryLock left no key")
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = writer.Lock(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, keysUnder(t, m.Client(), rwPrefix), 3, "a cancelled Lock left no key")

	wres := async(ctx, writer.Lock)
	waitKeys(t, m.Client(), rwPrefix, 4)
	for _, h := range held[:2] {
		require.NoError(t, h.Release(ctx))
	}
	pending(t, wres, 200*time.Millisecond)
	require.NoError(t, held[2].Release(ctx))
	w := receive(t, wres, 5*time.Second)
	require.NoError(t, w.err)

	_, err = readers.TryRLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a writer excludes readers")
	_, err = writer.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "and writers")
	require.Len(t, keysUnder(t, m.Client(), rwPrefix), 1)
}

// Readers that come after a waiting writer queue behind it, so a stream of
// readers cannot starve the writer.
func TestRWMutexWaitingWriterIsNotStarved(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	rw := newRWMutex(t, m.Client(), "config")
	r1, err := rw.RLock(ctx)
	require.NoError(t, err)
	wres := async(ctx, rw.Lock)
	waitKeys(t, m.Client(), rwPrefix, 2)

	_, err = rw.TryRLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a reader after a waiting writer does not get in")
	r2res := async(ctx, rw.RLock)
	waitKeys(t, m.Client(), rwPrefix, 3)
	pending(t, r2res, 200*time.Millisecond)

	require.NoError(t, r1.Release(ctx))
	w := receive(t, wres, 5*time.Second)
	require.NoError(t, w.err, "the writer goes before the later reader")
	pending(t, r2res, 200*time.Millisecond)
	require.NoError(t, w.h.Release(ctx))
	r2 := receive(t, r2res, 5*time.Second)
	require.NoError(t, r2.err)
	require.Greater(t, r2.h.Token(), w.h.Token())
}

func TestRWMutexMixedLoad(t *testing.T) {
	const contenders, each = 6, 15
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	var cs []contender
	for i := range contenders {
		cs = append(cs, rwContender{rw: newRWMutex(t, m.Client(), "config"), write: i%3 == 0})
	}
	h, elapsed, err := contend(ctx, cs, each, func(ctx context.Context, _ int) error {
		return sleepCtx(ctx, 2*time.Millisecond)
	})
	require.NoError(t, err)
	// contend marks every holding as exclusive; only writers are.
	for i, iv := range h.all {
		n, err := strconv.Atoi(iv.who)
		require.NoError(t, err)
		h.all[i].write = cs[n].(rwContender).write
	}
	require.Empty(t, h.exclusionViolation())
	most, _ := h.maxConcurrent()
	require.Greater(t, most, 1, "readers overlapped")
	t.Logf("RW lock, %d contenders (%d writers) × %d: %v, at most %d holders at once",
		contenders, contenders/3, each, elapsed.Round(time.Millisecond), most)
	require.Empty(t, keysUnder(t, m.Client(), rwPrefix))
}

func TestRWMutexInvalidName(t *testing.T) {
	cli := etcdtest.Start(t).Client()
	for _, name := range []string{"", "a/b", "..", "a b"} {
		_, err := lock.NewRWMutex(cli, name)
		require.ErrorIs(t, err, roster.ErrInvalidName, "%q", name)
	}
}
