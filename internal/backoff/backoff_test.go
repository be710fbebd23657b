package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster/internal/backoff"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNextGrowsToMaxWithoutJitter(t *testing.T) {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: -1}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		assert.Equal(t, w*time.Millisecond, b.Next(), "attempt %d", i)
	}
}

func TestNextUsesFactor(t *testing.T) {
	b := backoff.Backoff{Min: time.Second, Max: time.Minute, Factor: 3, Jitter: -1}
	assert.Equal(t, time.Second, b.Next())
	assert.Equal(t, 3*time.Second, b.Next())
	assert.Equal(t, 9*time.Second, b.Next())

	constant := backoff.Backoff{Min: time.Second, Max: time.Minute, Factor: 1, Jitter: -1}
	for range 5 {
		assert.Equal(t, time.Second, constant.Next())
	}
}

func TestNextStaysWithinJitterBounds(t *testing.T) {
	b := backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5}
	base := 100 * time.Millisecond
	var sawJitter bool
	for range 1000 {
		d := b.Next()
		require.LessOrEqual(t, d, base)
		require.Greater(t, d, base/2)
		require.LessOrEqual(t, d, 2*time.Second, "Max is a hard ceiling")
		sawJitter = sawJitter || d != base
		base = min(2*base, 2*time.Second)
	}
	assert.True(t, sawJitter, "jitter must vary the delays")
}

func TestZeroValueUsesDefaults(t *testing.T) {
	var b backoff.Backoff
	first := b.Next()
	assert.LessOrEqual(t, first, backoff.DefaultMin)
	assert.Greater(t, first, time.Duration(float64(backoff.DefaultMin)*(1-backoff.DefaultJitter)))
	for range 100 {
		d := b.Next()
		require.LessOrEqual(t, d, backoff.DefaultMax)
		require.Greater(t, d, time.Duration(0))
	}
	// Saturated: within the default jitter below DefaultMax.
	assert.Greater(t, b.Next(), time.Duration(float64(backoff.DefaultMax)*(1-backoff.DefaultJitter)))
}

func TestMaxBelowMinIsRaisedToMin(t *testing.T) {
	b := backoff.Backoff{Min: time.Second, Max: time.Millisecond, Jitter: -1}
	for range 3 {
		assert.Equal(t, time.Second, b.Next())
	}
}

func TestNextDoesNotOverflow(t *testing.T) {
	b := backoff.Backoff{Min: time.Hour, Max: math.MaxInt64, Factor: 1e9, Jitter: -1}
	b.Next()
	for range 10 {
		d := b.Next()
		require.Positive(t, d)
		require.Equal(t, time.Duration(math.MaxInt64), d)
	}
}

func TestJitterAboveOneIsCapped(t *testing.T) {
	b := backoff.Backoff{Min: time.Second, Max: time.Second, Jitter: 5}
	for range 1000 {
		d := b.Next()
		require.Positive(t, d)
		require.LessOrEqual(t, d, time.Second)
	}
}

func TestResetStartsOver(t *testing.T) {
	b := backoff.Backoff{Min: 10 * time.Millisecond, Max: time.Second, Jitter: -1}
	for range 5 {
		b.Next()
	}
	require.Equal(t, 320*time.Millisecond, b.Next())
	b.Reset()
	assert.Equal(t, 10*time.Millisecond, b.Next())
	assert.Equal(t, 20*time.Millisecond, b.Next())
}
