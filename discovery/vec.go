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
// and of its groups of vgroup entries, and the vector the running sums of
// its chunks': a point of the weight line [0, total) is a binary search
// of the chunks' sums (a few cache lines, read by every pick) and two
// counts of the sums not above it, over a chunk's groups and then over
// one group, each a scan of four cache lines without a branch or a
// dependent load, where a binary search of a chunk is ten of them.
type vec struct {
	chunks [][]*entry // chunk k holds entries k*vchunk..; all but the last are full
	sums   [][]uint64 // weighted: sums[k][j] is the weight of chunk k's entries 0..j
	groups [][]uint64 // weighted: groups[k][g] is the weight of chunk k's groups 0..g
	tot    []uint64   // weighted: tot[k] is the weight of chunks 0..k
	owner  []uint64   // the generation that copied chunk k
	gen    uint64     // the generation that copied the arrays above
	n      int

	weighted bool
}

const (
	vbits  = 10
	vchunk = 1 << vbits
	vmask  = vchunk - 1
	vgroup = 32 // entries of a group, whose sums a pick scans
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
	j := notAbove(v.groups[k], pos) * vgroup
	s := v.sums[k]
	return v.chunks[k][j+notAbove(s[j:min(j+vgroup, len(s))], pos)]
}

// notAbove counts the sums not above pos: for running sums, the first
// j with sums[j] > pos.
func notAbove(sums []uint64, pos uint64) int {
	n := len(sums)
	for _, s := range sums {
		_, over := bits.Sub64(pos, s, 0) // pos < s
		n -= int(over)
	}
	return n
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

// ownTop makes the chunk arrays the generation's own.
func (v *vec) ownTop(gen uint64) {
	if v.gen == gen {
		return
	}
	v.gen = gen
	v.chunks = append(make([][]*entry, 0, len(v.chunks)+1), v.chunks...)
	v.owner = append(make([]uint64, 0, len(v.owner)+1), v.owner...)
	if v.weighted {
		v.sums = append(make([][]uint64, 0, len(v.sums)+1), v.sums...)
		v.groups = append(make([][]uint64, 0, len(v.groups)+1), v.groups...)
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
		v.sums[k] = append(make([]uint64, 0, size), v.sums[k]...)
		v.groups[k] = append(make([]uint64, 0, (size+vgroup-1)/vgroup), v.groups[k]...)
	}
}

// resum recomputes the running sums from entry i on.
func (v *vec) resum(i int) {
	if !v.weighted {
		return
	}
	k, j := i>>vbits, i&vmask
	c, s := v.chunks[k], v.sums[k]
	var t uint64
	if j > 0 {
		t = s[j-1]
	}
	for ; j < len(c); j++ {
		t += c[j].weight
		s[j] = t
	}
	g := v.groups[k][:0:cap(v.groups[k])]
	for j := vgroup - 1; j < len(s)+vgroup-1; j += vgroup {
		g = append(g, s[min(j, len(s)-1)])
	}
	v.groups[k] = g
	t = 0
	if k > 0 {
		t = v.tot[k-1]
	}
	for ; k < len(v.chunks); k++ {
		if s := v.sums[k]; len(s) > 0 {
			t += s[len(s)-1]
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
			v.groups = append(v.groups, nil)
			v.tot = append(v.tot, 0)
		}
	}
	v.own(gen, k)
	v.chunks[k] = append(v.chunks[k], e)
	if v.weighted {
		v.sums[k] = append(v.sums[k], 0)
	}
	v.n++
	v.resum(v.n - 1)
}

// pop drops the last entry.
func (v *vec) pop(gen uint64) {
	v.n--
	k := v.n >> vbits
	v.own(gen, k)
	c := v.chunks[k]
	c[len(c)-1] = nil
	v.chunks[k] = c[:len(c)-1]
	if v.weighted {
		v.sums[k] = v.sums[k][:len(c)-1]
	}
	if len(c) == 1 {
		v.chunks[k] = nil
		v.chunks, v.owner = v.chunks[:k], v.owner[:k]
		if v.weighted {
			v.sums[k], v.groups[k] = nil, nil
			v.sums, v.groups, v.tot = v.sums[:k], v.groups[:k], v.tot[:k]
		}
		return
	}
	if v.weighted {
		v.resum(v.n - 1)
	}
}
