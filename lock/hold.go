package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Hold is one acquisition of a Mutex, an RWMutex or a Semaphore permit,
// from the moment it was granted until Release, or until it is lost: Done
// is closed then, and Err says why. Writes to etcd that must not land after
// a loss go through Txn or Do; writes elsewhere carry Token (see the
// package doc, Fencing).
type Hold struct {
	b       *base
	key     string
	token   int64
	mon     *recipe.Monitor
	fence   recipe.Fence
	unclaim func() // gives up the Mutex's turn; nil otherwise

	s          *session.Session
	releasing  atomic.Bool
	finishOnce sync.Once
}

func newHold(b *base, s *session.Session, key string, token, from int64, unclaim func()) *Hold {
	h := &Hold{b: b, s: s, key: key, token: token, unclaim: unclaim}
	h.mon = recipe.NewMonitor(s, key, token, from, h.ended)
	h.fence = recipe.Fence{Client: b.cli, Key: key, Rev: token, Done: h.mon.Done, Err: h.Err, ErrNotHeld: ErrNotHeld,
		Refused: func() { b.in.refused.Add(context.Background(), 1, b.in.attrs) }}
	return h
}

// ended records a loss, once.
func (h *Hold) ended(cause error) {
	if !voluntary(cause) {
		h.b.in.lost(h.key, h.explain(cause))
	}
}

func voluntary(cause error) bool { return errors.Is(cause, ErrReleased) || errors.Is(cause, ErrClosed) }

// Key is the etcd key that holds the lock.
func (h *Hold) Key() string { return h.key }

// Token is the fencing token: the create revision of the Hold's key. No
// later Hold of the same lock has a smaller one.
func (h *Hold) Token() int64 { return h.token }

// Lease is the lease the Hold's key is attached to.
func (h *Hold) Lease() clientv3.LeaseID { return h.s.Lease() }

// Done is closed when the Hold ends: released, closed, or lost.
func (h *Hold) Done() <-chan struct{} { return h.mon.Done() }

// Err is nil while the Hold lasts. Then it is ErrReleased, ErrClosed, or,
// after a loss, an error wrapping ErrLost and the cause: ErrKeyDeleted, or
// the session's session.ErrExpired, ErrLeaseGone or ErrClosed.
func (h *Hold) Err() error { return h.explain(h.mon.Err()) }

func (h *Hold) explain(cause error) error {
	if cause == nil || voluntary(cause) {
		return cause
	}
	if serr := h.s.Err(); errors.Is(cause, ErrKeyDeleted) && serr != nil && !errors.Is(cause, serr) {
		return fmt.Errorf("%w: %s: %w: %w", ErrLost, h.key, cause, serr)
	}
	return fmt.Errorf("%w: %s: %w", ErrLost, h.key, cause)
}

// Guard is the comparison "this Hold's key still exists with its create
// revision", for the If of one's own transactions.
func (h *Hold) Guard() clientv3.Cmp { return h.fence.Cmp() }

// Txn returns a transaction that etcd commits only while the lock is still
// held; Commit returns ErrNotHeld otherwise. The caller's If, Then and Else
// run nested inside that guard, so Succeeded keeps its usual meaning.
func (h *Hold) Txn(ctx context.Context) clientv3.Txn { return h.fence.Txn(orBackground(ctx)) }

// Do commits ops only while the lock is still held, and returns ErrNotHeld
// otherwise.
func (h *Hold) Do(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return h.fence.Do(orBackground(ctx), ops...)
}

// Release ends the Hold, closing Done, and deletes its key if it is still
// this Hold's. A Hold already ended is not an error. If the delete fails,
// the error is returned and the key stays until Release is called again or
// the session ends; the Hold is over either way.
func (h *Hold) Release(ctx context.Context) error { return h.release(orBackground(ctx), ErrReleased) }

func (h *Hold) release(ctx context.Context, cause error) error {
	h.releasing.Store(true)
	// Done closes before the delete is sent, so nobody acts under the Hold
	// once another may have it; the monitor's goroutines are waited for
	// after the delete, off the hand-over's path.
	h.mon.End(cause)
	defer h.finish()
	defer h.mon.Stop(cause)
	switch {
	case h.s.Err() != nil:
		// The session ended: its lease, and the key with it, is revoked,
		// gone, or revoked as soon as etcd answers.
		return nil
	case h.b.cli.Ctx().Err() != nil:
		return fmt.Errorf("lock: release %s: %w", h.key, recipe.ErrClientClosed)
	}
	if _, err := recipe.Delete(ctx, h.b.cli, h.key, h.token); err != nil {
		return fmt.Errorf("lock: release: %w", err)
	}
	return nil
}

// finish gives up what the Hold kept in this process once its key is gone,
// or known to be going with its session.
func (h *Hold) finish() {
	h.finishOnce.Do(func() {
		if h.unclaim != nil {
			h.unclaim()
		}
		h.b.untrack(h)
	})
}
