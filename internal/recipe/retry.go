package recipe

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
)

// Retry runs attempt until it succeeds or fails with an error retry does not
// accept, backing off between attempts: how a campaign or a waiting
// acquisition outlives a connection that breaks under it. It stops with
// ErrClientClosed once cli is closed, and once ctx ends with the last
// attempt's error (wrapped in ctx's if ctx ended during a backoff).
func Retry[T any](ctx context.Context, cli *clientv3.Client, bo backoff.Backoff, retry func(error) bool,
	attempt func(context.Context) (T, error)) (T, error) {
	var zero T
	for {
		if cli.Ctx().Err() != nil {
			return zero, ErrClientClosed
		}
		v, err := attempt(ctx)
		if err == nil || ctx.Err() != nil || !retry(err) {
			return v, err
		}
		if serr := backoff.Sleep(ctx, bo.Next()); serr != nil {
			return zero, fmt.Errorf("%w (after %w)", serr, err)
		}
	}
}
