package embedded_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
)

func TestAutoCompaction(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	m := embeddedtest.Start(t, embedded.WithAutoCompaction(time.Second))
	cli := m.Client()
	first, err := cli.Put(ctx, "k", "1")
	require.NoError(t, err)
	put(t, ctx, cli, "k", "2")
	require.Eventually(t, func() bool {
		put(t, ctx, cli, "tick", "") // periodic compaction needs new revisions
		_, err := cli.Get(ctx, "k", clientv3.WithRev(first.Header.Revision))
		return errors.Is(err, rpctypes.ErrCompacted)
	}, 30*time.Second, 100*time.Millisecond, "old revision never compacted")
}

func TestQuotaBackendBytes(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	// Without recovery, the alarm stays until someone disarms it.
	m := embeddedtest.Start(t, embedded.WithQuotaBackendBytes(1<<20), embedded.WithNoSpaceRecovery(embedded.NoSpaceRecovery{Disabled: true}))
	cli := m.Client()
	big := strings.Repeat("x", 64<<10)
	var err error
	for i := 0; i < 64 && err == nil; i++ {
		_, err = cli.Put(ctx, "big", big)
	}
	require.ErrorIs(t, err, rpctypes.ErrNoSpace, "1 MiB quota never hit")
	err = m.Server().Healthy(ctx)
	require.ErrorIs(t, err, embedded.ErrUnhealthy, "a NOSPACE alarm makes the member unhealthy")
	require.ErrorIs(t, err, embedded.ErrNoSpace)
}
