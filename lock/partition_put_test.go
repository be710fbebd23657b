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
