package discovery_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// servicesTruth lists the services with a valid instance key, from a plain
// Get.
func servicesTruth(t testing.TB, cli *clientv3.Client) []string {
	t.Helper()
	resp, err := cli.Get(ctxT(t), keys.ServicesPrefix(keys.DefaultNamespace), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	require.NoError(t, err)
	var out []string
	for _, kv := range resp.Kvs {
		if svc, _, ok := keys.ParseInstanceKey(keys.DefaultNamespace, string(kv.Key)); ok && !slices.Contains(out, svc) {
			out = append(out, svc)
		}
	}
	slices.Sort(out)
	return out
}

func requireListing(t *testing.T, set *discovery.ServiceSet, view map[string]bool, cli *clientv3.Client) {
	t.Helper()
	var want []string
	eventually(t, func() bool {
		want = servicesTruth(t, cli)
		return slices.Equal(want, set.Snapshot().Names())
	}, "listing did not converge")
	// The reader applies the changes on its own goroutine: the listing is
	// current before the last change has reached it.
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		applyMu.Lock()
		got = slices.Sorted(maps.Keys(view))
		applyMu.Unlock()
		if slices.Equal(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	assert.Equal(t, want, got, "the changes add up to the listing")
}

// The listing and its watch: register services, remove one, compact while
// the watch is cut off, and both equal etcd's truth; a service is listed
// while it has one valid instance key.
func TestServicesListAndWatch(t *testing.T) {
	m := etcdtest.Start(t)
	direct := m.Client()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	d := discoverer(t, etcdtest.NewClient(t, proxy.Endpoint()))
	for _, svc := range []string{"users", "carts", "orders"} {
		for i := range 3 {
			putInstance(t, direct, instance(svc, fmt.Sprint("i", i)))
		}
	}
	_, err := direct.Put(ctxT(t), keys.ServicesPrefix(keys.DefaultNamespace)+"bad name/x", "v") // not a service
	require.NoError(t, err)
	_, err = direct.Put(ctxT(t), keys.ServicesPrefix(keys.DefaultNamespace)+"loose", "v") // no instance key
	require.NoError(t, err)

	names, err := d.Services(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"carts", "orders", "users"}, names)
	paged := discoverer(t, direct, discovery.WithPageSize(2))
	names, err = paged.Services(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, []string{"carts", "orders", "users"}, names, "read in pages")

	set, err := d.WatchServices()
	require.NoError(t, err)
	t.Cleanup(func() { set.Close() })
	require.NoError(t, set.WaitSynced(ctxT(t)))
	changes := set.Changes(ctxT(t))
	view := map[string]bool{}
	first := next(t, changes)
	assert.Equal(t, []string{"carts", "orders", "users"}, first.Added)
	applyServices(view, first)
	follow := func() {
		go func() {
			for ch := range changes {
				applyMu.Lock()
				applyServices(view, ch)
				applyMu.Unlock()
			}
		}()
	}
	follow()
	check := func() {
		t.Helper()
		requireListing(t, set, view, direct)
	}

	// Removing one of three instances keeps the service; the last removes
	// it.
	deleteInstance(t, direct, "orders", "i0")
	putInstance(t, direct, instance("payments", "p0"))
	eventually(t, func() bool { return set.Snapshot().Contains("payments") }, "new service not listed")
	assert.True(t, set.Snapshot().Contains("orders"))
	deleteInstance(t, direct, "orders", "i1")
	deleteInstance(t, direct, "orders", "i2")
	eventually(t, func() bool { return !set.Snapshot().Contains("orders") }, "removed service still listed")
	check()

	// Cut off, the set misses removals and additions and etcd compacts
	// past them: it re-lists and still equals the truth.
	proxy.Cut()
	eventually(t, func() bool { return set.Err() != nil }, "cut not noticed")
	_, err = direct.Delete(ctxT(t), keys.ServicePrefix(keys.DefaultNamespace, "carts"), clientv3.WithPrefix())
	require.NoError(t, err)
	putInstance(t, direct, instance("search", "s0"))
	rev := putInstance(t, direct, instance("users", "i9"))
	_, err = direct.Compact(ctxT(t), rev)
	require.NoError(t, err)
	proxy.Restore()
	eventually(t, func() bool { return set.Snapshot().Revision() >= rev && set.Err() == nil }, "set did not recover")
	check()
	names, err = d.Services(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, servicesTruth(t, direct), names)
	assert.Equal(t, []string{"payments", "search", "users"}, names)
}

var applyMu sync.Mutex

func applyServices(view map[string]bool, ch discovery.ServiceChange) {
	for _, s := range ch.Added {
		view[s] = true
	}
	for _, s := range ch.Removed {
		delete(view, s)
	}
}

// A service set black-holed reports stale within twice its interval.
func TestServiceSetReportsStale(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	d := discoverer(t, etcdtest.NewClient(t, proxy.Endpoint()))
	putInstance(t, m.Client(), instance("svc", "a"))
	set, err := d.WatchServices()
	require.NoError(t, err)
	defer set.Close()
	require.NoError(t, set.WaitSynced(ctxT(t)))
	proxy.Pause()
	at := time.Now()
	eventually(t, func() bool { return errors.Is(set.Err(), discovery.ErrStale) && errors.Is(set.Err(), roster.ErrStale) }, "not stale")
	assert.LessOrEqual(t, time.Since(at), 2*interval+50*time.Millisecond)
	assert.True(t, set.Snapshot().Contains("svc"), "the last list is served")
	proxy.Restore()
	eventually(t, func() bool { return set.Err() == nil }, "not current again")
}
