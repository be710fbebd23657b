package lock

import (
	"context"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/recipe"
)

// RWMutex is a distributed readers–writer lock: any number of readers
// together, or one writer alone. Everyone is served in first-come order, so
// writers are not starved: a reader waits for every writer that asked
// before it, and a writer for everyone that asked before it. Readers that
// arrive while a writer waits therefore queue behind that writer.
//
// An RWMutex is safe for concurrent use, and one session may hold several
// read locks at once: each acquisition has a key of its own.
type RWMutex struct {
	b      *base
	queue  recipe.Queue
	reader recipe.Rule
}

// NewRWMutex returns the RW lock name (a valid roster name) over cli. It
// grants no lease until the first acquisition.
func NewRWMutex(cli *clientv3.Client, name string, opts ...Option) (*RWMutex, error) {
	b, prefix, err := newBase(cli, "rwlock", name, opts, func(ns string) string { return rwlockPrefix(ns, name) })
	if err != nil {
		return nil, err
	}
	return &RWMutex{b: b, queue: recipe.Queue{Client: cli, Prefix: prefix, Sweeper: b.sweep}, reader: readerRule(prefix)}, nil
}

// RLock waits for a read lock. If ctx ends, the lock is closed or the
// session is lost first, it returns the error and leaves no key behind.
func (rw *RWMutex) RLock(ctx context.Context) (*Hold, error) { return rw.acquire(ctx, true, false) }

// TryRLock takes a read lock if no writer holds or waits for the lock, and
// returns ErrLocked otherwise, leaving no key behind.
func (rw *RWMutex) TryRLock(ctx context.Context) (*Hold, error) { return rw.acquire(ctx, true, true) }

// Lock waits for the write lock, like RLock.
func (rw *RWMutex) Lock(ctx context.Context) (*Hold, error) { return rw.acquire(ctx, false, false) }

// TryLock takes the write lock if nobody holds or waits for the lock, and
// returns ErrLocked otherwise, leaving no key behind.
func (rw *RWMutex) TryLock(ctx context.Context) (*Hold, error) { return rw.acquire(ctx, false, true) }

// Close releases the locks this RWMutex holds, ends acquisitions under way
// with ErrClosed and, unless the session is shared, revokes the lease. It
// waits at most about a TTL and is idempotent.
func (rw *RWMutex) Close() error { return rw.b.closeNow() }

// Shutdown is Close bounded by ctx as well as by the TTL.
func (rw *RWMutex) Shutdown(ctx context.Context) error { return rw.b.shutdown(ctx) }

func (rw *RWMutex) acquire(ctx context.Context, read, try bool) (*Hold, error) {
	return rw.b.acquire(ctx, try, func(ctx context.Context) (*Hold, error) {
		s, err := rw.b.session(ctx)
		if err != nil {
			return nil, err
		}
		tag, rule := writeTag, recipe.Exclusive()
		if read {
			tag, rule = readTag, rw.reader
		}
		// All keys are ahead of ours: count them, and the readers among them.
		e, rs, err := put(ctx, rw.queue, s, tag, "",
			clientv3.OpGet(rw.queue.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
			clientv3.OpGet(rw.queue.Prefix+readTag, clientv3.WithPrefix(), clientv3.WithCountOnly()))
		if err != nil {
			return nil, err
		}
		all, readers := count(rs[0]), count(rs[1])
		free := all == 1 || (read && all == readers)
		switch {
		case free:
		case try:
			return nil, withdraw(rw.queue, s, e, ErrLocked)
		default:
			if e.Header, err = rw.queue.Wait(ctx, s, e, rule); err != nil {
				return nil, err
			}
		}
		return newHold(rw.b, s, e.Key, e.Rev, e.Header+1, nil), nil
	})
}

// readerRule admits a reader when no writer is queued before it. It waits
// for the newest of those writers: when that one goes the rule is checked
// again, and finds any older writer still there.
func readerRule(prefix string) recipe.Rule {
	return recipe.Rule{Blockers: func(before []*mvccpb.KeyValue) []*mvccpb.KeyValue {
		for i := len(before) - 1; i >= 0; i-- {
			if !strings.HasPrefix(string(before[i].Key), prefix+readTag) {
				return before[i : i+1]
			}
		}
		return nil
	}}
}
