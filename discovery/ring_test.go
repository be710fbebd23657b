package discovery

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// checkRing verifies a ring's invariants and returns its points in order.
func checkRing(t *testing.T, r *ring) []point {
	t.Helper()
	var out []point
	var walk func(slots []unsafe.Pointer, d int) int
	walk = func(slots []unsafe.Pointer, d int) int {
		size := 0
		for i, s := range slots {
			before := len(out)
			switch {
			case s == nil:
			case isLeaf(s):
				var buf [ringLeaf + 1]point
				ps := points(s, &buf)
				require.LessOrEqual(t, len(ps), ringLeaf)
				require.Equal(t, hashes(s), func() (hs []uint64) {
					for _, p := range ps {
						hs = append(hs, p.h)
					}
					return hs
				}())
				ps = slices.Clone(ps)
				out = append(out, ps...)
				size += len(ps)
				if over := r.over[ps[0].h]; over != nil && ps[0].h == ps[len(ps)-1].h {
					require.Equal(t, ringLeaf, len(ps), "points wait in over only behind a full leaf")
					require.True(t, r.last(d), "only the deepest leaves spill")
					out = append(out, over...)
				}
			default:
				require.False(t, r.last(d), "an inner node at the deepest level")
				n := (*rinner)(s)
				k := walk(n.slots[:], d+1)
				require.Greater(t, k, ringLeaf/2, "inner node not folded")
				require.Equal(t, k, n.size)
				size += k
			}
			for _, p := range out[before:] {
				require.Equal(t, i, r.slot(p.h, d), "point under the wrong slot")
			}
		}
		return size
	}
	walk(r.top, 0)
	require.Equal(t, r.n.Load(), int64(len(out)))
	require.True(t, slices.IsSortedFunc(out, r.cmp))
	return out
}

// The ring against a sorted list, with the least table and with one of 7
// bits, whose last level has 1 bit.
func TestRingAgainstASortedList(t *testing.T) {
	for _, points := range []int{0, ringSlot << 6} {
		r := newRing(points)
		t.Run(fmt.Sprintf("bits=%d", r.bits), func(t *testing.T) { testRingAgainstASortedList(t, r) })
	}
}

func testRingAgainstASortedList(t *testing.T, r *ring) {
	rng := rand.New(rand.NewPCG(3, 4))
	const entries = 500
	slots := make([]uint32, entries)
	for i := range slots {
		e := &entry{serial: uint32(i + 1), cold: &cold{id: fmt.Sprintf("e%03d", i)}}
		slots[i] = r.bind(e)
	}
	live := map[point]bool{}
	spilled := false
	var pts []point
	for round := range 300 {
		n := 1 + rng.IntN(200)
		if round%40 == 0 {
			n = 3000
		}
		for range n {
			if len(live) > 0 && (rng.IntN(2) == 0 || round > 250) {
				for p := range live { // any
					r.remove(p)
					delete(live, p)
					break
				}
				continue
			}
			// Few distinct hashes, so ties (ordered by ID) are common, and
			// clusters deep in the tree.
			h := uint64(rng.IntN(2000)) << 50
			switch rng.IntN(8) {
			case 0, 1:
				// Clusters deep in the tree.
				h = 0xabc0000000000000 | uint64(rng.IntN(100))
			case 2:
				// More points of one hash than a leaf holds.
				h = 0x5555555555555555
			}
			k := rng.IntN(entries)
			p := point{h, slots[k], uint32(k + 1)}
			if live[p] {
				continue
			}
			r.insert(p)
			live[p] = true
		}
		got := checkRing(t, r)
		var want []point
		for p := range live {
			want = append(want, p)
		}
		slices.SortFunc(want, r.cmp)
		require.Equal(t, want, got)
		if round == 150 {
			pts = want
		}
		spilled = spilled || r.over != nil
		for range 50 {
			h := uint64(rng.IntN(2001)) << 50
			if rng.IntN(3) == 0 {
				h = 0xabc0000000000000 | uint64(rng.IntN(101))
			}
			got, e, ok := r.owner(h)
			if len(want) == 0 {
				require.False(t, ok, "an empty ring has no owner")
				continue
			}
			i, _ := slices.BinarySearchFunc(want, h, func(p point, h uint64) int { return cmp.Compare(p.h, h) })
			if i == len(want) {
				i = 0
			}
			require.True(t, ok)
			require.Equal(t, want[i], got, "owner of %x", h)
			require.Same(t, r.at(got.s), e)
		}
	}
	require.True(t, spilled, "the test puts more points of one hash than a leaf holds")
	var ents []*entry
	for i := range entries {
		ents = append(ents, r.at(slots[i]))
		require.Equal(t, uint32(i), slots[i], "slots are handed out in order")
	}
	built := buildRing(ents, slices.Clone(pts))
	require.Equal(t, pts, checkRing(t, built))
}

// Picks read the ring while a change edits it: each lookup finds, for its
// hash, the owner before the change or the owner after it, and never
// nothing. The race detector checks the ring's atomics.
func TestRingReadDuringChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var ents []*entry
	var base []point
	for i := range 300 {
		e := &entry{serial: uint32(i + 1), cold: &cold{id: fmt.Sprintf("b%03d", i)}}
		ents = append(ents, e)
		for _, h := range ringHashes(e.id, 20) {
			base = append(base, point{h, uint32(i), e.serial})
		}
	}
	base = sortPoints(base)
	r := buildRing(ents, slices.Clone(base))
	// Instances that come and go, a few hundred points at a time: enough
	// to split and fold leaves all over the ring, and to reuse slots.
	const movers = 8
	ids := make([]string, movers)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	baseOwner := func(h uint64) point {
		i, _ := slices.BinarySearchFunc(base, h, func(p point, h uint64) int { return cmp.Compare(p.h, h) })
		if i == len(base) {
			i = 0
		}
		return base[i]
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for !stop.Load() {
				h := rng.Uint64()
				p, e, ok := r.owner(h)
				if !ok {
					t.Errorf("no owner for %x", h)
					return
				}
				want := baseOwner(h)
				if e.id[0] == 'b' && (p != want || e != ents[want.s]) {
					t.Errorf("owner of %x: %s, neither the base owner %s nor a mover", h, e.id, ents[want.s].id)
					return
				}
				if e.id[0] == 'm' && !slices.Contains(ringHashes(e.id, 300), p.h) {
					t.Errorf("owner of %x: a point of %s that is not its", h, e.id)
					return
				}
				if p.h < h && want.h >= h {
					t.Errorf("owner of %x before it: %x", h, p.h)
					return
				}
				lookups.Add(1)
			}
		})
	}
	in := make([]*entry, movers)
	serial := uint32(len(ents))
	for range 400 {
		k := rng.IntN(movers)
		if e := in[k]; e != nil {
			s := uint32(e.idx)
			for _, h := range ringHashes(e.id, 300) {
				r.remove(point{h, s, e.serial})
			}
			r.unbind(s)
			in[k] = nil
			continue
		}
		serial++
		e := &entry{serial: serial, cold: &cold{id: ids[k]}}
		e.idx = int(r.bind(e))
		for _, h := range ringHashes(e.id, 300) {
			r.insert(point{h, uint32(e.idx), e.serial})
		}
		in[k] = e
	}
	stop.Store(true)
	wg.Wait()
	require.Positive(t, lookups.Load())
	want := slices.Clone(base)
	for _, e := range in {
		if e != nil {
			for _, h := range ringHashes(e.id, 300) {
				want = append(want, point{h, uint32(e.idx), e.serial})
			}
		}
	}
	slices.SortFunc(want, r.cmp)
	require.Equal(t, want, checkRing(t, r))
}

// A pick that read a point before its instance went, and resolves it
// after the slot went to another, takes neither: it reads the ring again.
// Here the ring keeps the point for a while, as an old leaf would.
func TestRingPointOfAFreedSlot(t *testing.T) {
	r := newRing(0)
	x := &entry{serial: 1, cold: &cold{id: "x"}}
	o := &entry{serial: 2, cold: &cold{id: "o"}}
	sx, so := r.bind(x), r.bind(o)
	r.insert(point{100, sx, x.serial})
	r.insert(point{200, so, o.serial})
	r.unbind(sx)
	y := &entry{serial: 3, cold: &cold{id: "y"}}
	require.Equal(t, sx, r.bind(y), "the freed slot is reused")
	got := make(chan *entry, 1)
	go func() {
		_, e, _ := r.owner(50)
		got <- e
	}()
	select {
	case e := <-got:
		t.Fatalf("the point of x resolved to %s", e.id)
	case <-time.After(50 * time.Millisecond):
	}
	r.remove(point{100, sx, x.serial})
	select {
	case e := <-got:
		require.Same(t, o, e, "the owner once x's point is gone")
	case <-time.After(10 * time.Second):
		t.Fatal("the pick did not return")
	}
}

func TestVecAgainstASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, weighted := range []bool{false, true} {
		v := vec{weighted: weighted}
		var want []*entry
		var versions []vec
		var wants [][]*entry
		most := 0
		for round := range 200 {
			g := gens.Add(1)
			for range 1 + rng.IntN(100) {
				// Grow past a few chunks, shrink back below one, with
				// random edits between: every chunk boundary is crossed
				// both ways.
				k := rng.IntN(3)
				switch {
				case round < 50:
					k = 2
				case round >= 120 && round < 190:
					k = 0
				}
				switch {
				case k == 0 && len(want) > 0:
					v.pop(g)
					want = want[:len(want)-1]
				case k == 1 && len(want) > 0:
					i := rng.IntN(len(want))
					e := &entry{cold: &cold{id: fmt.Sprint(round), weight: uint64(1 + rng.IntN(9))}}
					v.set(g, i, e)
					want[i] = e
				default:
					e := &entry{cold: &cold{id: fmt.Sprint(round), weight: uint64(1 + rng.IntN(9))}}
					v.push(g, e)
					want = append(want, e)
				}
			}
			require.Equal(t, len(want), v.n)
			most = max(most, v.n)
			require.Len(t, v.chunks, (v.n+vchunk-1)/vchunk)
			for k, c := range v.chunks {
				if k < len(v.chunks)-1 {
					require.Len(t, c, vchunk, "only the last chunk is not full")
				}
				if weighted {
					require.Len(t, v.sums[k], len(c))
					for j, e := range c {
						require.Same(t, e, v.sums[k][j].e, "a sum's entry is its chunk's")
					}
				}
			}
			var total, heaviest uint64
			for i, e := range want {
				heaviest = max(heaviest, e.weight)
				require.Same(t, e, v.get(i))
				if weighted {
					for range 2 {
						pos := total + uint64(rng.IntN(int(e.weight)))
						require.Same(t, e, v.search(pos))
					}
				}
				total += e.weight
			}
			if weighted {
				require.Equal(t, heaviest, v.maxWeight())
				require.Equal(t, total, v.total())
			}
			versions = append(versions, v)
			wants = append(wants, slices.Clone(want))
		}
		require.Greater(t, most, 2*vchunk, "the vector spans chunks")
		require.Less(t, v.n, vchunk, "and shrinks back below one")
		for k, old := range versions {
			for i, e := range wants[k] {
				require.Same(t, e, old.get(i), "versions are persistent")
			}
		}
	}
}

// hashes returns the hashes of the leaf of slot value s.
func hashes(s unsafe.Pointer) []uint64 {
	w := words(s)
	return w[1 : 1+w[0]]
}
