package lock_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// counterWork increments a counter in etcd with a plain Get then Put, no
// transaction: only the lock keeps increments from being lost.
func counterWork(cli *clientv3.Client, key string) func(context.Context) error {
	return func(ctx context.Context) error {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		n := 0
		if len(resp.Kvs) > 0 {
			if n, err = strconv.Atoi(string(resp.Kvs[0].Value)); err != nil {
				return err
			}
		}
		_, err = cli.Put(ctx, key, strconv.Itoa(n+1))
		return err
	}
}

func readCounter(t testing.TB, cli *clientv3.Client, key string) int {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	n, err := strconv.Atoi(string(resp.Kvs[0].Value))
	require.NoError(t, err)
	return n
}

// Eight processes, each its own client and session, increment a counter
// 200 times each under the lock: not one increment may be lost, and no two
// holdings may overlap.
func TestMutualExclusion(t *testing.T) {
	const contenders, each = 8, 200
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	var cs []contender
	var works []func(context.Context) error
	for range contenders {
		cli := m.Client()
		cs = append(cs, rosterContender{newMutex(t, cli, "counter")})
		works = append(works, counterWork(cli, "/counter"))
	}
	h, elapsed, err := contend(ctx, cs, each, func(ctx context.Context, i int) error { return works[i](ctx) })
	require.NoError(t, err)
	require.Equal(t, contenders*each, readCounter(t, m.Client(), "/counter"), "lost increments")
	require.Empty(t, h.exclusionViolation())
	f := summarise(h, elapsed)
	t.Logf("%d contenders × %d: %v", contenders, each, f)
	// The point of the exercise is a fast hand-off; bounds are generous
	// for a loaded machine under -race, the figures are in the log.
	require.Less(t, f.p50, 50*time.Millisecond)
}
