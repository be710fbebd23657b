package embedded

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDefragLeaderHandsOver has every defragmentation count as long: the
// leader, whose turn comes last, hands its leadership over first.
func TestDefragLeaderHandsOver(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	long := func(c *config) { c.handOverAbove = time.Nanosecond }
	servers, err := StartCluster(ctx, 3, WithDataDir(t.TempDir()), long,
		WithDefragPolicy(DefragPolicy{CheckInterval: 100 * time.Millisecond, MinFreeBytes: 4 << 20}))
	require.NoError(t, err)
	defer func() {
		for _, s := range servers {
			s.Abort()
		}
	}()
	cli, err := servers[0].Client()
	require.NoError(t, err)
	defer cli.Close()
	cfg := cli.Endpoints()
	for _, s := range servers[1:] {
		cfg = append(cfg, s.Endpoints()...)
	}
	cli.SetEndpoints(cfg...)

	val := strings.Repeat("f", 256<<10)
	for i := range 40 {
		_, err := cli.Put(ctx, fmt.Sprintf("/fragment/%d", i), val)
		require.NoError(t, err)
	}
	del, err := cli.Delete(ctx, "/fragment/", clientv3.WithPrefix())
	require.NoError(t, err)
	_, err = cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	// bolt counts the freed pages once later writes commit.
	require.Eventually(t, func() bool {
		_, err = cli.Put(ctx, "/fragmented", "")
		require.NoError(t, err)
		for _, s := range servers {
			if st := s.Status(); st.DBSize-st.DBSizeInUse < 4<<20 && st.Defrag.Start.IsZero() {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)

	require.Eventually(t, func() bool {
		for _, s := range servers {
			if s.Status().Defrag.Count == 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 10*time.Millisecond)
	var handed []DefragStatus
	var others []DefragStatus
	for _, s := range servers {
		if st := s.Status().Defrag; st.HandedOver {
			require.True(t, st.AsLeader)
			handed = append(handed, st)
		} else {
			others = append(others, st)
		}
	}
	require.Len(t, handed, 1, "the leader handed over")
	for _, o := range others {
		require.True(t, o.End.Before(handed[0].Start), "after its followers")
	}
}
