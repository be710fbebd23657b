package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/session"
)

// An acquisition whose first write is stuck behind a partition gives up
// when its session's deadline passes, with the session's error, not when
// the caller's much longer context ends.
func TestAcquireCutOffEndsWithTheSession(t *testing.T) {
	const ttl = 2 * time.Second
	for _, c := range []struct {
		name    string
		acquire func(t *testing.T, cli *clientv3.Client) func(context.Context) (*lock.Hold, error)
	}{
		{"Mutex.Lock", func(t *testing.T, cli *clientv3.Client) func(context.Context) (*lock.Hold, error) {
			return newMutex(t, cli, "jobs", lock.WithTTL(ttl)).Lock
		}},
		{"Mutex.TryLock", func(t *testing.T, cli *clientv3.Client) func(context.Context) (*lock.Hold, error) {
			return newMutex(t, cli, "jobs", lock.WithTTL(ttl)).TryLock
		}},
		{"Semaphore.Acquire", func(t *testing.T, cli *clientv3.Client) func(context.Context) (*lock.Hold, error) {
			return newSemaphore(t, cli, "jobs", 2, lock.WithTTL(ttl)).Acquire
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			m := etcdtest.Start(t)
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			acquire := c.acquire(t, etcdtest.NewClient(t, proxy.Endpoint()))
			h, err := acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, h.Release(ctx))

			proxy.Pause()
			defer proxy.Restore()
			lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err = acquire(lctx)
			took := time.Since(start)
			t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
			require.ErrorIs(t, err, session.ErrExpired)
			require.Less(t, took, ttl+time.Second, "bounded by the session's deadline, not the caller's context")
		})
	}
}

// A partition that begins as etcd answers an acquisition's put: the key is
// written, its answer held, and etcd stays out of reach past the 2 s a
// failed acquisition spends at once on taking the key back. The key goes
// as soon as etcd answers again, long before the session's TTL would take
// it, so another holder gets the lock; and the lock is acquired again
// afterwards.
func TestFailedAcquisitionTakesItsKeyBackOnceEtcdAnswers(t *testing.T) {
	t.Parallel()
	const ttl = 30 * time.Second // outlives the partition
	type acquirer = func(context.Context) (*lock.Hold, error)
	for _, c := range []struct {
		name, prefix string
		acquire      func(t *testing.T, cli *clientv3.Client) acquirer
	}{
		{"Mutex.Lock", "/roster/locks/held/", func(t *testing.T, cli *clientv3.Client) acquirer {
			return newMutex(t, cli, "held", lock.WithTTL(ttl)).Lock
		}},
		{"Semaphore.Acquire", "/roster/semaphores/held/", func(t *testing.T, cli *clientv3.Client) acquirer {
			return newSemaphore(t, cli, "held", 1, lock.WithTTL(ttl)).Acquire
		}},
		{"RWMutex.Lock", "/roster/rwlocks/held/", func(t *testing.T, cli *clientv3.Client) acquirer {
			return newRWMutex(t, cli, "held", lock.WithTTL(ttl)).Lock
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := etcdtest.Start(t)
			direct := m.Client()
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			acquire := c.acquire(t, etcdtest.NewClient(t, proxy.Endpoint()))
			h, err := acquire(testCtx(t)) // the session granted: the next first request is the put
			require.NoError(t, err)
			require.NoError(t, h.Release(testCtx(t)))

			proxy.PauseReplies()
			ctx, cancel := context.WithCancel(testCtx(t))
			res := async(ctx, acquire)
			waitKeys(t, direct, c.prefix, 1) // written; the answer is held
			proxy.Pause()
			cancel()
			r := receive(t, res, 10*time.Second)
			require.ErrorIs(t, r.err, context.Canceled)
			require.Len(t, keysUnder(t, direct, c.prefix), 1, "etcd was out of reach for the clean-up")

			proxy.Restore()
			mended := time.Now()
			waitKeys(t, direct, c.prefix, 0)
			t.Logf("the key went %v after etcd answered again (TTL %v)", time.Since(mended).Round(time.Millisecond), ttl)
			other := c.acquire(t, direct)
			hctx, hcancel := context.WithTimeout(testCtx(t), 5*time.Second)
			defer hcancel()
			oh, err := other(hctx)
			require.NoError(t, err, "another holder gets the lock")
			require.NoError(t, oh.Release(testCtx(t)))
			h, err = acquire(testCtx(t))
			require.NoError(t, err, "acquired again")
			require.NoError(t, h.Release(testCtx(t)))
		})
	}
}
