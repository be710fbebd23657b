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
// (ties by instance ID), held by a radix tree over the hash's bits. Its
// root is a table indexed by the hash's top bits, sized when the ring is
// built to a few points a slot, so a lookup usually reads the table and
// then one small leaf, where a tree of 16-way nodes read five or six
// nodes at 10 million points. Below the table, a full leaf splits into an
// inner node over the next 4 bits, and an inner node that shrinks to half
// a leaf folds back into one. Hashes are uniform, so few slots need one.
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
	top  []unsafe.Pointer // the root table: slots as an inner node's
	bits uint             // of the hash the table indexes by
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
	ringBits = 4
	ringFan  = 1 << ringBits // children of an inner node
	ringLeaf = 24            // points of a leaf
	// A table is built for ringSlot points a slot (half as many to as
	// many, on average); the picker builds the ring anew once it has 8
	// times as many, or a quarter as many.
	ringSlot                 = ringLeaf / 3
	ringMinBits, ringMaxBits = ringBits, 26
	ringDepth                = 1 + (64-ringMinBits)/ringBits // levels at most
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

// search returns the index of the first of the k hashes at p not below h,
// k if none. It halves the range without branching on the comparison,
// which a hash makes unpredictable: the borrow of a subtraction says which
// half to keep.
func search(p unsafe.Pointer, k int, h uint64) int {
	base, n := 0, k
	for n > 1 {
		half := n >> 1
		_, below := bits.Sub64(*(*uint64)(unsafe.Add(p, 8*(base+half-1))), h, 0)
		base += half & -int(below)
		n -= half
	}
	if n == 1 && *(*uint64)(unsafe.Add(p, 8*base)) < h {
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

// newRing returns an empty ring whose table suits the given number of
// points.
func newRing(points int) *ring {
	b := uint(bits.Len(uint(points / ringSlot)))
	b = min(max(b, ringMinBits), ringMaxBits)
	return &ring{top: make([]unsafe.Pointer, 1<<b), bits: b}
}

// slot is where hash h goes at depth d: in the table at depth 0, else in
// an inner node, by the 4 bits after those of the levels above (fewer at
// the last level when the table's bits are not a multiple of 4).
func (r *ring) slot(h uint64, d int) int {
	if d == 0 {
		return int(h >> (64 - r.bits))
	}
	return int(h << (r.bits + ringBits*uint(d-1)) >> (64 - ringBits))
}

// last reports whether a leaf in a slot at depth d uses every bit of its
// hashes, so cannot split.
func (r *ring) last(d int) bool { return r.bits+ringBits*uint(d) >= 64 }

// skewed reports whether the ring has grown or shrunk so far from the
// size its table was made for that it is worth building anew.
func (r *ring) skewed() bool {
	n := r.n.Load()
	return n>>r.bits > 8*ringSlot || r.bits > ringMinBits && n < int64(ringSlot<<r.bits)/4
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
	s := load(&r.top[h>>(64-r.bits)])
	for d := 1; s != nil; d++ {
		if isLeaf(s) {
			// The leaf's words read by address: as a slice, their count
			// would cost a multiplication checked for overflow, and each
			// read a bounds check, a fifth of a small leaf's search.
			w := unsafe.Add(s, -1)
			k := int(*(*uint64)(w))
			hs := unsafe.Add(w, 8)
			if j := search(hs, k, h); j < k {
				st := *(*uint64)(unsafe.Add(hs, 8*(k+j)))
				return point{*(*uint64)(unsafe.Add(hs, 8*j)), uint32(st >> 32), uint32(st)}, true
			}
			break
		}
		s = load(&(*rinner)(s).slots[r.slot(h, d)])
	}
	return r.after(h)
}

// after is lookup when h is past the last point of its leaf (or its slot
// is empty): the first point of the next subtree, going up the path again.
func (r *ring) after(h uint64) (point, bool) {
	var path [ringDepth]*rinner // path[d] holds the slot at depth d; the table's is nil
	s := load(&r.top[r.slot(h, 0)])
	d := 0
	for s != nil && !isLeaf(s) {
		d++
		path[d] = (*rinner)(s)
		s = load(&path[d].slots[r.slot(h, d)])
	}
	for ; d > 0; d-- {
		n := path[d]
		for j := r.slot(h, d) + 1; j < ringFan; j++ {
			if s := load(&n.slots[j]); s != nil {
				return first(s)
			}
		}
	}
	if p, ok := r.first(r.slot(h, 0) + 1); ok {
		return p, true
	}
	return r.first(0) // round past the last point
}

// first returns the least point in the table's slots from i on; false if
// it found none.
func (r *ring) first(i int) (point, bool) {
	for ; i < len(r.top); i++ {
		if s := load(&r.top[i]); s != nil {
			return first(s)
		}
	}
	return point{}, false
}

// first returns the least point below slot value s; false if it found
// none (the subtree emptied as it was read).
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
	ss := make([]unsafe.Pointer, len(hs))
	for i, h := range hs {
		ss[i] = r.top[r.slot(h, 0)]
	}
	sum := 0
	for d, more := 0, true; more; d++ {
		more = false
		for i, s := range ss {
			switch {
			case s == nil:
			case isLeaf(s):
				w := words(s)
				sum += int(w[len(w)/4]) + int(w[len(w)/2]) + int(w[len(w)-1])
				ss[i] = nil
			default:
				n := (*rinner)(s)
				sum += n.size
				ss[i] = n.slots[r.slot(hs[i], d+1)]
				more = true
			}
		}
	}
	return sum
}

// insert adds p, which is not on the ring.
func (r *ring) insert(p point) {
	r.insertAt(&r.top[r.slot(p.h, 0)], p, 0)
	r.n.Add(1)
}

// insertAt adds p at slot sp, at depth d, and says whether the points
// there grew by one (not if p, or the point it displaced, went to over).
func (r *ring) insertAt(sp *unsafe.Pointer, p point, d int) bool {
	s := *sp
	switch {
	case s == nil:
		store(sp, makeLeaf([]point{p}))
		return true
	case !isLeaf(s):
		n := (*rinner)(s)
		grew := r.insertAt(&n.slots[r.slot(p.h, d+1)], p, d+1)
		if grew {
			n.size++
		}
		return grew
	}
	var buf [ringLeaf + 1]point
	ps := points(s, &buf)
	j, _ := r.find(ps, p)
	full := len(ps) == ringLeaf
	ps = slices.Insert(ps, j, p)
	switch {
	case !full:
		store(sp, makeLeaf(ps))
		return true
	case r.last(d):
		// A full leaf of one hash (all its bits are used): it keeps the
		// least IDs, the others wait in over.
		if p = ps[ringLeaf]; j < ringLeaf {
			store(sp, makeLeaf(ps[:ringLeaf]))
		}
		r.spill(p)
		return false
	default: // full: the slot becomes an inner node over the next bits
		n := r.buildNode(ps, d+1)
		store(sp, unsafe.Pointer(n))
		return n.size == len(ps)
	}
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
	r.removeAt(&r.top[r.slot(p.h, 0)], p, 0)
	if r.n.Load() == 0 {
		r.over = nil
	}
}

// removeAt deletes p from slot sp, at depth d, and says whether it was
// found and whether the points there shrank by one (not if p was in over,
// or a point from over took its place).
func (r *ring) removeAt(sp *unsafe.Pointer, p point, d int) (found, shrank bool) {
	s := *sp
	switch {
	case s == nil:
		return false, false
	case !isLeaf(s):
		n := (*rinner)(s)
		if found, shrank = r.removeAt(&n.slots[r.slot(p.h, d+1)], p, d+1); !found {
			return false, false
		}
		if shrank {
			n.size--
		}
		if n.size <= ringLeaf/2 {
			store(sp, makeLeaf(fold(n)))
		}
		return found, shrank
	}
	var buf [ringLeaf + 1]point
	ps := points(s, &buf)
	j, in := r.find(ps, p)
	if !in {
		if r.last(d) {
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
	if r.last(d) {
		q, refill = r.unspill(p.h, nil)
	}
	ps = slices.Delete(ps, j, j+1)
	if refill { // the least of the rest, after all the leaf's
		ps = append(ps, q)
		shrank = false
	}
	if len(ps) == 0 {
		store(sp, nil)
	} else {
		store(sp, makeLeaf(ps))
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
	r := newRing(len(ps))
	r.tab = make([]atomic.Pointer[entry], len(ents))
	for i, e := range ents {
		r.tab[i].Store(e)
	}
	if len(ents) > 0 {
		r.ents.Store(&r.tab[0])
		r.nent.Store(uint32(len(ents)))
	}
	r.fill(r.top, ps, 0)
	r.n.Store(int64(len(ps)))
	return r
}

// buildNode returns an inner node at depth d over sorted points.
func (r *ring) buildNode(ps []point, d int) *rinner {
	n := new(rinner)
	n.size = r.fill(n.slots[:], ps, d)
	return n
}

// fill puts sorted points in the empty slots of depth d and returns how
// many it put there, over excepted.
func (r *ring) fill(slots []unsafe.Pointer, ps []point, d int) int {
	size := len(ps)
	for len(ps) > 0 {
		i := r.slot(ps[0].h, d)
		j := 1
		for j < len(ps) && r.slot(ps[j].h, d) == i {
			j++
		}
		switch {
		case j <= ringLeaf || r.last(d):
			slots[i] = makeLeaf(ps[:min(j, ringLeaf)])
			if j > ringLeaf { // one hash, more points than a leaf holds
				size -= j - ringLeaf
				if r.over == nil {
					r.over = make(map[uint64][]point)
				}
				r.over[ps[0].h] = slices.Clone(ps[ringLeaf:j])
			}
		default:
			n := r.buildNode(ps[:j], d+1)
			slots[i] = unsafe.Pointer(n)
			size -= j - n.size
		}
		ps = ps[j:]
	}
	return size
}
