package discovery

import (
	"slices"
	"strings"
	"time"

	"github.com/rosterkit/roster"
)

// Snapshot is an immutable view of one service's instances, as of an etcd
// revision. Readers get it with a single atomic load (Cache.Snapshot) and
// may keep it as long as they like; nothing in it ever changes. Do not
// modify it or the instances it holds.
type Snapshot struct {
	// Service is the service the snapshot describes.
	Service string
	// Revision is the etcd revision the view is known to be complete
	// at: every change up to it is reflected. 0 before the first sync.
	Revision int64
	// SyncedAt is when the cache last confirmed the view against etcd,
	// by a list, a watch event or a progress check. Zero before the first
	// sync. It keeps its value while etcd is unreachable, so Age grows.
	SyncedAt time.Time
	// Instances are the decoded instances, sorted by ID, in every status:
	// draining instances are listed here even though pickers skip them.
	Instances []roster.Instance
	// Skipped is how many keys under the service prefix are currently
	// ignored because their value or key is not a valid instance (corrupt
	// data or another writer's keys).
	Skipped int
}

// Synced reports whether the snapshot comes from etcd, that is whether the
// cache has completed its first list.
func (s *Snapshot) Synced() bool { return !s.SyncedAt.IsZero() }

// Age is how long ago the view was last confirmed against etcd; zero
// before the first sync, to tell "never synced" apart, check Synced.
func (s *Snapshot) Age() time.Duration {
	if s.SyncedAt.IsZero() {
		return 0
	}
	return time.Since(s.SyncedAt)
}

// Lookup returns the instance with the given ID.
func (s *Snapshot) Lookup(id string) (roster.Instance, bool) {
	i, ok := slices.BinarySearchFunc(s.Instances, id, func(in roster.Instance, id string) int {
		return strings.Compare(in.ID, id)
	})
	if !ok {
		return roster.Instance{}, false
	}
	return s.Instances[i], true
}

// Select returns the instances f accepts, in ID order, in a new slice.
// A nil f accepts all.
func (s *Snapshot) Select(f Filter) []roster.Instance {
	var out []roster.Instance
	for i := range s.Instances {
		if f == nil || f(&s.Instances[i]) {
			out = append(out, s.Instances[i])
		}
	}
	return out
}

// sameContent reports whether two snapshots share their instance slice,
// which the cache guarantees whenever the content is unchanged: a
// progress notification only advances Revision and SyncedAt. Pickers and
// subscribers use it to skip work for such snapshots.
func sameContent(a, b []roster.Instance) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
