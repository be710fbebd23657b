package recipe_test

import (
	"context"
	"time"

	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

func TestEnqueuePutsLeaseKeyAndReusesIt(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	p := join(t, cli, "first")
	require.Equal(t, keys.LeaseKey(prefix, int64(p.s.Lease())), p.e.Key)
	require.False(t, p.e.Reused)
	require.Equal(t, p.e.Header, p.e.Rev)

	resp, err := cli.Get(ctx, p.e.Key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, int64(p.s.Lease()), resp.Kvs[0].Lease)
	require.Equal(t, p.e.Rev, resp.Kvs[0].CreateRevision)
	require.Equal(t, "first", string(resp.Kvs[0].Value))

	again, err := p.q.Enqueue(ctx, p.s, "second")
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, p.e.Key, again.Key)
	require.Equal(t, p.e.Rev, again.Rev, "same place in the queue")
	require.Equal(t, "first", again.Value, "the existing value is reported, not overwritten")
}

func TestEnqueueRefusesForeignKey(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	s := newSession(t, cli)
	q := recipe.Queue{Client: cli, Prefix: prefix}
	_, err := cli.Put(ctx, keys.LeaseKey(prefix, int64(s.Lease())), "squatter")
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, s, "")
	require.ErrorIs(t, err, recipe.ErrForeignKey)
}

func TestEnqueueOnRevokedLeaseEndsSession(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	s := newSession(t, cli, session.WithTTL(30*time.Second))
	_, err := m.Client().Revoke(ctx, s.Lease())
	require.NoError(t, err)
	_, err = recipe.Queue{Client: cli, Prefix: prefix}.Enqueue(ctx, s, "")
	require.ErrorIs(t, err, session.ErrLeaseGone)
	require.ErrorIs(t, s.Err(), session.ErrLeaseGone, "the session learned at once")
}

func TestDeleteIsGuardedByCreateRevision(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	p := join(t, cli, "")

	deleted, err := recipe.Delete(ctx, cli, p.e.Key, p.e.Rev+1)
	require.NoError(t, err)
	require.False(t, deleted, "another create revision: a newer key, not ours")
	require.True(t, keyExists(t, cli, p.e.Key))

	deleted, err = recipe.Delete(ctx, cli, p.e.Key, p.e.Rev)
	require.NoError(t, err)
	require.True(t, deleted)
	require.False(t, keyExists(t, cli, p.e.Key))

	// A stale second release must not touch a newer key of the same lease.
	again, err := p.q.Enqueue(ctx, p.s, "")
	require.NoError(t, err)
	deleted, err = recipe.Delete(ctx, cli, p.e.Key, p.e.Rev)
	require.NoError(t, err)
	require.False(t, deleted)
	resp, err := cli.Get(ctx, again.Key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, again.Rev, resp.Kvs[0].CreateRevision)
}

func TestAbandonDeletesOnlyOurUncertainKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := etcdtest.Start(t).Client()
	ours, err := cli.Grant(ctx, 30)
	require.NoError(t, err)
	theirs, err := cli.Grant(ctx, 30)
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/q/ours", "", clientv3.WithLease(ours.ID))
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/q/theirs", "", clientv3.WithLease(theirs.ID))
	require.NoError(t, err)

	exists := func(key string) bool {
		resp, err := cli.Get(ctx, key)
		require.NoError(t, err)
		return len(resp.Kvs) == 1
	}
	recipe.Abandon(cli, "/q/theirs", ours.ID)
	require.True(t, exists("/q/theirs"), "another lease's key is left alone")
	recipe.Abandon(cli, "/q/ours", ours.ID)
	require.False(t, exists("/q/ours"), "our key, which a put may have left, is removed")
}
