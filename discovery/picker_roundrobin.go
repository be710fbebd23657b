package discovery

import "sync/atomic"

// RoundRobin picks serving instances in turn. Ejected instances are
// skipped: their turn goes to the next one.
type RoundRobin struct {
	base
	next atomic.Uint64
}

const (
	kindRoundRobin = "roundrobin"
	kindRandom     = "random"
	kindWeighted   = "weighted"
	kindP2C        = "p2c"
	kindHash       = "hash"
)

// NewRoundRobin returns a round-robin picker over src.
func NewRoundRobin(src Source, opts ...PickerOption) (*RoundRobin, error) {
	p := &RoundRobin{}
	if err := p.init(kindRoundRobin, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// Pick returns the next instance, or ErrNoInstances.
func (p *RoundRobin) Pick() (Picked, error) {
	st := p.current()
	n := uint64(st.vec.n)
	if n == 0 {
		return Picked{}, ErrNoInstances
	}
	return p.choose(st, int((p.next.Add(1)-1)%n)), nil
}
