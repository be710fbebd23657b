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
// each next to its entry, and the vector the running sums of its chunks'. A point of the weight
// line [0, total) is then a binary search of the chunks' sums (a few
// cache lines every pick reads), and in the chunk an index: its weight
// cut in one bucket per two entries, each marking the entry its start
// falls in, so that the point's bucket leaves two or three entries to
// search, where a binary search of the chunk is ten dependent loads. The
// entry beside its sum spares a pick the miss of reading it from the chunk.
type vec struct {
	chunks [][]*entry // chunk k holds entries k*vchunk..; all but the last are full
	sums   [][]wsum   // weighted: sums[k][j] is the weight of chunk k's entries 0..j, and entry j
	marks  [][]uint16 // weighted: marks[k][b] is the entry of chunk k holding the start of its bucket b
	maxw   []uint64   // weighted: maxw[k] is the largest weight in chunk k
	tot    []uint64   // weighted: tot[k] is the weight of chunks 0..k
	owner  []uint64   // the generation that copied chunk k
	gen    uint64     // the generation that copied the arrays above
	n      int

	weighted bool
}

// wsum is a running sum of weights up to and including its entry.
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
	return v.tot[len(v.tot)-1]
}

// search returns the entry whose share of the weight line holds pos,
// 0 <= pos < total.
func (v *vec) search(pos uint64) *entry {
	k := above(v.tot, pos)
	if k > 0 {
		pos -= v.tot[k-1]
	}
	s, m := v.sums[k], v.marks[k]
	hi, lo := bits.Mul64(pos, uint64(len(m)))
	b, _ := bits.Div64(hi, lo, s[len(s)-1].sum) // pos's bucket
	j, end := int(m[b]), len(s)
	if b+1 < uint64(len(m)) {
		end = int(m[b+1]) + 1
	}
	return s[j+aboveSum(s[j:end], pos)].e
}

// maxWeight is the largest weight of an entry.
func (v *vec) maxWeight() uint64 {
	var m uint64
	for _, w := range v.maxw {
		m = max(m, w)
	}
	return m
}

// mark recomputes the buckets of chunk k and its largest weight.
func (v *vec) mark(k int) {
	s := v.sums[k]
	var prev, mw uint64
	for _, x := range s {
		mw, prev = max(mw, x.sum-prev), x.sum
	}
	v.maxw[k] = mw
	n := (len(s) + 1) / 2
	m := make([]uint16, 0, n)
	// The start of bucket b is b·w/n rounded down, stepped without a
	// division a bucket.
	w, un := s[len(s)-1].sum, uint64(n)
	step, rest := w/un, w%un
	var start, acc uint64
	j := 0
	for range n {
		for s[j].sum <= start {
			j++
		}
		m = append(m, uint16(j))
		start, acc = start+step, acc+rest
		if acc >= un {
			start, acc = start+1, acc-un
		}
	}
	v.marks[k] = m
}

// above returns the first j with sums[j] > pos, halving the range
// without a branch on the comparison (see rleaf.search).
func above(sums []uint64, pos uint64) int {
	base, n := 0, len(sums)
	for n > 1 {
		half := n >> 1
		_, over := bits.Sub64(pos, sums[base+half-1], 0) // pos < sums[...]
		base += half & (int(over) - 1)
		n -= half
	}
	if n == 1 && sums[base] <= pos {
		base++
	}
	return base
}

// aboveSum is above over a chunk's sums.
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
		v.marks = append(make([][]uint16, 0, len(v.marks)+1), v.marks...)
		v.maxw = append(make([]uint64, 0, len(v.maxw)+1), v.maxw...)
		v.tot = append(make([]uint64, 0, len(v.tot)+1), v.tot...)
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
		t = v.tot[k-1]
	}
	for ; k < len(v.chunks); k++ {
		if s := v.sums[k]; len(s) > 0 {
			t += s[len(s)-1].sum
		}
		v.tot[k] = t
	}
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
			v.marks = append(v.marks, nil)
			v.maxw = append(v.maxw, 0)
			v.tot = append(v.tot, 0)
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
			v.sums[k], v.marks[k] = nil, nil
			v.sums, v.marks, v.maxw, v.tot = v.sums[:k], v.marks[:k], v.maxw[:k], v.tot[:k]
		}
		return
	}
	if v.weighted {
		v.retotal(k)
	}
}
