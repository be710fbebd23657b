package discovery

import (
	"math"
	"sync/atomic"
)

// Limits of the precomputed smooth sequence: beyond them (huge weight
// sums, thousands of weighted instances) Weighted falls back to the golden
// stride, which needs no per-snapshot memory.
const (
	maxSmoothSeq   = 1 << 16 // entries (int32) in one cycle
	maxSmoothSteps = 1 << 22 // cycle length × instances, the build cost
)

// Weighted is a smooth weighted round-robin over
// roster.Instance.EffectiveWeight: over every cycle of W picks, W being
// the sum of the serving instances' weights (divided by their greatest
// common divisor), each instance is picked exactly its weight's share, and
// its picks are spread over the cycle rather than bunched.
//
// nginx's smooth weighted round-robin gets this by updating every
// instance's current weight on each pick, which needs a lock. Weighted
// runs nginx's algorithm once per snapshot to precompute one cycle, and a
// pick is then an atomic counter increment indexing into it: the same
// sequence nginx would produce, lock-free. When a cycle would be too long
// to precompute (sums of weights beyond 65536, or very many instances with
// distinct weights), it walks the weight line [0, W) with a stride of
// about W/φ (the golden ratio) coprime with W instead: still exact per
// cycle, with gaps between an instance's picks up to a few times the ideal
// instead of nginx's one and a half.
type Weighted struct {
	base
	next atomic.Uint64
}

var _ Picker = (*Weighted)(nil)

// NewWeighted returns a smooth weighted round-robin picker over src.
func NewWeighted(src Source, opts ...PickerOption) *Weighted {
	return &Weighted{base: newBase(src, opts, buildWeighted)}
}

func buildWeighted(t *table) {
	var g uint64
	for _, e := range t.ents {
		g = gcd(e.weight, g)
	}
	t.cum = make([]uint64, len(t.ents))
	var sum uint64
	for i, e := range t.ents {
		sum += e.weight / g
		t.cum[i] = sum
	}
	t.total = sum
	if sum <= maxSmoothSeq && sum*uint64(len(t.ents)) <= maxSmoothSteps {
		t.seq = smoothCycle(t.ents, g, sum)
		return
	}
	s := max(uint64(float64(sum)/math.Phi), 1)
	for gcd(s, sum) != 1 {
		s++
	}
	t.stride = s
}

// smoothCycle runs nginx's smooth weighted round-robin for one cycle of
// total picks: each instance gains its weight, the leader is picked and
// loses the total.
func smoothCycle(ents []entry, g, total uint64) []int32 {
	cur := make([]int64, len(ents))
	seq := make([]int32, total)
	for k := range seq {
		best := 0
		for i := range ents {
			cur[i] += int64(ents[i].weight / g)
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		seq[k] = int32(best)
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
	t := p.current()
	if len(t.ents) == 0 {
		return Picked{}, ErrNoInstances
	}
	c := p.next.Add(1) - 1
	if t.seq != nil {
		return p.choose(t, int(t.seq[c%uint64(len(t.seq))])), nil
	}
	// Reduce c first so the product stays below 2^64: total is at most
	// instances × roster.MaxWeight.
	pos := (c % t.total) * t.stride % t.total
	// First i with cum[i] > pos.
	lo, hi := 0, len(t.cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.cum[m] <= pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return p.choose(t, lo), nil
}
