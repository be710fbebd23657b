package discovery

import (
	"math"
	"slices"
	"strings"
	"sync/atomic"
)

// Weighted is a smooth weighted round-robin over
// roster.Instance.EffectiveWeight: over every cycle of W picks, W being the
// sum of the serving instances' weights, each instance is picked exactly
// its weight's share, and its picks are spread over the cycle rather than
// bunched.
//
// For a small service (the cycle, with weights divided by their greatest
// common divisor, times the instances, up to 8192) it precomputes, at each
// change, one cycle of nginx's smooth weighted round-robin over the
// instances in ID order, and a pick is an atomic counter indexing into it:
// nginx's sequence, lock-free. Beyond, it walks the weight line [0, W)
// with a stride of about W/φ (the golden ratio) coprime with W, through
// prefix sums kept in the picker's vector: a change costs O(log n), and
// each cycle is still exact, with gaps between an instance's picks within
// a few times the ideal.
type Weighted struct {
	base
	next atomic.Uint64 // picks, for the precomputed cycle
	pos  atomic.Uint64 // the stride walk's position, before reduction mod W
}

// Limits of the precomputed cycle: beyond them a change would cost more
// than the stride walk's O(log n).
const (
	maxSmoothInstances = 512
	maxSmoothSteps     = 1 << 13 // cycle length × instances, the build cost
)

// NewWeighted returns a smooth weighted round-robin picker over src.
func NewWeighted(src Source, opts ...PickerOption) (*Weighted, error) {
	p := &Weighted{}
	if err := p.init(kindWeighted, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// deriveWeighted precomputes the cycle, or the stride, for a new state.
func deriveWeighted(st *state) {
	st.seq, st.total, st.stride = nil, 0, 0
	if st.vec.n == 0 {
		return
	}
	if st.vec.n <= maxSmoothInstances {
		ents := make([]*entry, st.vec.n)
		var g uint64
		for i := range ents {
			ents[i] = st.vec.get(i)
			g = gcd(ents[i].weight, g)
		}
		if cycle := st.vec.total() / g; cycle*uint64(len(ents)) <= maxSmoothSteps {
			slices.SortFunc(ents, func(a, b *entry) int { return strings.Compare(a.id, b.id) })
			st.seq = smoothCycle(ents, g, cycle)
			return
		}
	}
	w := st.vec.total()
	s := max(uint64(float64(w)/math.Phi), 1)
	for gcd(s, w) != 1 {
		s++
	}
	st.total, st.stride = w, s
}

// smoothCycle runs nginx's smooth weighted round-robin for one cycle of
// total picks: each instance gains its weight, the leader is picked and
// loses the total.
func smoothCycle(ents []*entry, g, total uint64) []*entry {
	cur := make([]int64, len(ents))
	seq := make([]*entry, total)
	for k := range seq {
		best := 0
		for i, e := range ents {
			cur[i] += int64(e.weight / g)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		seq[k] = ents[best]
	}
	return seq
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick returns the next instance by weight, or ErrNoInstances.
func (p *Weighted) Pick() (Picked, error) {
	st := p.current()
	if st.vec.n == 0 {
		return Picked{}, ErrNoInstances
	}
	var e *entry
	var c uint64
	if st.seq != nil {
		c = p.next.Add(1) - 1
		e = st.seq[c%uint64(len(st.seq))]
	} else {
		// Each pick moves the position a stride on: one division a pick.
		// (The sum wraps around 2^64 after billions of picks; that pick
		// is off its place once.)
		c = p.pos.Add(st.stride)
		e = st.vec.search(c % st.total)
	}
	if p.usable(e) {
		return p.take(e), nil
	}
	return p.choose(st, int(c%uint64(st.vec.n))), nil
}
