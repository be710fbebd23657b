package election

import (
	"context"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Leadership is a won campaign. It lasts until Resign, or until it is lost:
// Done is closed then, and Err says why.
//
// A lease that stops being renewed is signalled before etcd can let
// another candidate lead: Done is closed when the session's local deadline
// passes (the send time of the last acknowledged keep-alive + TTL −
// margin, never later than the server's expiry). Done is also closed when
// etcd says the lease is gone or the key is deleted; those are learnt from
// etcd, so another candidate may already lead by then.
//
// What Done cannot cover is that last case, and a leader that is paused
// (GC, a stopped VM, a swapped-out process) between checking Done and
// acting: its action may land after someone else took over. For writes to
// etcd, close that gap with the fencing guard: Txn, Do or IsLeader make the
// write conditional, in etcd itself, on this leadership still holding. For
// other systems, pass Rev along as a fencing token that they check never
// goes backwards.
type Leadership struct {
	e     *Election
	s     *session.Session
	key   string
	rev   int64
	mon   *recipe.Monitor
	fence recipe.Fence

	mu       sync.Mutex // serialises releases
	released bool
}

func newLeadership(e *Election, s *session.Session, en recipe.Entry, rev int64) *Leadership {
	mon := recipe.NewMonitor(s, en.Key, en.Rev, rev+1)
	return &Leadership{
		e: e, s: s, key: en.Key, rev: en.Rev, mon: mon,
		fence: recipe.Fence{Client: e.cli, Key: en.Key, Rev: en.Rev, Lost: mon.Done(), ErrNotHeld: ErrNotLeader},
	}
}

// Done is closed when the leadership ends: resigned or lost.
func (l *Leadership) Done() <-chan struct{} { return l.mon.Done() }

// Err is nil while leading, then why it ended: ErrResigned, ErrClosed,
// ErrKeyDeleted, or the session's session.ErrExpired, ErrLeaseGone or
// ErrClosed.
func (l *Leadership) Err() error { return l.mon.Err() }

// Key is the leader's key in etcd: the election prefix + the lease in hex.
func (l *Leadership) Key() string { return l.key }

// Rev is the leader key's create revision: the fencing token. No later
// leadership of the same election has a smaller one: another candidate's is
// greater, and a campaign on the same lease that finds its key left in place
// (a resign that failed) keeps the same token.
func (l *Leadership) Rev() int64 { return l.rev }

// Lease is the lease the leader key is attached to.
func (l *Leadership) Lease() clientv3.LeaseID { return l.s.Lease() }

// IsLeader is the comparison "this leadership still holds", to put in the
// If of one's own transactions.
func (l *Leadership) IsLeader() clientv3.Cmp { return l.fence.Cmp() }

// Txn returns a transaction that commits only while this leadership holds:
// Commit returns ErrNotLeader otherwise. The caller's If, Then and Else run
// nested inside that guard, so Succeeded keeps its usual meaning.
func (l *Leadership) Txn(ctx context.Context) clientv3.Txn { return l.fence.Txn(ctx) }

// Do commits ops only while this leadership holds, and returns ErrNotLeader
// otherwise.
func (l *Leadership) Do(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return l.fence.Do(ctx, ops...)
}

// Proclaim sets the leader's value without a new election. It returns
// ErrNotLeader if the leadership has ended.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	_, err := l.fence.Do(ctx, clientv3.OpPut(l.key, value, clientv3.WithLease(l.s.Lease())))
	return err
}

// Resign gives up leadership: Done is closed first, then the key is deleted
// (only if it is still this leadership's), and the next candidate leads.
// If the delete fails, Resign returns the error and may be called again;
// until then the key blocks others until the session ends. Resigning a
// lost leadership still deletes its key if it outlived the loss.
func (l *Leadership) Resign(ctx context.Context) error { return l.release(ctx, ErrResigned) }

func (l *Leadership) release(ctx context.Context, cause error) error {
	l.mon.End(cause) // Done first: nobody else can lead before the delete
	defer l.mon.Stop(cause)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	if err := l.e.cli.Ctx().Err(); err != nil {
		// A closed client would only retry until ctx expires.
		return fmt.Errorf("election %s: resign: client closed: %w", l.e.name, err)
	}
	if _, err := recipe.Delete(ctx, l.e.cli, l.key, l.rev); err != nil {
		return fmt.Errorf("election %s: resign: %w", l.e.name, err)
	}
	l.released = true
	return nil
}
