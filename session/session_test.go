package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/session"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTTLValidation(t *testing.T) {
	require.ErrorIs(t, session.ValidateTTL(time.Second), session.ErrInvalidTTL)
	require.ErrorIs(t, session.ValidateTTL(-time.Second), roster.ErrInvalidOption)
	require.NoError(t, session.ValidateTTL(0), "zero means the default")
	require.NoError(t, session.ValidateTTL(2*time.Second))
}

func TestKeepsLeaseAlivePastTTL(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	s, err := session.New(ctx, cli, session.WithTTL(3*time.Second))
	require.NoError(t, err)
	defer s.Close()
	first := s.Deadline()
	_, err = cli.Put(ctx, "k", "v", clientv3.WithLease(s.Lease()))
	require.NoError(t, err)

	// Past twice the TTL the key must still be there, and the deadline must
	// have moved with every acknowledged renewal.
	require.Eventually(t, func() bool { return time.Now().After(first.Add(5 * time.Second)) },
		10*time.Second, 50*time.Millisecond)
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.NoError(t, s.Err())
	require.True(t, s.Deadline().After(first.Add(3*time.Second)), "deadline advanced")
	// Compared on the monotonic clock, so a step of the wall clock moves
	// the deadline neither way; Time.String shows such a reading as "m=".
	require.Contains(t, s.Deadline().String(), " m=+", "the deadline carries a monotonic clock reading")
}

func TestCloseRevokesAtOnce(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	s, err := session.New(ctx, cli, session.WithTTL(30*time.Second))
	require.NoError(t, err)
	_, err = cli.Put(ctx, "k", "v", clientv3.WithLease(s.Lease()))
	require.NoError(t, err)

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	require.ErrorIs(t, s.Err(), session.ErrClosed)
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "key gone without waiting for the TTL")
}

func TestRevokedByAnotherClientEndsSession(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, other := m.Client(), m.Client()
	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second),
		session.WithKeepAliveInterval(100*time.Millisecond))
	require.NoError(t, err)
	defer s.Close()

	_, err = other.Revoke(ctx, s.Lease())
	require.NoError(t, err)
	select {
	case <-s.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("session still alive 2 s after its lease was revoked")
	}
	require.ErrorIs(t, s.Err(), session.ErrLeaseGone)
}

func TestRenewNowDetectsRevoke(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, other := m.Client(), m.Client()
	s, err := session.New(ctx, cli, session.WithTTL(30*time.Second))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Renew(ctx))

	_, err = other.Revoke(ctx, s.Lease())
	require.NoError(t, err)
	require.ErrorIs(t, s.Renew(ctx), session.ErrLeaseGone)
	require.ErrorIs(t, s.Err(), session.ErrLeaseGone)
}

// Cut off from etcd, the session must give up before the server expires its
// lease: the lease is still alive on the server the moment Done closes.
func TestPartitionEndsSessionBeforeServerExpiry(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	observer := m.Client()
	for trial := range 3 {
		proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
		cli := etcdtest.NewClient(t, proxy.Endpoint())
		s, err := session.New(ctx, cli, session.WithTTL(3*time.Second))
		require.NoError(t, err)
		_, err = cli.Put(ctx, "k", "v", clientv3.WithLease(s.Lease()))
		require.NoError(t, err)

		proxy.Pause()
		<-s.Done()
		resp, err := observer.Get(ctx, "k")
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, "trial %d: lease already expired on the server when Done closed", trial)
		require.ErrorIs(t, s.Err(), session.ErrExpired)
		// etcd reports -1 for a lease it no longer has.
		ttl, err := observer.TimeToLive(ctx, s.Lease())
		require.NoError(t, err)
		require.GreaterOrEqual(t, ttl.TTL, int64(0))

		proxy.Restore()
		s.Close()
	}
}

func TestManagerSharesAndReplacesSessions(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, other := m.Client(), m.Client()
	mgr, err := session.NewManager(cli, session.WithTTL(10*time.Second))
	require.NoError(t, err)

	a, err := mgr.Session(ctx)
	require.NoError(t, err)
	b, err := mgr.Session(ctx)
	require.NoError(t, err)
	require.Same(t, a, b, "one live session is shared")

	_, err = other.Revoke(ctx, a.Lease())
	require.NoError(t, err)
	require.ErrorIs(t, a.Renew(ctx), session.ErrLeaseGone)
	c, err := mgr.Session(ctx)
	require.NoError(t, err)
	require.NotEqual(t, a.Lease(), c.Lease(), "a new lease after the old one ended")

	require.NoError(t, mgr.Close())
	require.NoError(t, mgr.Close())
	_, err = mgr.Session(ctx)
	require.ErrorIs(t, err, session.ErrClosed)
	ttl, err := other.TimeToLive(ctx, c.Lease())
	require.NoError(t, err)
	require.LessOrEqual(t, ttl.TTL, int64(0), "Close revoked the lease")
}

func TestCloseAfterClientClosedReturnsAtOnce(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoints()...)
	s, err := session.New(ctx, cli)
	require.NoError(t, err)
	require.NoError(t, cli.Close())
	start := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(start), 500*time.Millisecond, "Close must not retry on a closed client")
}

// A Grant answered late counts from when it was sent, so its deadline may be
// gone by the time it returns; the new session must renew at once instead of
// starting out presumed lost.
func TestLateGrantIsRenewedBeforeUse(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	cli := etcdtest.NewClient(t, proxy.Endpoint())
	_, err := cli.Get(ctx, "warm-up")
	require.NoError(t, err)

	const ttl = 2 * time.Second
	proxy.Pause()
	paused := time.Now()
	type result struct {
		s   *session.Session
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := session.New(ctx, cli, session.WithTTL(ttl))
		got <- result{s, err}
	}()
	// Hold the Grant past the deadline it would give: TTL less the margin.
	require.Eventually(t, func() bool { return time.Since(paused) > ttl },
		5*time.Second, 20*time.Millisecond)
	proxy.Restore()
	r := <-got
	require.NoError(t, r.err)
	s := r.s
	defer s.Close()

	require.NoError(t, s.Err())
	require.Greater(t, time.Until(s.Deadline()), ttl/3, "the deadline counts from a renewal sent after the Grant returned")
	require.Never(t, func() bool { return s.Err() != nil }, time.Second, 20*time.Millisecond,
		"the session must not end as soon as it starts")
}
