package discovery

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

func TestCacheListsThenFollows(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	put(t, cli, inst("users", "a"))
	put(t, cli, inst("users", "b"))
	put(t, cli, inst("users-admin", "x")) // a longer service name must not leak in
	d := newDiscoverer(t, cli)
	c := watch(t, d, "users")
	require.NoError(t, c.WaitSynced(testContext(t)))
	s := c.Snapshot()
	assert.Equal(t, []string{"a", "b"}, ids(s.Instances))
	assert.True(t, s.Synced())
	assert.Positive(t, s.Revision)

	sub := c.Subscribe()
	defer sub.Close()
	ch, err := sub.Next(testContext(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ids(ch.Added), "first change is the whole view")

	put(t, cli, inst("users", "c"))
	ch, err = sub.Next(testContext(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"c"}, ids(ch.Added))

	upd := inst("users", "a")
	upd.Weight = 7
	rev := put(t, cli, upd)
	ch, err = sub.Next(testContext(t))
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, ids(ch.Updated))
	assert.Equal(t, 7, ch.Updated[0].Weight)
	assert.GreaterOrEqual(t, ch.Snapshot.Revision, rev)

	del(t, cli, "users", "b")
	ch, err = sub.Next(testContext(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, ids(ch.Removed))
	requireConverges(t, c, cli)
}

func TestCacheSkipsCorruptAndForeignKeys(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx := testContext(t)
	prefix := keys.ServicePrefix(keys.DefaultNamespace, "svc")
	put(t, cli, inst("svc", "good"))
	for k, v := range map[string]string{
		prefix + "garbage":     "\xff\x00not json",
		prefix + "foreign":     `{"Op":0,"Addr":"1.2.3.4:5"}`, // etcd naming's format
		prefix + "future":      `{"v":99,"addr":"1.2.3.4:5"}`,
		prefix + "nested/deep": `{"v":1,"addr":"1.2.3.4:5"}`,
		prefix + "badaddr":     `{"v":1,"addr":"nope"}`,
	} {
		_, err := cli.Put(ctx, k, v)
		require.NoError(t, err)
	}
	d := newDiscoverer(t, cli)
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(ctx))
	assert.Equal(t, []string{"good"}, ids(c.Snapshot().Instances))
	assert.Equal(t, 5, c.Snapshot().Skipped)
	assert.EqualValues(t, 5, c.Stats().Skipped)

	// A valid instance overwritten with garbage disappears; fixed, it
	// comes back. The cache keeps working throughout.
	_, err := cli.Put(ctx, prefix+"good", "{")
	require.NoError(t, err)
	eventually(t, func() bool { return len(c.Snapshot().Instances) == 0 && c.Snapshot().Skipped == 6 }, "corrupted instance not dropped")
	put(t, cli, inst("svc", "good"))
	put(t, cli, inst("svc", "other"))
	eventually(t, func() bool { return c.Snapshot().Skipped == 5 && len(c.Snapshot().Instances) == 2 }, "fixed instance not back")
	_, err = cli.Delete(ctx, prefix+"garbage")
	require.NoError(t, err)
	eventually(t, func() bool { return c.Snapshot().Skipped == 4 }, "deleted garbage still counted")
	requireConverges(t, c, cli)
	assert.NoError(t, c.Err())
}

func TestCacheShowsDrainingButPickersSkipIt(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	a, b := inst("svc", "a"), inst("svc", "b")
	b.Status = roster.StatusDraining
	put(t, cli, a)
	put(t, cli, b)
	d := newDiscoverer(t, cli)
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(testContext(t)))
	assert.Equal(t, []string{"a", "b"}, ids(c.Snapshot().Instances))
	assert.Equal(t, []string{"b"}, ids(c.Snapshot().Select(HasStatus(roster.StatusDraining))))
	rr := NewRoundRobin(c)
	for range 10 {
		p, err := rr.Pick()
		require.NoError(t, err)
		assert.Equal(t, "a", p.Instance.ID)
		p.Done(nil)
	}
	a.Status = roster.StatusDraining
	put(t, cli, a)
	eventually(t, func() bool { _, err := rr.Pick(); return errors.Is(err, ErrNoInstances) }, "draining instance still picked")
}

func TestWatchIsSharedAndReleased(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	d := newDiscoverer(t, cli)
	c1 := watch(t, d, "svc")
	c2 := watch(t, d, "svc")
	c3 := watch(t, d, "other")
	assert.Same(t, c1.w, c2.w, "one watch per service")
	assert.Equal(t, 2, d.watching())

	w := c1.w
	require.NoError(t, c1.Close())
	require.NoError(t, c1.Close()) // idempotent
	assert.Equal(t, 2, d.watching())
	assert.ErrorIs(t, c1.WaitSynced(context.Background()), ErrClosed)
	require.NoError(t, c2.WaitSynced(testContext(t)))

	require.NoError(t, c2.Close())
	assert.Equal(t, 1, d.watching())
	select {
	case <-w.done:
	default:
		t.Fatal("watch goroutine still running after its last handle closed")
	}
	// A new handle starts a new watch.
	c4 := watch(t, d, "svc")
	assert.NotSame(t, w, c4.w)
	require.NoError(t, c4.WaitSynced(testContext(t)))

	require.NoError(t, d.Close())
	assert.Equal(t, 0, d.watching())
	_, err := c3.Subscribe().Next(context.Background())
	assert.ErrorIs(t, err, ErrClosed, "subscriptions end with the discoverer")
	_, err = d.Watch("svc")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = newDiscoverer(t, cli).Watch("bad/name")
	assert.ErrorIs(t, err, roster.ErrInvalidName)
	_, err = New(cli, WithNamespace("no-slash"))
	assert.ErrorIs(t, err, roster.ErrInvalidName)
}

func TestSubscriptionCoalescesForSlowSubscribers(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	d := newDiscoverer(t, cli)
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(testContext(t)))
	sub := c.Subscribe()
	defer sub.Close()
	ch, err := sub.Next(testContext(t))
	require.NoError(t, err)
	assert.Empty(t, ch.Added, "the first change reports the empty view")

	// The subscriber reads nothing while 50 changes happen; the watch loop
	// must not wait for it.
	for i := range 50 {
		put(t, cli, inst("svc", fmt.Sprintf("n%02d", i)))
	}
	del(t, cli, "svc", "n00")
	eventually(t, func() bool { return len(c.Snapshot().Instances) == 49 }, "cache blocked by a slow subscriber")
	ch, err = sub.Next(testContext(t))
	require.NoError(t, err)
	assert.Len(t, ch.Added, 49, "one coalesced change")
	assert.Empty(t, ch.Removed)
	select {
	case <-sub.Ready():
		_, err := sub.Next(timeoutCtx(t, 100*time.Millisecond))
		assert.ErrorIs(t, err, context.DeadlineExceeded, "no change left to report")
	default:
	}
	sub.Close()
	_, err = sub.Next(testContext(t))
	assert.ErrorIs(t, err, ErrClosed)
}

func timeoutCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCacheServesLastViewWhileCutOffAndSaysHowOld(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	direct := m.Client()
	viaProxy := etcdtest.NewClient(t, proxy.Endpoint())
	put(t, direct, inst("svc", "a"))

	d := newDiscoverer(t, viaProxy)
	c := watch(t, d, "svc")
	require.NoError(t, c.WaitSynced(testContext(t)))
	// Idle, the progress check keeps the view fresh.
	first := c.Snapshot().SyncedAt
	eventually(t, func() bool { return c.Snapshot().SyncedAt.After(first) }, "idle cache never re-confirmed")
	assert.Less(t, c.Snapshot().Age(), converge)

	proxy.Pause() // requests hang, as in a partition
	put(t, direct, inst("svc", "b"))
	eventually(t, func() bool { return errors.Is(c.Err(), ErrStale) }, "silent watch not detected")
	frozen := c.Snapshot()
	assert.Equal(t, []string{"a"}, ids(frozen.Instances), "last good view is served")
	eventually(t, func() bool { return c.Snapshot().Age() > 500*time.Millisecond }, "age does not grow")

	proxy.Restore()
	requireConverges(t, c, direct)
	eventually(t, func() bool { return c.Err() == nil && c.Snapshot().Age() < time.Second }, "cache not current after restore")
}

func TestWaitSyncedWaitsForEtcd(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	proxy.Cut()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.Endpoint()}})
	require.NoError(t, err)
	defer cli.Close()
	d := newDiscoverer(t, cli)
	c := watch(t, d, "svc")
	assert.ErrorIs(t, c.WaitSynced(timeoutCtx(t, 300*time.Millisecond)), context.DeadlineExceeded)
	assert.False(t, c.Snapshot().Synced())
	assert.Zero(t, c.Snapshot().Age())
	proxy.Restore()
	require.NoError(t, c.WaitSynced(testContext(t)))
	require.NoError(t, d.Close())
}
