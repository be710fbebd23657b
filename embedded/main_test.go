package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// ctxT is a context that ends after d or with the test.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func put(t testing.TB, ctx context.Context, cli *clientv3.Client, key, val string) {
	t.Helper()
	_, err := cli.Put(ctx, key, val)
	require.NoError(t, err)
}

// requireValue asserts that cli reads val at key.
func requireValue(t testing.TB, ctx context.Context, cli *clientv3.Client, key, val string, opts ...clientv3.OpOption) {
	t.Helper()
	resp, err := cli.Get(ctx, key, opts...)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "key %q", key)
	require.Equal(t, val, string(resp.Kvs[0].Value), "key %q", key)
}
