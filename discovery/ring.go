package discovery

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"
)

// ring is the consistent-hash ring of a picker: its points sorted by hash
// (ties by instance ID), held by a radix tree over the hash's bits. Hashes
// are uniform, so the tree is evenly shallow and a lookup indexes its way
// down, 4 bits a level, to a small leaf. A full leaf splits on the next
// bits, and an inner node that shrinks to half a leaf folds back into one.
//
// Unlike the instance tree (tree.go), the ring is not persistent: a
// picker's states share one ring, and a change edits it in place while
// picks read it. A leaf is immutable: a change copies the leaf it alters
// and swaps the copy into its slot with one atomic store; it edits inner
// nodes a slot at a time the same way. Copying each point's whole path as
// well wrote and allocated four times as much, which was the cost of a
// change at 100,000 instances. Each store leaves a valid ring, so a pick
// during a change finds, for its key, the owner before the change or the
// owner after it; a lookup whose slots, read at different moments, lead
// nowhere starts over.
//
// A point names its entry by a slot in the ring's entry table rather than
// by pointer, so leaves hold no pointer: the garbage collector need not
// scan millions of points. A slot freed by a removal can hold another
// entry by the time a pick that read an old leaf resolves it, so a point
// also carries its entry's serial, and a pick that finds another there (or
// none) starts over.
type ring struct {
	root *rinner // never replaced
	// The entry table holds the entries by slot: the writer's tab, whose
	// first element and length picks read. A slot is set before any point
	// names it, and cleared after the last is gone; the table is copied
	// to grow, and its new start published before its new length.
	tab  []atomic.Pointer[entry]
	ents atomic.Pointer[atomic.Pointer[entry]]
	nent atomic.Uint32
	free []uint32 // the writer's
	// n counts the points, never more than the ring holds: insert adds a
	// point before counting it, remove uncounts it first. A lookup can
	// then start over for as long as n is not 0.
	n atomic.Int64
	// over holds, by hash, the points beyond a deepest leaf's capacity:
	// more than ringLeaf points with one and the same hash, so in ID order
	// after the leaf's; no lookup needs them. The writer's alone.
	over map[uint64][]point
}

const (
	ringBits  = 4
	ringFan   = 1 << ringBits // children of an inner node
	ringLeaf  = 24            // points of a leaf
	ringDepth = 64 / ringBits // levels the hash has bits for
)

// point is one virtual node on the ring: a hash, and the slot and serial
// of its entry.
type point struct {
	h      uint64
	s, tag uint32
}

// rinner is an inner node. Each slot holds nothing, a leaf or an inner
// node, and is read and written atomically. One word a slot keeps a node
// small; the word's low bit tells which it is (see isLeaf).
type rinner struct {
	size  int // points below, over excepted; the writer's alone
	slots [ringFan]unsafe.Pointer
}

// A leaf is one array of words: its number of points n, then their n
// hashes, then their n slots and serials. Hashes apart keep a search to a
// leaf's first few cache lines; the array is sized to its points, so a
// change copies no more than the leaf holds. An empty slot is nil rather
// than an empty leaf.
//
// A slot points one byte into a leaf, which its low bit says, so a lookup
// knows what it holds before reading it: one miss a level. The address is
// still inside the leaf, as the garbage collector requires.
func makeLeaf(ps []point) unsafe.Pointer {
	n := len(ps)
	w := make([]uint64, 1+2*n)
	w[0] = uint64(n)
	for i, p := range ps {
		w[1+i] = p.h
		w[1+n+i] = uint64(p.s)<<32 | uint64(p.tag)
	}
	return unsafe.Add(unsafe.Pointer(&w[0]), 1)
}

// isLeaf reports whether slot value s is a leaf's.
func isLeaf(s unsafe.Pointer) bool { return uintptr(s)&1 != 0 }

// words returns the leaf of slot value s as its array.
func words(s unsafe.Pointer) []uint64 {
	w := (*uint64)(unsafe.Add(s, -1))
	return unsafe.Slice(w, 1+2*int(*w))
}

// pointAt returns point i of the leaf at s.
func pointAt(s unsafe.Pointer, i int) point {
	w := words(s)
	n := int(w[0])
	st := w[1+n+i]
	return point{w[1+i], uint32(st >> 32), uint32(st)}
}

// points returns the points of the leaf at s, in buf.
func points(s unsafe.Pointer, buf *[ringLeaf + 1]point) []point {
	w := words(s)
	n := int(w[0])
	ps := buf[:n]
	for i := range ps {
		st := w[1+n+i]
		ps[i] = point{w[1+i], uint32(st >> 32), uint32(st)}
	}
	return ps
}

func load(s *unsafe.Pointer) unsafe.Pointer { return atomic.LoadPointer(s) }

func store(s *unsafe.Pointer, v unsafe.Pointer) { atomic.StorePointer(s, v) }

// search returns the index of the first hash not below h, len(hs) if
// none. It halves the range without branching on the comparison, which a
// hash makes unpredictable: the borrow of a subtraction says which half to
// keep.
func search(hs []uint64, h uint64) int {
	base, n := 0, len(hs)
	for n > 1 {
		half := n >> 1
		_, below := bits.Sub64(hs[base+half-1], h, 0)
		base += half & -int(below)
		n -= half
	}
	if n == 1 && hs[base] < h {
		base++
	}
	return base
}

// cmp orders the ring's points: by hash, then by the ID of their entry.
func (r *ring) cmp(a, b point) int {
	if x := cmp.Compare(a.h, b.h); x != 0 || a.s == b.s {
		return x
	}
	return strings.Compare(r.at(a.s).id, r.at(b.s).id)
}

// find returns where p is or goes in ps.
func (r *ring) find(ps []point, p point) (int, bool) {
	i, found := slices.BinarySearchFunc(ps, p, r.cmp)
	return i, found && ps[i] == p
}

// at returns the entry in slot s.
func (r *ring) at(s uint32) *entry { return r.tab[s].Load() }

// bind gives e a slot, before any of its points.
func (r *ring) bind(e *entry) uint32 {
	if k := len(r.free); k > 0 {
		s := r.free[k-1]
		r.free = r.free[:k-1]
		r.tab[s].Store(e)
		return s
	}
	s := len(r.tab)
	if s == cap(r.tab) {
		// Copied, not appended to: a pick may be reading the old one.
		grown := make([]atomic.Pointer[entry], s, max(2*s, 64))
		for i := range r.tab {
			grown[i].Store(r.tab[i].Load())
		}
		r.tab = grown
		r.ents.Store(&grown[:1][0])
	}
	r.tab = r.tab[:s+1]
	r.tab[s].Store(e)
	r.nent.Store(uint32(s + 1))
	return uint32(s)
}

// entry returns the entry of slot s for a pick, nil if s is not set.
func (r *ring) entry(s uint32) *entry {
	if s >= r.nent.Load() { // loaded first: the start is as new
		return nil
	}
	return (*atomic.Pointer[entry])(unsafe.Add(unsafe.Pointer(r.ents.Load()), uintptr(s)*unsafe.Sizeof(atomic.Pointer[entry]{}))).Load()
}

// unbind frees slot s, once its entry has no point left.
func (r *ring) unbind(s uint32) {
	r.tab[s].Store(nil)
	r.free = append(r.free, s)
}

// slot is where hash h goes in an inner node at depth d.
func slot(h uint64, d int) int { return int(h>>(64-ringBits*(d+1))) & (ringFan - 1) }

func newRing() *ring {
	return &ring{root: new(rinner)}
}

// owner returns the first point at or after hash h, going round past the
// last point to the first, and its entry; false if the ring is empty.
func (r *ring) owner(h uint64) (point, *entry, bool) {
	for {
		if p, ok := r.lookup(h); ok {
			if e := r.entry(p.s); e != nil && e.serial == p.tag {
				return p, e, true
			}
		}
		if r.n.Load() == 0 {
			return point{}, nil, false
		}
	}
}

// lookup is owner once: false if it found no point.
func (r *ring) lookup(h uint64) (point, bool) {
	n := r.root
	for d := range ringDepth {
		s := load(&n.slots[slot(h, d)])
		if s == nil {
			break
		}
		if isLeaf(s) {
			w := words(s)
			k := int(w[0])
			if j := search(w[1:1+k], h); j < k {
				st := w[1+k+j]
				return point{w[1+j], uint32(st >> 32), uint32(st)}, true
			}
			break
		}
		n = (*rinner)(s)
	}
	return r.after(h)
}

// after is lookup when h is past the last point of its leaf (or its slot
// is empty): the first point of the next subtree, going up the path again.
func (r *ring) after(h uint64) (point, bool) {
	path := [ringDepth]*rinner{r.root}
	d := 0
	for d+1 < ringDepth {
		s := load(&path[d].slots[slot(h, d)])
		if s == nil || isLeaf(s) {
			break
		}
		d++
		path[d] = (*rinner)(s)
	}
	for ; d >= 0; d-- {
		n := path[d]
		for j := slot(h, d) + 1; j < ringFan; j++ {
			if s := load(&n.slots[j]); s != nil {
				return first(s)
			}
		}
	}
	return first(unsafe.Pointer(r.root))
}

// first returns the least point below s; false if it found none (the
// subtree emptied as it was read).
func first(s unsafe.Pointer) (point, bool) {
next:
	for !isLeaf(s) {
		n := (*rinner)(s)
		for i := range ringFan {
			if k := load(&n.slots[i]); k != nil {
				s = k
				continue next
			}
		}
		return point{}, false
	}
	return pointAt(s, 0), true
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
	for d, more := 0, true; more; d++ {
		more = false
		for i, n := range ns {
			if n == nil {
				continue
			}
			s := n.slots[slot(hs[i], d)]
			ns[i] = nil
			switch {
			case s == nil:
			case isLeaf(s):
				w := words(s)
				sum += int(w[len(w)/4]) + int(w[len(w)/2]) + int(w[len(w)-1])
			default:
				ns[i] = (*rinner)(s)
				sum += ns[i].size
				more = true
			}
		}
	}
	return sum
}

// insert adds p, which is not on the ring.
func (r *ring) insert(p point) {
	r.insertIn(r.root, p, 0)
	r.n.Add(1)
}

// insertIn adds p below n and says whether the points below n grew by one
// (not if p, or the point it displaced, went to over).
func (r *ring) insertIn(n *rinner, p point, d int) bool {
	i := slot(p.h, d)
	s := n.slots[i]
	grew := true
	switch {
	case s == nil:
		store(&n.slots[i], makeLeaf([]point{p}))
	case !isLeaf(s):
		grew = r.insertIn((*rinner)(s), p, d+1)
	default:
		var buf [ringLeaf + 1]point
		ps := points(s, &buf)
		j, _ := r.find(ps, p)
		full := len(ps) == ringLeaf
		ps = slices.Insert(ps, j, p)
		switch {
		case !full:
			store(&n.slots[i], makeLeaf(ps))
		case d+1 == ringDepth:
			// A full leaf of one hash (all its bits are used): it keeps
			// the least IDs, the others wait in over.
			if p = ps[ringLeaf]; j < ringLeaf {
				store(&n.slots[i], makeLeaf(ps[:ringLeaf]))
			}
			r.spill(p)
			grew = false
		default: // full: the slot becomes an inner node over the next bits
			k := r.buildNode(ps, d+1)
			grew = k.size == len(ps)
			store(&n.slots[i], unsafe.Pointer(k))
		}
	}
	if grew {
		n.size++
	}
	return grew
}

// spill puts p in over.
func (r *ring) spill(p point) {
	if r.over == nil {
		r.over = make(map[uint64][]point)
	}
	ps := r.over[p.h]
	j, _ := slices.BinarySearchFunc(ps, p, r.cmp)
	r.over[p.h] = slices.Insert(ps, j, p)
}

// unspill removes and returns the least point of hash h in over, if any;
// or removes p from it when p is given.
func (r *ring) unspill(h uint64, p *point) (point, bool) {
	ps := r.over[h]
	if len(ps) == 0 {
		return point{}, false
	}
	j := 0
	if p != nil {
		var found bool
		if j, found = slices.BinarySearchFunc(ps, *p, r.cmp); !found {
			return point{}, false
		}
	}
	got := ps[j]
	if ps = slices.Delete(ps, j, j+1); len(ps) > 0 {
		r.over[h] = ps
	} else {
		delete(r.over, h)
	}
	return got, true
}

// remove deletes p, if it is on the ring.
func (r *ring) remove(p point) {
	r.removeIn(r.root, p, 0)
	if r.n.Load() == 0 {
		r.over = nil
	}
}

// removeIn deletes p below n, and says whether it was found and whether
// the points below n shrank by one (not if p was in over, or a point from
// over took its place).
func (r *ring) removeIn(n *rinner, p point, d int) (found, shrank bool) {
	i := slot(p.h, d)
	s := n.slots[i]
	switch {
	case s == nil:
		return false, false
	case !isLeaf(s):
		k := (*rinner)(s)
		if found, shrank = r.removeIn(k, p, d+1); !found {
			return false, false
		}
		if k.size <= ringLeaf/2 {
			store(&n.slots[i], makeLeaf(fold(k)))
		}
	default:
		var buf [ringLeaf + 1]point
		ps := points(s, &buf)
		j, in := r.find(ps, p)
		if !in {
			if d+1 == ringDepth {
				if _, ok := r.unspill(p.h, &p); ok {
					r.n.Add(-1)
					return true, false
				}
			}
			return false, false
		}
		r.n.Add(-1)
		found, shrank = true, true
		q, refill := point{}, false
		if d+1 == ringDepth {
			q, refill = r.unspill(p.h, nil)
		}
		ps = slices.Delete(ps, j, j+1)
		if refill { // the least of the rest, after all the leaf's
			ps = append(ps, q)
			shrank = false
		}
		if len(ps) == 0 {
			store(&n.slots[i], nil)
		} else {
			store(&n.slots[i], makeLeaf(ps))
		}
	}
	if shrank {
		n.size--
	}
	return found, shrank
}

// fold returns all the points below a small inner node, for one leaf.
func fold(n *rinner) []point {
	ps := make([]point, 0, n.size)
	var buf [ringLeaf + 1]point
	var walk func(n *rinner)
	walk = func(n *rinner) {
		for _, s := range n.slots {
			switch {
			case s == nil:
			case isLeaf(s):
				ps = append(ps, points(s, &buf)...)
			default:
				walk((*rinner)(s))
			}
		}
	}
	walk(n)
	return ps
}

// buildRing returns a ring of the entries' points, each entry's slot
// its index: points sorted by hash and ties in entry order, given entries
// in ID order.
func buildRing(ents []*entry, ps []point) *ring {
	r := &ring{}
	r.tab = make([]atomic.Pointer[entry], len(ents))
	for i, e := range ents {
		r.tab[i].Store(e)
	}
	if len(ents) > 0 {
		r.ents.Store(&r.tab[0])
		r.nent.Store(uint32(len(ents)))
	}
	r.root = r.buildNode(ps, 0)
	r.n.Store(int64(len(ps)))
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
			n.slots[i] = makeLeaf(ps[:min(j, ringLeaf)])
			if j > ringLeaf { // one hash, more points than a leaf holds
				n.size -= j - ringLeaf
				if r.over == nil {
					r.over = make(map[uint64][]point)
				}
				r.over[ps[0].h] = slices.Clone(ps[ringLeaf:j])
			}
		default:
			k := r.buildNode(ps[:j], d+1)
			n.slots[i] = unsafe.Pointer(k)
			n.size -= j - k.size
		}
		ps = ps[j:]
	}
	return n
}
