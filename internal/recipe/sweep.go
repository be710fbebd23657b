package recipe

import (
	"context"
	"sync"
	"time"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

// Sweeper takes back, in the background, the keys that failed acquisitions
// may have left when etcd could not be reached to take them back at once
// (Put's Abandon, Queue.Withdraw): a put etcd applied but whose answer was
// lost, in a partition that outlasts the 2 s given to the clean-up on the
// caller's account. Without it such a key stays until its session ends,
// ahead of everyone queued behind it.
//
// A lock or an election owns one and stops it in Close. A key is swept
// until etcd takes the delete, the key's session ends (its keys go with
// the lease) or the Sweeper is closed. Put waits for a pending sweep of its
// key, so a sweep never deletes the key of a later acquisition. A nil
// *Sweeper sweeps nothing.
type Sweeper struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // closed when the key's sweep ends
	closed  bool
	wg      sync.WaitGroup

	ctx    context.Context // ends when Close stops waiting
	cancel context.CancelFunc
}

// sweepBackoff spaces the attempts of a sweep.
var sweepBackoff = backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}

// NewSweeper returns a Sweeper with no sweep pending.
func NewSweeper() *Sweeper {
	w := &Sweeper{pending: make(map[string]chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// Wait returns once no sweep of key is pending, or with ctx's cause when
// ctx ends first.
func (w *Sweeper) Wait(ctx context.Context, key string) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	ch := w.pending[key]
	w.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// sweep runs del, which deletes key if it is still the failed
// acquisition's, until it succeeds, s ends or the Sweeper is closed. It
// reports whether it took the key on (not after Close); a sweep of key
// already pending does for this one.
func (w *Sweeper) sweep(s *session.Session, key string, del func(context.Context) error) bool {
	if w == nil || s.Err() != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.pending[key] != nil {
		return true
	}
	done := make(chan struct{})
	w.pending[key] = done
	w.wg.Go(func() {
		defer func() {
			w.mu.Lock()
			delete(w.pending, key)
			w.mu.Unlock()
			close(done)
		}()
		b := sweepBackoff
		for {
			ctx, cancel := context.WithTimeout(w.ctx, attemptTimeout)
			go func() { // an attempt ends with the session too
				select {
				case <-s.Done():
					cancel()
				case <-ctx.Done():
				}
			}()
			err := del(ctx)
			cancel()
			if err == nil || s.Err() != nil {
				return
			}
			t := time.NewTimer(b.Next())
			select {
			case <-t.C:
			case <-s.Done():
			case <-w.ctx.Done():
			}
			t.Stop()
			if s.Err() != nil || w.ctx.Err() != nil {
				return
			}
		}
	})
	return true
}

// Close lets the pending sweeps go on until ctx ends, then stops them, and
// returns once they have returned. Later sweeps are refused. It is
// idempotent.
func (w *Sweeper) Close(ctx context.Context) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	stop := context.AfterFunc(ctx, w.cancel)
	w.wg.Wait()
	stop()
	w.cancel()
}
