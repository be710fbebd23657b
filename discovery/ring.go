package discovery

import (
	"cmp"
	"slices"
	"strings"
)

// ring is the consistent-hash ring of a picker: its points sorted by hash
// (ties by instance ID), held by a persistent radix tree over the hash's
// bits. Hashes are uniform, so the tree is evenly shallow and a lookup
// indexes its way down, 4 bits a level, to a small leaf. A full leaf splits
// on the next bits, and an inner node that shrinks to half a leaf folds back
// into one. Adding or removing an instance inserts or deletes its own points
// only, each copying one path, one allocation a node; nodes are immutable
// once published, as in the instance tree (tree.go). A point names its
// entry by a slot in the picker's entry table rather than by pointer, so
// leaves hold no pointer: the garbage collector need not scan millions of
// points, and copying them needs no write barrier.
type ring struct {
	root *rinner // nil when the ring is empty
	n    int     // points
}

const (
	ringBits  = 4
	ringFan   = 1 << ringBits // children of an inner node
	ringLeaf  = 32            // points of a leaf
	ringDepth = 64 / ringBits // levels the hash has bits for
)

// rinner is an inner node: each slot holds an inner node, a leaf, or
// nothing.
type rinner struct {
	gen  uint64
	size int // points below
	kid  [ringFan]*rinner
	leaf [ringFan]*rleaf
}

// rleaf holds up to ringLeaf points, sorted by ringCmp; a leaf below the
// deepest inner nodes, which cannot split, holds more in big.
type rleaf struct {
	gen uint64
	n   int
	ps  [ringLeaf]point
	big []point
}

func (l *rleaf) pts() []point {
	if l.big != nil {
		return l.big
	}
	return l.ps[:l.n]
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

// slot is where hash h goes in an inner node at depth d.
func slot(h uint64, d int) int { return int(h>>(64-ringBits*(d+1))) & (ringFan - 1) }

// owner returns the first point at or after hash h, going round past the
// last point to the first. The ring must not be empty.
func (r *ring) owner(h uint64) point {
	var path [ringDepth + 1]*rinner
	n, d := r.root, 0
	for {
		path[d] = n
		i := slot(h, d)
		if l := n.leaf[i]; l != nil {
			// First point whose hash is not below h.
			ps := l.pts()
			lo, hi := 0, len(ps)
			for lo < hi {
				m := int(uint(lo+hi) >> 1)
				if ps[m].h < h {
					lo = m + 1
				} else {
					hi = m
				}
			}
			if lo < len(ps) {
				return ps[lo]
			}
			break
		}
		if n.kid[i] == nil {
			break
		}
		n, d = n.kid[i], d+1
	}
	// Nothing at or after h below the path's end: the first point of the
	// next subtree, going up.
	for ; d >= 0; d-- {
		n := path[d]
		for j := slot(h, d) + 1; j < ringFan; j++ {
			if l := n.leaf[j]; l != nil {
				return l.pts()[0]
			}
			if k := n.kid[j]; k != nil {
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
			if l := n.leaf[i]; l != nil {
				return l.pts()[0]
			}
			if k := n.kid[i]; k != nil {
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
	c.gen, c.n = gen, l.n
	copy(c.ps[:l.n], l.ps[:l.n])
	if l.big != nil {
		c.big = append(make([]point, 0, len(l.big)+1), l.big...)
	}
	return c
}

// insert adds p.
func (r *ring) insert(c ringCmp, gen uint64, p point) {
	if r.root == nil {
		r.root = &rinner{gen: gen}
	}
	r.root = c.insertIn(gen, r.root, p, 0)
	r.n++
}

func (c ringCmp) insertIn(gen uint64, n *rinner, p point, d int) *rinner {
	n = ownInner(n, gen)
	n.size++
	i := slot(p.h, d)
	switch l := n.leaf[i]; {
	case n.kid[i] != nil:
		n.kid[i] = c.insertIn(gen, n.kid[i], p, d+1)
	case l == nil:
		l = &rleaf{gen: gen, n: 1}
		l.ps[0] = p
		n.leaf[i] = l
	case l.n < ringLeaf && l.big == nil:
		l = ownLeaf(l, gen)
		j := c.find(l, p)
		copy(l.ps[j+1:l.n+1], l.ps[j:l.n])
		l.ps[j] = p
		l.n++
		n.leaf[i] = l
	case d+1 == ringDepth: // no bits left to split on
		l = ownLeaf(l, gen)
		if l.big == nil {
			l.big = append(make([]point, 0, ringLeaf+1), l.ps[:l.n]...)
		}
		l.big = slices.Insert(l.big, c.find(l, p), p)
		n.leaf[i] = l
	default: // full: the slot becomes an inner node over the next bits
		k := &rinner{gen: gen}
		for _, q := range l.pts() {
			k = c.insertIn(gen, k, q, d+1)
		}
		n.leaf[i], n.kid[i] = nil, c.insertIn(gen, k, p, d+1)
	}
	return n
}

// find returns where p goes in l.
func (c ringCmp) find(l *rleaf, p point) int {
	j, _ := slices.BinarySearchFunc(l.pts(), p, c.cmp)
	return j
}

// remove deletes p, if it is on the ring.
func (r *ring) remove(c ringCmp, gen uint64, p point) {
	if r.root == nil {
		return
	}
	n, ok := c.removeIn(gen, r.root, p, 0)
	if !ok {
		return
	}
	r.n--
	if r.n == 0 {
		n = nil
	}
	r.root = n
}

func (c ringCmp) removeIn(gen uint64, n *rinner, p point, d int) (*rinner, bool) {
	i := slot(p.h, d)
	var l *rleaf
	var k *rinner
	switch {
	case n.kid[i] != nil:
		var ok bool
		if k, ok = c.removeIn(gen, n.kid[i], p, d+1); !ok {
			return n, false
		}
		if k.size <= ringLeaf/2 {
			k, l = nil, fold(gen, k)
		}
	case n.leaf[i] != nil:
		l = n.leaf[i]
		j, found := slices.BinarySearchFunc(l.pts(), p, c.cmp)
		if !found {
			return n, false
		}
		l = ownLeaf(l, gen)
		if l.big != nil {
			l.big = slices.Delete(l.big, j, j+1)
		} else {
			copy(l.ps[j:], l.ps[j+1:l.n])
			l.n--
			l.ps[l.n] = point{}
		}
	default:
		return n, false
	}
	if l != nil && len(l.pts()) == 0 {
		l = nil
	}
	n = ownInner(n, gen)
	n.size--
	n.kid[i], n.leaf[i] = k, l
	return n, true
}

// fold turns a small inner node into one leaf of all its points.
func fold(gen uint64, n *rinner) *rleaf {
	l := &rleaf{gen: gen}
	var walk func(n *rinner)
	walk = func(n *rinner) {
		for i := range ringFan {
			if x := n.leaf[i]; x != nil {
				l.n += copy(l.ps[l.n:], x.pts())
			} else if k := n.kid[i]; k != nil {
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
	return ring{root: buildNode(ps, 0), n: len(ps)}
}

// buildNode returns an inner node at depth d over sorted points.
func buildNode(ps []point, d int) *rinner {
	n := &rinner{size: len(ps)}
	for len(ps) > 0 {
		i := slot(ps[0].h, d)
		j := 1
		for j < len(ps) && slot(ps[j].h, d) == i {
			j++
		}
		switch {
		case j <= ringLeaf:
			l := &rleaf{}
			l.n = copy(l.ps[:], ps[:j])
			n.leaf[i] = l
		case d+1 == ringDepth:
			n.leaf[i] = &rleaf{big: slices.Clone(ps[:j])}
		default:
			n.kid[i] = buildNode(ps[:j], d+1)
		}
		ps = ps[j:]
	}
	return n
}
