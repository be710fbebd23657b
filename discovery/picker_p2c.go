package discovery

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterkit/roster"
)

// DefaultLatencyDecay is how fast P2C's latency average forgets: a sample
// as old as this weighs 1/e of a new one.
const DefaultLatencyDecay = 10 * time.Second

// P2C is power of two choices: it samples two serving instances at random
// and takes the less loaded. Load is the calls in flight through this
// picker (picks not yet Done) and, once calls' latencies are reported with
// Observe, the expected wait: (in flight + 1) × the instance's latency, a
// moving average that decays with time (WithLatencyDecay). It adapts to
// slow instances without load reports, and unlike "least loaded" it does
// not send every concurrent caller to the same instance.
//
// An instance whose latency is older than a tenth of the decay gets the
// next call it is sampled for, one such probe per tenth of the decay, so
// that a slow instance that turned fast again is noticed though the average
// kept it out; its average then takes about decay × ln(slow/fast) to come
// down. Calls of its own in flight do not stop a probe: a long stream must
// not keep an instance that was once slow from being measured again.
type P2C struct {
	base
	decay int64 // nanoseconds

	// Latencies by entry, once Observe has reported one: Pick reads them
	// with one lookup per sampled instance and no lock.
	observed atomic.Bool
	clock    atomic.Int64 // the time of the last Observe: Pick reads no clock
	lat      sync.Map     // *entry → *latency
	lmu      sync.Mutex
	ids      map[string]*entry // the entries in lat, guarded by lmu
	pruned   atomic.Pointer[node]
}

// latency is one instance's moving average of call latency.
type latency struct {
	ewma  atomic.Int64 // nanoseconds, ≥ 1 once set
	at    atomic.Int64 // when it was last updated, Unix nanoseconds
	n     atomic.Int64 // samples
	probe atomic.Int64 // when a pick last claimed a probe of it
}

// warmSamples are the first samples of an instance, averaged at least as
// a plain mean.
const warmSamples = 16

// NewP2C returns a power-of-two-choices picker over src.
func NewP2C(src Source, opts ...PickerOption) (*P2C, error) {
	p := &P2C{decay: int64(DefaultLatencyDecay), ids: make(map[string]*entry)}
	for _, o := range opts {
		if d, ok := o.(latencyDecay); ok {
			switch {
			case d < 0:
				return nil, fmt.Errorf("discovery: %s: %w: WithLatencyDecay(%v): negative", kindP2C, roster.ErrInvalidOption, time.Duration(d))
			case d > 0:
				p.decay = int64(d)
			}
		}
	}
	if err := p.init(kindP2C, src, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// latencyDecay is WithLatencyDecay's option, read by NewP2C.
type latencyDecay time.Duration

func (latencyDecay) applyPicker(*pickerConfig) {}

// WithLatencyDecay sets how fast a P2C forgets latencies
// (DefaultLatencyDecay): shorter follows changes sooner, longer smooths
// more. Other pickers ignore it.
func WithLatencyDecay(d time.Duration) PickerOption { return latencyDecay(d) }

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
		if p.observed.Load() {
			return p.take(p.lighter(ea, eb)), nil
		}
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

// lighter returns the one of a and b with the shorter expected wait.
func (p *P2C) lighter(a, b *entry) *entry {
	ia, ib := a.inflight(), b.inflight()
	la, lb := p.latencyOf(a), p.latencyOf(b)
	if la != nil || lb != nil {
		now := p.clock.Load()
		if p.probe(la, now) {
			return a
		}
		if p.probe(lb, now) {
			return b
		}
	}
	if la != nil && lb != nil {
		// Latencies within a factor of two count as equal, so that
		// instances alike share the calls even when none is in flight.
		if x, y := float64(la.ewma.Load()), float64(lb.ewma.Load()); x > 2*y || y > 2*x {
			if y*float64(ib+1) < x*float64(ia+1) {
				return b
			}
			return a
		}
	}
	// No latency to compare with, or alike: calls in flight decide.
	if ib < ia {
		return b
	}
	return a
}

// probe reports whether this pick claims a probe of l's instance: its
// latency, and its last probe, are older than a tenth of the decay at now
// (the time of the last Observe). Of the picks that see it stale at once,
// one claims it.
func (p *P2C) probe(l *latency, now int64) bool {
	if l == nil {
		return false
	}
	stale := p.decay / 10
	if now-l.at.Load() <= stale {
		return false
	}
	last := l.probe.Load()
	return now-last > stale && l.probe.CompareAndSwap(last, now)
}

func (p *P2C) latencyOf(e *entry) *latency {
	if v, ok := p.lat.Load(e); ok {
		return v.(*latency)
	}
	return nil
}

// Observe reports that the call made with pk took d, from Pick to its
// end, to weigh pk's instance by latency from then on. Call it along with
// pk.Done for calls that got an answer; a P2C that is never told about
// latency weighs calls in flight alone. Picks of other pickers are
// ignored.
func (p *P2C) Observe(pk Picked, d time.Duration) {
	e := pk.e
	if e == nil || pk.b != &p.base {
		return
	}
	l := p.latencyOf(e)
	if l == nil {
		l = p.record(e)
	}
	now := p.nowNano()
	p.clock.Store(now)
	prev := l.at.Swap(now)
	v := float64(max(d, 0))
	n := l.n.Add(1)
	if old := l.ewma.Load(); old != 0 && prev != 0 {
		// A sample weighs by the time since the one before, so that the
		// average moves at the same pace at any call rate; the first
		// ones weigh at least as in a plain mean, so that a slow first
		// call (a cold connection) does not stand for a whole decay.
		a := 1 - math.Exp(-float64(now-prev)/float64(p.decay))
		if n <= warmSamples {
			a = max(a, 1/float64(n))
		}
		v = float64(old) + a*(v-float64(old))
	}
	l.ewma.Store(max(int64(v), 1))
	if !p.observed.Load() {
		p.observed.Store(true)
	}
	if st := p.st.Load(); st != nil && st.root != p.pruned.Load() {
		p.prune(st.root)
	}
}

// record starts the latency of an entry.
func (p *P2C) record(e *entry) *latency {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	v, loaded := p.lat.LoadOrStore(e, &latency{})
	if !loaded {
		if old := p.ids[e.id]; old != nil && old != e {
			p.lat.Delete(old)
		}
		p.ids[e.id] = e
	}
	return v.(*latency)
}

// prune forgets the latencies of instances the picker dropped since the
// last prune, walking the difference of the two trees: O(log n) per
// change.
func (p *P2C) prune(root *node) {
	if !p.lmu.TryLock() {
		return // another Observe is at it
	}
	defer p.lmu.Unlock()
	old := p.pruned.Load()
	if old == root {
		return
	}
	p.mu.Lock()
	diff(old, root, func(o, n *item) {
		it := n
		if it == nil {
			it = o
		}
		if e := p.ids[it.inst.ID]; e != nil && p.byID[e.id] != e {
			p.lat.Delete(e)
			delete(p.ids, e.id)
		}
	})
	p.mu.Unlock()
	p.pruned.Store(root)
}
