package discovery

import "math/rand/v2"

// P2C is power-of-two-choices on in-flight calls: it samples two serving
// instances at random and takes the one with fewer calls in flight
// through this picker (picks not yet Done). It adapts to slow instances
// without any load reports, and unlike "least loaded" it does not send
// every concurrent caller to the same instance.
type P2C struct {
	base
}

// NewP2C returns a power-of-two-choices picker over src.
func NewP2C(src Source, opts ...PickerOption) (*P2C, error) {
	p := &P2C{}
	if err := p.init(kindP2C, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Pick returns the less loaded of two random instances, or
// ErrNoInstances.
func (p *P2C) Pick() (Picked, error) {
	st := p.current()
	n := st.vec.n
	switch n {
	case 0:
		return Picked{}, ErrNoInstances
	case 1:
		return p.choose(st, 0), nil
	}
	a := rand.IntN(n)
	b := rand.IntN(n - 1)
	if b >= a {
		b++
	}
	ea, eb := st.vec.get(a), st.vec.get(b)
	ua, ub := p.usable(ea), p.usable(eb)
	switch {
	case ua && ub:
		if eb.inflight() < ea.inflight() {
			return p.take(eb), nil
		}
		return p.take(ea), nil
	case ua:
		return p.take(ea), nil
	case ub:
		return p.take(eb), nil
	default:
		return p.choose(st, a), nil
	}
}
