package discovery

import (
	"cmp"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"unsafe"
)

// ring is the consistent-hash ring of a picker: its points sorted by hash
// (ties by instance ID), held by a persistent radix tree over the hash's
// bits. Hashes are uniform, so the tree is evenly shallow and a lookup
// indexes its way down, 4 bits a level, to a small leaf. A full leaf splits
// on the next bits, and an inner node that shrinks to half a leaf folds back
// into one. Adding or removing an instance inserts or deletes its own points
// only, each copying one path, one allocation a node; nodes are immutable
// once published, as in the instance tree (tree.go).
//
// A point names its entry by a slot in the picker's entry table rather than
// by pointer, so leaves hold no pointer: the garbage collector need not scan
// millions of points, and copying them needs no write barrier.
type ring struct {
	root *rinner // nil when the ring is empty
	n    int     // points
	// over holds, by hash, the points beyond a deepest leaf's capacity:
	// more than ringLeaf points with one and the same hash, so in ID order
	// after the leaf's. Nil unless that happens; replaced, never modified.
	over map[uint64][]point
}

const (
	ringBits  = 4
	ringFan   = 1 << ringBits // children of an inner node
	ringLeaf  = 24            // points of a leaf
	ringDepth = 64 / ringBits // levels the hash has bits for
)

// rinner is an inner node: each slot holds an inner node, a leaf (when
// its bit in leaves is set), or nothing. One word a slot halves what a
// change copies and allocates, next to a pointer of each type a slot.
type rinner struct {
	gen    uint64
	size   int    // points below
	leaves uint16 // the slots that hold leaves
	slots  [ringFan]unsafe.Pointer
}

func (n *rinner) kid(i int) *rinner {
	if n.leaves&(1<<i) != 0 {
		return nil
	}
	return (*rinner)(n.slots[i])
}

func (n *rinner) leaf(i int) *rleaf {
	if n.leaves&(1<<i) == 0 {
		return nil
	}
	return (*rleaf)(n.slots[i])
}

func (n *rinner) setKid(i int, k *rinner) {
	n.slots[i] = unsafe.Pointer(k)
	n.leaves &^= 1 << i
}

func (n *rinner) setLeaf(i int, l *rleaf) {
	n.slots[i] = unsafe.Pointer(l)
	if l != nil {
		n.leaves |= 1 << i
	} else {
		n.leaves &^= 1 << i
	}
}

// rleaf holds up to ringLeaf points, sorted by ringCmp.
type rleaf struct {
	gen uint64
	n   int
	hs  [ringLeaf]uint64
	ss  [ringLeaf]uint32
}

func (l *rleaf) at(i int) point { return point{l.hs[i], l.ss[i]} }

// search returns the index of the first point whose hash is not below h,
// l.n if none. It halves the range without branching on the comparison,
// which a hash makes unpredictable: the borrow of a subtraction says
// which half to keep.
func (l *rleaf) search(h uint64) int {
	base, n := 0, l.n
	for n > 1 {
		half := n >> 1
		_, below := bits.Sub64(l.hs[base+half-1], h, 0)
		base += half & -int(below)
		n -= half
	}
	if n == 1 && l.hs[base] < h {
		base++
	}
	return base
}

// point is one virtual node on the ring: a hash and the slot of its entry.
type point struct {
	h uint64
	s uint32
}

// ringCmp orders points: by hash, then by the ID of the slot's entry.
type ringCmp struct{ tab *vec }

func (c ringCmp) cmp(a, b point) int {
	if x := cmp.Compare(a.h, b.h); x != 0 || a.s == b.s {
		return x
	}
	return strings.Compare(c.tab.get(int(a.s)).id, c.tab.get(int(b.s)).id)
}

// find returns where p is or goes in l.
func (c ringCmp) find(l *rleaf, p point) (int, bool) {
	lo, hi := 0, l.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.cmp(l.at(m), p) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < l.n && l.hs[lo] == p.h && l.ss[lo] == p.s
}

// slot is where hash h goes in an inner node at depth d.
func slot(h uint64, d int) int { return int(h>>(64-ringBits*(d+1))) & (ringFan - 1) }

// owner returns the first point at or after hash h, going round past the
// last point to the first. The ring must not be empty.
func (r *ring) owner(h uint64) point {
	for n, d := r.root, 0; ; d++ {
		i := slot(h, d)
		s := n.slots[i]
		if n.leaves&(1<<i) != 0 {
			l := (*rleaf)(s)
			if j := l.search(h); j < l.n {
				return l.at(j)
			}
			break
		}
		if n = (*rinner)(s); n == nil {
			break
		}
	}
	return r.after(h)
}

// after is owner when h is past the last point of its leaf (or its slot is
// empty): the first point of the next subtree, going up the path again.
func (r *ring) after(h uint64) point {
	var path [ringDepth]*rinner
	d := 0
	for n := r.root; n != nil; d++ {
		path[d] = n
		n = n.kid(slot(h, d))
	}
	for d--; d >= 0; d-- {
		n := path[d]
		for j := slot(h, d) + 1; j < ringFan; j++ {
			if l := n.leaf(j); l != nil {
				return l.at(0)
			}
			if k := n.kid(j); k != nil {
				return first(k)
			}
		}
	}
	return first(r.root)
}

// first returns the least point below n, which is not empty.
func first(n *rinner) point {
	for {
		for i := range ringFan {
			if l := n.leaf(i); l != nil {
				return l.at(0)
			}
			if k := n.kid(i); k != nil {
				n = k
				break
			}
		}
	}
}

func ownInner(n *rinner, gen uint64) *rinner {
	if n.gen == gen {
		return n
	}
	c := new(rinner)
	*c = *n
	c.gen = gen
	return c
}

func ownLeaf(l *rleaf, gen uint64) *rleaf {
	if l.gen == gen {
		return l
	}
	c := new(rleaf)
	*c = *l
	c.gen = gen
	return c
}

// insertAt puts p at i, moving the points from i up; a full leaf drops its
// last point, which it returns.
func (l *rleaf) insertAt(i int, p point) (dropped point, full bool) {
	if full = l.n == ringLeaf; full {
		dropped = l.at(l.n - 1)
		l.n--
	}
	copy(l.hs[i+1:l.n+1], l.hs[i:l.n])
	copy(l.ss[i+1:l.n+1], l.ss[i:l.n])
	l.hs[i], l.ss[i] = p.h, p.s
	l.n++
	return dropped, full
}

func (l *rleaf) deleteAt(i int) {
	copy(l.hs[i:], l.hs[i+1:l.n])
	copy(l.ss[i:], l.ss[i+1:l.n])
	l.n--
}

// warm reads what inserting or removing the points of hashes hs will
// copy: the nodes and leaves on their paths, level by level across all the
// hashes, so that the cache misses of one level overlap instead of
// following each other. A change of an instance's points is otherwise a
// chain of misses per point on a ring too big for the cache.
func (r *ring) warm(hs []uint64) int {
	ns := make([]*rinner, len(hs))
	for i := range ns {
		ns[i] = r.root
	}
	sum := 0
	for d, more := 0, r.root != nil; more; d++ {
		more = false
		for i, n := range ns {
			if n == nil {
				continue
			}
			j := slot(hs[i], d)
			sum += n.size + int(uintptr(n.slots[ringFan/2]))
			if n.leaves&(1<<j) != 0 {
				l := (*rleaf)(n.slots[j])
				sum += l.n + int(l.hs[ringLeaf/3]) + int(l.hs[2*ringLeaf/3]) + int(l.hs[ringLeaf-1]) + int(l.ss[ringLeaf/2]) + int(l.ss[ringLeaf-1])
				ns[i] = nil
				continue
			}
			ns[i] = (*rinner)(n.slots[j])
			more = more || ns[i] != nil
		}
	}
	return sum
}

// insert adds p.
func (r *ring) insert(c ringCmp, gen uint64, p point) {
	if r.root == nil {
		r.root = &rinner{gen: gen}
	}
	r.root, _ = r.insertIn(c, gen, r.root, p, 0)
	r.n++
}

// insertIn adds p below n and says whether the points below n grew by one
// (not if p, or the point it displaced, went to over).
func (r *ring) insertIn(c ringCmp, gen uint64, n *rinner, p point, d int) (*rinner, bool) {
	n = ownInner(n, gen)
	i := slot(p.h, d)
	grew := true
	switch l := n.leaf(i); {
	case n.kid(i) != nil:
		var k *rinner
		k, grew = r.insertIn(c, gen, n.kid(i), p, d+1)
		n.setKid(i, k)
	case l == nil:
		l = &rleaf{gen: gen}
		l.insertAt(0, p)
		n.setLeaf(i, l)
	case l.n < ringLeaf:
		l = ownLeaf(l, gen)
		j, _ := c.find(l, p)
		l.insertAt(j, p)
		n.setLeaf(i, l)
	case d+1 == ringDepth:
		// A full leaf of one hash (all its bits are used): it keeps the
		// least IDs, the others wait in over.
		if j, _ := c.find(l, p); j < l.n {
			l = ownLeaf(l, gen)
			p, _ = l.insertAt(j, p)
			n.setLeaf(i, l)
		}
		r.spill(c, p)
		grew = false
	default: // full: the slot becomes an inner node over the next bits
		k := &rinner{gen: gen}
		for j := range l.n {
			k, _ = r.insertIn(c, gen, k, l.at(j), d+1)
		}
		k, grew = r.insertIn(c, gen, k, p, d+1) // the leaf's points were counted already
		n.setKid(i, k)
	}
	if grew {
		n.size++
	}
	return n, grew
}

// spill puts p in over.
func (r *ring) spill(c ringCmp, p point) {
	over := maps.Clone(r.over)
	if over == nil {
		over = make(map[uint64][]point)
	}
	ps := slices.Clone(over[p.h])
	j, _ := slices.BinarySearchFunc(ps, p, c.cmp)
	over[p.h] = slices.Insert(ps, j, p)
	r.over = over
}

// unspill removes and returns the least point of hash h in over, if any;
// or removes p from it when p is given.
func (r *ring) unspill(c ringCmp, h uint64, p *point) (point, bool) {
	ps := r.over[h]
	if len(ps) == 0 {
		return point{}, false
	}
	j := 0
	if p != nil {
		var found bool
		if j, found = slices.BinarySearchFunc(ps, *p, c.cmp); !found {
			return point{}, false
		}
	}
	got := ps[j]
	over := maps.Clone(r.over)
	if ps = slices.Delete(slices.Clone(ps), j, j+1); len(ps) > 0 {
		over[h] = ps
	} else {
		delete(over, h)
	}
	if len(over) == 0 {
		over = nil
	}
	r.over = over
	return got, true
}

// remove deletes p, if it is on the ring.
func (r *ring) remove(c ringCmp, gen uint64, p point) {
	if r.root == nil {
		return
	}
	n, found, _ := r.removeIn(c, gen, r.root, p, 0)
	if !found {
		return
	}
	r.n--
	if r.n == 0 {
		n, r.over = nil, nil
	}
	r.root = n
}

// removeIn deletes p below n, and says whether it was found and whether
// the points below n shrank by one (not if p was in over, or a point from
// over took its place).
func (r *ring) removeIn(c ringCmp, gen uint64, n *rinner, p point, d int) (_ *rinner, found, shrank bool) {
	i := slot(p.h, d)
	var l *rleaf
	var k *rinner
	switch {
	case n.kid(i) != nil:
		if k, found, shrank = r.removeIn(c, gen, n.kid(i), p, d+1); !found {
			return n, false, false
		}
		if k.size <= ringLeaf/2 {
			k, l = nil, fold(gen, k)
		}
	case n.leaf(i) != nil:
		l = n.leaf(i)
		j, in := c.find(l, p)
		if !in {
			if d+1 == ringDepth {
				if _, ok := r.unspill(c, p.h, &p); ok {
					return n, true, false
				}
			}
			return n, false, false
		}
		l = ownLeaf(l, gen)
		l.deleteAt(j)
		found, shrank = true, true
		if d+1 == ringDepth {
			if q, ok := r.unspill(c, p.h, nil); ok {
				l.insertAt(l.n, q) // the least of the rest, after all the leaf's
				shrank = false
			}
		}
	default:
		return n, false, false
	}
	if l != nil && l.n == 0 {
		l = nil
	}
	n = ownInner(n, gen)
	if shrank {
		n.size--
	}
	if l != nil {
		n.setLeaf(i, l)
	} else {
		n.setKid(i, k)
	}
	return n, true, shrank
}

// fold turns a small inner node into one leaf of all its points.
func fold(gen uint64, n *rinner) *rleaf {
	l := &rleaf{gen: gen}
	var walk func(n *rinner)
	walk = func(n *rinner) {
		for i := range ringFan {
			if x := n.leaf(i); x != nil {
				copy(l.hs[l.n:], x.hs[:x.n])
				copy(l.ss[l.n:], x.ss[:x.n])
				l.n += x.n
			} else if k := n.kid(i); k != nil {
				walk(k)
			}
		}
	}
	walk(n)
	return l
}

// buildRing returns a ring of points sorted by ringCmp.
func buildRing(ps []point) ring {
	if len(ps) == 0 {
		return ring{}
	}
	r := ring{n: len(ps)}
	r.root = r.buildNode(ps, 0)
	return r
}

// buildNode returns an inner node at depth d over sorted points.
func (r *ring) buildNode(ps []point, d int) *rinner {
	n := &rinner{size: len(ps)}
	for len(ps) > 0 {
		i := slot(ps[0].h, d)
		j := 1
		for j < len(ps) && slot(ps[j].h, d) == i {
			j++
		}
		switch {
		case j <= ringLeaf || d+1 == ringDepth:
			l := &rleaf{}
			for k, p := range ps[:min(j, ringLeaf)] {
				l.hs[k], l.ss[k] = p.h, p.s
			}
			l.n = min(j, ringLeaf)
			n.setLeaf(i, l)
			if j > ringLeaf { // one hash, more points than a leaf holds
				n.size -= j - ringLeaf
				if r.over == nil {
					r.over = make(map[uint64][]point)
				}
				r.over[ps[0].h] = slices.Clone(ps[ringLeaf:j])
			}
		default:
			k := r.buildNode(ps[:j], d+1)
			n.setKid(i, k)
			n.size -= len(ps[:j]) - k.size
		}
		ps = ps[j:]
	}
	return n
}
