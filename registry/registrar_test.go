package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// testTTL is the lease TTL of the fault tests: short, so that expiry
// happens within a test, and at roster.MinTTL.
const testTTL = 2 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newRegistrar returns a registrar closed when the test ends, whose events
// from now on waitEvent and pending read.
func newRegistrar(t *testing.T, cli *clientv3.Client, opts ...registry.Option) *registry.Registrar {
	t.Helper()
	r, err := registry.New(cli, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	subscribe(r)
	return r
}

// subs holds each registrar's Events channel that the tests read.
var subs sync.Map

// subscribe subscribes to r's events for waitEvent and pending; the channel
// ends when r is closed.
func subscribe(r *registry.Registrar) {
	subs.Store(r, r.Events(context.Background()))
}

// events returns r's channel subscribed by newRegistrar or subscribe.
func events(t *testing.T, r *registry.Registrar) <-chan registry.Event {
	t.Helper()
	ch, ok := subs.Load(r)
	require.True(t, ok, "registrar not subscribed")
	return ch.(<-chan registry.Event)
}

func instance(service, id string) roster.Instance {
	return roster.Instance{Service: service, ID: id, Addr: "10.0.0.1:8080"}
}

// key is an instance's key, spelled out rather than built with the keys
// package so that the tests pin the documented layout.
func key(service, id string) string { return "/roster/services/" + service + "/" + id }

// get reads an instance's key with a plain client: nil if absent.
func get(t *testing.T, cli *clientv3.Client, service, id string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key(service, id))
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

func decode(t *testing.T, kv *mvccpb.KeyValue, service, id string) roster.Instance {
	t.Helper()
	inst, err := roster.DecodeInstance(service, id, kv.Value)
	require.NoError(t, err)
	return inst
}

// leaseAlive reports whether etcd still has lease id.
func leaseAlive(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) bool {
	t.Helper()
	resp, err := cli.TimeToLive(testCtx(t), id)
	require.NoError(t, err)
	return resp.TTL > 0
}

// waitEvent returns the first event of kind from r, skipping others.
func waitEvent(t *testing.T, r *registry.Registrar, kind registry.EventKind, within time.Duration) registry.Event {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-events(t, r):
			require.True(t, ok, "events closed while waiting for %v", kind)
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event within %v", kind, within)
		}
	}
}

// Acceptance 1: the key and value are visible to a plain Get; Close removes
// them at once.
func TestRegisterIsVisibleAndCloseRemovesAtOnce(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, plain := m.Client(), m.Client()
	r, err := registry.New(cli, registry.WithTTL(30*time.Second))
	require.NoError(t, err)
	subscribe(r)

	want := roster.Instance{Service: "users", ID: "pod-1", Addr: "10.0.0.7:8080",
		Metadata: map[string]string{"zone": "eu-1"}, Weight: 5}
	require.NoError(t, r.Register(ctx, want))

	kv := get(t, plain, "users", "pod-1")
	require.NotNil(t, kv)
	assert.Equal(t, want, decode(t, kv, "users", "pod-1"))
	st := r.Status()
	assert.True(t, st.Healthy)
	assert.NoError(t, st.Err)
	assert.Equal(t, 1, st.Instances)
	assert.Equal(t, int64(st.Lease), kv.Lease, "written under the registrar's lease")
	assert.True(t, st.Deadline.After(time.Now()), "deadline ahead")
	assert.Equal(t, []roster.Instance{want}, r.Instances())
	ev := waitEvent(t, r, registry.EventRegistered, time.Second)
	assert.Equal(t, "users", ev.Service)
	assert.Equal(t, "pod-1", ev.ID)

	require.NoError(t, r.Close())
	assert.Nil(t, get(t, plain, "users", "pod-1"), "gone at once, not after the 30 s TTL")
	assert.False(t, leaseAlive(t, plain, st.Lease), "lease revoked")

	require.NoError(t, r.Close(), "idempotent")
	require.NoError(t, r.Shutdown(ctx), "idempotent")
	assert.ErrorIs(t, r.Register(ctx, want), registry.ErrClosed)
	assert.ErrorIs(t, r.Status().Err, registry.ErrClosed)
	assert.False(t, r.Status().Healthy)
	for range events(t, r) { // drains, then ends: Close closed the channel
	}
	_, open := <-r.Events(ctx)
	assert.False(t, open, "closed at once after Close")
}

// Re-registering its own instance updates it in place; Update and Drain
// write once under the same key and lease.
func TestUpdateAndDrainInPlace(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, plain := m.Client(), m.Client()
	r := newRegistrar(t, cli)

	inst := instance("users", "a")
	require.NoError(t, r.Register(ctx, inst))
	before := get(t, plain, "users", "a")

	inst.Weight, inst.Metadata = 7, map[string]string{"v": "2"}
	require.NoError(t, r.Register(ctx, inst), "re-register own instance")
	after := get(t, plain, "users", "a")
	assert.Equal(t, inst, decode(t, after, "users", "a"))
	assert.Equal(t, before.Lease, after.Lease)
	assert.Equal(t, before.CreateRevision, after.CreateRevision, "updated in place, not recreated")
	assert.Equal(t, before.Version+1, after.Version, "one write")

	inst.Addr = "10.0.0.2:9090"
	require.NoError(t, r.Update(ctx, inst))
	require.NoError(t, r.Update(ctx, inst), "unchanged: no write")
	kv := get(t, plain, "users", "a")
	assert.Equal(t, "10.0.0.2:9090", decode(t, kv, "users", "a").Addr)
	assert.Equal(t, after.Version+1, kv.Version, "one write for the change, none for the repeat")

	require.NoError(t, r.Drain(ctx, "users", "a"))
	kv = get(t, plain, "users", "a")
	drained := decode(t, kv, "users", "a")
	assert.Equal(t, roster.StatusDraining, drained.Status)
	assert.False(t, drained.Serving())
	assert.Equal(t, "10.0.0.2:9090", drained.Addr, "draining keeps the rest")
	assert.Equal(t, before.Lease, kv.Lease)
	assert.Equal(t, before.CreateRevision, kv.CreateRevision)
	assert.True(t, r.Status().Healthy)

	assert.ErrorIs(t, r.Update(ctx, instance("users", "nope")), registry.ErrNotRegistered)
	assert.ErrorIs(t, r.Drain(ctx, "users", "nope"), registry.ErrNotRegistered)
	assert.Nil(t, get(t, plain, "users", "nope"), "Update does not register")
}

func TestDeregister(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli, plain := m.Client(), m.Client()
	r := newRegistrar(t, cli)
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	require.NoError(t, r.Register(ctx, instance("users", "b")))

	require.NoError(t, r.Deregister(ctx, "users", "a"))
	assert.Nil(t, get(t, plain, "users", "a"))
	assert.NotNil(t, get(t, plain, "users", "b"), "others stay")
	assert.Equal(t, []roster.Instance{instance("users", "b")}, r.Instances())
	assert.ErrorIs(t, r.Deregister(ctx, "users", "a"), registry.ErrNotRegistered)
	assert.ErrorIs(t, r.Deregister(ctx, "users", "a/b"), roster.ErrInvalidName)

	// A deregistered instance is not written back by the watch or the
	// recovery loop, and can be registered again.
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	assert.NotNil(t, get(t, plain, "users", "a"))
	assert.True(t, r.Status().Healthy)
}

// Acceptance 5: a second registrar cannot take a live instance over.
func TestSecondRegistrarGetsDuplicate(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	first := newRegistrar(t, m.Client())
	second := newRegistrar(t, m.Client())

	require.NoError(t, first.Register(ctx, instance("users", "a")))
	held := get(t, plain, "users", "a")

	other := instance("users", "a")
	other.Addr = "10.9.9.9:1"
	err := second.Register(ctx, other)
	require.ErrorIs(t, err, registry.ErrDuplicate)
	assert.Contains(t, err.Error(), "/roster/services/users/a")
	t.Logf("duplicate error: %v", err)

	kv := get(t, plain, "users", "a")
	assert.Equal(t, held.Lease, kv.Lease, "the first keeps it")
	assert.Equal(t, held.ModRevision, kv.ModRevision, "not written at all")
	assert.Empty(t, second.Instances())
	assert.True(t, first.Status().Healthy)
	assert.True(t, second.Status().Healthy, "a refused Register does not make the registrar unhealthy")

	// A key written by something else without a lease is not taken either.
	_, err = plain.Put(ctx, key("users", "static"), `{"v":1,"addr":"10.0.0.3:80"}`)
	require.NoError(t, err)
	require.ErrorIs(t, first.Register(ctx, instance("users", "static")), registry.ErrDuplicate)

	// Once the first lets go, the second may register.
	require.NoError(t, first.Deregister(ctx, "users", "a"))
	require.NoError(t, second.Register(ctx, other))
	assert.Equal(t, "10.9.9.9:1", decode(t, get(t, plain, "users", "a"), "users", "a").Addr)
}

// Registrations racing for one key: exactly one wins.
func TestConcurrentRegistrarsOneWins(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	const n = 8
	regs := make([]*registry.Registrar, n)
	for i := range regs {
		regs[i] = newRegistrar(t, m.Client())
	}
	errs := make(chan error, n)
	for _, r := range regs {
		go func() { errs <- r.Register(ctx, instance("users", "a")) }()
	}
	wins := 0
	for range n {
		err := <-errs
		if err == nil {
			wins++
		} else {
			require.ErrorIs(t, err, registry.ErrDuplicate)
		}
	}
	assert.Equal(t, 1, wins)
}

func TestNamespace(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client(), registry.WithNamespace("/apps/blue"))
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	resp, err := plain.Get(ctx, "/apps/blue/services/users/a")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	assert.Nil(t, get(t, plain, "users", "a"), "nothing in the default namespace")

	// Healing works in the namespace too.
	_, err = plain.Delete(ctx, "/apps/blue/services/users/a")
	require.NoError(t, err)
	until(t, 2*time.Second, func() bool {
		resp, err := plain.Get(ctx, "/apps/blue/services/users/a")
		return err == nil && len(resp.Kvs) == 1
	}, "written back in its namespace")
}
