package recipe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe"
)

// Retry tries again what retry accepts, and stops on anything else, on ctx
// and on a closed client.
func TestRetry(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	bo := backoff.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	unavailable := status.Error(codes.Unavailable, "connection reset")
	failing := func(n *int, err error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			if *n++; *n < 3 {
				return 0, err
			}
			return *n, nil
		}
	}

	n := 0
	v, err := recipe.Retry(testCtx(t), cli, bo, recipe.Transient, failing(&n, unavailable))
	require.NoError(t, err)
	require.Equal(t, 3, v, "two transient failures, then success")

	n = 0
	other := errors.New("refused for good")
	_, err = recipe.Retry(testCtx(t), cli, bo, recipe.Transient, failing(&n, other))
	require.ErrorIs(t, err, other)
	require.Equal(t, 1, n, "an error retry rejects ends it at once")

	// ctx ends during the backoff (the retry predicate cancels it): the
	// error is ctx's, with the last attempt's kept.
	ctx, cancel := context.WithCancel(testCtx(t))
	cancelling := func(err error) bool { cancel(); return recipe.Transient(err) }
	_, err = recipe.Retry(ctx, cli, backoff.Backoff{Min: time.Hour, Max: time.Hour}, cancelling,
		func(context.Context) (int, error) { return 0, unavailable })
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "connection reset", "the last attempt's error is kept")

	closed := etcdtest.NewClient(t, m.Endpoints()...)
	require.NoError(t, closed.Close())
	n = 0
	_, err = recipe.Retry(testCtx(t), closed, bo, recipe.Transient, failing(&n, unavailable))
	require.ErrorIs(t, err, recipe.ErrClientClosed)
	require.Zero(t, n, "nothing is tried on a closed client")
}
