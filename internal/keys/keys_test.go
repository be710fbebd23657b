package keys_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidateNamespaceAccepts(t *testing.T) {
	for _, ns := range []string{keys.DefaultNamespace, "/a", "/team-a/roster", "/a/b/c", "/x.y_z~1", "/..."} {
		assert.NoError(t, keys.ValidateNamespace(ns), "%q", ns)
	}
}

func TestValidateNamespaceRejects(t *testing.T) {
	tests := []struct {
		name string
		ns   string
		want string
	}{
		{"empty", "", `roster: invalid name: namespace "": must start with '/'`},
		{"relative", "roster", "must start with '/'"},
		{"root only", "/", "must not end with '/'"},
		{"trailing slash", "/roster/", "must not end with '/'"},
		{"empty segment", "/a//b", "empty segment"},
		{"leading double slash", "//a", "empty segment"},
		{"dot", "/a/./b", `reserved segment "."`},
		{"dot dot", "/..", `reserved segment ".."`},
		{"space", "/a b", `segment "a b" contains byte 0x20`},
		{"control byte", "/a\x00", "contains byte 0x00"},
		{"non-ASCII", "/caf\u00e9", "contains byte 0xc3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := keys.ValidateNamespace(tt.ns)
			require.ErrorIs(t, err, roster.ErrInvalidName)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestServiceKeys(t *testing.T) {
	ns := keys.DefaultNamespace
	assert.Equal(t, "/roster/services/", keys.ServicesPrefix(ns))
	assert.Equal(t, "/roster/services/user/", keys.ServicePrefix(ns, "user"))
	assert.Equal(t, "/roster/services/user/pod-1", keys.InstanceKey(ns, "user", "pod-1"))
	assert.Equal(t, "/team/services/a/b", keys.InstanceKey("/team", "a", "b"))

	assert.True(t, strings.HasPrefix(keys.InstanceKey(ns, "user", "x"), keys.ServicesPrefix(ns)))
	assert.True(t, strings.HasPrefix(keys.InstanceKey(ns, "user", "x"), keys.ServicePrefix(ns, "user")))
}

func TestServicePrefixDoesNotMatchLongerServiceNames(t *testing.T) {
	ns := keys.DefaultNamespace
	admin := keys.InstanceKey(ns, "user-admin", "pod-1")
	assert.False(t, strings.HasPrefix(admin, keys.ServicePrefix(ns, "user")))
	assert.True(t, strings.HasPrefix(admin, keys.ServicePrefix(ns, "user-admin")))
}

func TestParseInstanceKey(t *testing.T) {
	ns := keys.DefaultNamespace
	tests := []struct {
		key     string
		service string
		id      string
		ok      bool
	}{
		{"/roster/services/user/pod-1", "user", "pod-1", true},
		{"/roster/services/user-admin/10.0.0.1:80", "user-admin", "10.0.0.1:80", true},
		{"/roster/services/user/", "", "", false},
		{"/roster/services/user", "", "", false},
		{"/roster/services//pod-1", "", "", false},
		{"/roster/services/user/pod/1", "", "", false},
		{"/roster/services/", "", "", false},
		{"/roster/services/user/..", "", "", false},
		{"/roster/services/user/a b", "", "", false},
		{"/roster/elections/user/pod-1", "", "", false},
		{"/other/services/user/pod-1", "", "", false},
		{"/rosterx/services/user/pod-1", "", "", false},
		{"roster/services/user/pod-1", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		service, id, ok := keys.ParseInstanceKey(ns, tt.key)
		assert.Equal(t, tt.ok, ok, "%q", tt.key)
		assert.Equal(t, tt.service, service, "%q", tt.key)
		assert.Equal(t, tt.id, id, "%q", tt.key)
	}
}

func TestElectionAndLockKeys(t *testing.T) {
	ns := keys.DefaultNamespace
	assert.Equal(t, "/roster/elections/leader", keys.ElectionPfx(ns, "leader"))
	assert.Equal(t, "/roster/elections/leader/", keys.ElectionPrefix(ns, "leader"))
	assert.Equal(t, "/roster/locks/jobs", keys.LockPfx(ns, "jobs"))
	assert.Equal(t, "/roster/locks/jobs/", keys.LockPrefix(ns, "jobs"))

	// etcd's concurrency package builds keys as pfx + "/" + %x of the lease.
	assert.Equal(t, keys.ElectionPfx(ns, "leader")+"/", keys.ElectionPrefix(ns, "leader"))
	assert.Equal(t, keys.LockPfx(ns, "jobs")+"/", keys.LockPrefix(ns, "jobs"))
	assert.Equal(t, "/roster/locks/jobs/694d7a1c2b3e4f10", keys.LeaseKey(keys.LockPrefix(ns, "jobs"), 0x694d7a1c2b3e4f10))
}

func TestLeaseKeyRoundTrip(t *testing.T) {
	prefix := keys.ElectionPrefix(keys.DefaultNamespace, "leader")
	for _, lease := range []int64{1, 0xabc, 0x694d7a1c2b3e4f10, 1<<63 - 1, 0, -1, -1 << 63} {
		got, ok := keys.ParseLeaseKey(prefix, keys.LeaseKey(prefix, lease))
		assert.True(t, ok, "%x", lease)
		assert.Equal(t, lease, got)
	}
}

func TestParseLeaseKeyRejects(t *testing.T) {
	prefix := "/roster/locks/jobs/"
	for _, key := range []string{
		"/roster/locks/jobs/",
		"/roster/locks/jobs",
		"/roster/locks/other/1a",
		"/roster/locks/jobs/1A",
		"/roster/locks/jobs/01a",
		"/roster/locks/jobs/+1a",
		"/roster/locks/jobs/0x1a",
		"/roster/locks/jobs/1a/b",
		"/roster/locks/jobs/1g",
		"/roster/locks/jobs/-0",
		"/roster/locks/jobs/8000000000000000",
		"/roster/locks/jobs/ 1a",
	} {
		_, ok := keys.ParseLeaseKey(prefix, key)
		assert.False(t, ok, "%q", key)
	}
}

func FuzzParseInstanceKey(f *testing.F) {
	f.Add("/roster/services/user/pod-1", "user", "pod-1")
	f.Add("/roster/services/user-admin/a/b", "user-admin", "10.0.0.1:80")
	f.Add("/roster/services//", "", "")
	f.Add("/roster/services/./..", ".", "..")
	f.Add("/roster/elections/x/1a", "a/b", "a b")
	f.Add("", "\xff", "\x00")
	f.Fuzz(func(t *testing.T, key, service, id string) {
		ns := keys.DefaultNamespace

		// Whatever parses must be exactly what InstanceKey builds.
		if s, i, ok := keys.ParseInstanceKey(ns, key); ok {
			require.NoError(t, roster.ValidateName("service", s))
			require.NoError(t, roster.ValidateName("instance ID", i))
			require.Equal(t, key, keys.InstanceKey(ns, s, i))
		}

		// Valid names round-trip, and only valid names parse.
		s, i, ok := keys.ParseInstanceKey(ns, keys.InstanceKey(ns, service, id))
		valid := roster.ValidateName("service", service) == nil && roster.ValidateName("instance ID", id) == nil
		require.Equal(t, valid, ok)
		if valid {
			require.Equal(t, service, s)
			require.Equal(t, id, i)
		}
	})
}

func FuzzParseLeaseKey(f *testing.F) {
	f.Add("/roster/locks/jobs/1a", int64(0x1a))
	f.Add("/roster/locks/jobs/-1", int64(-1))
	f.Add("/roster/locks/jobs/01", int64(0))
	f.Fuzz(func(t *testing.T, key string, lease int64) {
		prefix := "/roster/locks/jobs/"
		if got, ok := keys.ParseLeaseKey(prefix, key); ok {
			require.Equal(t, key, keys.LeaseKey(prefix, got))
		}
		got, ok := keys.ParseLeaseKey(prefix, keys.LeaseKey(prefix, lease))
		require.True(t, ok)
		require.Equal(t, lease, got)
	})
}
