package keys_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rosterkit/roster/internal/keys"
)

func TestDrainKeys(t *testing.T) {
	ns := keys.DefaultNamespace
	assert.Equal(t, "/roster/drain/", keys.DrainsPrefix(ns))
	assert.Equal(t, "/roster/drain/user/", keys.DrainPrefix(ns, "user"))
	assert.Equal(t, "/roster/drain/user/pod-1", keys.DrainKey(ns, "user", "pod-1"))
	assert.True(t, strings.HasPrefix(keys.DrainKey(ns, "user", "x"), keys.DrainPrefix(ns, "user")))
	assert.False(t, strings.HasPrefix(keys.DrainKey(ns, "user-admin", "x"), keys.DrainPrefix(ns, "user")))
	assert.False(t, strings.HasPrefix(keys.DrainKey(ns, "user", "x"), keys.ServicesPrefix(ns)), "not an instance key")

	service, id, ok := keys.ParseDrainKey(ns, "/roster/drain/user/pod-1")
	assert.True(t, ok)
	assert.Equal(t, "user", service)
	assert.Equal(t, "pod-1", id)
	for _, bad := range []string{
		"/roster/drain/user", "/roster/drain/user/", "/roster/drain//x", "/roster/drain/user/a/b",
		"/other/drain/user/a", "/roster/services/user/a", "/roster/drain/us er/a", "/roster/drain/user/..",
	} {
		_, _, ok := keys.ParseDrainKey(ns, bad)
		assert.False(t, ok, "%q", bad)
	}
}
