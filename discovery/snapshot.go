package discovery

import (
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rosterkit/roster"
)

// Snapshot is an immutable view of one service's instances, as of an etcd
// revision. Readers get it with one atomic load (Cache.Snapshot) and may
// keep it as long as they like: nothing in it ever changes. Successive
// snapshots share what did not change between them. Do not modify the
// instances it returns (their Metadata maps are shared).
//
// A nil *Snapshot is empty.
type Snapshot struct {
	service  string
	root     *node
	rev      int64
	syncedAt time.Time
	skipped  int
}

// NewSnapshot returns a snapshot of the given instances of service, as a
// Source that is not a Cache may serve it. Of instances with the same ID
// the last counts. It is Synced as of now, at revision 0.
func NewSnapshot(service string, insts ...roster.Instance) *Snapshot {
	items := make([]*item, 0, len(insts))
	for _, in := range insts {
		items = append(items, &item{inst: in})
	}
	slices.SortStableFunc(items, func(a, b *item) int { return strings.Compare(a.inst.ID, b.inst.ID) })
	// Keep the last of each run of equal IDs.
	out := items[:0]
	for i, it := range items {
		if i+1 < len(items) && items[i+1].inst.ID == it.inst.ID {
			continue
		}
		out = append(out, it)
	}
	return &Snapshot{service: service, root: build(out), syncedAt: time.Now()}
}

// Service is the service the snapshot describes.
func (s *Snapshot) Service() string {
	if s == nil {
		return ""
	}
	return s.service
}

// Len is the number of instances, in every status.
func (s *Snapshot) Len() int {
	if s == nil || s.root == nil {
		return 0
	}
	return s.root.size
}

// At returns the i-th instance in ID order, or the zero Instance unless
// 0 <= i < Len().
func (s *Snapshot) At(i int) roster.Instance {
	if i < 0 || i >= s.Len() {
		return roster.Instance{}
	}
	return at(s.root, i).inst
}

// All yields the instances in ID order, in every status: draining
// instances are listed although pickers skip them.
func (s *Snapshot) All() iter.Seq[roster.Instance] {
	return func(yield func(roster.Instance) bool) {
		if s != nil {
			each(s.root, func(it *item) bool { return yield(it.inst) })
		}
	}
}

// Lookup returns the instance with the given ID.
func (s *Snapshot) Lookup(id string) (roster.Instance, bool) {
	if s == nil {
		return roster.Instance{}, false
	}
	if it := lookup(s.root, id); it != nil {
		return it.inst, true
	}
	return roster.Instance{}, false
}

// Select returns the instances f accepts, in ID order, in a new slice.
// A nil f accepts all.
func (s *Snapshot) Select(f Filter) []roster.Instance {
	var out []roster.Instance
	if s != nil {
		each(s.root, func(it *item) bool {
			if f == nil || f(&it.inst) {
				out = append(out, it.inst)
			}
			return true
		})
	}
	return out
}

// Revision is the etcd revision the view is complete at: every change up
// to it is reflected. 0 before the first sync.
func (s *Snapshot) Revision() int64 {
	if s == nil {
		return 0
	}
	return s.rev
}

// SyncedAt is when the cache last confirmed the view against etcd, by a
// list, a watch event or a progress check; zero before the first sync.
// While etcd is unreachable it stays put, so Age grows.
func (s *Snapshot) SyncedAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.syncedAt
}

// Synced reports whether the snapshot comes from etcd, that is whether the
// cache has completed its first list.
func (s *Snapshot) Synced() bool { return !s.SyncedAt().IsZero() }

// Age is how long ago the view was last confirmed against etcd; zero
// before the first sync (check Synced to tell).
func (s *Snapshot) Age() time.Duration {
	if !s.Synced() {
		return 0
	}
	return time.Since(s.syncedAt)
}

// Skipped is how many keys under the service's prefix are ignored because
// they are not valid instances (corrupt values, other writers' keys).
func (s *Snapshot) Skipped() int {
	if s == nil {
		return 0
	}
	return s.skipped
}

// instances returns every instance, for a subscriber's first Change.
func (s *Snapshot) instances() []roster.Instance {
	out := make([]roster.Instance, 0, s.Len())
	each(s.root, func(it *item) bool { out = append(out, it.inst); return true })
	return out
}

func equalInstance(a, b *roster.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr &&
		a.Weight == b.Weight && a.Status == b.Status && maps.Equal(a.Metadata, b.Metadata)
}
