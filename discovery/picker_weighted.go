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
// through prefix sums kept in the picker's vector, with a stride coprime
// with W and just above the largest weight (see lapStride): a change costs
// O(log n), each cycle is still exact, successive picks read neighbouring
// memory as round-robin's do, and the gaps between an instance's picks stay
// within a few times the ideal W/w. When one instance holds more than an
// eighth of W, the stride is about W/φ (the golden ratio) instead.
type Weighted struct {
	base
	next atomic.Uint64 // picks, for the precomputed cycle
	pos  atomic.Uint64 // the stride walk's position on [0, W)
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
	s := lapStride(w, st.vec.maxWeight())
	if s == 0 {
		s = max(uint64(float64(w)/math.Phi), 1)
		for gcd(s, w) != 1 {
			s++
		}
	}
	st.total, st.stride = w, s
}

// lapStride returns a stride for the walk of the weight line [0, w) that
// keeps picks near each other, or 0 if the largest weight, mw, is too
// large a share of w for one.
//
// The walk visits c·s mod w, which over w picks is every point once if s
// is coprime with w: the cycle is exact whatever s is. With a small s,
// successive picks move forward through the prefix sums a few entries at
// a time, as round-robin's do, instead of jumping across them; and with
// s ≥ mw no instance is picked twice in a row within a lap. Each lap
// (one pass over the line) starts δ = −w mod s further into the stride, so
// an instance of weight x is picked in x of every s laps, and those laps
// are evenly spread when δ/s is a badly approximable rotation: one with
// small partial quotients in its continued fraction (the three-gap
// theorem). Of the first strides from mw up, it takes the one with the
// smallest quotients.
func lapStride(w, mw uint64) uint64 {
	if mw == 0 || mw > w/8 {
		return 0
	}
	const tries = 48
	best, bestq := uint64(0), uint64(math.MaxUint64)
	for s, n := mw, 0; n < tries && s < w/2; s++ {
		r := w % s
		if s > 1 && gcd(s, r) != 1 {
			continue
		}
		n++
		if q := maxQuotient(s-r, s); q < bestq {
			best, bestq = s, q
			if q <= 2 {
				break
			}
		}
	}
	return best
}

// maxQuotient is the largest partial quotient of a/b's continued
// fraction, 0 < a ≤ b (0 for a = b: no rotation at all).
func maxQuotient(a, b uint64) uint64 {
	var m uint64
	for a != 0 && a != b {
		m = max(m, b/a)
		a, b = b%a, a
	}
	return m
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
		c = p.step(st)
		e = st.vec.search(c)
	}
	if p.usable(e) {
		return p.take(e), nil
	}
	return p.choose(st, int(c%uint64(st.vec.n))), nil
}

// step moves the walk's position a stride on and returns it: a
// compare-and-swap rather than an add, so that the position stays below
// the total without a division a pick.
func (p *Weighted) step(st *state) uint64 {
	for {
		old := p.pos.Load()
		pos := old + st.stride
		if pos >= st.total {
			pos -= st.total
			if pos >= st.total { // a position from a state with a larger total
				pos %= st.total
			}
		}
		if p.pos.CompareAndSwap(old, pos) {
			return pos
		}
	}
}
