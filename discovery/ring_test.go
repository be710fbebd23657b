package discovery

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkRing verifies a ring's invariants and returns its points in order.
func checkRing(t *testing.T, r ring, c ringCmp) []point {
	t.Helper()
	var out []point
	leaf := func(l *rleaf) int {
		require.Positive(t, l.n)
		require.Less(t, l.n, leafPoints)
		for i := range l.n {
			out = append(out, point{l.hs[i], l.ss[i]})
		}
		return l.n
	}
	var walk func(n *rinner, root bool) int
	walk = func(n *rinner, root bool) int {
		require.Positive(t, n.n)
		require.Less(t, n.n, innerKids)
		if root {
			require.GreaterOrEqual(t, n.n, 2)
		}
		size := 0
		for i := range n.n {
			if n.bottom {
				require.Nil(t, n.kids[i])
				h, s := n.leaves[i].first()
				require.Equal(t, [2]uint64{h, uint64(s)}, [2]uint64{n.hs[i], uint64(n.ss[i])})
				size += leaf(n.leaves[i])
			} else {
				require.Nil(t, n.leaves[i])
				h, s := n.kids[i].first()
				require.Equal(t, [2]uint64{h, uint64(s)}, [2]uint64{n.hs[i], uint64(n.ss[i])})
				size += walk(n.kids[i], false)
			}
		}
		for i := n.n; i < innerKids; i++ {
			require.Nil(t, n.kids[i])
			require.Nil(t, n.leaves[i])
		}
		require.Equal(t, size, n.size)
		return size
	}
	switch {
	case r.root != nil:
		require.Nil(t, r.leaf)
		walk(r.root, true)
	case r.leaf != nil:
		leaf(r.leaf)
	}
	require.Equal(t, r.n, len(out))
	require.True(t, slices.IsSortedFunc(out, func(a, b point) int { return c.cmp(a.h, a.s, b.h, b.s) }))
	return out
}

func TestRingAgainstASortedList(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tab vec
	gen := gens.Add(1)
	const slots = 500
	for s := range slots {
		tab.push(gen, &entry{id: fmt.Sprintf("e%03d", s)})
	}
	c := ringCmp{&tab}
	var r ring
	type version struct {
		r    ring
		want []point
	}
	var versions []version
	live := map[point]bool{}
	for round := range 300 {
		g := gens.Add(1)
		n := 1 + rng.IntN(200)
		if round%40 == 0 {
			n = 3000
		}
		for range n {
			if len(live) > 0 && (rng.IntN(2) == 0 || round > 250) {
				for p := range live { // any
					r.remove(c, g, p.h, p.s)
					delete(live, p)
					break
				}
				continue
			}
			// Few distinct hashes, so ties (ordered by ID) are common.
			p := point{uint64(rng.IntN(2000)) << 50, uint32(rng.IntN(slots))}
			if live[p] {
				continue
			}
			r.insert(c, g, p.h, p.s)
			live[p] = true
		}
		got := checkRing(t, r, c)
		var want []point
		for p := range live {
			want = append(want, p)
		}
		slices.SortFunc(want, func(a, b point) int { return c.cmp(a.h, a.s, b.h, b.s) })
		require.Equal(t, want, got)
		versions = append(versions, version{r, want})
		// owner: the first point with a hash at or after h, round.
		for range 50 {
			if len(want) == 0 {
				break
			}
			h := uint64(rng.IntN(2001)) << 50
			i, _ := slices.BinarySearchFunc(want, h, func(p point, h uint64) int { return cmp.Compare(p.h, h) })
			if i == len(want) {
				i = 0
			}
			s, oh := r.owner(h)
			require.Equal(t, want[i], point{oh, s}, "owner of %x", h)
		}
	}
	for _, v := range versions {
		require.Equal(t, v.want, checkRing(t, v.r, c), "versions are persistent")
	}
	// A built ring equals the same points inserted.
	pts := versions[len(versions)/2].want
	built := buildRing(slices.Clone(pts))
	require.Equal(t, pts, checkRing(t, built, c))
}

func TestVecAgainstASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, weighted := range []bool{false, true} {
		v := vec{weighted: weighted}
		var want []*entry
		var versions []vec
		var wants [][]*entry
		for round := range 200 {
			g := gens.Add(1)
			for range 1 + rng.IntN(100) {
				switch k := rng.IntN(3); {
				case k == 0 && len(want) > 0:
					v.pop(g)
					want = want[:len(want)-1]
				case k == 1 && len(want) > 0:
					i := rng.IntN(len(want))
					e := &entry{id: fmt.Sprint(round), weight: uint64(1 + rng.IntN(9))}
					v.set(g, i, e)
					want[i] = e
				default:
					e := &entry{id: fmt.Sprint(round), weight: uint64(1 + rng.IntN(9))}
					v.push(g, e)
					want = append(want, e)
				}
			}
			require.Equal(t, len(want), v.n)
			var total uint64
			for i, e := range want {
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
				require.Equal(t, total, v.total())
			}
			versions = append(versions, v)
			wants = append(wants, slices.Clone(want))
		}
		for k, old := range versions {
			for i, e := range wants[k] {
				require.Same(t, e, old.get(i), "versions are persistent")
			}
		}
	}
}
