package discovery

// vec is a persistent vector of a picker's entries: a 32-way trie indexed
// by position, so reading entry i is a few shifts and loads, and setting,
// appending or dropping the last entry copies one path. Entries have no
// order: a picker removes one by moving the last into its place. With
// weights, each node keeps the running sums of its children's weights, so
// a point of the weight line [0, total) is found in O(log n).
type vec struct {
	root     *vnode
	n        int
	shift    uint // 5 × (height - 1)
	weighted bool
}

type vnode struct {
	gen  uint64
	kids []*vnode // inner node
	ents []*entry // leaf
	cum  []uint64 // weighted: cum[i] is the weight of children (or entries) 0..i
}

const (
	vbits  = 5
	vwidth = 1 << vbits
	vmask  = vwidth - 1
)

// get returns entry i, 0 <= i < n.
func (v *vec) get(i int) *entry {
	n := v.root
	for s := v.shift; s > 0; s -= vbits {
		n = n.kids[(i>>s)&vmask]
	}
	return n.ents[i&vmask]
}

// total is the sum of the weights.
func (v *vec) total() uint64 {
	if v.root == nil || len(v.root.cum) == 0 {
		return 0
	}
	return v.root.cum[len(v.root.cum)-1]
}

// search returns the entry whose share of the weight line holds pos,
// 0 <= pos < total.
func (v *vec) search(pos uint64) *entry {
	n := v.root
	for s := v.shift; ; s -= vbits {
		lo := above(n.cum, pos)
		if lo > 0 {
			pos -= n.cum[lo-1]
		}
		if s == 0 {
			return n.ents[lo]
		}
		n = n.kids[lo]
	}
}

// above returns the first j with cum[j] > pos.
func above(cum []uint64, pos uint64) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] <= pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
