package registry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// Acceptance 8: Close waits for every goroutine the registrar started (its
// recovery loop, one watch per service, the lease's renewals), even with the
// client still open.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	_, err := cli.Get(ctx, "warm-up") // the client's own goroutines exist from here
	require.NoError(t, err)
	before := goleak.IgnoreCurrent()

	r, err := registry.New(cli)
	require.NoError(t, err)
	for _, svc := range []string{"users", "orders"} {
		registerN(t, r, svc, 3)
	}
	require.NoError(t, r.Deregister(ctx, "orders", "i000"))
	require.NoError(t, r.Close())
	goleak.VerifyNone(t, before)
}

// A registrar that never registered anything holds no lease and closes
// cleanly.
func TestCloseUnused(t *testing.T) {
	m := etcdtest.Start(t)
	r, err := registry.New(m.Client())
	require.NoError(t, err)
	st := r.Status()
	require.True(t, st.Healthy, "nothing registered, nothing missing")
	require.Zero(t, st.Lease)
	evs := r.Events(testCtx(t))
	require.NoError(t, r.Close())
	leases, err := m.Client().Leases(testCtx(t))
	require.NoError(t, err)
	require.Empty(t, leases.Leases, "no lease was granted")
	_, open := <-evs
	require.False(t, open, "Close ends the Events channels")
}

// Close with a context that never ends must not wait for etcd to come
// back: past the TTL the lease has expired by itself.
func TestCloseWhileUnreachableIsBoundedByTTL(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	const ttl = 2 * time.Second
	r, err := registry.New(etcdtest.NewClient(t, proxy.Endpoint()), registry.WithTTL(ttl))
	require.NoError(t, err)
	registerN(t, r, "users", 1)
	proxy.Cut()
	defer proxy.Restore()

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("Close returned after %v: %v", took.Round(time.Millisecond), err)
		require.Error(t, err, "the revoke could not be sent")
	case <-time.After(ttl + 5*time.Second):
		t.Fatalf("Close still blocked %v after etcd became unreachable", ttl+5*time.Second)
	}
}
