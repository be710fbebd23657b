package discovery

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
)

// Source supplies snapshots to pickers. *Cache implements it; so does
// anything that returns the same *Snapshot until its instances change
// (see NewSnapshot).
type Source interface {
	Snapshot() *Snapshot
}

// Picker chooses an instance for one call. RoundRobin, Random, Weighted
// and P2C implement it.
type Picker interface {
	Pick() (Picked, error)
}

// KeyedPicker chooses the instance for a key: ConsistentHash implements
// it.
type KeyedPicker interface {
	Pick(key string) (Picked, error)
}

var (
	_ Picker      = (*RoundRobin)(nil)
	_ Picker      = (*Random)(nil)
	_ Picker      = (*Weighted)(nil)
	_ Picker      = (*P2C)(nil)
	_ KeyedPicker = (*ConsistentHash)(nil)
	_ Source      = (*Cache)(nil)
)

// Picked is the result of a pick. Call Done exactly once when the call
// made with it ends: it ends the call's in-flight count and reports the
// outcome to outlier ejection. The zero Picked (returned with an error)
// may be Done harmlessly.
type Picked struct {
	// Instance is the chosen instance. Do not modify it.
	Instance *roster.Instance

	e *entry
	b *base
}

// Done ends the call. Pass an error only when it says the instance is
// unhealthy (unreachable, unavailable, timed out); pass nil for an
// application error, which also counts as a success and resets the
// instance's consecutive failures.
func (p Picked) Done(err error) {
	e := p.e
	if e == nil {
		return
	}
	e.dones.Add(1)
	if err == nil {
		if e.fails.Load() != 0 {
			e.fails.Store(0)
		}
		return
	}
	e.failures.Add(1)
	p.b.failed(e)
}

// entry is one pickable instance of a picker: its state outlives the
// snapshots, as long as the instance stays pickable. What a pick touches
// fits in 48 bytes, so that many entries fit in a core's cache.
type entry struct {
	inst   atomic.Pointer[roster.Instance]
	picks  atomic.Int64 // the picks not yet Done are picks - dones
	dones  atomic.Int64
	until  atomic.Int64 // end of ejection, Unix nanoseconds; 0 if not ejected
	fails  atomic.Int32 // consecutive failures
	serial uint32       // ConsistentHash: names it on the ring, with its slot
	*cold
}

// cold is the part of an entry picks do not touch.
type cold struct {
	id       string
	failures atomic.Int64 // failed calls, for metrics

	// Guarded by base.mu.
	weight  uint64
	idx     int  // position in the vector; ConsistentHash: slot in the ring's table
	ejected bool // in base.ejected
	attrs   metric.ObserveOption
}

func newEntry(in *roster.Instance) *entry {
	e := &entry{cold: &cold{id: in.ID, weight: uint64(in.EffectiveWeight())}}
	e.inst.Store(in)
	return e
}

func (e *entry) inflight() int64 { return e.picks.Load() - e.dones.Load() }

// state is a picker's view of one snapshot, immutable once published;
// its structures share what did not change with the state before.
type state struct {
	root *node // the snapshot tree it reflects
	n    int   // pickable instances
	vec  vec   // the pickable entries, but ConsistentHash's
	ring *ring // ConsistentHash: shared with the states before, up to a rebuild

	// Weighted: one precomputed smooth cycle, or the stride walk.
	seq           []*entry
	total, stride uint64
}

// base is what every picker shares: the source, the state for the current
// snapshot and the ejection bookkeeping.
type base struct {
	src  Source
	cfg  pickerConfig
	kind string
	tel  *pickerTelemetry

	st atomic.Pointer[state]

	mu      sync.Mutex        // serializes updates and ejections
	byID    map[string]*entry // the pickable entries
	ejected map[*entry]struct{}
	serial  uint32 // ConsistentHash: the last entry's
}

func (b *base) init(kind string, src Source, opts []PickerOption) error {
	if src == nil {
		return fmt.Errorf("discovery: %s: %w: nil Source", kind, roster.ErrInvalidOption)
	}
	cfg, err := newPickerConfig(kind, opts)
	if err != nil {
		return err
	}
	b.src, b.cfg, b.kind = src, cfg, kind
	b.byID = make(map[string]*entry)
	b.ejected = make(map[*entry]struct{})
	b.tel = newPickerTelemetry(b, cfg)
	return nil
}

// current returns the state for the source's snapshot: two atomic loads
// and a comparison, unless the instances changed. Then the first pick to
// notice applies the change while the others keep the previous state.
func (b *base) current() *state {
	var root *node
	if s := b.src.Snapshot(); s != nil {
		root = s.root
	}
	if st := b.st.Load(); st != nil && st.root == root {
		return st
	}
	return b.update()
}

// update brings the state to the source's snapshot by applying the
// difference between the two trees: O(log n) per changed instance.
func (b *base) update() *state {
	old := b.st.Load()
	if old == nil {
		b.mu.Lock()
	} else if !b.mu.TryLock() {
		return old // another pick is updating
	}
	defer b.mu.Unlock()
	snap := b.src.Snapshot()
	var root *node
	if snap != nil {
		root = snap.root
	}
	old = b.st.Load()
	if old != nil && old.root == root {
		return old
	}
	st := &state{vec: vec{weighted: b.kind == kindWeighted}}
	var oldRoot *node
	if old != nil {
		*st = *old
		oldRoot = old.root
	}
	var changes []change
	diff(oldRoot, root, func(o, n *item) { changes = append(changes, change{o, n}) })
	gen := gens.Add(1)
	if b.kind == kindHash && (st.ring == nil || len(changes) > max(64, st.n/4)) {
		b.rebuildRing(st, changes)
	} else {
		for _, c := range changes {
			b.apply(st, gen, c.old, c.cur)
		}
		if b.kind == kindHash && st.ring.skewed() {
			b.rebuildRing(st, nil) // a table to fit the ring's size now
		}
	}
	st.root = root
	if b.kind == kindWeighted {
		deriveWeighted(st)
	}
	b.st.Store(st)
	b.tel.setService(snap.Service())
	return st
}

// pickable reports whether a picker may choose it.
func (b *base) pickable(it *item) bool {
	return it != nil && it.inst.Serving() && (b.cfg.filter == nil || b.cfg.filter(&it.inst))
}

// apply brings one instance's entry up to date.
func (b *base) apply(st *state, gen uint64, o, n *item) {
	id := n
	if id == nil {
		id = o
	}
	e := b.byID[id.inst.ID]
	ok := b.pickable(n)
	switch {
	case e != nil && !ok:
		b.drop(st, gen, e)
	case e == nil && ok:
		b.add(st, gen, n)
	case e != nil:
		e.inst.Store(&n.inst)
		if w := uint64(n.inst.EffectiveWeight()); b.kind == kindWeighted && w != e.weight {
			e.weight = w
			st.vec.set(gen, e.idx, e)
		}
	}
}

func (b *base) add(st *state, gen uint64, it *item) {
	e := newEntry(&it.inst)
	b.byID[e.id] = e
	st.n++
	if b.kind == kindHash {
		b.serial++
		e.serial = b.serial
		s := st.ring.bind(e)
		e.idx = int(s)
		hs := ringHashes(e.id, b.cfg.vnodes)
		st.ring.warm(hs)
		for _, h := range hs {
			st.ring.insert(point{h, s, e.serial})
		}
		return
	}
	e.idx = st.vec.n
	st.vec.push(gen, e)
}

func (b *base) drop(st *state, gen uint64, e *entry) {
	delete(b.byID, e.id)
	if e.ejected {
		delete(b.ejected, e)
		e.ejected = false
	}
	st.n--
	if b.kind == kindHash {
		s := uint32(e.idx)
		hs := ringHashes(e.id, b.cfg.vnodes)
		st.ring.warm(hs)
		for _, h := range hs {
			st.ring.remove(point{h, s, e.serial})
		}
		st.ring.unbind(s)
		return
	}
	if last := st.vec.get(st.vec.n - 1); last != e {
		st.vec.set(gen, e.idx, last)
		last.idx = e.idx
	}
	st.vec.pop(gen)
}

// change is one instance's difference between two snapshots.
type change struct{ old, cur *item }

// rebuildRing brings the entries up to date and builds the ring anew,
// sorting all points at once: for a first state or a change of many
// instances, faster than inserting each point.
func (b *base) rebuildRing(st *state, changes []change) {
	for _, c := range changes {
		n := c.cur
		id := n
		if id == nil {
			id = c.old
		}
		e := b.byID[id.inst.ID]
		switch ok := b.pickable(n); {
		case e != nil && !ok:
			delete(b.byID, e.id)
			if e.ejected {
				delete(b.ejected, e)
			}
		case e == nil && ok:
			e = newEntry(&n.inst)
			b.serial++
			e.serial = b.serial
			b.byID[e.id] = e
		case e != nil:
			e.inst.Store(&n.inst)
		}
	}
	ents := make([]*entry, 0, len(b.byID))
	for _, e := range b.byID {
		ents = append(ents, e)
	}
	slices.SortFunc(ents, func(a, b *entry) int { return strings.Compare(a.id, b.id) })
	ps := make([]point, 0, len(ents)*b.cfg.vnodes)
	for i, e := range ents {
		e.idx = i
		for _, h := range ringHashes(e.id, b.cfg.vnodes) {
			ps = append(ps, point{h, uint32(i), e.serial})
		}
	}
	st.ring = buildRing(ents, sortPoints(ps))
	st.n = len(ents)
}

// take counts a pick of e.
func (b *base) take(e *entry) Picked {
	e.picks.Add(1)
	return Picked{Instance: e.inst.Load(), e: e, b: b}
}

// choose takes entry i, or the next usable one when it is ejected. If all
// are (only possible in a race with an ejection), it takes i anyway:
// availability over caution.
func (b *base) choose(st *state, i int) Picked {
	e := st.vec.get(i)
	if b.usable(e) {
		return b.take(e)
	}
	for k, j := 1, i; k < st.vec.n; k++ {
		if j++; j == st.vec.n {
			j = 0
		}
		if f := st.vec.get(j); b.usable(f) {
			return b.take(f)
		}
	}
	return b.take(e)
}

// Inflight returns how many picks of the instance with the given ID have
// not been Done yet, in this picker.
func (b *base) Inflight(id string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.byID[id]; e != nil {
		return e.inflight()
	}
	return 0
}

// Ejected reports whether the instance with the given ID is sitting out an
// ejection cool-down in this picker.
func (b *base) Ejected(id string) bool {
	return b.ejectedUntil(id).After(b.cfg.now())
}

func (b *base) nowNano() int64 { return b.cfg.now().UnixNano() }

// ejectedUntil returns the end of id's ejection, zero if none.
func (b *base) ejectedUntil(id string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.byID[id]; e != nil {
		if u := e.until.Load(); u != 0 {
			return time.Unix(0, u)
		}
	}
	return time.Time{}
}
