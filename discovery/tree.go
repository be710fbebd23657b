package discovery

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/rosterkit/roster"
)

// A snapshot's instances are a persistent B+tree ordered by ID: a change
// copies the path from the root to one leaf, O(log N), and shares every
// other node with the snapshot before it. Nodes are immutable once a
// snapshot holds them; an editor may modify in place only the nodes it
// created itself (those carrying its generation), so a batch of changes
// copies each node at most once.

// item is one instance of a tree, with the etcd revision of its value.
// Items are immutable and shared by every tree and picker that holds them.
type item struct {
	inst roster.Instance
	rev  int64 // mod revision of the value; 0 if it did not come from etcd
}

// same reports whether a and b hold the same instance.
func same(a, b *item) bool {
	return a == b || (a.rev != 0 && a.rev == b.rev) || equalInstance(&a.inst, &b.inst)
}

const (
	leafMax = 64 // items per leaf
	nodeMax = 32 // children per inner node
	leafMin = leafMax / 4
	nodeMin = nodeMax / 4
)

type node struct {
	gen   uint64   // the editor that may still modify the node
	size  int      // items below
	items []*item  // leaf: sorted by ID
	kids  []*node  // inner node: children in ID order
	mins  []string // inner node: mins[i] is the least ID below kids[i]
}

func (n *node) leaf() bool { return n.kids == nil }

func (n *node) minID() string {
	if n.leaf() {
		return n.items[0].inst.ID
	}
	return n.mins[0]
}

// count is how many entries (items or children) n has.
func (n *node) count() int {
	if n.leaf() {
		return len(n.items)
	}
	return len(n.kids)
}

// child returns the index of the child of inner node n whose range holds id.
func (n *node) child(id string) int {
	lo, hi := 1, len(n.mins)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.mins[m] <= id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// find returns the index of id in leaf n, or where it would go.
func (n *node) find(id string) (int, bool) {
	return slices.BinarySearchFunc(n.items, id, func(it *item, id string) int { return strings.Compare(it.inst.ID, id) })
}

// lookup returns the item with the given ID below n, or nil.
func lookup(n *node, id string) *item {
	if n == nil {
		return nil
	}
	for !n.leaf() {
		n = n.kids[n.child(id)]
	}
	if i, ok := n.find(id); ok {
		return n.items[i]
	}
	return nil
}

// at returns the i-th item below n, 0 <= i < n.size.
func at(n *node, i int) *item {
	for !n.leaf() {
		for _, k := range n.kids {
			if i < k.size {
				n = k
				break
			}
			i -= k.size
		}
	}
	return n.items[i]
}

// each calls yield for every item below n in ID order until it returns
// false, and reports whether it never did.
func each(n *node, yield func(*item) bool) bool {
	if n == nil {
		return true
	}
	if n.leaf() {
		for _, it := range n.items {
			if !yield(it) {
				return false
			}
		}
		return true
	}
	for _, k := range n.kids {
		if !each(k, yield) {
			return false
		}
	}
	return true
}

// build returns a tree of items, which are sorted by ID without repeats.
func build(items []*item) *node {
	if len(items) == 0 {
		return nil
	}
	const leafFill, nodeFill = leafMax * 7 / 8, nodeMax * 7 / 8
	var level []*node
	for _, part := range split(len(items), leafFill) {
		level = append(level, &node{size: part[1] - part[0], items: slices.Clone(items[part[0]:part[1]])})
	}
	for len(level) > 1 {
		var up []*node
		for _, part := range split(len(level), nodeFill) {
			n := &node{kids: slices.Clone(level[part[0]:part[1]])}
			for _, k := range n.kids {
				n.size += k.size
				n.mins = append(n.mins, k.minID())
			}
			up = append(up, n)
		}
		level = up
	}
	return level[0]
}

// split cuts n elements into runs of about fill, as even as possible, and
// returns their [start, end) bounds.
func split(n, fill int) [][2]int {
	parts := (n + fill - 1) / fill
	out := make([][2]int, 0, parts)
	for p, start := 0, 0; p < parts; p++ {
		end := start + (n-start)/(parts-p)
		out = append(out, [2]int{start, end})
		start = end
	}
	return out
}

// gens hands out editor generations; 0 is never one.
var gens atomic.Uint64

// editor applies changes to a tree, copying shared nodes on write.
type editor struct {
	gen  uint64
	root *node
}

func newEditor(root *node) *editor { return &editor{gen: gens.Add(1), root: root} }

// own returns n if the editor made it, or a copy it may modify.
func (e *editor) own(n *node) *node {
	if n.gen == e.gen {
		return n
	}
	c := &node{gen: e.gen, size: n.size}
	if n.leaf() {
		c.items = make([]*item, len(n.items), len(n.items)+1)
		copy(c.items, n.items)
	} else {
		c.kids = make([]*node, len(n.kids), len(n.kids)+1)
		copy(c.kids, n.kids)
		c.mins = make([]string, len(n.mins), len(n.mins)+1)
		copy(c.mins, n.mins)
	}
	return c
}

// put adds it, or replaces the item with its ID, which it returns.
func (e *editor) put(it *item) (old *item) {
	if e.root == nil {
		e.root = &node{gen: e.gen, size: 1, items: []*item{it}}
		return nil
	}
	n, right, old := e.insert(e.root, it)
	if right != nil {
		n = &node{gen: e.gen, size: n.size + right.size, kids: []*node{n, right}, mins: []string{n.minID(), right.minID()}}
	}
	e.root = n
	return old
}

func (e *editor) insert(n *node, it *item) (_, right *node, old *item) {
	id := it.inst.ID
	n = e.own(n)
	if n.leaf() {
		i, found := n.find(id)
		if found {
			old, n.items[i] = n.items[i], it
			return n, nil, old
		}
		n.items = slices.Insert(n.items, i, it)
		n.size++
		if len(n.items) > leafMax {
			h := len(n.items) / 2
			right = &node{gen: e.gen, size: len(n.items) - h, items: slices.Clone(n.items[h:])}
			clear(n.items[h:])
			n.items, n.size = n.items[:h], h
		}
		return n, right, nil
	}
	i := n.child(id)
	kid, split, old := e.insert(n.kids[i], it)
	n.kids[i] = kid
	n.mins[i] = kid.minID()
	if old == nil {
		n.size++
	}
	if split != nil {
		n.kids = slices.Insert(n.kids, i+1, split)
		n.mins = slices.Insert(n.mins, i+1, split.minID())
		if len(n.kids) > nodeMax {
			right = e.splitInner(n)
		}
	}
	return n, right, old
}

// splitInner moves the upper half of n's children to a new node.
func (e *editor) splitInner(n *node) *node {
	h := len(n.kids) / 2
	right := &node{gen: e.gen, kids: slices.Clone(n.kids[h:]), mins: slices.Clone(n.mins[h:])}
	for _, k := range right.kids {
		right.size += k.size
	}
	clear(n.kids[h:])
	n.kids, n.mins, n.size = n.kids[:h], n.mins[:h], n.size-right.size
	return right
}

// remove deletes the item with the given ID and returns it, or nil if
// there is none.
func (e *editor) remove(id string) (old *item) {
	if e.root == nil {
		return nil
	}
	n, old := e.delete(e.root, id)
	if old == nil {
		return nil
	}
	for n != nil && !n.leaf() && len(n.kids) == 1 {
		n = n.kids[0]
	}
	e.root = n
	return old
}

// delete removes id below n and returns the new node, nil once empty.
func (e *editor) delete(n *node, id string) (_ *node, old *item) {
	if n.leaf() {
		i, found := n.find(id)
		if !found {
			return n, nil
		}
		n = e.own(n)
		old = n.items[i]
		n.items = slices.Delete(n.items, i, i+1)
		n.size--
		if len(n.items) == 0 {
			return nil, old
		}
		return n, old
	}
	i := n.child(id)
	kid, old := e.delete(n.kids[i], id)
	if old == nil {
		return n, nil
	}
	n = e.own(n)
	n.size--
	switch {
	case kid == nil:
		n.kids = slices.Delete(n.kids, i, i+1)
		n.mins = slices.Delete(n.mins, i, i+1)
		if len(n.kids) == 0 {
			return nil, old
		}
	case kid.leaf() && kid.count() < leafMin, !kid.leaf() && kid.count() < nodeMin:
		n.kids[i] = kid
		n.mins[i] = kid.minID()
		if len(n.kids) > 1 {
			e.rebalance(n, i)
		}
	default:
		n.kids[i] = kid
		n.mins[i] = kid.minID()
	}
	return n, old
}

// rebalance merges the underfull child i of n with a neighbour, or evens
// their entries out when together they would not fit in one node.
func (e *editor) rebalance(n *node, i int) {
	j := i + 1
	if j == len(n.kids) {
		i, j = i-1, i
	}
	a, b := e.own(n.kids[i]), e.own(n.kids[j])
	if a.leaf() {
		all := append(append(make([]*item, 0, len(a.items)+len(b.items)), a.items...), b.items...)
		if len(all) <= leafMax {
			a.items, a.size = all, len(all)
			n.kids[i], n.mins[i] = a, a.minID()
			n.kids = slices.Delete(n.kids, j, j+1)
			n.mins = slices.Delete(n.mins, j, j+1)
			return
		}
		h := len(all) / 2
		a.items, a.size = slices.Clone(all[:h]), h
		b.items, b.size = slices.Clone(all[h:]), len(all)-h
	} else {
		kids := append(append(make([]*node, 0, len(a.kids)+len(b.kids)), a.kids...), b.kids...)
		mins := append(append(make([]string, 0, len(a.mins)+len(b.mins)), a.mins...), b.mins...)
		if len(kids) <= nodeMax {
			a.kids, a.mins, a.size = kids, mins, a.size+b.size
			n.kids[i], n.mins[i] = a, a.minID()
			n.kids = slices.Delete(n.kids, j, j+1)
			n.mins = slices.Delete(n.mins, j, j+1)
			return
		}
		h := len(kids) / 2
		a.kids, a.mins = slices.Clone(kids[:h]), slices.Clone(mins[:h])
		b.kids, b.mins = slices.Clone(kids[h:]), slices.Clone(mins[h:])
		a.size, b.size = 0, 0
		for _, k := range a.kids {
			a.size += k.size
		}
		for _, k := range b.kids {
			b.size += k.size
		}
	}
	n.kids[i], n.mins[i] = a, a.minID()
	n.kids[j], n.mins[j] = b, b.minID()
}

// cursor walks a tree in ID order.
type cursor struct {
	path []frame // from the root down to the current leaf
}

type frame struct {
	n *node
	i int // index of the child (inner node) or item (leaf) the cursor is at
}

func newCursor(root *node) *cursor {
	c := &cursor{}
	if root != nil {
		c.descend(root)
	}
	return c
}

// descend pushes n and its leftmost descendants.
func (c *cursor) descend(n *node) {
	for {
		c.path = append(c.path, frame{n: n})
		if n.leaf() {
			return
		}
		n = n.kids[0]
	}
}

// item is the current item, nil at the end.
func (c *cursor) item() *item {
	if len(c.path) == 0 {
		return nil
	}
	f := c.path[len(c.path)-1]
	return f.n.items[f.i]
}

// next moves to the following item.
func (c *cursor) next() {
	if f := &c.path[len(c.path)-1]; f.i+1 < len(f.n.items) {
		f.i++
		return
	}
	c.skip(len(c.path) - 1)
}

// skip moves past the rest of the node at depth d of the path.
func (c *cursor) skip(d int) {
	c.path = c.path[:d]
	for len(c.path) > 0 {
		f := &c.path[len(c.path)-1]
		if f.i+1 < len(f.n.kids) {
			f.i++
			c.descend(f.n.kids[f.i])
			return
		}
		c.path = c.path[:len(c.path)-1]
	}
}

// shared returns the depth of the highest node the cursor is at the very
// start of that is also somewhere on o's path at its start, and its depth
// there: a subtree both trees share from here on.
func (c *cursor) shared(o *cursor) (dc, do int, ok bool) {
	for dc = 0; dc < len(c.path); dc++ {
		if !c.atStart(dc) {
			continue
		}
		for do = 0; do < len(o.path); do++ {
			if o.path[do].n == c.path[dc].n && o.atStart(do) {
				return dc, do, true
			}
		}
	}
	return 0, 0, false
}

// atStart reports whether the cursor is at the first item of the node at
// depth d.
func (c *cursor) atStart(d int) bool {
	for ; d < len(c.path); d++ {
		if c.path[d].i != 0 {
			return false
		}
	}
	return true
}

// diff calls fn for every ID whose item differs between trees a and b, in
// ID order: (old, nil) for a removed one, (nil, new) for an added one and
// (old, new) for one replaced by another item (which may hold an equal
// instance). Subtrees the two trees share are skipped, so two trees a few
// changes apart compare in about as many leaf walks as changes.
func diff(a, b *node, fn func(old, cur *item)) {
	if a == b {
		return
	}
	ca, cb := newCursor(a), newCursor(b)
	for {
		x, y := ca.item(), cb.item()
		switch {
		case x == nil && y == nil:
			return
		case y == nil || (x != nil && x.inst.ID < y.inst.ID):
			fn(x, nil)
			ca.next()
		case x == nil || y.inst.ID < x.inst.ID:
			fn(nil, y)
			cb.next()
		default:
			if da, db, ok := ca.shared(cb); ok {
				ca.skip(da)
				cb.skip(db)
				continue
			}
			if x != y {
				fn(x, y)
			}
			ca.next()
			cb.next()
		}
	}
}
