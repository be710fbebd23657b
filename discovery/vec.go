package discovery

import "math/bits"

// vec is a persistent vector of a picker's entries: chunks of up to
// vchunk entries under one small array of chunks, copied on write. Reading
// entry i is two loads; setting, appending or dropping the last entry
// copies one chunk (8 KiB at most) and the chunk array, which is a few
// microseconds at any size and keeps a pick to two cache lines of the
// vector, where a deeper tree costs a miss a level. Entries have no order:
// a picker removes one by moving the last into its place.
//
// With weights, each chunk keeps the running sums of its entries' weights,
// each next to its entry, and the vector the running sums of its chunks'.
// Both levels have an index of buckets: the weight cut in equal buckets,
// each marking the chunk (or the entry) its start falls in. A point of the
// weight line [0, total) is then found with no binary search over more
// than a few items: its bucket, a multiplication by a reciprocal, leaves
// one or two chunks, and in the chunk two to five entries, where binary
// searches are dependent loads, several a level. The entry beside its sum
// spares a pick the miss of reading it from the chunk.
type vec struct {
	chunks [][]*entry // chunk k holds entries k*vchunk..; all but the last are full
	sums   [][]wsum   // weighted: sums[k][j] is the weight of chunk k's entries 0..j, and entry j
	idx    []buckets  // weighted: chunk k's index of its entries
	tot    []wsum     // weighted: tot[k].sum is the weight of chunks 0..k
	top    buckets    // weighted, over two chunks or more: the index of the chunks
	owner  []uint64   // the generation that copied chunk k
	gen    uint64     // the generation that copied the arrays above
	n      int

	weighted bool
}

// buckets indexes a run of running sums, w in all: bucket b of
// len(marks) starts at ⌊b·w/len(marks)⌋, and marks[b] is the item whose
// share holds that start.
type buckets struct {
	marks []uint16
	recip uint64 // ⌊2^64·len(marks)/w⌋, or 0 for one bucket of weight 1
	maxw  uint64 // the largest weight of an item
}

// near returns the items that may hold pos, 0 <= pos < w, among n: the
// reciprocal's bucket is pos's or the one before.
func (x *buckets) near(pos uint64, n int) (lo, hi int) {
	b, _ := bits.Mul64(pos, x.recip)
	lo, hi = int(x.marks[b]), n
	if b+2 < uint64(len(x.marks)) {
		hi = int(x.marks[b+2]) + 1
	}
	return lo, hi
}

// index builds nb buckets over sums.
func index(x *buckets, nb int, sums []wsum) {
	w := sums[len(sums)-1].sum
	m := make([]uint16, 0, nb) // fresh: earlier states may read the old marks
	// The start of bucket b is b·w/nb rounded down, stepped without a
	// division a bucket.
	un := uint64(nb)
	step, rest := w/un, w%un
	var start, acc uint64
	j := 0
	for range nb {
		for sums[j].sum <= start {
			j++
		}
		m = append(m, uint16(j))
		start, acc = start+step, acc+rest
		if acc >= un {
			start, acc = start+1, acc-un
		}
	}
	x.marks, x.recip = m, 0
	if un < w {
		x.recip, _ = bits.Div64(un, 0, w)
	}
}

// wsum is a running sum of weights up to and including its entry (none
// in the chunks' sums).
type wsum struct {
	sum uint64
	e   *entry
}

const (
	vbits  = 10
	vchunk = 1 << vbits
	vmask  = vchunk - 1
)

// get returns entry i, 0 <= i < n.
func (v *vec) get(i int) *entry { return v.chunks[i>>vbits][i&vmask] }

// total is the sum of the weights.
func (v *vec) total() uint64 {
	if len(v.tot) == 0 {
		return 0
	}
	return v.tot[len(v.tot)-1].sum
}

// search returns the entry whose share of the weight line holds pos,
// 0 <= pos < total.
func (v *vec) search(pos uint64) *entry {
	k := 0
	if len(v.tot) > 1 {
		lo, hi := v.top.near(pos, len(v.tot)-1)
		k = lo + aboveSum(v.tot[lo:hi], pos)
		if k > 0 {
			pos -= v.tot[k-1].sum
		}
	}
	s := v.sums[k]
	lo, hi := v.idx[k].near(pos, len(s))
	return s[lo+aboveSum(s[lo:hi], pos)].e
}

// maxWeight is the largest weight of an entry.
func (v *vec) maxWeight() uint64 {
	var m uint64
	for k := range v.idx {
		m = max(m, v.idx[k].maxw)
	}
	return m
}

// mark recomputes the index of chunk k: a bucket per two entries.
func (v *vec) mark(k int) {
	s := v.sums[k]
	var prev, mw uint64
	for _, x := range s {
		mw, prev = max(mw, x.sum-prev), x.sum
	}
	x := buckets{maxw: mw}
	index(&x, (len(s)+1)/2, s)
	v.idx[k] = x
}

// retop recomputes the index of the chunks: four buckets a chunk, so that
// a bucket rarely spans more than one chunk's end.
func (v *vec) retop() {
	v.top = buckets{}
	if len(v.tot) > 1 {
		index(&v.top, 4*len(v.tot), v.tot)
	}
}

// aboveSum returns the first j with sums[j].sum > pos, halving the range
// without a branch on the comparison (see rleaf.search).
func aboveSum(sums []wsum, pos uint64) int {
	base, n := 0, len(sums)
	for n > 1 {
		half := n >> 1
		_, over := bits.Sub64(pos, sums[base+half-1].sum, 0)
		base += half & (int(over) - 1)
		n -= half
	}
	if n == 1 && sums[base].sum <= pos {
		base++
	}
	return base
}

// ownTop makes the chunk arrays the generation's own.
func (v *vec) ownTop(gen uint64) {
	if v.gen == gen {
		return
	}
	v.gen = gen
	v.chunks = append(make([][]*entry, 0, len(v.chunks)+1), v.chunks...)
	v.owner = append(make([]uint64, 0, len(v.owner)+1), v.owner...)
	if v.weighted {
		v.sums = append(make([][]wsum, 0, len(v.sums)+1), v.sums...)
		v.idx = append(make([]buckets, 0, len(v.idx)+1), v.idx...)
		v.tot = append(make([]wsum, 0, len(v.tot)+1), v.tot...)
	}
}

// own makes chunk k the generation's own, with room for one more entry.
func (v *vec) own(gen uint64, k int) {
	v.ownTop(gen)
	if v.owner[k] == gen {
		return
	}
	v.owner[k] = gen
	c := v.chunks[k]
	size := min(max(2*len(c), 4), vchunk)
	v.chunks[k] = append(make([]*entry, 0, size), c...)
	if v.weighted {
		v.sums[k] = append(make([]wsum, 0, size), v.sums[k]...)
	}
}

// resum brings the running sums from entry i on up to date with entry
// i, which is all that changed (it, or its weight): adding the difference
// to the sums after it reads no other entry.
func (v *vec) resum(i int) {
	if !v.weighted {
		return
	}
	k, j := i>>vbits, i&vmask
	s := v.sums[k]
	var before uint64
	if j > 0 {
		before = s[j-1].sum
	}
	e := v.chunks[k][j]
	s[j].e = e
	d := before + e.weight - s[j].sum // new weight - old, wrapping
	for ; j < len(s); j++ {
		s[j].sum += d
	}
	v.retotal(k)
}

// retotal brings the buckets of chunk k and the chunks' sums from k on up
// to date with chunk k's sums.
func (v *vec) retotal(k int) {
	v.mark(k)
	var t uint64
	if k > 0 {
		t = v.tot[k-1].sum
	}
	for ; k < len(v.chunks); k++ {
		if s := v.sums[k]; len(s) > 0 {
			t += s[len(s)-1].sum
		}
		v.tot[k].sum = t
	}
	v.retop()
}

// set replaces entry i (or re-sums its weight, given the same entry).
func (v *vec) set(gen uint64, i int, e *entry) {
	k := i >> vbits
	v.own(gen, k)
	v.chunks[k][i&vmask] = e
	v.resum(i)
}

// push appends e.
func (v *vec) push(gen uint64, e *entry) {
	v.ownTop(gen)
	k := v.n >> vbits
	if k == len(v.chunks) {
		v.chunks = append(v.chunks, nil)
		v.owner = append(v.owner, 0)
		if v.weighted {
			v.sums = append(v.sums, nil)
			v.idx = append(v.idx, buckets{})
			v.tot = append(v.tot, wsum{})
		}
	}
	v.own(gen, k)
	v.chunks[k] = append(v.chunks[k], e)
	v.n++
	if v.weighted {
		s := v.sums[k]
		if len(s) > 0 {
			s = append(s, wsum{sum: s[len(s)-1].sum}) // weight 0 so far
		} else {
			s = append(s, wsum{})
		}
		v.sums[k] = s
		v.resum(v.n - 1)
	}
}

// pop drops the last entry.
func (v *vec) pop(gen uint64) {
	v.n--
	k := v.n >> vbits
	v.ownTop(gen)
	c := v.chunks[k]
	// A chunk shared with earlier states is cut short without a copy:
	// whatever writes to it later copies it first.
	if v.owner[k] == gen {
		c[len(c)-1] = nil
		if v.weighted {
			v.sums[k][len(c)-1].e = nil
		}
	}
	v.chunks[k] = c[:len(c)-1]
	if v.weighted {
		v.sums[k] = v.sums[k][:len(c)-1]
	}
	if len(c) == 1 {
		v.chunks[k] = nil
		v.chunks, v.owner = v.chunks[:k], v.owner[:k]
		if v.weighted {
			v.sums[k], v.idx[k] = nil, buckets{}
			v.sums, v.idx, v.tot = v.sums[:k], v.idx[:k], v.tot[:k]
			v.retop()
		}
		return
	}
	if v.weighted {
		v.retotal(k)
	}
}
