package backoff

import (
	"context"
	"sync"
	"time"
)

// Hedge runs attempt, and runs it again every b.Next() while no attempt has
// answered, without cancelling those still in flight (at most maxInFlight
// at once), until one returns a result done accepts or ctx ends. It returns
// that result, or the last one done refused along with it once ctx ends.
//
// Hedging suits idempotent requests to etcd: one sent to a member just
// before its leader died may wait for etcd's request timeout (7 s) though a
// new leader answers within a second, while a slow but live attempt still
// counts. Attempts still in flight when Hedge returns are cancelled and
// waited for; a later one that also succeeded is handed to surplus, if set,
// to be undone.
func Hedge[T any](ctx context.Context, b Backoff, maxInFlight int,
	attempt func(context.Context) (T, error), done func(T, error) bool, surplus func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	actx, cancel := context.WithCancel(ctx)
	results := make(chan result, max(maxInFlight, 1))
	var wg sync.WaitGroup
	inFlight := 0
	defer func() {
		cancel()
		go func() { wg.Wait(); close(results) }()
		for r := range results {
			if r.err == nil && surplus != nil {
				surplus(r.v)
			}
		}
	}()
	next := time.NewTimer(0)
	defer next.Stop()
	var last result
	tried := false
	for {
		select {
		case <-next.C:
			next.Reset(b.Next())
			if inFlight >= max(maxInFlight, 1) {
				continue
			}
			inFlight++
			wg.Go(func() {
				v, err := attempt(actx)
				results <- result{v, err} // buffered for every attempt in flight
			})
		case r := <-results:
			inFlight--
			if done(r.v, r.err) {
				return r.v, r.err
			}
			last, tried = r, true
		case <-ctx.Done():
			if !tried {
				var zero T
				return zero, ctx.Err()
			}
			return last.v, last.err
		}
	}
}
