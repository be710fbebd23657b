package keys_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rosterkit/roster/internal/keys"
)

func TestInstanceID(t *testing.T) {
	prefix := keys.ServicePrefix(keys.DefaultNamespace, "users")
	for key, want := range map[string]string{
		"/roster/services/users/a":       "a",
		"/roster/services/users/pod-7.x": "pod-7.x",
		"/roster/services/users/":        "",
		"/roster/services/users/a/b":     "",
		"/roster/services/users/..":      "",
		"/roster/services/users-a/b":     "",
		"/roster/services/user":          "",
		"/other/services/users/a":        "",
	} {
		id, ok := keys.InstanceID(prefix, []byte(key))
		assert.Equal(t, want, id, key)
		assert.Equal(t, want != "", ok, key)
		svc, pid, pok := keys.ParseInstanceKey(keys.DefaultNamespace, key)
		assert.Equal(t, pok && svc == "users", ok, "agrees with ParseInstanceKey: %s", key)
		if ok {
			assert.Equal(t, pid, id)
		}
	}
}
