package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rosterkit/roster"
)

// WithLock acquires with acquire (a Mutex's Lock, an RWMutex's Lock or
// RLock, a Semaphore's Acquire), runs fn while holding, and releases. The
// context fn receives is cancelled, with the Hold's error as its cause, as
// soon as the Hold is lost, so fn can stop early.
//
// It returns acquire's error, or fn's joined with an error wrapping ErrLost
// if the Hold was lost before fn returned (fn's work may then have
// overlapped another holder's), and with Release's error if any.
//
//	err := lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
//		return migrate(ctx)
//	})
func WithLock(ctx context.Context, acquire func(context.Context) (*Hold, error), fn func(context.Context) error) error {
	if acquire == nil || fn == nil {
		return fmt.Errorf("lock: WithLock: %w: nil acquire or fn", roster.ErrInvalidOption)
	}
	ctx = orBackground(ctx)
	h, err := acquire(ctx)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-h.Done():
			cancel(h.Err())
		case <-fctx.Done():
		}
	})
	ferr := fn(fctx)
	cancel(nil)
	wg.Wait()
	lost := h.Err() // nil unless lost: Release has not run yet
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	return errors.Join(ferr, lost, h.Release(rctx))
}
