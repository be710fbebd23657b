package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// status returns the status written in an instance's value, as discovery
// reads it: "" (serving) or draining; "absent" without a key.
func status(t *testing.T, cli *clientv3.Client, service, id string) string {
	t.Helper()
	kv := get(t, cli, service, id)
	if kv == nil {
		return "absent"
	}
	return string(decode(t, kv, service, id).Status)
}

// Issue 16: an operator drains an instance from another client; its
// registrar writes it draining within a second and tells its application;
// cancelling restores the application's own status.
func TestOperatorDrainAndUndrain(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	operator := m.Client()
	r := newRegistrar(t, m.Client())
	a := instance("users", "a")
	a.Weight = 3
	require.NoError(t, r.Register(ctx, a))
	require.NoError(t, r.Register(ctx, instance("users", "b")))
	lease := r.Status().Lease

	start := time.Now()
	require.NoError(t, registry.RequestDrain(ctx, operator, "users", "a", "kernel upgrade"))
	ev := waitEvent(t, r, registry.EventDrainRequested, time.Second)
	assert.Equal(t, string(roster.StatusDraining), status(t, operator, "users", "a"), "written draining before the application is told")
	t.Logf("drain requested: instance written draining and the application told %v later", ev.Time.Sub(start).Round(time.Millisecond))
	assert.Equal(t, "a", ev.ID)
	assert.Equal(t, "kernel upgrade", ev.Reason)
	assert.Less(t, ev.Time.Sub(start), time.Second)
	kv := get(t, operator, "users", "a")
	assert.Equal(t, int64(lease), kv.Lease, "written by its registrar, under its lease")
	assert.Equal(t, 3, decode(t, kv, "users", "a").Weight, "the rest kept")
	assert.Equal(t, "", status(t, operator, "users", "b"), "others untouched")
	assert.Equal(t, roster.StatusDraining, r.Instances()[0].Status)
	assert.True(t, r.Status().Healthy, "a drained instance is in place")

	// The application's own updates keep the operator's drain.
	a.Weight = 5
	require.NoError(t, r.Update(ctx, a))
	assert.Equal(t, string(roster.StatusDraining), status(t, operator, "users", "a"))
	assert.Equal(t, 5, decode(t, get(t, operator, "users", "a"), "users", "a").Weight)

	reqs, err := registry.DrainRequests(ctx, operator)
	require.NoError(t, err)
	require.Len(t, reqs, 1)
	assert.Equal(t, "users", reqs[0].Service)
	assert.Equal(t, "a", reqs[0].ID)
	assert.Equal(t, "kernel upgrade", reqs[0].Reason)

	start = time.Now()
	require.NoError(t, registry.CancelDrain(ctx, operator, "users", "a"))
	ev = waitEvent(t, r, registry.EventUndrainRequested, time.Second)
	assert.Equal(t, "", status(t, operator, "users", "a"), "written serving before the application is told")
	t.Logf("drain cancelled: instance written serving %v later", ev.Time.Sub(start).Round(time.Millisecond))
	assert.Equal(t, 5, decode(t, get(t, operator, "users", "a"), "users", "a").Weight)
	require.NoError(t, registry.CancelDrain(ctx, operator, "users", "a"), "cancelling nothing is no error")

	// The application's own drain is not undone by an operator's undrain.
	require.NoError(t, r.Drain(ctx, "users", "b"))
	require.NoError(t, registry.RequestDrain(ctx, operator, "users", "b", ""))
	waitEvent(t, r, registry.EventDrainRequested, time.Second)
	require.NoError(t, registry.CancelDrain(ctx, operator, "users", "b"))
	waitEvent(t, r, registry.EventUndrainRequested, time.Second)
	until(t, time.Second, func() bool { return converged(t, &rig{plain: operator, r: r, ns: roster.DefaultNamespace}, "users") }, "settled")
	assert.Equal(t, string(roster.StatusDraining), status(t, operator, "users", "b"), "still drained by its application")
}

// Issue 16: the request outlives the registrar. A registrar started again
// (a new process) registers the instance draining from its first write, and
// tells its application; so does one that registers after the request.
func TestOperatorDrainSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	operator := m.Client()
	first := newRegistrar(t, etcdtest.NewClient(t, m.Endpoints()...))
	require.NoError(t, first.Register(ctx, instance("users", "a")))
	require.NoError(t, registry.RequestDrain(ctx, operator, "users", "a", "maintenance"))
	until(t, time.Second, func() bool { return status(t, operator, "users", "a") == string(roster.StatusDraining) }, "draining")
	require.NoError(t, first.Close())
	assert.Equal(t, "absent", status(t, operator, "users", "a"))

	again := newRegistrar(t, etcdtest.NewClient(t, m.Endpoints()...))
	require.NoError(t, again.Register(ctx, instance("users", "a")))
	kv := get(t, operator, "users", "a")
	require.NotNil(t, kv)
	assert.Equal(t, int64(1), kv.Version, "one write")
	assert.Equal(t, roster.StatusDraining, decode(t, kv, "users", "a").Status, "draining from its first write")
	ev := waitEvent(t, again, registry.EventDrainRequested, time.Second)
	assert.Equal(t, "maintenance", ev.Reason)

	// Requested just before the instance is registered: drained as soon as
	// the registrar's watch of the requests says so.
	require.NoError(t, registry.RequestDrain(ctx, operator, "users", "later", ""))
	require.NoError(t, again.Register(ctx, instance("users", "later")))
	until(t, time.Second, func() bool { return status(t, operator, "users", "later") == string(roster.StatusDraining) }, "draining")

	// And the drain is kept through a lost lease.
	_, err := operator.Revoke(ctx, again.Status().Lease)
	require.NoError(t, err)
	waitEvent(t, again, registry.EventRestored, 5*time.Second)
	assert.Equal(t, string(roster.StatusDraining), status(t, operator, "users", "a"))

	require.NoError(t, registry.CancelDrain(ctx, operator, "users", "a"))
	until(t, time.Second, func() bool { return status(t, operator, "users", "a") == "" }, "undrained after the restart")
}

// A drain requested while the registrar is cut off is applied once the
// fault ends; one cancelled meanwhile is not applied at all.
func TestOperatorDrainDuringPartition(t *testing.T) {
	for _, mode := range faultModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			g := newRig(t, etcdtest.Start(t), roster.DefaultNamespace, 30*time.Second)
			require.NoError(t, g.r.Register(ctx, instance("users", "a")))
			require.NoError(t, g.r.Register(ctx, instance("users", "b")))
			mode.apply(g.proxy)
			require.NoError(t, registry.RequestDrain(ctx, g.plain, "users", "a", ""))
			require.NoError(t, registry.RequestDrain(ctx, g.plain, "users", "b", ""))
			require.NoError(t, registry.CancelDrain(ctx, g.plain, "users", "b"))
			compactNow(t, g.plain)
			g.proxy.Restore()
			until(t, 10*time.Second, func() bool { return status(t, g.plain, "users", "a") == string(roster.StatusDraining) }, "drained once reachable")
			until(t, 2*time.Second, func() bool { return converged(t, g, "users") }, "settled")
			assert.Equal(t, "", status(t, g.plain, "users", "b"))
		})
	}
}

// The operator's calls refuse bad input with clear errors, and a drain key
// that is not roster's disturbs nothing.
func TestOperatorDrainInput(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	require.ErrorIs(t, registry.RequestDrain(ctx, nil, "users", "a", ""), roster.ErrNilClient)
	require.ErrorIs(t, registry.CancelDrain(ctx, nil, "users", "a"), roster.ErrNilClient)
	_, err := registry.DrainRequests(ctx, nil)
	require.ErrorIs(t, err, roster.ErrNilClient)
	require.ErrorIs(t, registry.RequestDrain(ctx, cli, "users", "a/b", ""), roster.ErrInvalidName)
	require.ErrorIs(t, registry.RequestDrain(ctx, cli, "", "a", ""), roster.ErrInvalidName)
	require.ErrorIs(t, registry.CancelDrain(ctx, cli, "users", ".."), roster.ErrInvalidName)
	require.ErrorIs(t, registry.RequestDrain(ctx, cli, "users", "a", strings.Repeat("x", registry.MaxDrainReason+1)), roster.ErrInvalidValue)
	require.ErrorIs(t, registry.RequestDrain(ctx, cli, "users", "a", "\xff"), roster.ErrInvalidValue)
	require.ErrorIs(t, registry.RequestDrain(ctx, cli, "users", "a", "", registry.WithNamespace("bad")), roster.ErrInvalidOption)
	var nilCtx context.Context
	require.NoError(t, registry.RequestDrain(nilCtx, cli, "users", "a", "", registry.WithNamespace("/apps")))
	resp, err := cli.Get(ctx, "/apps/drain/users/a")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "documented layout: <ns>/drain/<service>/<id>")
	require.NoError(t, registry.CancelDrain(nilCtx, cli, "users", "a", registry.WithNamespace("/apps")))

	r := newRegistrar(t, m.Client())
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	for _, k := range []string{"/roster/drain/users/a/extra", "/roster/drain/users/", "/roster/drain/users", "/roster/drain/other/a"} {
		_, err := cli.Put(ctx, k, "\xff\xfe")
		require.NoError(t, err)
	}
	_, err = cli.Put(ctx, "/roster/drain/users/a", "\xff not UTF-8")
	require.NoError(t, err)
	ev := waitEvent(t, r, registry.EventDrainRequested, time.Second)
	assert.Equal(t, "\uFFFD not UTF-8", ev.Reason, "a foreign value is read as a reason, made valid")
	reqs, err := registry.DrainRequests(ctx, cli)
	require.NoError(t, err)
	assert.Len(t, reqs, 2, "users/a and other/a; not the malformed keys")

	closed, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints()})
	require.NoError(t, err)
	closed.Close()
	require.ErrorIs(t, registry.RequestDrain(ctx, closed, "users", "a", ""), roster.ErrClosed)
}
