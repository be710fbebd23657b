package discovery

import (
	"context"
	"sync"

	"github.com/rosterkit/roster"
)

// Change describes how a cache's view changed since the subscriber last
// looked. Changes are coalesced: a subscriber that falls behind gets one
// Change from the view it last saw to the latest one, never a backlog, so
// the watch loop never waits for subscribers.
type Change struct {
	// Snapshot is the view the change leads to.
	Snapshot *Snapshot
	// Added are instances that were not in the previous view.
	Added []roster.Instance
	// Removed are instances of the previous view that are gone.
	Removed []roster.Instance
	// Updated are instances whose value changed, as they are now.
	Updated []roster.Instance
}

// Subscription delivers changes of one cache. Next and Ready are meant for
// one consuming goroutine; Close may be called from any.
type Subscription struct {
	c      *Cache
	notify chan struct{} // capacity 1: a pending wake-up, coalesced
	last   []roster.Instance
	seen   bool // whether a view was reported yet

	closeOnce sync.Once
	done      chan struct{}
}

// wake marks that the view changed, without ever blocking.
func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives a value when Next has something
// to report, for use in select loops. Call Next after each receive.
func (s *Subscription) Ready() <-chan struct{} { return s.notify }

// Next waits until the view differs from the one last returned and
// returns the difference. The first call returns the whole view (as
// Added) once the cache is synced. It returns ctx's error when ctx ends
// first, and ErrClosed after the subscription or its cache is closed.
func (s *Subscription) Next(ctx context.Context) (Change, error) {
	for {
		select {
		case <-s.done:
			return Change{}, ErrClosed
		case <-s.c.closed:
			return Change{}, ErrClosed
		case <-s.c.w.done:
			return Change{}, ErrClosed
		default:
		}
		if ch, ok := s.poll(); ok {
			return ch, nil
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		case <-s.done:
			return Change{}, ErrClosed
		case <-s.c.closed:
			return Change{}, ErrClosed
		case <-s.c.w.done:
			return Change{}, ErrClosed
		}
	}
}

// poll returns the change from the last view to the current one, if any.
// The first report goes through even when the view is empty, so a
// subscriber learns that the service has no instances.
func (s *Subscription) poll() (Change, bool) {
	snap := s.c.Snapshot()
	if !snap.Synced() || (s.seen && sameContent(s.last, snap.Instances)) {
		return Change{}, false
	}
	ch := diff(s.last, snap.Instances)
	ch.Snapshot = snap
	first := !s.seen
	s.last, s.seen = snap.Instances, true
	if !first && len(ch.Added)+len(ch.Removed)+len(ch.Updated) == 0 {
		return Change{}, false
	}
	return ch, true
}

// Close ends the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.c.w.removeSub(s)
	s.closeOnce.Do(func() { close(s.done) })
}

// diff compares two views sorted by ID.
func diff(old, cur []roster.Instance) Change {
	var ch Change
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].ID < cur[j].ID):
			ch.Removed = append(ch.Removed, old[i])
			i++
		case i == len(old) || cur[j].ID < old[i].ID:
			ch.Added = append(ch.Added, cur[j])
			j++
		default:
			if !equalInstance(&old[i], &cur[j]) {
				ch.Updated = append(ch.Updated, cur[j])
			}
			i++
			j++
		}
	}
	return ch
}
