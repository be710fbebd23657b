package registry_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// repairTime deletes one instance's key with a plain client and returns how
// long it took for the registrar's write to bring it back, as a watch of the
// key created before the delete sees it.
func repairTime(t *testing.T, plain *clientv3.Client, k string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	wch := plain.Watch(ctx, k) // returns once created: synced, from now on
	start := time.Now()
	_, err := plain.Delete(ctx, k)
	require.NoError(t, err)
	for resp := range wch {
		require.NoError(t, resp.Err())
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypePut {
				return time.Since(start)
			}
		}
	}
	t.Fatalf("%s not written back within 10 s", k)
	return 0
}

// Issue 11, "no blind window after a heal": a key deleted just after the
// registrar restored a revoked lease is written back as fast as one deleted
// from a settled registration.
//
//	ROSTER_LONG=1 go test -run NoBlindWindow -v ./registry
func TestNoBlindWindowAfterHeal(t *testing.T) {
	trials := 15
	if os.Getenv("ROSTER_LONG") == "1" {
		trials = 100
	}
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	ids := registerN(t, r, "users", 3)
	k := key("users", ids[0])

	settled := make([]time.Duration, trials)
	for i := range settled {
		settled[i] = repairTime(t, plain, k)
		until(t, 2*time.Second, func() bool { return r.Status().Healthy }, "healthy after a repair")
	}
	healed := make([]time.Duration, trials)
	for i := range healed {
		lease := r.Status().Lease
		_, err := plain.Revoke(testCtx(t), lease)
		require.NoError(t, err)
		for {
			ev := waitEvent(t, r, registry.EventRestored, 5*time.Second)
			if ev.Service == "" && ev.Lease != lease {
				break
			}
		}
		healed[i] = repairTime(t, plain, k) // at once after the restore
		until(t, 2*time.Second, func() bool { return r.Status().Healthy }, "healthy after a repair")
	}
	first := make([]time.Duration, trials)
	for i := range first {
		id := fmt.Sprintf("first-%03d", i)
		require.NoError(t, r.Register(testCtx(t), instance("first", id))) // a service's first registration
		first[i] = repairTime(t, plain, key("first", id))
		require.NoError(t, r.Deregister(testCtx(t), "first", id))
	}
	s, h, f := stats(settled), stats(healed), stats(first)
	t.Logf("repair of a deleted key, %d trials each: settled min %v median %v max %v; just after a heal min %v median %v max %v; just after a service's first registration min %v median %v max %v",
		trials, s[0], s[1], s[2], h[0], h[1], h[2], f[0], f[1], f[2])
	require.LessOrEqual(t, h[1], 2*s[1]+5*time.Millisecond, "median after a heal within 2x (+5 ms) of the settled median")
	require.LessOrEqual(t, f[1], 2*s[1]+5*time.Millisecond, "median after a first registration within 2x (+5 ms) of the settled median")
}

// stats returns the min, median and max of ds, rounded to 0.1 ms.
func stats(ds []time.Duration) [3]time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return [3]time.Duration{r(s[0]), r(s[len(s)/2]), r(s[len(s)-1])}
}
