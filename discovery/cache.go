package discovery

import (
	"context"
	"fmt"
	"sync"

	"github.com/rosterkit/roster/internal/watch"
)

// Cache is a handle on the live view of one service, from
// Discoverer.Watch. Handles of one service on a Discoverer share one list
// and watch, released when the last handle is closed. All methods are safe
// for concurrent use; Snapshot never blocks.
type Cache struct {
	d      *Discoverer
	w      *watcher
	ctx    context.Context // ends with the handle: its Changes channels close
	cancel context.CancelFunc
	once   sync.Once
}

// Service is the name of the service the cache follows.
func (c *Cache) Service() string {
	if c == nil {
		return ""
	}
	return c.w.service
}

// Snapshot returns the current view, with one atomic load. Before the
// first sync it is empty and not Synced; after Close it stays the last.
func (c *Cache) Snapshot() *Snapshot {
	if c == nil {
		return nil
	}
	return c.w.snap.Load()
}

// WaitSynced waits until the cache has listed the service once. It
// returns early if ctx ends, with an error wrapping ctx's and, if the
// cache has one, Err's; and it returns ErrClosed once the cache, its
// Discoverer or its etcd client is closed.
func (c *Cache) WaitSynced(ctx context.Context) error {
	if c == nil {
		return ErrClosed
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return waitSynced(ctx, c.ctx, c.d.client.Ctx(), c.w.f, fmt.Sprintf("service %q", c.w.service))
}

// waitSynced is WaitSynced of a view followed by f, whose handle ends with
// handle, over a client that ends with client.
func waitSynced(ctx, handle, client context.Context, f *watch.Follower, what string) error {
	ended := func() error {
		if err := f.Err(); err != nil && isClosed(err) {
			return err
		}
		if client.Err() != nil {
			return fmt.Errorf("%w: %s", errClientClosed, what)
		}
		return fmt.Errorf("%w: %s", ErrClosed, what)
	}
	select {
	case <-handle.Done():
		return ended()
	case <-f.Done():
		return ended()
	case <-client.Done():
		return ended()
	default:
	}
	select {
	case <-f.Synced():
		return nil
	default:
	}
	select {
	case <-f.Synced():
		return nil
	case <-ctx.Done():
		if err := f.Err(); err != nil {
			return fmt.Errorf("discovery: %s not synced: %w (%w)", what, ctx.Err(), err)
		}
		return fmt.Errorf("discovery: %s not synced: %w", what, ctx.Err())
	case <-handle.Done():
		return ended()
	case <-f.Done():
		return ended()
	case <-client.Done():
		return ended()
	}
}

// Err says why the view may be out of date, nil while it is current: the
// last error listing or watching etcd, or an error wrapping ErrStale when
// etcd has not confirmed the view within its bound. The view is served
// either way; Snapshot().Age() says how old it is.
func (c *Cache) Err() error {
	if c == nil {
		return ErrClosed
	}
	return c.w.f.Err()
}

// Changes returns a channel of what changes in the view, starting with
// the whole view once the cache is synced (see Change). Each call has a
// channel of its own, and a slow reader gets merged changes, never a
// backlog nor a gap. The channel is closed when ctx ends or the cache, its
// Discoverer or its etcd client is closed.
func (c *Cache) Changes(ctx context.Context) <-chan Change {
	if c == nil || c.ctx.Err() != nil {
		ch := make(chan Change)
		close(ch)
		return ch
	}
	if ctx == nil {
		ctx = context.Background()
	}
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	context.AfterFunc(sctx, func() { stop() })
	c.w.pubMu.Lock()
	defer c.w.pubMu.Unlock()
	return c.w.changes.Subscribe(sctx, c.w.first)
}

// Stats are counters of a cache's work since it started, shared by all
// handles of the service.
type Stats struct {
	// Lists counts complete reads of the service: the first sync and every
	// re-list after a compaction, a broken or a silent watch.
	Lists uint64
	// Restarts counts failed attempts to list or watch, each followed by
	// a new list.
	Restarts uint64
	// Skipped counts keys or values under the service that were not valid
	// instances, each time they were read.
	Skipped uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return Stats{Lists: c.w.f.Lists(), Restarts: c.w.f.Restarts(), Skipped: c.w.skipped.Load()}
}

// Close releases the handle and closes its Changes channels; the watch
// stops with the last handle of the service, and Close waits for it.
// Snapshot keeps working. Close is idempotent and always returns nil.
func (c *Cache) Close() error {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		c.cancel()
		c.d.release(c.w)
	})
	return nil
}
