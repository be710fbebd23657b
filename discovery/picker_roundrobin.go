package discovery

import "sync/atomic"

// RoundRobin picks serving instances in turn, in ID order. Ejected
// instances are skipped (their turn goes to the next one).
type RoundRobin struct {
	base
	next atomic.Uint64
}

var _ Picker = (*RoundRobin)(nil)

// NewRoundRobin returns a round-robin picker over src.
func NewRoundRobin(src Source, opts ...PickerOption) *RoundRobin {
	return &RoundRobin{base: newBase(src, opts, nil)}
}

// Pick returns the next instance, or ErrNoInstances.
func (p *RoundRobin) Pick() (Picked, error) {
	t := p.current()
	n := uint64(len(t.ents))
	if n == 0 {
		return Picked{}, ErrNoInstances
	}
	return p.choose(t, int((p.next.Add(1)-1)%n)), nil
}
