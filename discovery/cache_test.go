package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

func TestCacheListsThenFollows(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	putInstance(t, cli, instance("users", "a"))
	putInstance(t, cli, instance("users", "b"))
	putInstance(t, cli, instance("users-admin", "x")) // a longer service name must not leak in
	c := cache(t, discoverer(t, cli), "users")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	s := c.Snapshot()
	assert.Equal(t, []string{"a", "b"}, ids(all(s)))
	assert.Equal(t, 2, s.Len())
	assert.Equal(t, "b", s.At(1).ID)
	assert.Equal(t, roster.Instance{}, s.At(2))
	assert.True(t, s.Synced())
	assert.Positive(t, s.Revision())
	assert.Equal(t, "users", s.Service())

	changes := c.Changes(ctxT(t))
	ch := next(t, changes)
	assert.Equal(t, []string{"a", "b"}, ids(ch.Added), "first change is the whole view")

	putInstance(t, cli, instance("users", "c"))
	ch = next(t, changes)
	assert.Equal(t, []string{"c"}, ids(ch.Added))
	assert.Empty(t, ch.Updated)
	assert.Empty(t, ch.Removed)

	upd := instance("users", "a")
	upd.Weight = 7
	rev := putInstance(t, cli, upd)
	ch = next(t, changes)
	require.Equal(t, []string{"a"}, ids(ch.Updated))
	assert.Equal(t, 7, ch.Updated[0].Weight)
	assert.GreaterOrEqual(t, ch.Snapshot.Revision(), rev)
	got, ok := ch.Snapshot.Lookup("a")
	require.True(t, ok)
	assert.Equal(t, 7, got.Weight)

	putInstance(t, cli, upd) // the same value again: no change to report
	deleteInstance(t, cli, "users", "b")
	ch = next(t, changes)
	assert.Equal(t, []string{"b"}, ids(ch.Removed))
	assert.Empty(t, ch.Updated, "rewriting an equal value is not a change")
	requireConverges(t, c, cli)
}

func TestCacheSkipsCorruptAndForeignKeys(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx := ctxT(t)
	prefix := keys.ServicePrefix(keys.DefaultNamespace, "svc")
	putInstance(t, cli, instance("svc", "good"))
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
	c := cache(t, discoverer(t, cli), "svc")
	require.NoError(t, c.WaitSynced(ctx))
	assert.Equal(t, []string{"good"}, ids(all(c.Snapshot())))
	assert.Equal(t, 5, c.Snapshot().Skipped())
	assert.EqualValues(t, 5, c.Stats().Skipped)

	// A valid instance overwritten with garbage disappears; fixed, it
	// comes back. The cache keeps working throughout.
	_, err := cli.Put(ctx, prefix+"good", "{")
	require.NoError(t, err)
	eventually(t, func() bool { return c.Snapshot().Len() == 0 && c.Snapshot().Skipped() == 6 }, "corrupted instance not dropped")
	putInstance(t, cli, instance("svc", "good"))
	putInstance(t, cli, instance("svc", "other"))
	eventually(t, func() bool { return c.Snapshot().Skipped() == 5 && c.Snapshot().Len() == 2 }, "fixed instance not back")
	_, err = cli.Delete(ctx, prefix+"garbage")
	require.NoError(t, err)
	eventually(t, func() bool { return c.Snapshot().Skipped() == 4 }, "deleted garbage still counted")
	requireConverges(t, c, cli)
	assert.NoError(t, c.Err())
}

func TestCacheShowsDrainingButPickersSkipIt(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	a, b := instance("svc", "a"), instance("svc", "b")
	b.Status = roster.StatusDraining
	putInstance(t, cli, a)
	putInstance(t, cli, b)
	c := cache(t, discoverer(t, cli), "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	assert.Equal(t, []string{"a", "b"}, ids(all(c.Snapshot())))
	assert.Equal(t, []string{"b"}, ids(c.Snapshot().Select(discovery.HasStatus(roster.StatusDraining))))
	rr, err := discovery.NewRoundRobin(c)
	require.NoError(t, err)
	for range 10 {
		p, err := rr.Pick()
		require.NoError(t, err)
		assert.Equal(t, "a", p.Instance.ID)
		p.Done(nil)
	}
	a.Status = roster.StatusDraining
	putInstance(t, cli, a)
	eventually(t, func() bool { _, err := rr.Pick(); return errors.Is(err, discovery.ErrNoInstances) }, "draining instance still picked")
}

// Each call of Changes has its own channel; none splits an item with
// another; a slow reader gets what it missed merged per instance, ending
// at the latest view; the channel closes with its context or its cache.
func TestChangesAreMergedForSlowReadersNeverLost(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	c := cache(t, discoverer(t, cli), "svc")
	require.NoError(t, c.WaitSynced(ctxT(t)))
	fast, slow := c.Changes(ctxT(t)), c.Changes(ctxT(t))
	assert.Empty(t, next(t, fast).Added, "the first change reports the empty view")

	// The slow reader reads nothing while 60 changes happen; the watch
	// loop must not wait for it.
	view := map[string]roster.Instance{}
	for i := range 50 {
		in := instance("svc", fmt.Sprintf("n%02d", i))
		putInstance(t, cli, in)
	}
	for i := range 10 {
		in := instance("svc", fmt.Sprintf("n%02d", i))
		in.Weight = 9
		putInstance(t, cli, in)
	}
	deleteInstance(t, cli, "svc", "n00")
	last := putInstance(t, cli, instance("svc", "n00")) // back as it first was
	eventually(t, func() bool { return c.Snapshot().Revision() >= last }, "cache blocked by a slow reader")

	// The fast reader saw each change; applying them gives the view.
	for {
		ch := next(t, fast)
		apply(view, ch)
		if ch.Snapshot.Revision() >= last {
			break
		}
	}
	assert.Equal(t, all(c.Snapshot()), sortedValues(view))

	// The slow one gets fewer, merged items leading to the same view.
	slowView := map[string]roster.Instance{}
	items := 0
	for {
		ch := next(t, slow)
		items++
		apply(slowView, ch)
		if ch.Snapshot.Revision() >= last {
			break
		}
	}
	assert.Equal(t, all(c.Snapshot()), sortedValues(slowView))
	assert.Less(t, items, 20, "merged, not a backlog of 62 items")
	n00, _ := c.Snapshot().Lookup("n00")
	assert.Zero(t, n00.Weight)

	// A channel ends with its context, and all of them with the cache.
	ctx, cancel := context.WithCancel(context.Background())
	mine := c.Changes(ctx)
	next(t, mine)
	cancel()
	closed(t, mine, time.Second)
	require.NoError(t, c.Close())
	closed(t, fast, time.Second)
	closed(t, slow, time.Second)
	closed(t, c.Changes(context.Background()), time.Second)
}

func apply(view map[string]roster.Instance, ch discovery.Change) {
	for _, in := range ch.Added {
		view[in.ID] = in
	}
	for _, in := range ch.Updated {
		view[in.ID] = in
	}
	for _, in := range ch.Removed {
		delete(view, in.ID)
	}
}

func sortedValues(m map[string]roster.Instance) []roster.Instance {
	return discovery.NewSnapshot("", values(m)...).Select(nil)
}

func values(m map[string]roster.Instance) []roster.Instance {
	out := make([]roster.Instance, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestCacheServesLastViewWhileCutOffAndSaysHowOld(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			direct := m.Client()
			putInstance(t, direct, instance("svc", "a"))
			c := cache(t, discoverer(t, etcdtest.NewClient(t, proxy.Endpoint())), "svc")
			require.NoError(t, c.WaitSynced(ctxT(t)))
			first := c.Snapshot().SyncedAt()
			eventually(t, func() bool { return c.Snapshot().SyncedAt().After(first) }, "idle cache never re-confirmed")

			fault.start(proxy)
			putInstance(t, direct, instance("svc", "b"))
			eventually(t, func() bool { return c.Err() != nil }, "lost connection not noticed")
			if fault.name == "pause" {
				eventually(t, func() bool { return errors.Is(c.Err(), discovery.ErrStale) && errors.Is(c.Err(), roster.ErrStale) }, "silence not reported stale")
			}
			assert.Equal(t, []string{"a"}, ids(all(c.Snapshot())), "last good view is served")
			eventually(t, func() bool { return c.Snapshot().Age() > 500*time.Millisecond }, "age does not grow")

			proxy.Restore()
			requireConverges(t, c, direct)
			eventually(t, func() bool { return c.Err() == nil && c.Snapshot().Age() < time.Second }, "cache not current after restore")
		})
	}
}

// faults are the two ways a partition shows: an RST (Cut) and a black hole
// (Pause). Every test that cuts a connection runs with both.
var faults = []struct {
	name  string
	start func(*etcdtest.Proxy)
}{
	{"cut", (*etcdtest.Proxy).Cut},
	{"pause", (*etcdtest.Proxy).Pause},
}

func TestWaitSyncedWaitsForEtcd(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			m := etcdtest.Start(t)
			putInstance(t, m.Client(), instance("svc", "a"))
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			fault.start(proxy)
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			c := cache(t, discoverer(t, cli), "svc")
			err := c.WaitSynced(timeout(t, 5*interval))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorContains(t, err, `service "svc" not synced`)
			assert.ErrorIs(t, err, discovery.ErrStale, "says why: no answer from etcd")
			assert.False(t, c.Snapshot().Synced())
			assert.Zero(t, c.Snapshot().Age())
			proxy.Restore()
			require.NoError(t, c.WaitSynced(ctxT(t)))
			assert.Equal(t, 1, c.Snapshot().Len())
		})
	}
}
