package recipe_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe"
)

var errNotHeld = errors.New("not held")

func fence(p *participant) recipe.Fence {
	return recipe.Fence{Client: p.cli, Key: p.e.Key, Rev: p.e.Rev, ErrNotHeld: errNotHeld}
}

func value(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

func TestFenceDo(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	p := join(t, cli, "")
	f := fence(p)

	_, err := f.Do(ctx, clientv3.OpPut("/t/data", "1"))
	require.NoError(t, err)
	require.Equal(t, "1", value(t, cli, "/t/data"))

	release(t, p)
	_, err = f.Do(ctx, clientv3.OpPut("/t/data", "2"))
	require.ErrorIs(t, err, errNotHeld)
	require.Equal(t, "1", value(t, cli, "/t/data"), "a write after the loss is rejected by etcd")

	// A replacement key of the same name is someone else's hold.
	_, err = p.q.Enqueue(ctx, p.s, "")
	require.NoError(t, err)
	_, err = f.Do(ctx, clientv3.OpPut("/t/data", "3"))
	require.ErrorIs(t, err, errNotHeld)
}

func TestFenceTxnKeepsCallersOutcome(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	p := join(t, cli, "")
	f := fence(p)

	// The caller's own compare fails: Succeeded is false, Else ran, no error.
	resp, err := f.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("/t/data"), "=", "expected")).
		Then(clientv3.OpPut("/t/data", "then")).
		Else(clientv3.OpPut("/t/data", "else"), clientv3.OpGet("/t/data")).
		Commit()
	require.NoError(t, err)
	require.False(t, resp.Succeeded)
	require.Len(t, resp.Responses, 2)
	require.Equal(t, "else", string(resp.Responses[1].GetResponseRange().Kvs[0].Value))
	require.NotNil(t, resp.Header)

	// Cmp composes into one's own transactions.
	own, err := cli.Txn(ctx).If(f.Cmp()).Commit()
	require.NoError(t, err)
	require.True(t, own.Succeeded)

	resp, err = f.Txn(ctx).If(clientv3.Compare(clientv3.Value("/t/data"), "=", "else")).
		Then(clientv3.OpPut("/t/data", "then")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	require.Equal(t, "then", value(t, cli, "/t/data"))

	release(t, p)
	_, err = f.Txn(ctx).Then(clientv3.OpPut("/t/data", "stale")).Else(clientv3.OpPut("/t/data", "stale")).Commit()
	require.ErrorIs(t, err, errNotHeld)
	require.Equal(t, "then", value(t, cli, "/t/data"), "neither branch ran")
}

var errGone = errors.New("test: gone")

func TestFenceLostRefusesLocally(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	p := join(t, cli, "")
	lost := make(chan struct{})
	f := fence(p)
	f.Done = func() <-chan struct{} { return lost }
	f.Err = func() error { return errGone }
	_, err := f.Do(ctx, clientv3.OpPut("/t/data", "1"))
	require.NoError(t, err)
	close(lost)
	_, err = f.Do(ctx, clientv3.OpPut("/t/data", "2"))
	require.ErrorIs(t, err, errNotHeld)
	require.ErrorIs(t, err, errGone, "a refusal without asking etcd says why the hold ended")
	_, err = f.Txn(ctx).Then(clientv3.OpPut("/t/data", "3")).Commit()
	require.ErrorIs(t, err, errNotHeld)
	require.Equal(t, "1", value(t, cli, "/t/data"), "the key is still held in etcd, but the holder knows better")
}
