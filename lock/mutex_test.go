package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/session"
)

func TestMutexUsesEtcdLayout(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mu := newMutex(t, cli, "jobs")
	require.Equal(t, keys.LockPrefix(keys.DefaultNamespace, "jobs"), mu.Prefix())

	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	resp, err := cli.Get(ctx, h.Key())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	kv := resp.Kvs[0]
	require.Equal(t, keys.LeaseKey(mu.Prefix(), kv.Lease), h.Key(), "<prefix><lease ID in hex>")
	require.Empty(t, kv.Value, "etcd's recipe leaves the value empty")
	require.Equal(t, kv.CreateRevision, h.Token())
	require.NoError(t, h.Err())

	require.NoError(t, h.Release(ctx))
	require.ErrorIs(t, h.Err(), lock.ErrReleased)
	closed(t, h.Done(), time.Second, "Done after Release")
	require.Empty(t, keysUnder(t, cli, mu.Prefix()))
	require.NoError(t, h.Release(ctx), "a second Release is harmless")
}

func TestTryLockOnHeldLock(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	holder, other := newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs")
	h, err := holder.Lock(ctx)
	require.NoError(t, err)

	start := time.Now()
	_, err = other.TryLock(ctx)
	took := time.Since(start)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Less(t, took, time.Second)
	t.Logf("TryLock on a held lock answered in %v", took)
	require.Equal(t, []string{h.Key()}, keysUnder(t, m.Client(), holder.Prefix()), "no key left behind")

	require.NoError(t, h.Release(ctx))
	h2, err := other.TryLock(ctx)
	require.NoError(t, err, "free lock")
	require.Greater(t, h2.Token(), h.Token())
}

func TestTryLockFailsWhileOthersWait(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a, b, c := newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs")
	ha, err := a.Lock(ctx)
	require.NoError(t, err)
	bres := async(ctx, b.Lock)
	waitKeys(t, m.Client(), a.Prefix(), 2)
	require.NoError(t, ha.Release(ctx))
	hb := receive(t, bres, 5*time.Second)
	require.NoError(t, hb.err)
	_, err = c.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Len(t, keysUnder(t, m.Client(), a.Prefix()), 1)
}

func TestCancelledLockLeavesNoKey(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	holder, waiter := newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs")
	h, err := holder.Lock(ctx)
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	res := async(wctx, waiter.Lock)
	waitKeys(t, m.Client(), holder.Prefix(), 2)
	cancel()
	r := receive(t, res, 5*time.Second)
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, []string{h.Key()}, keysUnder(t, m.Client(), holder.Prefix()),
		"the waiter's key is gone when Lock returns")

	// A deadline is the same.
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = waiter.Lock(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, []string{h.Key()}, keysUnder(t, m.Client(), holder.Prefix()))
}

func TestLockIsFIFO(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	first := newMutex(t, m.Client(), "jobs")
	h, err := first.Lock(ctx)
	require.NoError(t, err)
	var waits []<-chan result
	for i := range 4 {
		mu := newMutex(t, m.Client(), "jobs")
		waits = append(waits, async(ctx, mu.Lock))
		waitKeys(t, m.Client(), first.Prefix(), i+2) // queued in this order
	}
	for _, w := range waits {
		require.NoError(t, h.Release(ctx))
		r := receive(t, w, 5*time.Second)
		require.NoError(t, r.err)
		require.Greater(t, r.h.Token(), h.Token())
		h = r.h
	}
	require.NoError(t, h.Release(ctx))
}

func TestMutexUnlock(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mu := newMutex(t, cli, "jobs")
	require.ErrorIs(t, mu.Unlock(ctx), lock.ErrNotHeld)
	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, mu.Unlock(ctx))
	require.ErrorIs(t, h.Err(), lock.ErrReleased)
	require.Empty(t, keysUnder(t, cli, mu.Prefix()))
	require.ErrorIs(t, mu.Unlock(ctx), lock.ErrNotHeld)

	h, err = mu.Lock(ctx)
	require.NoError(t, err)
	require.NoError(t, h.Release(ctx))
	require.ErrorIs(t, mu.Unlock(ctx), lock.ErrNotHeld, "released through its Hold")
}

func TestFencedTxn(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mu := newMutex(t, cli, "jobs")
	h, err := mu.Lock(ctx)
	require.NoError(t, err)

	resp, err := h.Txn(ctx).Then(clientv3.OpPut("/data", "1")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	resp, err = h.Txn(ctx).If(clientv3.Compare(clientv3.Value("/data"), "=", "2")).
		Then(clientv3.OpPut("/data", "3")).Else(clientv3.OpPut("/data", "4")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "the caller's own condition keeps its meaning")

	require.NoError(t, h.Release(ctx))
	_, err = h.Txn(ctx).Then(clientv3.OpPut("/data", "5")).Commit()
	require.ErrorIs(t, err, lock.ErrNotHeld)
	// etcd refuses it too, not only the Hold.
	resp, err = cli.Txn(ctx).If(h.Guard()).Then(clientv3.OpPut("/data", "6")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	got, err := cli.Get(ctx, "/data")
	require.NoError(t, err)
	require.Equal(t, "4", string(got.Kvs[0].Value))
}

func TestKeyDeletedEndsHold(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	mu := newMutex(t, cli, "jobs")
	h, err := mu.Lock(ctx)
	require.NoError(t, err)

	_, err = m.Client().Delete(ctx, h.Key())
	require.NoError(t, err)
	closed(t, h.Done(), 5*time.Second, "Done after the key was deleted")
	require.ErrorIs(t, h.Err(), lock.ErrLost)
	require.ErrorIs(t, h.Err(), lock.ErrKeyDeleted)
	_, err = h.Txn(ctx).Then(clientv3.OpPut("/data", "x")).Commit()
	require.ErrorIs(t, err, lock.ErrNotHeld)

	// The same Mutex, same session, locks again without a Release of the
	// lost Hold: the loss gave up the local claim on the key.
	h2, err := mu.Lock(ctx)
	require.NoError(t, err)
	require.Equal(t, h.Key(), h2.Key(), "same lease, same key")
	require.Greater(t, h2.Token(), h.Token())
	require.NoError(t, h.Release(ctx), "releasing the lost Hold leaves the new one alone")
	require.NoError(t, h2.Err())
	require.Len(t, keysUnder(t, cli, mu.Prefix()), 1)
}

func TestRevokedLeaseEndsHold(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	mu := newMutex(t, m.Client(), "jobs")
	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	resp, err := m.Client().Get(ctx, h.Key())
	require.NoError(t, err)
	_, err = m.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	closed(t, h.Done(), 5*time.Second, "Done after the lease was revoked")
	require.ErrorIs(t, h.Err(), lock.ErrLost)
	require.Eventually(t, func() bool { return errors.Is(h.Err(), session.ErrLeaseGone) },
		5*time.Second, 10*time.Millisecond, "the session learns the lease is gone: %v", h.Err())

	h2, err := mu.Lock(ctx)
	require.NoError(t, err, "a new session replaces the lost one")
	require.NotEqual(t, h.Key(), h2.Key())
}

func TestWithLockCancelsOnLoss(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	mu := newMutex(t, m.Client(), "jobs")
	other := m.Client()
	err := lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
		keys := keysUnder(t, other, mu.Prefix())
		if _, err := other.Delete(ctx, keys[0]); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			require.ErrorIs(t, context.Cause(ctx), lock.ErrLost)
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("ctx not cancelled after the lock was lost")
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, lock.ErrLost, "WithLock reports the loss")

	ran := false
	require.NoError(t, lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
		ran = true
		return ctx.Err()
	}))
	require.True(t, ran)
	require.Empty(t, keysUnder(t, other, mu.Prefix()), "released")
}

func TestReleaseThatFailedIsRepairedByNextLock(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mu := newMutex(t, cli, "jobs")
	h, err := mu.Lock(ctx)
	require.NoError(t, err)
	dead, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, h.Release(dead))
	closed(t, h.Done(), time.Second, "Done after a failed Release")
	require.Equal(t, []string{h.Key()}, keysUnder(t, cli, mu.Prefix()), "key still there")

	// Lock finds the stale key of its own lease and does not reuse its
	// token: a released Hold's Guard must never pass again.
	h2, err := mu.Lock(ctx)
	require.NoError(t, err)
	require.Greater(t, h2.Token(), h.Token())
	resp, err := cli.Txn(ctx).If(h.Guard()).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	require.NoError(t, h2.Release(ctx))

	// TryLock too.
	h3, err := mu.TryLock(ctx)
	require.NoError(t, err)
	require.Error(t, h3.Release(dead))
	h4, err := mu.TryLock(ctx)
	require.NoError(t, err)
	require.Greater(t, h4.Token(), h3.Token())
}

// One lease has one key per mutex (etcd #11360): a second open handle of
// one name on a shared Manager is refused, as in election, until the first
// is closed; other names, and handles with their own sessions, are fine.
func TestSharedSessionRefusesASecondHandleOfOneName(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mgr, err := session.NewManager(cli, session.WithTTL(10*time.Second))
	require.NoError(t, err)
	defer mgr.Close()
	a := newMutex(t, cli, "jobs", lock.WithSessionManager(mgr))
	_, err = lock.NewMutex(cli, "jobs", lock.WithSessionManager(mgr))
	require.ErrorIs(t, err, session.ErrNameInUse)
	for _, open := range []func() error{
		func() error { _, err := lock.NewSemaphore(cli, "jobs", 2, lock.WithSessionManager(mgr)); return err },
		func() error { _, err := lock.NewRWMutex(cli, "jobs", lock.WithSessionManager(mgr)); return err },
	} {
		require.NoError(t, open(), "another kind of lock, another name")
	}
	_, err = lock.NewSemaphore(cli, "jobs", 2, lock.WithSessionManager(mgr))
	require.ErrorIs(t, err, session.ErrNameInUse, "the same rule for every kind")
	own := newMutex(t, cli, "jobs") // its own sessions: no clash
	ha, err := a.Lock(ctx)
	require.NoError(t, err)
	_, err = own.TryLock(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.NoError(t, ha.Release(ctx))

	require.NoError(t, a.Close())
	s, err := mgr.Session(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Err(), "closing a Mutex leaves a shared session alone")
	b := newMutex(t, cli, "jobs", lock.WithSessionManager(mgr))
	hb, err := b.Lock(ctx)
	require.NoError(t, err, "the name is free again once the first handle is closed")
	require.Equal(t, s.Lease(), hb.Lease())
}

func TestOneMutexManyGoroutines(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mu := newMutex(t, cli, "jobs")
	cs := make([]contender, 4)
	for i := range cs {
		cs[i] = rosterContender{mu}
	}
	h, _, err := contend(ctx, cs, 10, nil)
	require.NoError(t, err)
	require.Empty(t, h.exclusionViolation())
	require.Empty(t, keysUnder(t, cli, mu.Prefix()))
}

func TestCloseReleasesAndEndsWaits(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	holder, waiter := newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs")
	h, err := holder.Lock(ctx)
	require.NoError(t, err)
	res := async(ctx, waiter.Lock)
	waitKeys(t, m.Client(), holder.Prefix(), 2)

	require.NoError(t, waiter.Close())
	require.ErrorIs(t, receive(t, res, 5*time.Second).err, lock.ErrClosed)
	require.NoError(t, holder.Close())
	require.NoError(t, holder.Close(), "idempotent")
	require.ErrorIs(t, h.Err(), lock.ErrClosed)
	require.Empty(t, keysUnder(t, m.Client(), holder.Prefix()))
	_, err = holder.Lock(ctx)
	require.ErrorIs(t, err, lock.ErrClosed)
}

func TestInvalidArguments(t *testing.T) {
	cli := etcdtest.Start(t).Client()
	for _, name := range []string{"", "a/b", "..", "a b"} {
		_, err := lock.NewMutex(cli, name)
		require.ErrorIs(t, err, roster.ErrInvalidName, "%q", name)
	}
	_, err := lock.NewMutex(cli, "x", lock.WithNamespace("roster/"))
	require.ErrorIs(t, err, roster.ErrInvalidName)
	_, err = lock.NewMutex(cli, "x", lock.WithTTL(time.Second))
	require.ErrorIs(t, err, session.ErrInvalidTTL)
	mgr, err := session.NewManager(cli)
	require.NoError(t, err)
	_, err = lock.NewMutex(cli, "x", lock.WithTTL(5*time.Second), lock.WithSessionManager(mgr))
	require.ErrorIs(t, err, roster.ErrInvalidOption)
	_, err = lock.NewMutex(nil, "x")
	require.ErrorIs(t, err, roster.ErrNilClient)
}
