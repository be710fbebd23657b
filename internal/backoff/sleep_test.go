package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/backoff"
)

func TestSleepWaitsForTheDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		require.NoError(t, backoff.Sleep(t.Context(), 3*time.Second))
		assert.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestSleepReturnsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		err := backoff.Sleep(ctx, time.Hour)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestSleepReturnsOnDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		require.ErrorIs(t, backoff.Sleep(ctx, time.Hour), context.DeadlineExceeded)
	})
}

func TestSleepWithDoneContextReturnsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, d := range []time.Duration{-time.Second, 0, time.Hour} {
		assert.ErrorIs(t, backoff.Sleep(ctx, d), context.Canceled, "d=%v", d)
	}
}

func TestSleepNonPositiveDurationReturnsAtOnce(t *testing.T) {
	assert.NoError(t, backoff.Sleep(t.Context(), 0))
	assert.NoError(t, backoff.Sleep(t.Context(), -time.Second))
}
