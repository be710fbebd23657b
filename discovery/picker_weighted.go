package discovery

import (
	"math"
	"sync/atomic"
)

// Weighted is a smooth weighted round-robin: over any run of W
// consecutive picks, where W is the sum of the serving instances'
// weights, each instance is picked exactly its weight's number of times
// (roster.Instance.EffectiveWeight), and its picks are spread evenly over
// the run instead of coming in bursts.
//
// nginx's smooth weighted round-robin gets this by updating every
// instance's current weight on each pick, which needs a lock. Weighted
// instead walks the weight line [0, W) with a stride of about W/φ (the
// golden ratio) coprime with W: a shared atomic counter c maps to the
// point c·stride mod W, which visits every point once per W picks and
// keeps consecutive points far apart; the point falls in the instance
// whose cumulative weight covers it (binary search). The result is the
// same exact proportions and a comparably smooth interleaving, lock-free.
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
	t.cum = make([]uint64, len(t.ents))
	var sum uint64
	for i, e := range t.ents {
		sum += e.weight
		t.cum[i] = sum
	}
	t.total = sum
	s := uint64(float64(sum) / math.Phi)
	s = max(s, 1)
	for gcd(s, sum) != 1 {
		s++
	}
	t.stride = s
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
