package discovery

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

// check verifies a tree's invariants and returns its items in order.
func check(t *testing.T, n *node) []*item {
	t.Helper()
	var out []*item
	var walk func(n *node, root bool) int
	walk = func(n *node, root bool) int {
		if n.leaf() {
			require.NotEmpty(t, n.items)
			require.LessOrEqual(t, len(n.items), leafMax)
			if !root {
				require.GreaterOrEqual(t, len(n.items), leafMin/2, "leaf underfull")
			}
			out = append(out, n.items...)
			require.Equal(t, len(n.items), n.size)
			return n.size
		}
		require.Len(t, n.mins, len(n.kids))
		require.LessOrEqual(t, len(n.kids), nodeMax)
		if root {
			require.GreaterOrEqual(t, len(n.kids), 2, "an inner root has two children at least")
		}
		size := 0
		for i, k := range n.kids {
			require.Equal(t, k.minID(), n.mins[i])
			size += walk(k, false)
		}
		require.Equal(t, size, n.size)
		return size
	}
	if n != nil {
		walk(n, true)
	}
	require.True(t, slices.IsSortedFunc(out, func(a, b *item) int {
		if a.inst.ID == b.inst.ID {
			t.Fatalf("duplicate %s", a.inst.ID)
		}
		return cmpID(a, b)
	}))
	return out
}

func cmpID(a, b *item) int {
	switch {
	case a.inst.ID < b.inst.ID:
		return -1
	case a.inst.ID > b.inst.ID:
		return 1
	}
	return 0
}

func mkItem(id string, rev int64) *item {
	return &item{inst: roster.Instance{Service: "svc", ID: id, Addr: "h:1"}, rev: rev}
}

// The tree against a map: random batches of puts and removes, each batch
// one editor; every version keeps its content (persistence) and diff
// between any two versions is exactly their difference.
func TestTreeAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type version struct {
		root *node
		want map[string]*item
	}
	var versions []version
	var root *node
	want := map[string]*item{}
	rev := int64(0)
	for round := range 250 {
		e := newEditor(root)
		batch := 1 + rng.IntN(40)
		if round%50 == 0 {
			batch = 2000 // a big one: splits and merges several levels
		}
		space := 3000
		if round > 180 {
			space = 300 // shrink: deletes dominate
		}
		for range batch {
			id := fmt.Sprintf("i%05d", rng.IntN(space))
			if rng.IntN(3) == 0 || round > 180 && rng.IntN(2) == 0 {
				got := e.remove(id)
				require.Equal(t, want[id], got)
				delete(want, id)
				continue
			}
			rev++
			it := mkItem(id, rev)
			got := e.put(it)
			require.Equal(t, want[id], got)
			want[id] = it
		}
		root = e.root
		items := check(t, root)
		require.Len(t, items, len(want))
		for _, it := range items {
			if want[it.inst.ID] != it || lookup(root, it.inst.ID) != it {
				t.Fatalf("round %d: %s is not the item put last", round, it.inst.ID)
			}
		}
		for i := 0; i < len(items); i += 1 + len(items)/50 {
			require.Same(t, items[i], at(root, i))
		}
		versions = append(versions, version{root, maps.Clone(want)})
	}
	// Old versions are untouched.
	for k, v := range versions {
		items := check(t, v.root)
		require.Len(t, items, len(v.want))
		for _, it := range items {
			if v.want[it.inst.ID] != it {
				t.Fatalf("version %d changed: %s", k, it.inst.ID)
			}
		}
	}
	// diff between versions, near and far.
	for k := range 300 {
		a := versions[rng.IntN(len(versions))]
		b := versions[rng.IntN(len(versions))]
		if k%3 == 0 {
			i := rng.IntN(len(versions) - 1)
			a, b = versions[i], versions[i+1]
		}
		seen := map[string]bool{}
		last := ""
		diff(a.root, b.root, func(o, n *item) {
			it := o
			if it == nil {
				it = n
			}
			id := it.inst.ID
			if id <= last {
				t.Fatalf("diff not in ID order: %s after %s", id, last)
			}
			last = id
			seen[id] = true
			if a.want[id] != o || b.want[id] != n || o == n {
				t.Fatalf("diff reports %s as %p → %p", id, o, n)
			}
		})
		for id, it := range a.want {
			if b.want[id] != it {
				require.True(t, seen[id], "missing %s", id)
			}
		}
		for id, it := range b.want {
			if a.want[id] != it {
				require.True(t, seen[id], "missing %s", id)
			}
		}
	}
}

func TestTreeBuild(t *testing.T) {
	for _, n := range []int{0, 1, 2, 55, 56, 57, 1000, 100000} {
		items := make([]*item, n)
		for i := range items {
			items[i] = mkItem(fmt.Sprintf("i%06d", i), int64(i+1))
		}
		root := build(items)
		got := check(t, root)
		require.Len(t, got, n)
		if n > 0 {
			require.Equal(t, n, root.size)
		}
		// and it edits like any other tree
		e := newEditor(root)
		e.put(mkItem("a", 1))
		e.remove("i000000")
		check(t, e.root)
	}
}
