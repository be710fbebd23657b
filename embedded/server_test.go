package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster/embedded"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSingleMemberPutGetClose(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s, err := embedded.Start(ctx)
	require.NoError(t, err)
	cli, err := s.Client()
	require.NoError(t, err)
	defer cli.Close()

	_, err = cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	resp, err := cli.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.Equal(t, "v", string(resp.Kvs[0].Value))
	require.NoError(t, s.Healthy(ctx))

	// A client with open streams must not hold Close up.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	_ = cli.Watch(wctx, "k")
	lease, err := cli.Grant(ctx, 10)
	require.NoError(t, err)
	_, err = cli.KeepAlive(wctx, lease.ID)
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, s.Close())
	took := time.Since(start)
	t.Logf("Close with connected client took %v", took)
	require.Less(t, took, 2*time.Second)
	require.NoError(t, s.Close(), "Close is idempotent")
	_ = clientv3.Config{}
}
