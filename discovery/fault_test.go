package discovery

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// Acceptance 2: while a cache's connection is cut, instances change and
// etcd is compacted past the cache's revision. Its watch cannot resume
// (ErrCompacted); the cache must re-list and match etcd.
func TestCacheRelistsAfterCompactionWhileCut(t *testing.T) {
	m := etcdtest.Start(t)
	direct := m.Client()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	for i := range 10 {
		put(t, direct, inst("svc", fmt.Sprintf("n%d", i)))
	}
	d := newDiscoverer(t, etcdtest.NewClient(t, proxy.Endpoint()))
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(testContext(t)))
	requireConverges(t, c, direct)
	lists := c.Stats().Lists
	before := c.Snapshot().Revision

	proxy.Cut()
	for i := range 5 {
		del(t, direct, "svc", fmt.Sprintf("n%d", i))
		put(t, direct, inst("svc", fmt.Sprintf("m%d", i)))
	}
	rev := put(t, direct, inst("svc", "last"))
	_, err := direct.Compact(testContext(t), rev)
	require.NoError(t, err)
	require.Greater(t, rev, before)

	proxy.Restore()
	requireConverges(t, c, direct)
	assert.Greater(t, c.Stats().Lists, lists, "the cache re-listed")
	eventually(t, func() bool { return c.Err() == nil }, "cache still reports an error")
	assert.GreaterOrEqual(t, c.Snapshot().Revision, rev)

	// The new watch works.
	put(t, direct, inst("svc", "after"))
	requireConverges(t, c, direct)
}

// Acceptance 3: the member a cache reads from dies. The cache's client
// first knows only that member, so the watch is certainly on it; it then
// learns the others. The cache must carry on through another member.
func TestCacheSurvivesLossOfItsMember(t *testing.T) {
	cl := etcdtest.StartCluster(t, 3)
	writer := cl.Client()
	for i := range 5 {
		put(t, writer, inst("svc", fmt.Sprintf("n%d", i)))
	}
	// Pin to a follower, so the test does not also measure an election.
	pinned := cl.Follower()
	cli := etcdtest.NewClient(t, pinned.Endpoints()...)
	d := newDiscoverer(t, cli)
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(testContext(t)))
	requireConverges(t, c, writer)
	cli.SetEndpoints(cl.Endpoints()...)

	pinned.Kill()
	del(t, writer, "svc", "n0")
	put(t, writer, inst("svc", "n9"))
	requireConverges(t, c, writer)
	for i := range 5 {
		put(t, writer, inst("svc", fmt.Sprintf("k%d", i)))
	}
	requireConverges(t, c, writer)
}
