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
	var walk func(n *rinner, d int) int
	walk = func(n *rinner, d int) int {
		size := 0
		for i := range ringFan {
			l, k := n.leaf(i), n.kid(i)
			require.False(t, l != nil && k != nil, "a slot holds a leaf and a node")
			before := len(out)
			switch {
			case l != nil:
				require.Positive(t, l.n)
				for j := range l.n {
					out = append(out, l.at(j))
				}
				size += l.n
				if over := r.over[l.hs[0]]; over != nil && l.hs[0] == l.hs[l.n-1] {
					require.Equal(t, ringLeaf, l.n, "points wait in over only behind a full leaf")
					require.Equal(t, ringDepth, d+1, "only the deepest leaves spill")
					out = append(out, over...)
				}
			case k != nil:
				s := walk(k, d+1)
				require.Greater(t, s, ringLeaf/2, "inner node not folded")
				size += s
			}
			for _, p := range out[before:] {
				require.Equal(t, i, slot(p.h, d), "point under the wrong slot")
			}
		}
		require.Equal(t, size, n.size)
		return size
	}
	if r.root != nil {
		walk(r.root, 0)
	}
	require.Equal(t, r.n, len(out))
	require.True(t, slices.IsSortedFunc(out, c.cmp))
	return out
}

func TestRingAgainstASortedList(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var tab vec
	g0 := gens.Add(1)
	const slots = 500
	for i := range slots {
		tab.push(g0, &entry{cold: &cold{id: fmt.Sprintf("e%03d", i)}})
	}
	c := ringCmp{&tab}
	var r ring
	type version struct {
		r    ring
		want []point
	}
	var versions []version
	live := map[point]bool{}
	spilled := false
	for round := range 300 {
		g := gens.Add(1)
		n := 1 + rng.IntN(200)
		if round%40 == 0 {
			n = 3000
		}
		for range n {
			if len(live) > 0 && (rng.IntN(2) == 0 || round > 250) {
				for p := range live { // any
					r.remove(c, g, p)
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
			p := point{h, uint32(rng.IntN(slots))}
			if live[p] {
				continue
			}
			r.insert(c, g, p)
			live[p] = true
		}
		got := checkRing(t, r, c)
		var want []point
		for p := range live {
			want = append(want, p)
		}
		slices.SortFunc(want, c.cmp)
		require.Equal(t, want, got)
		versions = append(versions, version{r, want})
		spilled = spilled || r.over != nil
		for range 50 {
			if len(want) == 0 {
				break
			}
			h := uint64(rng.IntN(2001)) << 50
			if rng.IntN(3) == 0 {
				h = 0xabc0000000000000 | uint64(rng.IntN(101))
			}
			i, _ := slices.BinarySearchFunc(want, h, func(p point, h uint64) int { return cmp.Compare(p.h, h) })
			if i == len(want) {
				i = 0
			}
			require.Equal(t, want[i], r.owner(h), "owner of %x", h)
		}
	}
	require.True(t, spilled, "the test puts more points of one hash than a leaf holds")
	for _, v := range versions {
		require.Equal(t, v.want, checkRing(t, v.r, c), "versions are persistent")
	}
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
		require.Greater(t, most, 2*vchunk, "the vector spans chunks")
		require.Less(t, v.n, vchunk, "and shrinks back below one")
		for k, old := range versions {
			for i, e := range wants[k] {
				require.Same(t, e, old.get(i), "versions are persistent")
			}
		}
	}
}
