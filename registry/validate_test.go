package registry_test

import (
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

// Acceptance 6: invalid input is refused with an error that names the
// problem, before anything is written.
func TestRegisterRejectsInvalidInstances(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	long := strings.Repeat("x", roster.MaxMetadataValueLen+1)
	cases := []struct {
		name    string
		inst    roster.Instance
		want    error
		mention string
	}{
		{"empty service", roster.Instance{ID: "a", Addr: "h:1"}, roster.ErrInvalidName, "service"},
		{"slash in service", roster.Instance{Service: "a/b", ID: "a", Addr: "h:1"}, roster.ErrInvalidName, "'/'"},
		{"empty id", roster.Instance{Service: "users", Addr: "h:1"}, roster.ErrInvalidName, "instance ID"},
		{"slash in id", roster.Instance{Service: "users", ID: "x/y", Addr: "h:1"}, roster.ErrInvalidName, "'/'"},
		{"non-printable", roster.Instance{Service: "us\x00ers", ID: "a", Addr: "h:1"}, roster.ErrInvalidName, "0x00"},
		{"no port", roster.Instance{Service: "users", ID: "a", Addr: "10.0.0.1"}, roster.ErrInvalidAddress, "10.0.0.1"},
		{"port zero", roster.Instance{Service: "users", ID: "a", Addr: "h:0"}, roster.ErrInvalidAddress, "port"},
		{"oversize metadata", roster.Instance{Service: "users", ID: "a", Addr: "h:1",
			Metadata: map[string]string{"k": long}}, roster.ErrInvalidMetadata, "longer than"},
		{"bad status", roster.Instance{Service: "users", ID: "a", Addr: "h:1", Status: "sleepy"}, roster.ErrInvalidInstance, "sleepy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := r.Register(ctx, c.inst)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.mention)
			err = r.Update(ctx, c.inst)
			require.ErrorIs(t, err, c.want, "Update validates too")
		})
	}
	resp, err := plain.Get(ctx, "/roster/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Zero(t, resp.Count, "nothing written")
	assert.Empty(t, r.Instances())
	assert.Zero(t, r.Status().Lease, "no lease granted for invalid input")

	for _, bad := range [][2]string{{"", "a"}, {"users", ""}, {"a/b", "c"}, {"users", ".."}} {
		assert.ErrorIs(t, r.Drain(ctx, bad[0], bad[1]), roster.ErrInvalidName)
		assert.ErrorIs(t, r.Deregister(ctx, bad[0], bad[1]), roster.ErrInvalidName)
	}
}

// Acceptance 6: "user" and "user-admin" share a key prefix as strings but
// never each other's keys: changes under one do not touch the other.
func TestServicesWithCommonPrefixAreSeparate(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	user := newRegistrar(t, m.Client())
	admin := newRegistrar(t, m.Client())

	require.NoError(t, user.Register(ctx, instance("user", "a")))
	require.NoError(t, admin.Register(ctx, instance("user-admin", "a")), "same ID in another service is no duplicate")
	waitEvent(t, user, registry.EventRegistered, time.Second)
	waitEvent(t, admin, registry.EventRegistered, time.Second)
	userLease := get(t, plain, "user", "a").Lease

	// Deleting user-admin/a is admin's business only.
	_, err := plain.Delete(ctx, key("user-admin", "a"))
	require.NoError(t, err)
	waitEvent(t, admin, registry.EventRestored, 2*time.Second)

	// A marker: user's next event must be this registration, not a
	// reaction to the other service.
	require.NoError(t, user.Register(ctx, instance("user", "b")))
	select {
	case ev := <-events(t, user):
		assert.Equal(t, registry.EventRegistered, ev.Kind, "%v", ev)
		assert.Equal(t, "user/b", ev.Service+"/"+ev.ID)
	case <-time.After(time.Second):
		t.Fatal("no event for user/b")
	}
	assert.Equal(t, userLease, get(t, plain, "user", "a").Lease)
	assert.Equal(t, []string{"user/a", "user/b"}, names(user.Instances()))
	assert.Equal(t, []string{"user-admin/a"}, names(admin.Instances()))
	assert.True(t, user.Status().Healthy)
}

func names(insts []roster.Instance) []string {
	var out []string
	for _, i := range insts {
		out = append(out, i.Service+"/"+i.ID)
	}
	return out
}

// Acceptance 6: keys under a watched prefix that are not ours, or not
// instances at all, do not disturb the registrar.
func TestForeignKeysUnderThePrefixAreIgnored(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	require.NoError(t, r.Register(ctx, instance("users", "a")))
	lease := r.Status().Lease

	for k, v := range map[string]string{
		"/roster/services/users/garbage":   "\xff\xfe not json",
		"/roster/services/users/":          "",
		"/roster/services/users/x/y/z":     `{"v":1,"addr":"h:1"}`,
		"/roster/services/users/future":    `{"v":99}`,
		"/roster/services/users/" + "\x01": "{}",
	} {
		_, err := plain.Put(ctx, k, v)
		require.NoError(t, err)
		_, err = plain.Delete(ctx, k)
		require.NoError(t, err)
		_, err = plain.Put(ctx, k, v)
		require.NoError(t, err)
	}
	// Still watching and healing: our own key deleted comes back.
	_, err := plain.Delete(ctx, key("users", "a"))
	require.NoError(t, err)
	until(t, 2*time.Second, func() bool { kv := get(t, plain, "users", "a"); return kv != nil && kv.Lease == int64(lease) }, "own key written back")
	until(t, time.Second, func() bool { return r.Status().Healthy }, "healthy")
	for _, ev := range pending(t, r) {
		assert.NotEqual(t, registry.EventError, ev.Kind, "foreign keys cause no errors: %v", ev)
	}
}

// pending returns the events r has published and nobody read yet: those
// that arrive without a pause of 100 ms (the stream hands them over from a
// goroutine of its own, so "queued" cannot be checked without waiting).
func pending(t *testing.T, r *registry.Registrar) []registry.Event {
	var evs []registry.Event
	ch := events(t, r)
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		case <-time.After(100 * time.Millisecond):
			return evs
		}
	}
}
