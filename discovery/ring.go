package discovery

import (
	"cmp"
	"strings"
)

// ring is the consistent-hash ring of a picker: a persistent B+tree of
// points ordered by hash (ties by instance ID), built like the instance
// tree (tree.go). Adding or removing an instance inserts or deletes only
// its own points, each copying one path. Nodes are fixed-size arrays, so a
// copy is one allocation; a point names its entry by a slot in the
// picker's entry table rather than by pointer, so leaves hold no pointer:
// the garbage collector need not scan millions of points, and copying them
// needs no write barrier.
type ring struct {
	root *rinner // nil when the ring is one leaf
	leaf *rleaf  // the only leaf, or nil
	n    int     // points
}

const (
	leafPoints = 60 // points per leaf (a leaf is 768 bytes)
	innerKids  = 16 // children per inner node (480 bytes)
)

// rleaf holds points: hashes and slots, sorted.
type rleaf struct {
	gen uint64
	n   int
	hs  [leafPoints]uint64
	ss  [leafPoints]uint32
}

// rinner holds children, inner nodes or (bottom) leaves, with the least
// point below each.
type rinner struct {
	gen    uint64
	size   int // points below
	n      int
	bottom bool // children are leaves
	hs     [innerKids]uint64
	ss     [innerKids]uint32
	kids   [innerKids]*rinner
	leaves [innerKids]*rleaf
}

// ringCmp orders points: by hash, then by the ID of the slot's entry.
type ringCmp struct{ tab *vec }

func (c ringCmp) cmp(h1 uint64, s1 uint32, h2 uint64, s2 uint32) int {
	if x := cmp.Compare(h1, h2); x != 0 || s1 == s2 {
		return x
	}
	return strings.Compare(c.tab.get(int(s1)).id, c.tab.get(int(s2)).id)
}

// below returns the first index of hs/ss[:n] whose point is not below (h, s).
func (c ringCmp) below(hs []uint64, ss []uint32, n int, h uint64, s uint32) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.cmp(hs[m], ss[m], h, s) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// child is the index of the child of n whose range holds (h, s).
func (c ringCmp) child(n *rinner, h uint64, s uint32) int {
	lo, hi := 1, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.cmp(n.hs[m], n.ss[m], h, s) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// firstAt returns the first index of hs[:n] not below h.
func firstAt(hs []uint64, n int, h uint64) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if hs[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// owner returns the slot and hash of the first point at or after hash h,
// going round past the last point to the first. The ring must not be
// empty.
func (r *ring) owner(h uint64) (uint32, uint64) {
	l := r.leaf
	var alt *rinner // the subtree after the path, if its leaf holds no point >= h
	altLeaf := (*rleaf)(nil)
	if n := r.root; n != nil {
		for {
			// The last child whose least hash is below h: the first point
			// >= h is in it or starts the next one.
			i := max(firstAt(n.hs[:], n.n, h), 1) - 1
			if i+1 < n.n {
				alt, altLeaf = n.kids[i+1], n.leaves[i+1]
			}
			if n.bottom {
				l = n.leaves[i]
				break
			}
			n = n.kids[i]
		}
	}
	if i := firstAt(l.hs[:], l.n, h); i < l.n {
		return l.ss[i], l.hs[i]
	}
	switch {
	case altLeaf != nil:
		l = altLeaf
	case alt != nil:
		l = leftmost(alt)
	case r.root != nil:
		l = leftmost(r.root) // past the last point: round to the first
	}
	return l.ss[0], l.hs[0]
}

func leftmost(n *rinner) *rleaf {
	for !n.bottom {
		n = n.kids[0]
	}
	return n.leaves[0]
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

func ownInner(n *rinner, gen uint64) *rinner {
	if n.gen == gen {
		return n
	}
	c := new(rinner)
	*c = *n
	c.gen = gen
	return c
}

// The sizes and least points of the children of an inner node.
func (l *rleaf) first() (uint64, uint32)  { return l.hs[0], l.ss[0] }
func (n *rinner) first() (uint64, uint32) { return n.hs[0], n.ss[0] }
func (n *rinner) kidSize(i int) int       { return sizeOf(n.kids[i], n.leaves[i]) }
func sizeOf(n *rinner, l *rleaf) int {
	if l != nil {
		return l.n
	}
	return n.size
}

// setKid writes child i of n and its least point.
func (n *rinner) setKid(i int, kid *rinner, l *rleaf) {
	n.kids[i], n.leaves[i] = kid, l
	if l != nil {
		n.hs[i], n.ss[i] = l.first()
	} else {
		n.hs[i], n.ss[i] = kid.first()
	}
}

// insertKid makes room at i for a child.
func (n *rinner) insertKid(i int, kid *rinner, l *rleaf) {
	copy(n.hs[i+1:n.n+1], n.hs[i:n.n])
	copy(n.ss[i+1:n.n+1], n.ss[i:n.n])
	copy(n.kids[i+1:n.n+1], n.kids[i:n.n])
	copy(n.leaves[i+1:n.n+1], n.leaves[i:n.n])
	n.n++
	n.setKid(i, kid, l)
}

func (n *rinner) deleteKid(i int) {
	copy(n.hs[i:], n.hs[i+1:n.n])
	copy(n.ss[i:], n.ss[i+1:n.n])
	copy(n.kids[i:], n.kids[i+1:n.n])
	copy(n.leaves[i:], n.leaves[i+1:n.n])
	n.n--
	n.kids[n.n], n.leaves[n.n] = nil, nil
}

func (l *rleaf) insertAt(i int, h uint64, s uint32) {
	copy(l.hs[i+1:l.n+1], l.hs[i:l.n])
	copy(l.ss[i+1:l.n+1], l.ss[i:l.n])
	l.hs[i], l.ss[i] = h, s
	l.n++
}

func (l *rleaf) deleteAt(i int) {
	copy(l.hs[i:], l.hs[i+1:l.n])
	copy(l.ss[i:], l.ss[i+1:l.n])
	l.n--
}

// insert adds the point (h, s).
func (r *ring) insert(c ringCmp, gen uint64, h uint64, s uint32) {
	r.n++
	if r.root == nil {
		if r.leaf == nil {
			r.leaf = &rleaf{gen: gen}
		}
		l := ownLeaf(r.leaf, gen)
		l.insertAt(c.below(l.hs[:], l.ss[:], l.n, h, s), h, s)
		r.leaf = l
		if l.n == leafPoints {
			right := splitLeaf(gen, l)
			up := &rinner{gen: gen, bottom: true, size: l.n + right.n}
			up.insertKid(0, nil, l)
			up.insertKid(1, nil, right)
			r.root, r.leaf = up, nil
		}
		return
	}
	n, right := r.insertIn(c, gen, r.root, h, s)
	if right != nil {
		up := &rinner{gen: gen, size: n.size + right.size}
		up.insertKid(0, n, nil)
		up.insertKid(1, right, nil)
		n = up
	}
	r.root = n
}

func (r *ring) insertIn(c ringCmp, gen uint64, n *rinner, h uint64, s uint32) (_, right *rinner) {
	n = ownInner(n, gen)
	n.size++
	i := c.child(n, h, s)
	if n.bottom {
		l := ownLeaf(n.leaves[i], gen)
		l.insertAt(c.below(l.hs[:], l.ss[:], l.n, h, s), h, s)
		n.setKid(i, nil, l)
		if l.n == leafPoints {
			n.insertKid(i+1, nil, splitLeaf(gen, l))
		}
	} else {
		kid, split := r.insertIn(c, gen, n.kids[i], h, s)
		n.setKid(i, kid, nil)
		if split != nil {
			n.insertKid(i+1, split, nil)
		}
	}
	if n.n == innerKids {
		right = splitInner(gen, n) // full: split now, so the next insert fits
	}
	return n, right
}

func splitLeaf(gen uint64, l *rleaf) *rleaf {
	h := l.n / 2
	right := &rleaf{gen: gen, n: l.n - h}
	copy(right.hs[:], l.hs[h:l.n])
	copy(right.ss[:], l.ss[h:l.n])
	l.n = h
	return right
}

func splitInner(gen uint64, n *rinner) *rinner {
	h := n.n / 2
	right := &rinner{gen: gen, bottom: n.bottom}
	for i := h; i < n.n; i++ {
		right.insertKid(right.n, n.kids[i], n.leaves[i])
		right.size += n.kidSize(i)
		n.kids[i], n.leaves[i] = nil, nil
	}
	n.n, n.size = h, n.size-right.size
	return right
}

// remove deletes the point (h, s), if it is on the ring.
func (r *ring) remove(c ringCmp, gen uint64, h uint64, s uint32) {
	if r.root == nil {
		if l := r.leaf; l != nil {
			if i := c.below(l.hs[:], l.ss[:], l.n, h, s); i < l.n && l.hs[i] == h && l.ss[i] == s {
				l = ownLeaf(l, gen)
				l.deleteAt(i)
				r.n--
				r.leaf = l
				if l.n == 0 {
					r.leaf = nil
				}
			}
		}
		return
	}
	n, ok := r.removeIn(c, gen, r.root, h, s)
	if !ok {
		return
	}
	r.n--
	for n != nil && n.n == 1 {
		if n.bottom {
			r.root, r.leaf = nil, n.leaves[0]
			return
		}
		n = n.kids[0]
	}
	r.root = n
}

func (r *ring) removeIn(c ringCmp, gen uint64, n *rinner, h uint64, s uint32) (*rinner, bool) {
	i := c.child(n, h, s)
	var kid *rinner
	var l *rleaf
	if n.bottom {
		l = n.leaves[i]
		j := c.below(l.hs[:], l.ss[:], l.n, h, s)
		if j == l.n || l.hs[j] != h || l.ss[j] != s {
			return n, false
		}
		l = ownLeaf(l, gen)
		l.deleteAt(j)
	} else {
		var ok bool
		if kid, ok = r.removeIn(c, gen, n.kids[i], h, s); !ok {
			return n, false
		}
	}
	n = ownInner(n, gen)
	n.size--
	switch {
	case l != nil && l.n == 0, l == nil && kid == nil:
		n.deleteKid(i)
		if n.n == 0 {
			return nil, true
		}
	default:
		n.setKid(i, kid, l)
		if n.n > 1 && (l != nil && l.n < leafPoints/4 || kid != nil && kid.n < innerKids/4) {
			rebalance(gen, n, i)
		}
	}
	return n, true
}

// rebalance merges the underfull child i of n with a neighbour, or evens
// them out.
func rebalance(gen uint64, n *rinner, i int) {
	j := i + 1
	if j == n.n {
		i, j = i-1, i
	}
	if n.bottom {
		a, b := ownLeaf(n.leaves[i], gen), ownLeaf(n.leaves[j], gen)
		if a.n+b.n < leafPoints {
			copy(a.hs[a.n:], b.hs[:b.n])
			copy(a.ss[a.n:], b.ss[:b.n])
			a.n += b.n
			n.setKid(i, nil, a)
			n.deleteKid(j)
			return
		}
		// Even out: all into a's order, then split in the middle.
		var hs [2 * leafPoints]uint64
		var ss [2 * leafPoints]uint32
		copy(hs[:], a.hs[:a.n])
		copy(hs[a.n:], b.hs[:b.n])
		copy(ss[:], a.ss[:a.n])
		copy(ss[a.n:], b.ss[:b.n])
		t := a.n + b.n
		a.n, b.n = t/2, t-t/2
		copy(a.hs[:], hs[:a.n])
		copy(a.ss[:], ss[:a.n])
		copy(b.hs[:], hs[a.n:t])
		copy(b.ss[:], ss[a.n:t])
		n.setKid(i, nil, a)
		n.setKid(j, nil, b)
		return
	}
	a, b := ownInner(n.kids[i], gen), ownInner(n.kids[j], gen)
	if a.n+b.n < innerKids {
		for k := range b.n {
			a.insertKid(a.n, b.kids[k], b.leaves[k])
		}
		a.size += b.size
		n.setKid(i, a, nil)
		n.deleteKid(j)
		return
	}
	for a.n < (a.n+b.n)/2 {
		a.insertKid(a.n, b.kids[0], b.leaves[0])
		moved := b.kidSize(0)
		a.size, b.size = a.size+moved, b.size-moved
		b.deleteKid(0)
	}
	for a.n > (a.n+b.n+1)/2 {
		k := a.n - 1
		moved := a.kidSize(k)
		b.insertKid(0, a.kids[k], a.leaves[k])
		a.size, b.size = a.size-moved, b.size+moved
		a.deleteKid(k)
	}
	n.setKid(i, a, nil)
	n.setKid(j, b, nil)
}

// point is a point while a ring is built.
type point struct {
	h uint64
	s uint32
}

// buildRing returns a ring of points sorted by ringCmp.
func buildRing(ps []point) ring {
	if len(ps) == 0 {
		return ring{}
	}
	var leaves []*rleaf
	for _, part := range split(len(ps), leafPoints*7/8) {
		l := &rleaf{n: part[1] - part[0]}
		for i, p := range ps[part[0]:part[1]] {
			l.hs[i], l.ss[i] = p.h, p.s
		}
		leaves = append(leaves, l)
	}
	if len(leaves) == 1 {
		return ring{leaf: leaves[0], n: len(ps)}
	}
	var level []*rinner
	for _, part := range split(len(leaves), innerKids*3/4) {
		n := &rinner{bottom: true}
		for _, l := range leaves[part[0]:part[1]] {
			n.insertKid(n.n, nil, l)
			n.size += l.n
		}
		level = append(level, n)
	}
	for len(level) > 1 {
		var up []*rinner
		for _, part := range split(len(level), innerKids*3/4) {
			n := &rinner{}
			for _, k := range level[part[0]:part[1]] {
				n.insertKid(n.n, k, nil)
				n.size += k.size
			}
			up = append(up, n)
		}
		level = up
	}
	return ring{root: level[0], n: len(ps)}
}
