package lock_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/session"
)

// A holder whose process dies (its client is gone, so nobody revokes its
// lease) must free the lock within the TTL, plus a little for etcd's
// expiry loop.
func TestKilledHolderFreesLockWithinTTL(t *testing.T) {
	const ttl = 2 * time.Second
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	holderCli := etcdtest.NewClient(t, m.Endpoints()...)
	holder := newMutex(t, holderCli, "jobs", lock.WithTTL(ttl))
	waiter := newMutex(t, m.Client(), "jobs", lock.WithTTL(ttl))
	_, err := holder.Lock(ctx)
	require.NoError(t, err)
	res := async(ctx, waiter.Lock)
	waitKeys(t, m.Client(), holder.Prefix(), 2)

	killed := time.Now()
	require.NoError(t, holderCli.Close())
	r := receive(t, res, ttl+5*time.Second)
	require.NoError(t, r.err)
	took := r.at.Sub(killed)
	t.Logf("killed holder's lock passed on after %v (TTL %v)", took, ttl)
	require.Less(t, took, ttl+time.Second)
}

// A paused holder (its connection partitioned by a proxy) must learn that
// its lock may be lost before etcd lets anyone else in, in every trial.
// Afterwards its fenced write is refused, while a plain write from the same
// client still lands: the lock alone does not protect data, the fence does.
func TestPartitionedHolderLearnsBeforeNextHolderEnters(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	trials := 5
	if os.Getenv("ROSTER_LONG") == "1" {
		trials = 20
	}
	const ttl = 2 * time.Second
	ctx := testCtx(t)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(trials)*10*time.Second)
	defer cancel()
	m := etcdtest.Start(t)
	observer := m.Client()
	var leads []time.Duration
	for trial := range trials {
		proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
		holderCli := etcdtest.NewClient(t, proxy.Endpoint())
		holder := newMutex(t, holderCli, "jobs", lock.WithTTL(ttl))
		waiter := newMutex(t, observer, "jobs", lock.WithTTL(ttl))

		h, err := holder.Lock(ctx)
		require.NoError(t, err)
		res := async(ctx, waiter.Lock)
		waitKeys(t, observer, holder.Prefix(), 2)

		proxy.Pause()
		var doneAt time.Time
		select {
		case <-h.Done():
			doneAt = time.Now()
		case r := <-res:
			t.Fatalf("trial %d: another holder entered (err %v) before the partitioned one knew", trial, r.err)
		case <-time.After(2 * ttl):
			t.Fatalf("trial %d: Done not closed within %v of the partition", trial, 2*ttl)
		}
		require.ErrorIs(t, h.Err(), lock.ErrLost)
		require.ErrorIs(t, h.Err(), session.ErrExpired)
		r := receive(t, res, 2*ttl)
		require.NoError(t, r.err)
		require.True(t, doneAt.Before(r.at))
		leads = append(leads, r.at.Sub(doneAt))

		proxy.Restore()
		if trial == 0 {
			showFence(ctx, t, holderCli, observer, h, r.h)
		}
		require.NoError(t, r.h.Release(ctx))
		require.NoError(t, waiter.Close())
		holder.Close()
	}
	t.Logf("%d trials: the partitioned holder knew %v (min) to %v (max) before the next one entered",
		trials, slicesMin(leads), slicesMax(leads))
}

// showFence checks that the old holder's fenced write is refused, by the
// Hold and by etcd, while its unfenced write would have gone through.
func showFence(ctx context.Context, t *testing.T, oldCli, observer *clientv3.Client, old, cur *lock.Hold) {
	t.Helper()
	_, err := old.Txn(ctx).Then(clientv3.OpPut("/owner", "old")).Commit()
	require.ErrorIs(t, err, lock.ErrNotHeld, "the Hold refuses at once")

	resp, err := oldCli.Txn(ctx).If(old.Guard()).Then(clientv3.OpPut("/owner", "old")).Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded, "etcd refuses the old holder's guarded write")

	_, err = cur.Txn(ctx).Then(clientv3.OpPut("/owner", "new")).Commit()
	require.NoError(t, err)
	_, err = oldCli.Put(ctx, "/owner", "old")
	require.NoError(t, err, "an unguarded write from the old holder still lands")
	got, err := observer.Get(ctx, "/owner")
	require.NoError(t, err)
	require.Equal(t, "old", string(got.Kvs[0].Value), "…and clobbers the new holder's data")
}

func slicesMin(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func slicesMax(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// A waiter whose session is lost while it waits gets an error, never the
// lock, and its key goes.
func TestWaiterWhoseLeaseIsRevokedNeverHolds(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	holder, waiter := newMutex(t, m.Client(), "jobs"), newMutex(t, m.Client(), "jobs")
	h, err := holder.Lock(ctx)
	require.NoError(t, err)
	res := async(ctx, waiter.Lock)
	waitKeys(t, m.Client(), holder.Prefix(), 2)
	resp, err := m.Client().Get(ctx, keysUnder(t, m.Client(), holder.Prefix())[1])
	require.NoError(t, err)
	_, err = m.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	require.NoError(t, err)
	r := receive(t, res, 5*time.Second)
	require.Error(t, r.err)
	require.True(t, errors.Is(r.err, session.ErrLeaseGone), "%v", r.err)
	require.Equal(t, []string{h.Key()}, keysUnder(t, m.Client(), holder.Prefix()))
}
