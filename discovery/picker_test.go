package discovery

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

func pickN(t *testing.T, p Picker, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		pk, err := p.Pick()
		require.NoError(t, err)
		got[pk.Instance.ID]++
		pk.Done(nil)
	}
	return got
}

func TestRoundRobinIsEven(t *testing.T) {
	src := newStatic(nInstances(7)...)
	got := pickN(t, must(NewRoundRobin(src)), 7000)
	require.Len(t, got, 7)
	for id, n := range got {
		assert.Equal(t, 1000, n, id)
	}
}

func TestRandomCoversAll(t *testing.T) {
	src := newStatic(nInstances(5)...)
	got := pickN(t, must(NewRandom(src)), 10000)
	require.Len(t, got, 5)
	for id, n := range got {
		assert.InDelta(t, 2000, n, 300, id)
	}
}

func TestPickersReturnErrNoInstances(t *testing.T) {
	src := newStatic()
	for name, p := range map[string]Picker{
		"rr": must(NewRoundRobin(src)), "random": must(NewRandom(src)), "weighted": must(NewWeighted(src)), "p2c": must(NewP2C(src)),
	} {
		_, err := p.Pick()
		assert.ErrorIs(t, err, ErrNoInstances, name)
	}
	_, err := must(NewConsistentHash(src)).Pick("k")
	assert.ErrorIs(t, err, ErrNoInstances)
	Picked{}.Done(errors.New("harmless"))
}

func TestWeightedFollowsWeights(t *testing.T) {
	insts := nInstances(5)
	weights := []int{1, 2, 3, 10, 50}
	total := 0
	for i, w := range weights {
		insts[i].Weight = w
		total += w
	}
	got := pickN(t, must(NewWeighted(newStatic(insts...))), 10000)
	for i, in := range insts {
		want := 10000 * float64(weights[i]) / float64(total)
		assert.InEpsilon(t, want, got[in.ID], 0.05, "%s weight %d", in.ID, weights[i])
	}
}

func TestWeightedIsSmooth(t *testing.T) {
	// nginx's example: weights 5,1,1 give a,a,b,a,c,a,a.
	insts := nInstances(3)
	insts[0].Weight = 5
	p := must(NewWeighted(newStatic(insts...)))
	var seq []string
	for range 14 {
		pk, err := p.Pick()
		require.NoError(t, err)
		seq = append(seq, strings.TrimPrefix(pk.Instance.ID, "i0000"))
		pk.Done(nil)
	}
	assert.Equal(t, strings.Split("00102000010200", ""), seq)
}

// Beyond what can be precomputed, weights are still exact per cycle.
func TestWeightedLargeIsExact(t *testing.T) {
	insts := nInstances(2000)
	total := 0
	for i := range insts {
		insts[i].Weight = 1 + i%97
		total += insts[i].Weight
	}
	p := must(NewWeighted(newStatic(insts...)))
	pk, err := p.Pick()
	require.NoError(t, err)
	pk.Done(nil)
	require.Nil(t, p.st.Load().seq, "expected the stride walk")
	got := pickN(t, p, total-1)
	got[pk.Instance.ID]++
	for _, in := range insts {
		require.Equal(t, in.Weight, got[in.ID], in.ID)
	}
}

// The large walk spreads each instance's picks: over two cycles, every gap
// between two picks of an instance of weight w is within a small factor of
// the ideal W/w, and no instance is picked twice in a row.
func TestWeightedLargeIsSpread(t *testing.T) {
	for _, tc := range []struct {
		n, mod int
	}{{2000, 97}, {20000, 10}, {1000, 300}} {
		t.Run(fmt.Sprintf("%dx%d", tc.n, tc.mod), func(t *testing.T) {
			insts := nInstances(tc.n)
			weight := make(map[string]int, tc.n)
			total := 0
			for i := range insts {
				insts[i].Weight = 1 + (i*7919)%tc.mod
				weight[insts[i].ID] = insts[i].Weight
				total += insts[i].Weight
			}
			p := must(NewWeighted(newStatic(insts...)))
			last := make(map[string]int, tc.n)
			var prev string
			worst, best := 0.0, float64(total)
			for c := range 2 * total {
				pk, err := p.Pick()
				require.NoError(t, err)
				pk.Done(nil)
				id := pk.Instance.ID
				require.NotEqual(t, prev, id, "pick %d: the same instance twice in a row", c)
				prev = id
				if l, ok := last[id]; ok {
					gap := float64(c-l) * float64(weight[id]) / float64(total)
					worst, best = max(worst, gap), min(best, gap)
				}
				last[id] = c
			}
			require.Nil(t, p.st.Load().seq, "expected the stride walk")
			assert.LessOrEqual(t, worst, 3.0, "the longest gap, in ideal gaps")
			assert.GreaterOrEqual(t, best, 0.25, "the shortest gap, in ideal gaps")
		})
	}
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	src := newStatic(nInstances(4)...)
	p := must(NewP2C(src))
	// Leave the calls to i00000 open, as on a slow instance.
	var held []Picked
	for range 200 {
		pk, err := p.Pick()
		require.NoError(t, err)
		if pk.Instance.ID == "i00000" {
			held = append(held, pk)
		} else {
			pk.Done(nil)
		}
	}
	require.NotEmpty(t, held)
	assert.EqualValues(t, len(held), p.Inflight("i00000"))
	got := pickN(t, p, 3000)
	assert.Zero(t, got["i00000"], "the loaded instance loses every comparison")
	for _, id := range []string{"i00001", "i00002", "i00003"} {
		assert.InDelta(t, 1000, got[id], 200, id)
	}
	for _, pk := range held {
		pk.Done(nil)
	}
	assert.Zero(t, p.Inflight("i00000"))
	got = pickN(t, p, 4000)
	assert.InDelta(t, 1000, got["i00000"], 250, "released instance is picked again")
}

func TestConsistentHashIsStickyAndMovesLittle(t *testing.T) {
	const keys = 20000
	for _, n := range []int{3, 10, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			insts := nInstances(n + 1)
			src := newStatic(insts[:n]...)
			p := must(NewConsistentHash(src))
			before := make([]string, keys)
			load := make(map[string]int)
			for k := range keys {
				pk, err := p.Pick(fmt.Sprintf("user-%d", k))
				require.NoError(t, err)
				before[k] = pk.Instance.ID
				load[pk.Instance.ID]++
				pk.Done(nil)
			}
			// Balance: with 100 points each, no instance is far off 1/n.
			for id, l := range load {
				assert.InEpsilon(t, keys/n, l, 0.35, id)
			}
			// Another picker (another process) routes identically.
			q := must(NewConsistentHash(newStatic(insts[:n]...)))
			for k := 0; k < keys; k += 97 {
				pk, _ := q.Pick(fmt.Sprintf("user-%d", k))
				assert.Equal(t, before[k], pk.Instance.ID)
			}

			src.set(insts...) // one instance joins
			moved := 0
			for k := range keys {
				pk, err := p.Pick(fmt.Sprintf("user-%d", k))
				require.NoError(t, err)
				if pk.Instance.ID != before[k] {
					moved++
					assert.Equal(t, insts[n].ID, pk.Instance.ID, "keys move only to the new instance")
				}
				pk.Done(nil)
			}
			frac := float64(moved) / keys
			t.Logf("n=%d→%d: %.4f of keys moved (ideal %.4f)", n, n+1, frac, 1/float64(n+1))
			assert.LessOrEqual(t, frac, 1.5/float64(n+1))
			assert.Positive(t, moved)

			src.set(insts[:n]...) // and leaves again: everything returns
			for k := range keys {
				pk, _ := p.Pick(fmt.Sprintf("user-%d", k))
				require.Equal(t, before[k], pk.Instance.ID)
			}
		})
	}
}

// Routing is part of the API: processes of different versions must send a
// key to the same instance, so the hash and the ring's layout may not
// change. These keys were routed by the code as released; a change to
// the key hash or to where an instance's points go fails here.
func TestConsistentHashRoutesAsReleased(t *testing.T) {
	byPoints := map[int]*ConsistentHash{
		DefaultVirtualNodes: must(NewConsistentHash(newStatic(nInstances(10)...))),
		3:                   must(NewConsistentHash(newStatic(nInstances(10)...), WithVirtualNodes(3))),
	}
	for _, tc := range []struct {
		key, vnodes100, vnodes3 string
	}{
		{"", "i00009", "i00005"},
		{"a", "i00001", "i00001"},
		{"user-1", "i00008", "i00008"},
		{"user-42", "i00005", "i00003"},
		{"order/2026/12/04", "i00001", "i00004"},
		{"ünïcode", "i00001", "i00002"},
		{"k", "i00000", "i00001"},
	} {
		for _, c := range []struct {
			vnodes int
			want   string
		}{{DefaultVirtualNodes, tc.vnodes100}, {3, tc.vnodes3}} {
			pk, err := byPoints[c.vnodes].Pick(tc.key)
			require.NoError(t, err)
			assert.Equal(t, c.want, pk.Instance.ID, "key %q, %d points an instance", tc.key, c.vnodes)
			pk.Done(nil)
		}
	}
	// The key hash is FNV-1a (64 bits) finalized by splitmix64's mixer.
	for _, s := range []string{"", "a", "user-1", "roster", strings.Repeat("xyz", 50)} {
		f := fnv.New64a()
		f.Write([]byte(s))
		assert.Equal(t, mix64(f.Sum64()), hashString(s), "%q", s)
	}
	// mix64 itself, which the check above takes from the code.
	assert.Equal(t, uint64(0xe01c08452c641108), hashString("roster"))
}

// A ring that grows or shrinks one instance at a time gets a table to
// fit its size, and routes every key as a ring built at that size would.
func TestConsistentHashResizesItsTable(t *testing.T) {
	insts := nInstances(60)
	src := newStatic()
	p := must(NewConsistentHash(src))
	_, err := p.Pick("k")
	require.ErrorIs(t, err, ErrNoInstances)
	same := func(n int) {
		t.Helper()
		q := must(NewConsistentHash(newStatic(insts[:n]...)))
		for k := range 300 {
			key := fmt.Sprintf("user-%d", k)
			a, err := p.Pick(key)
			require.NoError(t, err)
			b, err := q.Pick(key)
			require.NoError(t, err)
			require.Equal(t, b.Instance.ID, a.Instance.ID, "%s with %d instances", key, n)
			a.Done(nil)
			b.Done(nil)
		}
	}
	bits := []uint{p.current().ring.bits}
	for n := 1; n <= len(insts); n++ {
		src.set(insts[:n]...)
		same(n)
		if b := p.current().ring.bits; b != bits[len(bits)-1] {
			bits = append(bits, b)
		}
	}
	require.Equal(t, []uint{ringMinBits, 8}, bits, "the table grew once")
	for n := len(insts) - 1; n >= 1; n-- {
		src.set(insts[:n]...)
		same(n)
		if b := p.current().ring.bits; b != bits[len(bits)-1] {
			bits = append(bits, b)
		}
	}
	require.Equal(t, []uint{ringMinBits, 8, 6, ringMinBits}, bits, "and shrank with it")
}

func TestPickersUseFilters(t *testing.T) {
	insts := nInstances(6)
	for i := range insts {
		insts[i].Metadata = map[string]string{"zone": fmt.Sprint("z", i%2), "version": "2"}
	}
	insts[2].Status = roster.StatusDraining
	src := newStatic(insts...)
	f := WithFilter(MatchMetadata(map[string]string{"zone": "z0", "version": "2"}))
	for name, p := range map[string]Picker{
		"rr": must(NewRoundRobin(src, f)), "random": must(NewRandom(src, f)), "weighted": must(NewWeighted(src, f)), "p2c": must(NewP2C(src, f)),
	} {
		got := pickN(t, p, 300)
		assert.ElementsMatch(t, []string{"i00000", "i00004"}, keysOf(got), name)
	}
	pk, err := must(NewConsistentHash(src, f)).Pick("x")
	require.NoError(t, err)
	assert.Contains(t, []string{"i00000", "i00004"}, pk.Instance.ID)
	got := pickN(t, must(NewRoundRobin(src, WithFilter(All(MatchMetadata(map[string]string{"zone": "z1"}), func(in *roster.Instance) bool { return in.ID != "i00005" })))), 10)
	assert.ElementsMatch(t, []string{"i00001", "i00003"}, keysOf(got))
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Every picker follows snapshot changes and keeps per-instance state
// across them.
func TestPickersFollowSnapshots(t *testing.T) {
	insts := nInstances(3)
	src := newStatic(insts[:2]...)
	p := must(NewRoundRobin(src))
	held, err := p.Pick()
	require.NoError(t, err)
	src.set(insts...)
	got := pickN(t, p, 600)
	assert.Len(t, got, 3)
	assert.EqualValues(t, 1, p.Inflight(held.Instance.ID), "in-flight count survives a snapshot change")
	held.Done(nil)
	assert.EqualValues(t, 0, p.Inflight(held.Instance.ID))
}

func TestPickIsAllocationFreeAndConcurrent(t *testing.T) {
	src := newStatic(nInstances(50)...)
	h := must(NewConsistentHash(src))
	pickers := map[string]func() (Picked, error){
		"rr":       must(NewRoundRobin(src)).Pick,
		"random":   must(NewRandom(src)).Pick,
		"weighted": must(NewWeighted(src)).Pick,
		"p2c":      must(NewP2C(src)).Pick,
		"hash":     func() (Picked, error) { return h.Pick("some-user-key") },
	}
	for name, pick := range pickers {
		pk, err := pick() // build the table first
		require.NoError(t, err)
		pk.Done(nil)
		allocs := testing.AllocsPerRun(1000, func() {
			pk, _ := pick()
			pk.Done(nil)
		})
		assert.Zero(t, allocs, name)
	}
	// Concurrent picks while the snapshot changes, for the race detector.
	p := must(NewWeighted(src))
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			src.set(nInstances(10 + i%5)...)
		}
	}()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		pk, err := p.Pick()
		require.NoError(t, err)
		pk.Done(errors.New("x"))
	}
	stop.Store(true)
	<-done
}
