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
// from the moment it was granted until Release, or until it is lost.
//
// A holder must stop acting under the lock once Done is closed. Acting
// only while Done is open is not enough on its own, though: a process can
// pause between checking Done and writing, and the lock may pass to
// someone else meanwhile. Writes to etcd that must not happen after the
// lock is lost belong in Txn, which etcd applies only while this Hold's key
// still exists with its create revision. Writes elsewhere should carry
// Token and be refused by the resource when an older token than the last
// one it saw arrives.
type Hold struct {
	b       *base
	key     string
	token   int64
	mon     *recipe.Monitor
	fence   recipe.Fence
	unclaim func() // gives up the local claim on a mutex key; nil otherwise

	s          *session.Session
	releasing  atomic.Bool
	finishOnce sync.Once
}

func newHold(b *base, s *session.Session, key string, token, from int64, unclaim func()) *Hold {
	h := &Hold{b: b, s: s, key: key, token: token, unclaim: unclaim}
	h.mon = recipe.NewMonitor(s, key, token, from)
	h.fence = recipe.Fence{Client: b.cli, Key: key, Rev: token, Lost: h.mon.Done(), ErrNotHeld: ErrNotHeld}
	return h
}

// Key is the etcd key that holds the lock.
func (h *Hold) Key() string { return h.key }

// Token is the fencing token: the create revision of the Hold's key. No
// later Hold of the same lock has a smaller token (one on another lease has
// a greater one; one that finds its own key left in place keeps it), so a
// resource that remembers the greatest token it has seen can refuse a
// holder that lost the lock without knowing it.
func (h *Hold) Token() int64 { return h.token }

// Done is closed when the Hold ends: released, or lost because its
// session ended (the lease expired, was revoked, or could not be renewed
// before the local deadline) or its key was deleted. Err says which.
//
// Under a partition, Done closes at the session's local deadline (the send
// time of the last acknowledged keep-alive + TTL − margin), before etcd can
// expire the lease and let anyone else in.
func (h *Hold) Done() <-chan struct{} { return h.mon.Done() }

// Err is nil while the Hold lasts. Then it is ErrReleased after Release,
// ErrClosed if the lock was closed, or an error wrapping ErrLost and the
// cause: session.ErrExpired, session.ErrLeaseGone or session.ErrClosed if
// the session ended, ErrKeyDeleted if the key went first (and, once known,
// the session's error too: a revoked lease deletes the key before the
// session hears of it).
func (h *Hold) Err() error {
	cause := h.mon.Err()
	switch {
	case cause == nil:
		return nil
	case errors.Is(cause, ErrReleased), errors.Is(cause, ErrClosed):
		return cause
	}
	if serr := h.s.Err(); errors.Is(cause, ErrKeyDeleted) && serr != nil {
		return fmt.Errorf("%w: %s: %w: %w", ErrLost, h.key, cause, serr)
	}
	return fmt.Errorf("%w: %s: %w", ErrLost, h.key, cause)
}

// Guard is the comparison "this Hold's key still exists with its create
// revision", for transactions of one's own (etcd's Mutex.IsOwner). Txn is
// usually simpler.
func (h *Hold) Guard() clientv3.Cmp { return h.fence.Cmp() }

// Txn returns a transaction that etcd commits only while the lock is still
// held. Its Commit returns ErrNotHeld if the Hold's key is gone or replaced
// (nothing was applied), or if Done is closed already (nothing was sent);
// otherwise the outcome of the caller's own If, Then and Else, which run
// nested inside the guard, so Succeeded keeps its usual meaning.
//
//	_, err := h.Txn(ctx).Then(clientv3.OpPut("config", v)).Commit()
//	if errors.Is(err, lock.ErrNotHeld) { ... } // lost: the write did not happen
func (h *Hold) Txn(ctx context.Context) clientv3.Txn { return h.fence.Txn(ctx) }

// Release ends the Hold, closing Done, and deletes its key, guarded by the
// key's create revision so that a late or repeated Release never removes
// someone else's. A Hold already lost, or released, is not an error.
//
// If the delete fails (etcd unreachable, ctx done) the error is returned;
// the key, and with it the lock, then stays taken until Release is called
// again or the session ends (closing the lock ends its own session, but not
// one shared through WithSessionManager). The Hold is over either way: the
// caller must not act under it any more.
func (h *Hold) Release(ctx context.Context) error { return h.release(ctx, ErrReleased) }

func (h *Hold) release(ctx context.Context, cause error) error {
	h.releasing.Store(true)
	// Done closes before the delete is sent, so nobody acts under the Hold
	// once another may have it; the monitor's goroutines are waited for
	// after the delete, off the hand-over's path.
	h.mon.End(cause)
	defer h.finish()
	defer h.mon.Stop(cause)
	if err := h.b.cli.Ctx().Err(); err != nil {
		// A closed client would retry until ctx ends; the key goes with
		// the lease.
		return fmt.Errorf("lock: release %s: client closed: %w", h.key, err)
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
