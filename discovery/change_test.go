package discovery

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/stream"
)

// bareWatcher is a watcher without a Follower: the test calls its Handler
// methods as the Follower would.
func bareWatcher(service string) *watcher {
	d := &Discoverer{cfg: config{namespace: keys.DefaultNamespace}, log: obs.Logger(nil)}
	w := &watcher{d: d, service: service, prefix: keys.ServicePrefix(keys.DefaultNamespace, service),
		changes: stream.New(mergeChanges), bad: map[string]struct{}{}, attrs: newWatcherAttrs(service)}
	w.snap.Store(&Snapshot{service: service})
	return w
}

func applyChange(view map[string]roster.Instance, c Change) {
	for _, in := range c.Added {
		view[in.ID] = in
	}
	for _, in := range c.Updated {
		view[in.ID] = in
	}
	for _, in := range c.Removed {
		delete(view, in.ID)
	}
}

func viewOf(s *Snapshot) map[string]roster.Instance {
	out := map[string]roster.Instance{}
	for in := range s.All() {
		out[in.ID] = in
	}
	return out
}

func equalViews(a, b map[string]roster.Instance) bool {
	return maps.EqualFunc(a, b, func(x, y roster.Instance) bool { return equalInstance(&x, &y) })
}

// The handler against a map: random batches of events (valid, corrupt and
// foreign values; the same instance several times in a batch) and
// re-lists. Its snapshots always equal the map, and the Changes it
// publishes, read at once or read late and merged, add up to them.
func TestHandlerAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := bareWatcher("svc")
	defer w.changes.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast := w.changes.Subscribe(ctx, w.first)
	slowCtx, slowCancel := context.WithCancel(ctx)
	defer slowCancel()

	want := map[string]*mvccpb.KeyValue{} // the keys under the prefix
	rev := int64(1)
	valid := func() map[string]roster.Instance {
		out := map[string]roster.Instance{}
		for _, kv := range want {
			if id, ok := w.id(kv.Key); ok {
				if in, err := roster.DecodeInstance("svc", id, kv.Value); err == nil {
					out[id] = in
				}
			}
		}
		return out
	}
	list := func() []*mvccpb.KeyValue {
		ks := slices.Sorted(maps.Keys(want))
		out := make([]*mvccpb.KeyValue, 0, len(ks))
		for _, k := range ks {
			out = append(out, want[k])
		}
		return out
	}
	w.Reset(nil, rev)
	fastView := map[string]roster.Instance{}
	applyChange(fastView, <-fast)
	var slow <-chan Change
	for round := range 300 {
		if round == 100 {
			slow = w.changes.Subscribe(slowCtx, w.first) // then left unread
		}
		if round%37 == 36 {
			// A re-list, after changes the watch "missed".
			for range rng.IntN(40) {
				rev++
				id := fmt.Sprintf("m%02d", rng.IntN(60))
				key := w.prefix + id
				if rng.IntN(3) == 0 {
					delete(want, key)
				} else {
					v, _ := roster.EncodeInstance(roster.Instance{Service: "svc", ID: id, Addr: fmt.Sprintf("h:%d", 1+rng.IntN(3))})
					want[key] = &mvccpb.KeyValue{Key: []byte(key), Value: v, ModRevision: rev}
				}
			}
			w.Reset(list(), rev)
		} else {
			var evs []*clientv3.Event
			for range 1 + rng.IntN(30) {
				rev++
				id := fmt.Sprintf("m%02d", rng.IntN(60))
				key := w.prefix + id
				var value []byte
				switch k := rng.IntN(10); {
				case k == 0:
					key = w.prefix + "nested/" + id // not an instance key
					value = []byte("x")
				case k == 1:
					value = []byte("{corrupt")
				case k < 4:
					delete(want, key)
					evs = append(evs, &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}})
					continue
				default:
					value, _ = roster.EncodeInstance(roster.Instance{Service: "svc", ID: id, Addr: fmt.Sprintf("h:%d", 1+rng.IntN(3))})
				}
				kv := &mvccpb.KeyValue{Key: []byte(key), Value: value, ModRevision: rev}
				want[key] = kv
				evs = append(evs, &clientv3.Event{Type: mvccpb.PUT, Kv: kv})
			}
			w.Apply(evs, rev)
		}
		s := w.snap.Load()
		v := valid()
		require.True(t, equalViews(v, viewOf(s)), "round %d: snapshot", round)
		require.Equal(t, rev, s.Revision())
		bad := 0
		for k := range want {
			if _, ok := v[strings.TrimPrefix(k, w.prefix)]; !ok {
				bad++
			}
		}
		require.Equal(t, bad, s.Skipped(), "round %d: skipped keys", round)
		require.EqualValues(t, s.Len(), w.serving.Load()+w.other.Load())
		// The fast reader catches up.
		for !equalViews(fastView, viewOf(s)) {
			select {
			case c := <-fast:
				applyChange(fastView, c)
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: changes do not add up to the snapshot", round)
			}
		}
	}
	// The slow reader, 200 rounds behind, gets a few merged changes that
	// add up to the same view.
	slowView := map[string]roster.Instance{}
	n := 0
	for !equalViews(slowView, viewOf(w.snap.Load())) {
		select {
		case c := <-slow:
			applyChange(slowView, c)
			n++
		case <-time.After(5 * time.Second):
			t.Fatal("merged changes do not add up to the snapshot")
		}
	}
	require.Less(t, n, 20, "merged, not a backlog")
}

// mergeChanges against applying every change: any sequence merged in a
// reader's queue leads to the same view, and the queue stays short.
func TestMergeChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 50 {
		view := map[string]roster.Instance{}
		var q []Change
		var longest int
		steps := 1 + rng.IntN(400)
		for range steps {
			var c Change
			touched := map[string]bool{}
			for range 1 + rng.IntN(1+rng.IntN(50)) {
				id := fmt.Sprintf("i%03d", rng.IntN(100))
				if touched[id] {
					continue
				}
				touched[id] = true
				in := roster.Instance{Service: "svc", ID: id, Addr: fmt.Sprintf("h:%d", 1+rng.IntN(3))}
				old, ok := view[id]
				switch {
				case !ok:
					c.Added = append(c.Added, in)
				case rng.IntN(2) == 0:
					c.Removed = append(c.Removed, old)
				default:
					c.Updated = append(c.Updated, in)
				}
			}
			for _, l := range [][]roster.Instance{c.Added, c.Updated, c.Removed} {
				slices.SortFunc(l, func(a, b roster.Instance) int { return strings.Compare(a.ID, b.ID) })
			}
			applyChange(view, c)
			q = mergeChanges(q, c)
			longest = max(longest, len(q))
		}
		got := map[string]roster.Instance{}
		for _, c := range q {
			for _, l := range [][]roster.Instance{c.Added, c.Updated, c.Removed} {
				require.True(t, slices.IsSortedFunc(l, func(a, b roster.Instance) int { return strings.Compare(a.ID, b.ID) }))
			}
			applyChange(got, c)
		}
		require.True(t, equalViews(view, got), "trial %d", trial)
		require.LessOrEqual(t, longest, 12, "trial %d: queue of %d", trial, longest)
	}
}
