package discovery

import (
	"context"
	"sync"
)

// Cache is a handle on the live view of one service, obtained from
// Discoverer.Watch. Handles of the same service on one Discoverer share a
// single list-and-watch; the watch is released when the last handle is
// closed.
//
// Reads (Snapshot) are one atomic load and never block. All methods are
// safe for concurrent use.
type Cache struct {
	d      *Discoverer
	w      *watcher
	once   sync.Once
	closed chan struct{}
}

// Service is the name of the service the cache follows.
func (c *Cache) Service() string { return c.w.service }

// Snapshot returns the current view. It is never nil: before the first
// sync it is empty with Synced() false. After Close it keeps returning
// the last view.
func (c *Cache) Snapshot() *Snapshot { return c.w.snap.Load() }

// WaitSynced blocks until the cache has listed the service once, ctx is
// done, or the cache is closed (ErrClosed).
func (c *Cache) WaitSynced(ctx context.Context) error {
	select {
	case <-c.w.synced:
		return nil
	default:
	}
	select {
	case <-c.w.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	case <-c.w.done:
		if err := c.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
}

// Err returns why the view may be out of date: the last error listing or
// watching etcd, until the cache is current again; nil while it is
// current. The view is served either way: check Snapshot().Age() to decide
// whether it is too old for you.
func (c *Cache) Err() error {
	if b := c.w.err.Load(); b != nil {
		return b.err
	}
	return nil
}

// Stats are counters of a cache's work since it started, shared by all
// handles of the service.
type Stats struct {
	// Lists counts full reads of the service: the first sync and every
	// re-list after a compaction, a broken or silent watch.
	Lists uint64
	// Restarts counts failed attempts to list or watch: each is followed
	// by a new list (after a backoff, unless the watch was compacted).
	Restarts uint64
	// Skipped counts keys or values under the prefix that were not valid
	// instances, each time they were read.
	Skipped uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{Lists: c.w.lists.Load(), Restarts: c.w.restarts.Load(), Skipped: c.w.skipped.Load()}
}

// Subscribe returns a subscription to changes of the view. It ends when
// either it or the cache handle is closed.
func (c *Cache) Subscribe() *Subscription {
	s := &Subscription{c: c, notify: make(chan struct{}, 1), done: make(chan struct{})}
	c.w.addSub(s)
	s.wake() // the current view is the first thing to report
	return s
}

// Close releases the handle; the service's watch stops when no handle is
// left. It is idempotent and returns once the watch, if this was the last
// handle, has stopped. Snapshot keeps working after Close.
func (c *Cache) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.w.subMu.Lock()
		for sub := range c.w.subs {
			if sub.c == c {
				delete(c.w.subs, sub)
			}
		}
		c.w.subMu.Unlock()
		c.d.release(c.w)
	})
	return nil
}
