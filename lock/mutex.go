package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// Mutex is a distributed mutual-exclusion lock in etcd's own lock layout,
// so etcd's concurrency.Mutex and etcdctl lock contend with it correctly.
// It is safe for concurrent use: its goroutines take turns, as sync.Mutex
// users do.
type Mutex struct {
	b     *base
	queue recipe.Queue
	turn  chan struct{} // one acquisition or Hold at a time: one lease, one key

	mu  sync.Mutex
	cur *Hold // the Hold of the last Lock, for Unlock
}

// NewMutex returns the mutex name (a valid roster name) over cli. It
// grants no lease until the first Lock.
func NewMutex(cli *clientv3.Client, name string, opts ...Option) (*Mutex, error) {
	b, prefix, err := newBase(cli, "lock", name, opts, func(ns string) string { return keys.LockPrefix(ns, name) })
	if err != nil {
		return nil, err
	}
	return &Mutex{b: b, queue: recipe.Queue{Client: cli, Prefix: prefix, Sweeper: b.sweep}, turn: make(chan struct{}, 1)}, nil
}

// Prefix is the mutex's key prefix, with its trailing slash. Without it,
// it is the pfx that concurrency.NewMutex and etcdctl lock take.
func (m *Mutex) Prefix() string { return m.queue.Prefix }

// Lock waits until the mutex is held, in first-come order. If ctx ends, the
// lock is closed or the session is lost first, it returns the error and
// takes its key back out of the queue.
func (m *Mutex) Lock(ctx context.Context) (*Hold, error) { return m.lock(ctx, false) }

// TryLock takes the mutex if nobody holds it or waits for it, in one
// transaction, and returns ErrLocked otherwise, leaving no key behind.
func (m *Mutex) TryLock(ctx context.Context) (*Hold, error) { return m.lock(ctx, true) }

// Unlock releases the Hold of the last Lock or TryLock, like Hold.Release,
// for code written against etcd's Mutex. It returns ErrNotHeld if there is
// no such Hold or it was released already.
func (m *Mutex) Unlock(ctx context.Context) error {
	m.mu.Lock()
	h := m.cur
	m.cur = nil
	m.mu.Unlock()
	if h == nil || errors.Is(h.Err(), ErrReleased) {
		return fmt.Errorf("%w: %s: unlock without lock", ErrNotHeld, m.b.name)
	}
	return h.Release(ctx)
}

// Close releases the mutex if held, ends Lock calls under way with
// ErrClosed and, unless the session is shared, revokes the lease. It waits
// at most about a TTL and is idempotent.
func (m *Mutex) Close() error { return m.b.closeNow() }

// Shutdown is Close bounded by ctx as well as by the TTL.
func (m *Mutex) Shutdown(ctx context.Context) error { return m.b.shutdown(ctx) }

func (m *Mutex) lock(ctx context.Context, try bool) (*Hold, error) {
	h, err := m.b.acquire(ctx, try, func(ctx context.Context) (*Hold, error) { return m.acquire(ctx, try) })
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.cur = h
	m.mu.Unlock()
	return h, nil
}

func (m *Mutex) acquire(ctx context.Context, try bool) (*Hold, error) {
	unclaim, err := m.claim(ctx, try)
	if err != nil {
		return nil, err
	}
	s, err := m.b.session(ctx)
	if err != nil {
		unclaim()
		return nil, err
	}
	key := keys.LeaseKey(m.queue.Prefix, int64(s.Lease()))
	var e recipe.Entry
	if try {
		e, err = m.tryPut(ctx, s, key)
	} else {
		e, err = m.wait(ctx, s)
	}
	if err != nil {
		unclaim()
		return nil, err
	}
	return newHold(m.b, s, e.Key, e.Rev, e.Header+1, unclaim), nil
}

// claim waits for the Mutex's turn, and returns the function that gives it
// up. The lease has one key for the mutex (etcd #11360), so its goroutines
// must not use it at once: a local turn comes before the key.
func (m *Mutex) claim(ctx context.Context, try bool) (func(), error) {
	if try {
		select {
		case m.turn <- struct{}{}:
		default:
			return nil, ErrLocked
		}
	} else {
		select {
		case m.turn <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return sync.OnceFunc(func() { <-m.turn }), nil
}

// wait queues for the mutex and waits for its turn. The Entry it returns
// carries in Header the revision at which the turn was seen.
func (m *Mutex) wait(ctx context.Context, s *session.Session) (recipe.Entry, error) {
	e, first, err := m.enqueue(ctx, s)
	if err != nil || first {
		return e, err
	}
	rev, err := m.queue.Wait(ctx, s, e, recipe.Exclusive())
	if err != nil {
		return recipe.Entry{}, err
	}
	e.Header = rev
	return e, nil
}

// enqueue puts the key, as recipe.Queue.Enqueue does, and reads in the same
// transaction the oldest key of the queue, as etcd's Mutex does: when that
// is ours the lock is held at once, and an uncontended Lock costs one round
// trip. A key of our own lease found in place was left by a Release that
// failed (nobody else in this process uses it: it is claimed), so its place
// and token are stale: it is removed and the key put anew.
func (m *Mutex) enqueue(ctx context.Context, s *session.Session) (e recipe.Entry, first bool, err error) {
	key := keys.LeaseKey(m.queue.Prefix, int64(s.Lease()))
	oldest := clientv3.OpGet(m.queue.Prefix, clientv3.WithFirstCreate()...)
	for range 2 {
		resp, err := recipe.Put(ctx, s, m.b.cli, key, m.queue.Sweeper, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return m.b.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, "", clientv3.WithLease(s.Lease())), oldest).
				Else(clientv3.OpGet(key)).
				Commit()
		})
		if err != nil {
			return recipe.Entry{}, false, fmt.Errorf("enqueue %s: %w", key, err)
		}
		rev := resp.Header.Revision
		if resp.Succeeded {
			head := resp.Responses[1].GetResponseRange().GetKvs()
			first := len(head) > 0 && head[0].CreateRevision == rev
			return recipe.Entry{Key: key, Rev: rev, Header: rev}, first, nil
		}
		own := resp.Responses[0].GetResponseRange().GetKvs()
		if len(own) > 0 && own[0].Lease != int64(s.Lease()) {
			return recipe.Entry{}, false, fmt.Errorf("enqueue %s: %w (lease %x)", key, recipe.ErrForeignKey, own[0].Lease)
		}
		if len(own) > 0 {
			if _, err := recipe.Delete(ctx, m.b.cli, key, own[0].CreateRevision); err != nil {
				return recipe.Entry{}, false, err
			}
		}
	}
	return recipe.Entry{}, false, fmt.Errorf("enqueue %s: key keeps reappearing", key)
}

// tryPut puts the key only if no key at all is under the prefix: then it
// is the oldest, and holds. Otherwise nothing is written. A key of our own
// lease left by a failed Release is removed and the attempt made again.
func (m *Mutex) tryPut(ctx context.Context, s *session.Session, key string) (recipe.Entry, error) {
	for range 2 {
		resp, err := recipe.Put(ctx, s, m.b.cli, key, m.queue.Sweeper, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return m.b.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(m.queue.Prefix), "=", 0).WithPrefix()).
				Then(clientv3.OpPut(key, "", clientv3.WithLease(s.Lease()))).
				Else(clientv3.OpGet(key)).
				Commit()
		})
		if err != nil {
			return recipe.Entry{}, err
		}
		if resp.Succeeded {
			rev := resp.Header.Revision
			return recipe.Entry{Key: key, Rev: rev, Header: rev}, nil
		}
		own := resp.Responses[0].GetResponseRange().GetKvs()
		if len(own) == 0 || own[0].Lease != int64(s.Lease()) {
			break
		}
		if _, err := recipe.Delete(ctx, m.b.cli, key, own[0].CreateRevision); err != nil {
			return recipe.Entry{}, err
		}
	}
	return recipe.Entry{}, ErrLocked
}
