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
		// First j with cum[j] > pos.
		lo, hi := 0, len(n.cum)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if n.cum[m] <= pos {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo > 0 {
			pos -= n.cum[lo-1]
		}
		if s == 0 {
			return n.ents[lo]
		}
		n = n.kids[lo]
	}
}

func (v *vec) own(n *vnode, gen uint64) *vnode {
	if n.gen == gen {
		return n
	}
	c := &vnode{gen: gen}
	if n.ents != nil {
		c.ents = append(make([]*entry, 0, len(n.ents)+1), n.ents...)
	} else {
		c.kids = append(make([]*vnode, 0, len(n.kids)+1), n.kids...)
	}
	if v.weighted {
		c.cum = append(make([]uint64, 0, len(n.cum)+1), n.cum...)
	}
	return c
}

// sum recomputes n's running sums.
func (v *vec) sum(n *vnode) {
	if !v.weighted {
		return
	}
	var t uint64
	if n.ents != nil {
		n.cum = n.cum[:0]
		for _, e := range n.ents {
			t += e.weight
			n.cum = append(n.cum, t)
		}
		return
	}
	n.cum = n.cum[:0]
	for _, k := range n.kids {
		t += k.cum[len(k.cum)-1]
		n.cum = append(n.cum, t)
	}
}

// set replaces entry i (or re-sums its weight, given the same entry).
func (v *vec) set(gen uint64, i int, e *entry) { v.root = v.setAt(gen, v.root, v.shift, i, e) }

func (v *vec) setAt(gen uint64, n *vnode, s uint, i int, e *entry) *vnode {
	n = v.own(n, gen)
	if s == 0 {
		n.ents[i&vmask] = e
	} else {
		j := (i >> s) & vmask
		n.kids[j] = v.setAt(gen, n.kids[j], s-vbits, i, e)
	}
	v.sum(n)
	return n
}

// push appends e.
func (v *vec) push(gen uint64, e *entry) {
	if v.root == nil {
		v.root, v.shift = &vnode{gen: gen}, 0
	} else if v.n == 1<<(v.shift+vbits) {
		up := &vnode{gen: gen, kids: []*vnode{v.root}}
		v.sum(up)
		v.root, v.shift = up, v.shift+vbits
	}
	v.root = v.pushAt(gen, v.root, v.shift, v.n, e)
	v.n++
}

func (v *vec) pushAt(gen uint64, n *vnode, s uint, i int, e *entry) *vnode {
	if n == nil {
		n = &vnode{gen: gen}
	} else {
		n = v.own(n, gen)
	}
	if s == 0 {
		n.ents = append(n.ents, e)
	} else if j := (i >> s) & vmask; j == len(n.kids) {
		n.kids = append(n.kids, v.pushAt(gen, nil, s-vbits, i, e))
	} else {
		n.kids[j] = v.pushAt(gen, n.kids[j], s-vbits, i, e)
	}
	v.sum(n)
	return n
}

// pop drops the last entry.
func (v *vec) pop(gen uint64) {
	v.root = v.popAt(gen, v.root, v.shift, v.n-1)
	v.n--
	for v.root != nil && v.shift > 0 && len(v.root.kids) == 1 {
		v.root, v.shift = v.root.kids[0], v.shift-vbits
	}
	if v.n == 0 {
		v.root, v.shift = nil, 0
	}
}

func (v *vec) popAt(gen uint64, n *vnode, s uint, i int) *vnode {
	n = v.own(n, gen)
	if s == 0 {
		n.ents[len(n.ents)-1] = nil
		n.ents = n.ents[:len(n.ents)-1]
		if len(n.ents) == 0 {
			return nil
		}
	} else {
		j := (i >> s) & vmask
		if k := v.popAt(gen, n.kids[j], s-vbits, i); k != nil {
			n.kids[j] = k
		} else {
			n.kids[j] = nil
			n.kids = n.kids[:j]
			if j == 0 {
				return nil
			}
		}
	}
	v.sum(n)
	return n
}
