package backoff_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/backoff"
)

var errAgain = errors.New("again")

func ok(_ int, err error) bool { return err == nil }

// A stuck attempt does not hold up the next: the first answer wins, and
// the attempts still in flight are cancelled and waited for.
func TestHedgeSendsAgainWhileUnanswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls, cancelled atomic.Int32
		start := time.Now()
		v, err := backoff.Hedge(t.Context(), backoff.Backoff{Min: 100 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: -1}, 8,
			func(ctx context.Context) (int, error) {
				n := calls.Add(1)
				if n <= 2 { // stuck until cancelled
					<-ctx.Done()
					cancelled.Add(1)
					return 0, ctx.Err()
				}
				return int(n), nil
			}, ok, nil)
		require.NoError(t, err)
		require.Equal(t, 3, v)
		require.Equal(t, 200*time.Millisecond, time.Since(start), "the third attempt, two intervals in")
		require.Equal(t, int32(2), cancelled.Load(), "stuck attempts cancelled before Hedge returned")
	})
}

func TestHedgeGivesUpWithCtxAndLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := backoff.Hedge(ctx, backoff.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, 4,
			func(context.Context) (int, error) { return 0, errAgain }, ok, nil)
		require.ErrorIs(t, err, errAgain, "the last refused answer")
		require.Error(t, ctx.Err())

		_, err = backoff.Hedge(ctx, backoff.Backoff{}, 4, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, ok, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded, "no answer at all: ctx's error")
	})
}

// A second success that lands as Hedge returns is handed to surplus.
func TestHedgeHandsSurplusSuccesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var surplus []int
		var calls atomic.Int32
		v, err := backoff.Hedge(t.Context(), backoff.Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond, Jitter: -1}, 2,
			func(ctx context.Context) (int, error) {
				n := int(calls.Add(1))
				if n == 1 {
					<-release // answers only after the second won
					return n, nil
				}
				close(release)
				return n, nil
			}, ok, func(v int) { surplus = append(surplus, v) })
		require.NoError(t, err)
		require.Equal(t, []int{3 - v}, surplus, "the success that did not win")
	})
}

func TestHedgeRespectsMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, most atomic.Int32
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, _ = backoff.Hedge(ctx, backoff.Backoff{Min: time.Millisecond, Max: time.Millisecond}, 3,
			func(ctx context.Context) (int, error) {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-ctx.Done()
				inFlight.Add(-1)
				return 0, ctx.Err()
			}, ok, nil)
		require.Equal(t, int32(3), most.Load())
	})
}
