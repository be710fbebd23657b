package registry_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// The two ways the proxy puts a client out of reach of etcd: connections
// reset at once (Cut), or bytes held with the connections left open, as a
// real partition does (Pause). Every partition test runs with both.
var faultModes = []struct {
	name  string
	apply func(*etcdtest.Proxy)
}{
	{"cut", (*etcdtest.Proxy).Cut},
	{"pause", (*etcdtest.Proxy).Pause},
}

// transitionTTL is the lease TTL of the transition tests: a fault of
// failWithin does not outlast the lease (whose deadline comes at least
// TTL - margin - keep-alive interval = 833 ms after the fault began), so
// each test hits the transition it names and not a loss of the lease.
const (
	transitionTTL = roster.MinTTL
	failWithin    = 500 * time.Millisecond
	// slack is what a call may take beyond its context on a loaded machine.
	slack = 700 * time.Millisecond
)

// rig is a registrar that reaches etcd through a proxy, and a plain client
// that reaches it directly.
type rig struct {
	proxy *etcdtest.Proxy
	plain *clientv3.Client
	r     *registry.Registrar
	ns    string
}

func newRig(t *testing.T, m *etcdtest.Member, ns string, ttl time.Duration, opts ...registry.Option) *rig {
	t.Helper()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	opts = append([]registry.Option{registry.WithTTL(ttl), registry.WithNamespace(ns)}, opts...)
	r := newRegistrar(t, etcdtest.NewClient(t, proxy.Endpoint()), opts...)
	return &rig{proxy: proxy, plain: m.Client(), r: r, ns: ns}
}

// failing runs call with a context of failWithin and checks that it fails
// within that bound.
func failing(t *testing.T, what string, call func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failWithin)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	took := time.Since(start)
	require.Error(t, err, "%s succeeded while etcd was out of reach", what)
	assert.Less(t, took, failWithin+slack, "%s returned after %v", what, took)
	t.Logf("%s: %v after %v", what, err, took.Round(time.Millisecond))
	return err
}

// keysIn returns the instance keys etcd holds in ns, with their leases.
func keysIn(t *testing.T, cli *clientv3.Client, ns string) map[string]int64 {
	t.Helper()
	resp, err := cli.Get(testCtx(t), ns+"/services/", clientv3.WithPrefix())
	require.NoError(t, err)
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key[len(ns+"/services/"):])] = kv.Lease
	}
	return out
}

// converged reports whether etcd holds exactly the registrar's instances,
// with its values, under its live lease, and the registrar says healthy.
func converged(t *testing.T, g *rig, service string) bool {
	t.Helper()
	st := g.r.Status()
	if !st.Healthy || st.Lease == 0 {
		return false
	}
	resp, err := g.plain.Get(testCtx(t), g.ns+"/services/"+service+"/", clientv3.WithPrefix())
	require.NoError(t, err)
	want := map[string]roster.Instance{}
	for _, inst := range g.r.Instances() {
		want[inst.ID] = inst
	}
	got := map[string]roster.Instance{}
	for _, kv := range resp.Kvs {
		if kv.Lease != int64(st.Lease) {
			return false
		}
		id := string(kv.Key[len(g.ns+"/services/"+service+"/"):])
		got[id] = decode(t, kv, service, id)
	}
	return assert.ObjectsAreEqual(want, got)
}

// noneLeft waits until etcd holds no key in ns and no lease at all: the
// test's registrars are closed, and a lease granted in a black hole expires
// within its TTL.
func noneLeft(t *testing.T, cli *clientv3.Client, ns string, within time.Duration) {
	t.Helper()
	until(t, within, func() bool {
		resp, err := cli.Get(testCtx(t), ns+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		require.NoError(t, err)
		leases, err := cli.Leases(testCtx(t))
		require.NoError(t, err)
		return resp.Count == 0 && len(leases.Leases) == 0
	}, "no key and no lease left in etcd")
}

// Issue 11: faults at each transition of the registrar, with Cut and with
// Pause. Each call that meets the fault fails within its context; once the
// fault ends, etcd holds exactly what the registrar says it holds (0 lost
// registrations, nothing left of a failed call), and after Close nothing at
// all.
func TestFaultsAtTransitions(t *testing.T) {
	for _, mode := range faultModes {
		t.Run(mode.name+"/grant", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-grant", transitionTTL)
			mode.apply(g.proxy)
			failing(t, "Register while its lease is being granted", func(ctx context.Context) error {
				return g.r.Register(ctx, instance("users", "a"))
			})
			assert.Empty(t, keysIn(t, g.plain, g.ns))
			g.proxy.Restore()
			healed := time.Now()
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "a")))
			t.Logf("registered %v after the fault ended", time.Since(healed).Round(time.Millisecond))
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "registered once etcd is back")
			require.NoError(t, g.r.Close())
			left := until(t, transitionTTL+2*time.Second, func() bool { return len(keysIn(t, g.plain, g.ns)) == 0 }, "no key left")
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
			t.Logf("keys gone %v after Close", left.Round(time.Millisecond))
		})
		t.Run(mode.name+"/first-put", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-put", transitionTTL)
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "a")))
			mode.apply(g.proxy)
			failing(t, "Register of a new instance", func(ctx context.Context) error {
				return g.r.Register(ctx, instance("users", "b"))
			})
			g.proxy.Restore()
			// Sent after the held write: by its reply that write has landed,
			// if it ever does.
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "c")))
			until(t, 5*time.Second, func() bool {
				_, there := keysIn(t, g.plain, g.ns)["users/b"]
				return !there && converged(t, g, "users")
			}, "the failed Register left nothing behind")
			assert.Equal(t, []string{"users/a", "users/c"}, names(g.r.Instances()))
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "b")), "and can be tried again")
			require.NoError(t, g.r.Close())
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
		})
		t.Run(mode.name+"/update", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-update", transitionTTL)
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "a")))
			mode.apply(g.proxy)
			failing(t, "Update", func(ctx context.Context) error {
				inst := instance("users", "a")
				inst.Weight = 7
				return g.r.Update(ctx, inst)
			})
			g.proxy.Restore()
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "c")))
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "etcd holds the value kept")
			assert.Equal(t, 0, g.r.Instances()[0].Weight, "a failed Update keeps the old value")
			require.NoError(t, g.r.Close())
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
		})
		t.Run(mode.name+"/drain", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-drain", transitionTTL)
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "a")))
			mode.apply(g.proxy)
			failing(t, "Drain", func(ctx context.Context) error { return g.r.Drain(ctx, "users", "a") })
			g.proxy.Restore()
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "c")))
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "etcd holds the value kept")
			assert.True(t, g.r.Instances()[0].Serving(), "a failed Drain keeps the old value")
			require.NoError(t, g.r.Drain(testCtx(t), "users", "a"))
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "drained once etcd is back")
			require.NoError(t, g.r.Close())
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
		})
		t.Run(mode.name+"/deregister", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-dereg", transitionTTL)
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "a")))
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "b")))
			mode.apply(g.proxy)
			failing(t, "Deregister", func(ctx context.Context) error { return g.r.Deregister(ctx, "users", "a") })
			g.proxy.Restore()
			require.NoError(t, g.r.Register(testCtx(t), instance("users", "c")))
			// A failed Deregister keeps the instance, even if its delete
			// landed late.
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "etcd holds what the registrar holds")
			assert.Equal(t, []string{"users/a", "users/b", "users/c"}, names(g.r.Instances()))
			require.NoError(t, g.r.Deregister(testCtx(t), "users", "a"))
			until(t, 5*time.Second, func() bool { return converged(t, g, "users") }, "deregistered once etcd is back")
			require.NoError(t, g.r.Close())
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
		})
		t.Run(mode.name+"/restore", func(t *testing.T) {
			// The registrar is cut off and its lease revoked from outside:
			// its new grant and its writing back meet the fault. (Revoked
			// first, it could restore before the cut.)
			t.Parallel()
			logs := &records{}
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-restore", testTTL, registry.WithLogger(slog.New(logs)))
			ids := registerN(t, g.r, "users", 3)
			old := g.r.Status().Lease
			mode.apply(g.proxy)
			_, err := g.plain.Revoke(testCtx(t), old)
			require.NoError(t, err)
			waitEvent(t, g.r, registry.EventLost, 3*testTTL)
			ev := waitEvent(t, g.r, registry.EventError, 3*testTTL) // an attempt failed
			t.Logf("while cut off: %v", ev)
			g.proxy.Restore()
			until(t, 10*time.Second, func() bool { return converged(t, g, "users") }, "restored once etcd is back")
			st := g.r.Status()
			assert.NotEqual(t, old, st.Lease)
			assert.Len(t, keysIn(t, g.plain, g.ns), len(ids))
			// Nothing registered twice: a lease granted in the black hole
			// holds no key and expires; only the registrar's remains.
			until(t, testTTL+2*time.Second, func() bool {
				leases, err := g.plain.Leases(testCtx(t))
				require.NoError(t, err)
				return len(leases.Leases) == 1 && leases.Leases[0].ID == st.Lease
			}, "one lease left: the registrar's")
			require.NoError(t, g.r.Close())
			noneLeft(t, g.plain, g.ns, testTTL+2*time.Second)
			// One record per state change, not one per failed attempt: the
			// lease, and maybe the staleness of the drain requests' watch.
			count := map[string]int{}
			for _, msg := range logs.messages() {
				count[msg]++
			}
			assert.Equal(t, 1, count["registry: lease lost"], "%v", logs.messages())
			assert.Equal(t, 1, count["registry: etcd cannot be written; retrying"], "%v", logs.messages())
			assert.Equal(t, 1, count["registry: lease restored"], "%v", logs.messages())
			for msg, n := range count {
				assert.Equal(t, 1, n, "%q logged %d times: %v", msg, n, logs.messages())
			}
		})
		t.Run(mode.name+"/close", func(t *testing.T) {
			t.Parallel()
			g := newRig(t, etcdtest.Start(t), "/"+mode.name+"-close", transitionTTL)
			registerN(t, g.r, "users", 2)
			mode.apply(g.proxy)
			start := time.Now()
			err := g.r.Close()
			took := time.Since(start)
			t.Logf("Close while cut off: %v after %v", err, took.Round(time.Millisecond))
			assert.Error(t, err, "the revoke got no answer")
			assert.Less(t, took, transitionTTL+slack, "bounded by the TTL")
			assert.Equal(t, err, g.r.Close(), "idempotent")
			g.proxy.Restore()
			noneLeft(t, g.plain, g.ns, transitionTTL+2*time.Second)
		})
	}
}
