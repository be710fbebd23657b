package discovery

import "math/rand/v2"

// Random picks a serving instance uniformly at random. It needs no shared
// counter, so it scales best across cores.
type Random struct {
	base
}

// NewRandom returns a random picker over src.
func NewRandom(src Source, opts ...PickerOption) (*Random, error) {
	p := &Random{}
	if err := p.init(kindRandom, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Pick returns a random instance, or ErrNoInstances.
func (p *Random) Pick() (Picked, error) {
	st := p.current()
	if st.vec.n == 0 {
		return Picked{}, ErrNoInstances
	}
	// The package-level generator is per-thread and lock-free.
	return p.choose(st, rand.IntN(st.vec.n)), nil
}
