package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Leadership is a won campaign. It lasts until Resign, or until it is lost:
// Done is closed then, and Err says why. Writes to etcd that must not land
// after a loss go through Txn or Do (see the package doc, Safety).
type Leadership struct {
	e     *Election
	s     *session.Session
	key   string
	token int64
	since time.Time
	mon   *recipe.Monitor
	fence recipe.Fence

	mu       sync.Mutex // serialises releases
	released bool
}

func newLeadership(e *Election, s *session.Session, en recipe.Entry, rev int64, began time.Time) *Leadership {
	l := &Leadership{e: e, s: s, key: en.Key, token: en.Rev, since: time.Now()}
	e.in.won(l, l.since.Sub(began)) // before the monitor, which may end it at once
	l.mon = recipe.NewMonitor(s, en.Key, en.Rev, rev+1, l.ended)
	l.fence = recipe.Fence{Client: e.cli, Key: en.Key, Rev: en.Rev, Done: l.mon.Done, Err: l.Err, ErrNotHeld: ErrNotLeader,
		Refused: func() { e.in.refused.Add(context.Background(), 1, e.in.name) }}
	return l
}

// ended records the end of the leadership, once.
func (l *Leadership) ended(cause error) {
	l.e.in.ended(l, l.explain(cause), errors.Is(cause, ErrResigned) || errors.Is(cause, ErrClosed))
}

// Done is closed when the leadership ends: resigned or lost.
func (l *Leadership) Done() <-chan struct{} { return l.mon.Done() }

// Err is nil while leading. Then it is ErrResigned, ErrClosed (the Election
// was closed), or, after a loss, an error wrapping ErrLost and the cause:
// ErrKeyDeleted, or the session's session.ErrExpired, ErrLeaseGone or
// ErrClosed.
func (l *Leadership) Err() error { return l.explain(l.mon.Err()) }

func (l *Leadership) explain(cause error) error {
	switch {
	case cause == nil, errors.Is(cause, ErrResigned), errors.Is(cause, ErrClosed):
		return cause
	}
	if serr := l.s.Err(); errors.Is(cause, ErrKeyDeleted) && serr != nil && !errors.Is(cause, serr) {
		return fmt.Errorf("%w: %s: %w: %w", ErrLost, l.key, cause, serr)
	}
	return fmt.Errorf("%w: %s: %w", ErrLost, l.key, cause)
}

// Key is the leader's key in etcd: the election prefix + the lease in hex.
func (l *Leadership) Key() string { return l.key }

// Token is the fencing token: the leader key's create revision. No later
// leadership of the election has a smaller one.
func (l *Leadership) Token() int64 { return l.token }

// Lease is the lease the leader key is attached to.
func (l *Leadership) Lease() clientv3.LeaseID { return l.s.Lease() }

// Guard is the comparison "this leadership still holds", for the If of
// one's own transactions.
func (l *Leadership) Guard() clientv3.Cmp { return l.fence.Cmp() }

// Txn returns a transaction that commits only while this leadership holds;
// Commit returns ErrNotLeader otherwise. The caller's If, Then and Else run
// nested inside that guard, so Succeeded keeps its usual meaning.
func (l *Leadership) Txn(ctx context.Context) clientv3.Txn { return l.fence.Txn(orBackground(ctx)) }

// Do commits ops only while this leadership holds, and returns ErrNotLeader
// otherwise.
func (l *Leadership) Do(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return l.fence.Do(orBackground(ctx), ops...)
}

// Proclaim sets the leader's value without a new election. It returns
// ErrNotLeader once the leadership has ended.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	_, err := l.fence.Do(orBackground(ctx), clientv3.OpPut(l.key, value, clientv3.WithLease(l.s.Lease())))
	if err != nil {
		return fmt.Errorf("election %s: proclaim: %w", l.e.name, err)
	}
	return nil
}

// Resign ends the leadership: Done is closed first, then the key is deleted
// (only if still this leadership's) and the next candidate leads. If the
// delete fails, Resign returns the error and may be called again; the key
// goes with the session otherwise.
func (l *Leadership) Resign(ctx context.Context) error {
	return l.release(orBackground(ctx), ErrResigned)
}

func (l *Leadership) release(ctx context.Context, cause error) error {
	l.mon.End(cause) // Done first: nobody else can lead before the delete
	defer l.mon.Stop(cause)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.released:
		return nil
	case l.s.Err() != nil:
		// The session ended: its lease, and the key with it, is revoked,
		// gone, or revoked as soon as etcd answers.
		l.released = true
		return nil
	case l.e.cli.Ctx().Err() != nil:
		return fmt.Errorf("election %s: resign: %w", l.e.name, recipe.ErrClientClosed)
	}
	if _, err := recipe.Delete(ctx, l.e.cli, l.key, l.token); err != nil {
		return fmt.Errorf("election %s: resign: %w", l.e.name, err)
	}
	l.released = true
	return nil
}

// orBackground makes a nil ctx harmless.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
