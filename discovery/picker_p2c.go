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

var _ Picker = (*P2C)(nil)

// NewP2C returns a power-of-two-choices picker over src.
func NewP2C(src Source, opts ...PickerOption) *P2C {
	return &P2C{base: newBase(src, opts, nil)}
}

// Pick returns the less loaded of two random instances, or
// ErrNoInstances.
func (p *P2C) Pick() (Picked, error) {
	t := p.current()
	n := len(t.ents)
	switch n {
	case 0:
		return Picked{}, ErrNoInstances
	case 1:
		return p.choose(t, 0), nil
	}
	a := rand.IntN(n)
	b := rand.IntN(n - 1)
	if b >= a {
		b++
	}
	ea, eb := &t.ents[a], &t.ents[b]
	ua, ub := p.usable(ea.h), p.usable(eb.h)
	switch {
	case ua && ub:
		if eb.h.inflight.Load() < ea.h.inflight.Load() {
			return p.take(eb), nil
		}
		return p.take(ea), nil
	case ua:
		return p.take(ea), nil
	case ub:
		return p.take(eb), nil
	default:
		return p.choose(t, a), nil
	}
}
