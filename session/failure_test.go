package session_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/session"
)

// Every blocking call returns by its context's deadline, or at once on a
// closed client, with an error that says what failed, and leaves nothing
// running or renewed.
func TestBlockingCallsFailInBound(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl = 2 * time.Second
	const wait = 500 * time.Millisecond
	for _, o := range recipetest.Outages {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			m := etcdtest.Start(t)
			observer := m.Client()
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			mgr, err := session.NewManager(cli, session.WithTTL(ttl))
			require.NoError(t, err)
			live, err := session.New(testCtx(t), cli, session.WithTTL(ttl))
			require.NoError(t, err)
			mend := o.Start(t, proxy, m)

			for name, call := range map[string]func(ctx context.Context) error{
				"New": func(ctx context.Context) error {
					_, err := session.New(ctx, cli, session.WithTTL(ttl))
					return err
				},
				"Manager.Session": func(ctx context.Context) error {
					_, err := mgr.Session(ctx)
					return err
				},
				"Renew": live.Renew,
			} {
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				start := time.Now()
				err := call(ctx)
				took := time.Since(start)
				cancel()
				require.Error(t, err, name)
				require.Less(t, took, wait+time.Second, "%s took %v", name, took)
				require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, roster.ErrLost),
					"%s: %v", name, err)
			}
			start := time.Now()
			require.NoError(t, live.Shutdown(shortCtx(t, wait)) /* no answer is not an error here: the lease expires */)
			require.Less(t, time.Since(start), wait+time.Second, "Shutdown is bounded by its context")
			start = time.Now()
			_ = mgr.Close()
			require.Less(t, time.Since(start), ttl+time.Second, "Close is bounded by the TTL")
			mend()
			recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
		})
	}
	t.Run("client closed", func(t *testing.T) {
		t.Parallel()
		m := etcdtest.Start(t)
		observer := m.Client()
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		live, err := session.New(testCtx(t), cli, session.WithTTL(ttl))
		require.NoError(t, err)
		mgr, err := session.NewManager(cli, session.WithTTL(ttl))
		require.NoError(t, err)
		require.NoError(t, cli.Close())
		start := time.Now()
		_, err = session.New(context.Background(), cli)
		require.ErrorIs(t, err, roster.ErrClosed)
		require.Contains(t, err.Error(), "client closed")
		_, err = mgr.Session(context.Background())
		require.Error(t, err)
		require.Error(t, live.Renew(context.Background()))
		require.NoError(t, live.Close())
		require.NoError(t, mgr.Close())
		require.Less(t, time.Since(start), time.Second, "a closed client fails at once")
		recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
	})
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A lease presumed lost while etcd did not answer is revoked the moment etcd
// answers again, long before the server would expire it: its keys stop
// blocking others.
func TestLostLeaseIsRevokedWhenEtcdAnswers(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	// A wide margin leaves the lease alive on the server for about 2.9 s
	// after the session presumes it lost.
	const ttl, margin = 6 * time.Second, 2900 * time.Millisecond
	m := etcdtest.Start(t)
	observer := m.Client()
	for _, o := range recipetest.Outages[:2] {
		t.Run(o.Name, func(t *testing.T) {
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			logs := &recipetest.Records{}
			s, err := session.New(testCtx(t), cli, session.WithTTL(ttl), session.WithMargin(margin),
				session.WithKeepAliveInterval(time.Second), session.WithLogger(logs.Logger()))
			require.NoError(t, err)
			defer s.Close()
			key := fmt.Sprintf("/lost/%x", int64(s.Lease()))
			_, err = cli.Put(testCtx(t), key, "v", clientv3.WithLease(s.Lease()))
			require.NoError(t, err)

			mend := o.Start(t, proxy, m)
			select {
			case <-s.Done():
			case <-time.After(ttl):
				t.Fatal("not presumed lost within the TTL")
			}
			require.ErrorIs(t, s.Err(), session.ErrExpired)
			require.ErrorIs(t, s.Err(), roster.ErrLost)
			left, err := observer.TimeToLive(testCtx(t), s.Lease())
			require.NoError(t, err)
			require.GreaterOrEqual(t, left.TTL, int64(2), "the lease outlives the local deadline on the server")

			mend()
			// etcd answers this client again: at once through a black
			// hole that lets go, after gRPC's reconnect backoff after a
			// reset.
			require.Eventually(t, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_, err := cli.Get(ctx, "answer")
				return err == nil
			}, 10*time.Second, time.Millisecond)
			answered := time.Now()
			require.Eventually(t, func() bool { return !keyExists(t, observer, key) }, 5*time.Second, 5*time.Millisecond)
			took := time.Since(answered)
			t.Logf("%s: key gone %v after etcd answered the client again; the server would have kept it %d s more",
				o.Name, took.Round(time.Millisecond), left.TTL)
			require.Less(t, took, 500*time.Millisecond, "revoked as soon as etcd answers")
			require.Eventually(t, func() bool { return logs.Count("session: lease presumed lost revoked") == 1 }, time.Second, 5*time.Millisecond)
			require.Equal(t, 1, logs.Count("session: lease lost"))
		})
	}
}

func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	require.NoError(t, err)
	return len(resp.Kvs) > 0
}
