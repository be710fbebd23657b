package discovery

import (
	"slices"
	"strings"

	"github.com/rosterkit/roster"
)

// Change is what one or more watch events did to a cache's view. Each
// list is sorted by ID, and an ID is in at most one of them.
//
// The first Change of every Cache.Changes channel is the whole view (every
// instance Added) once the cache is synced, even when the service has no
// instance. A reader that falls behind gets the changes it missed merged
// per instance ID: an instance added then removed is not reported, one
// updated twice is reported once as it is now.
type Change struct {
	// Snapshot is the view the change leads to.
	Snapshot *Snapshot
	// Added are instances that were not in the view before.
	Added []roster.Instance
	// Updated are instances whose value changed, as they are now.
	Updated []roster.Instance
	// Removed are instances that are gone, as they were last.
	Removed []roster.Instance
}

func (c *Change) size() int { return len(c.Added) + len(c.Updated) + len(c.Removed) }

// mergeChanges is the Merge of a cache's stream. A reader's queue holds
// changes in order, each less than half the size of the one before it;
// an item that breaks that is merged into its predecessor, and so on up.
// The queue thus stays O(log n) long and every instance takes part in
// O(log n) merges, so a reader that does not read costs the watch loop
// little, and none of it is lost.
func mergeChanges(q []Change, c Change) []Change {
	q = append(q, c)
	for len(q) >= 2 && 2*q[len(q)-1].size() >= q[len(q)-2].size() {
		q[len(q)-2] = combine(&q[len(q)-2], &q[len(q)-1])
		q[len(q)-1] = Change{}
		q = q[:len(q)-1]
	}
	return q
}

// op is one instance's part of a Change.
type op struct {
	kind byte // '+' added, '~' updated, '-' removed
	inst *roster.Instance
}

// ops lists c's parts in ID order.
func ops(c *Change) []op {
	out := make([]op, 0, c.size())
	for k, list := range [3][]roster.Instance{c.Added, c.Updated, c.Removed} {
		for i := range list {
			out = append(out, op{kind: "+~-"[k], inst: &list[i]})
		}
	}
	slices.SortFunc(out, func(a, b op) int { return strings.Compare(a.inst.ID, b.inst.ID) })
	return out
}

// combine returns the change a then b amount to, with b's snapshot.
func combine(a, b *Change) Change {
	out := Change{Snapshot: b.Snapshot}
	emit := func(o op) {
		switch o.kind {
		case '+':
			out.Added = append(out.Added, *o.inst)
		case '~':
			out.Updated = append(out.Updated, *o.inst)
		case '-':
			out.Removed = append(out.Removed, *o.inst)
		}
	}
	x, y := ops(a), ops(b)
	for len(x) > 0 || len(y) > 0 {
		switch {
		case len(y) == 0 || (len(x) > 0 && x[0].inst.ID < y[0].inst.ID):
			emit(x[0])
			x = x[1:]
		case len(x) == 0 || y[0].inst.ID < x[0].inst.ID:
			emit(y[0])
			y = y[1:]
		default:
			if o, ok := then(x[0], y[0]); ok {
				emit(o)
			}
			x, y = x[1:], y[1:]
		}
	}
	return out
}

// then is what a and then b did to one instance, if anything.
func then(a, b op) (op, bool) {
	switch {
	case a.kind == '+' && b.kind == '-':
		return op{}, false // came and went
	case a.kind == '+':
		return op{'+', b.inst}, true
	case a.kind == '-' && b.kind != '-':
		// Back, maybe as the reader last saw it, maybe not: the removed
		// value may be one it never saw.
		return op{'~', b.inst}, true
	default: // updated, then updated or removed
		return b, true
	}
}
