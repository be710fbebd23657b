package registry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

// The zero rule: a zero option is its default.
func TestZeroOptionsAreDefaults(t *testing.T) {
	for name, opts := range map[string][]Option{
		"none":  nil,
		"zeros": {WithTTL(0), WithNamespace(""), WithBackoff(0, 0), WithLogger(nil), WithMeterProvider(nil), nil},
	} {
		o, err := newOptions(opts)
		require.NoError(t, err, name)
		assert.Equal(t, roster.DefaultTTL, o.ttl, name)
		assert.Equal(t, roster.DefaultNamespace, o.ns, name)
		assert.Equal(t, roster.DefaultBackoffMin, o.backoff.Min, name)
		assert.Equal(t, roster.DefaultBackoffMax, o.backoff.Max, name)
	}
	o, err := newOptions([]Option{WithBackoff(0, 5*time.Second), WithTTL(2500 * time.Millisecond)})
	require.NoError(t, err)
	assert.Equal(t, roster.DefaultBackoffMin, o.backoff.Min, "a zero min is the default")
	assert.Equal(t, 5*time.Second, o.backoff.Max)
	assert.Equal(t, 3*time.Second, o.ttl, "rounded up to whole seconds")
	o, err = newOptions([]Option{WithBackoff(5*time.Second, 0)})
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, o.backoff.Max, "a zero max is the default, raised to a larger min")
	for range 20 {
		require.LessOrEqual(t, o.backoff.Next(), 5*time.Second)
	}
}
