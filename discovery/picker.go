package discovery

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterkit/roster"
)

// Source supplies snapshots to pickers. *Cache implements it; anything
// else that holds an immutable *Snapshot behind an atomic pointer can too.
// A Source must return snapshots whose Instances slice is replaced, never
// modified, when the instances change.
type Source interface {
	Snapshot() *Snapshot
}

// Picker chooses an instance for one call. The pickers of this package
// are safe for concurrent use. Pick takes no locks and does not allocate,
// except the first Pick after the instances change, which rebuilds the
// picker's state from the new snapshot under a lock (other Picks meanwhile
// use the previous state).
type Picker interface {
	Pick() (Picked, error)
}

// Picked is the result of a pick. Call Done exactly once when the call
// made with it ends: it releases the in-flight count and reports the
// outcome to outlier ejection. The zero Picked (returned with an error)
// may be Done'd harmlessly.
type Picked struct {
	// Instance is the chosen instance, pointing into the snapshot it came
	// from. Do not modify it.
	Instance *roster.Instance

	h *health
	b *base
}

// Done ends the call. Pass the error only when it says the instance is
// unhealthy (unreachable, unavailable, timed out); application errors
// should be passed as nil, which also counts as a success and resets the
// instance's consecutive failures.
func (p Picked) Done(err error) {
	if p.h == nil {
		return
	}
	p.h.inflight.Add(-1)
	if err == nil {
		if p.h.fails.Load() != 0 {
			p.h.fails.Store(0)
		}
		return
	}
	p.b.failed(p.h)
}

// health is the per-instance state that outlives snapshots: pickers carry
// it over by instance ID when they rebuild.
type health struct {
	inflight atomic.Int64
	fails    atomic.Int32 // consecutive failures
	until    atomic.Int64 // end of ejection in Unix nanoseconds; 0 if not ejected
}

// entry is one pickable instance of a table.
type entry struct {
	inst   *roster.Instance
	h      *health
	weight uint64
}

// table is a picker's state precomputed for one snapshot content. It is
// immutable once published.
type table struct {
	insts []roster.Instance // the snapshot content it was built from
	ents  []entry           // serving instances that pass the filter

	// Weighted round-robin.
	seq    []int32  // one precomputed cycle of ents indexes, or nil
	cum    []uint64 // cum[i] = sum of weights of ents[0..i], divided by their gcd
	total  uint64
	stride uint64

	// Consistent hashing.
	ring []point
}

// base is what every picker shares: the source, the per-snapshot table
// and the ejection state.
type base struct {
	src   Source
	cfg   pickerConfig
	build func(*table) // kind-specific precomputation, may be nil

	tab atomic.Pointer[table]

	mu     sync.Mutex         // serializes rebuilds and ejections
	health map[string]*health // by instance ID; guarded by mu
}

func newBase(src Source, opts []PickerOption, build func(*table)) base {
	return base{src: src, cfg: newPickerConfig(opts), build: build}
}

// current returns the table for the source's current snapshot. The common
// case is two atomic loads and a comparison; a changed snapshot is
// rebuilt once, by whichever pick notices first, while concurrent picks
// keep using the previous table.
func (b *base) current() *table {
	snap := b.src.Snapshot()
	t := b.tab.Load()
	if t != nil && sameContent(t.insts, snap.Instances) {
		return t
	}
	return b.rebuild(snap, t)
}

func (b *base) rebuild(snap *Snapshot, old *table) *table {
	if old == nil {
		b.mu.Lock()
	} else if !b.mu.TryLock() {
		return old // another pick is rebuilding
	}
	defer b.mu.Unlock()
	if t := b.tab.Load(); t != nil && sameContent(t.insts, snap.Instances) {
		return t
	}
	t := &table{insts: snap.Instances}
	hs := make(map[string]*health, len(snap.Instances))
	for i := range snap.Instances {
		in := &snap.Instances[i]
		if !in.Serving() || (b.cfg.filter != nil && !b.cfg.filter(in)) {
			continue
		}
		h := b.health[in.ID]
		if h == nil {
			h = new(health)
		}
		hs[in.ID] = h
		t.ents = append(t.ents, entry{inst: in, h: h, weight: uint64(in.EffectiveWeight())})
	}
	b.health = hs
	if b.build != nil && len(t.ents) > 0 {
		b.build(t)
	}
	b.tab.Store(t)
	return t
}

// take marks e in flight and returns it as a pick.
func (b *base) take(e *entry) Picked {
	e.h.inflight.Add(1)
	return Picked{Instance: e.inst, h: e.h, b: b}
}

// choose takes ents[start], or the first usable entry after it when it is
// ejected. If every entry is ejected (possible only in a race with
// ejection), it takes ents[start] anyway: availability over caution.
func (b *base) choose(t *table, start int) Picked {
	n := len(t.ents)
	for i, k := start, 0; k < n; k++ {
		if b.usable(t.ents[i].h) {
			return b.take(&t.ents[i])
		}
		if i++; i == n {
			i = 0
		}
	}
	return b.take(&t.ents[start])
}

// Inflight returns how many picks of the instance with the given ID have
// not been Done yet, as seen by this picker.
func (b *base) Inflight(id string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.health[id]; h != nil {
		return h.inflight.Load()
	}
	return 0
}

// Ejected reports whether the instance with the given ID is sitting out an
// ejection cool-down in this picker, for status pages and metrics.
func (b *base) Ejected(id string) bool {
	return b.ejectedUntil(id).After(b.cfg.now())
}

// nowNano reads the picker's clock.
func (b *base) nowNano() int64 { return b.cfg.now().UnixNano() }

// ejectedUntil returns the end of id's ejection, zero if none.
func (b *base) ejectedUntil(id string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.health[id]; h != nil {
		if u := h.until.Load(); u != 0 {
			return time.Unix(0, u)
		}
	}
	return time.Time{}
}
