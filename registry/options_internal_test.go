package registry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/keys"
)

func TestOptionDefaultsAndBackoff(t *testing.T) {
	o, err := newOptions(nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultTTL, o.ttl)
	assert.Equal(t, keys.DefaultNamespace, o.ns)
	assert.Equal(t, DefaultRetryMin, o.backoff.Min)
	assert.Equal(t, DefaultRetryMax, o.backoff.Max)

	o, err = newOptions([]Option{WithBackoff(200*time.Millisecond, 50*time.Millisecond), WithTTL(3 * time.Second), WithNamespace("/apps/x")})
	require.NoError(t, err)
	assert.Equal(t, 200*time.Millisecond, o.backoff.Min)
	assert.Equal(t, 200*time.Millisecond, o.backoff.Max, "max raised to min")
	assert.Equal(t, 3*time.Second, o.ttl)
	assert.Equal(t, "/apps/x", o.ns)

	o, err = newOptions([]Option{WithBackoff(0, 5*time.Second)})
	require.NoError(t, err)
	assert.Equal(t, DefaultRetryMin, o.backoff.Min, "zero keeps the default")
	assert.Equal(t, 5*time.Second, o.backoff.Max)
	for range 20 {
		require.LessOrEqual(t, o.backoff.Next(), 5*time.Second)
	}
}
