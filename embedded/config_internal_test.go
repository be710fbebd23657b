package embedded

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"
)

// TestEtcdConfig checks what Start hands etcd for settings whose effect takes
// too long to observe in a test, such as the default compaction window.
func TestEtcdConfig(t *testing.T) {
	build := func(opts ...Option) *embed.Config {
		c, _, err := newConfig(opts).resolvePorts()
		require.NoError(t, err)
		ec, err := c.etcdConfig(t.TempDir(), nil)
		require.NoError(t, err)
		require.NoError(t, ec.Validate())
		return ec
	}

	ec := build()
	require.Equal(t, embed.CompactorModePeriodic, ec.AutoCompactionMode)
	require.Equal(t, "10m0s", ec.AutoCompactionRetention, "auto-compaction is on by default")
	require.Equal(t, "127.0.0.1", ec.ListenClientUrls[0].Hostname())
	require.Equal(t, "127.0.0.1", ec.ListenPeerUrls[0].Hostname())

	ec = build(WithAutoCompaction(0))
	require.Equal(t, "0", ec.AutoCompactionRetention, "zero turns it off")

	ec = build(WithRevisionCompaction(1000))
	require.Equal(t, embed.CompactorModeRevision, ec.AutoCompactionMode)
	require.Equal(t, "1000", ec.AutoCompactionRetention)

	ec = build(WithQuotaBackendBytes(1<<30), WithTimings(50*time.Millisecond, 500*time.Millisecond))
	require.EqualValues(t, 1<<30, ec.QuotaBackendBytes)
	require.EqualValues(t, 50, ec.TickMs)
	require.EqualValues(t, 500, ec.ElectionMs)

	ec = build(WithClientAddr("0.0.0.0:0"), WithInsecureNonLoopback())
	require.Equal(t, "0.0.0.0", ec.ListenClientUrls[0].Hostname())
	require.Equal(t, "127.0.0.1", ec.AdvertiseClientUrls[0].Hostname(), "0.0.0.0 is no address to publish")
	ec = build(WithClientAddr("0.0.0.0:0"), WithInsecureNonLoopback(), WithAdvertiseClientAddr("db.example:2379"))
	require.Equal(t, "db.example", ec.AdvertiseClientUrls[0].Hostname())
}
