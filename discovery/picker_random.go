package discovery

import "math/rand/v2"

// Random picks a serving instance uniformly at random. It needs no shared
// counter, so it scales best across cores.
type Random struct {
	base
}

var _ Picker = (*Random)(nil)

// NewRandom returns a random picker over src.
func NewRandom(src Source, opts ...PickerOption) *Random {
	return &Random{base: newBase(src, opts, nil)}
}

// Pick returns a random instance, or ErrNoInstances.
func (p *Random) Pick() (Picked, error) {
	t := p.current()
	if len(t.ents) == 0 {
		return Picked{}, ErrNoInstances
	}
	// The package-level generator is per-thread and lock-free.
	return p.choose(t, rand.IntN(len(t.ents))), nil
}
