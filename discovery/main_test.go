package discovery

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// staticSource is a Source over instances set by the test, for picker
// tests that need no etcd. Successive sets share structure as a cache's
// snapshots do.
type staticSource struct{ snap atomic.Pointer[Snapshot] }

func (s *staticSource) Snapshot() *Snapshot { return s.snap.Load() }

// set replaces the instances with a snapshot built from scratch.
func (s *staticSource) set(insts ...roster.Instance) {
	s.snap.Store(NewSnapshot("svc", insts...))
}

// edit applies puts and removals to the current snapshot the way a cache
// does, so the new snapshot shares what did not change.
func (s *staticSource) edit(put []roster.Instance, remove ...string) {
	old := s.snap.Load()
	e := newEditor(old.root)
	for _, id := range remove {
		e.remove(id)
	}
	for _, in := range put {
		e.put(&item{inst: in})
	}
	s.snap.Store(&Snapshot{service: old.service, root: e.root, rev: old.rev + 1, syncedAt: old.syncedAt})
}

func newStatic(insts ...roster.Instance) *staticSource {
	s := &staticSource{}
	s.set(insts...)
	return s
}

func nInstances(n int) []roster.Instance {
	out := make([]roster.Instance, n)
	for i := range out {
		out[i] = roster.Instance{Service: "svc", ID: fmt.Sprintf("i%05d", i), Addr: fmt.Sprintf("10.%d.%d.%d:80", i>>16, (i>>8)&255, i&255+1)}
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newDiscoverer(t testing.TB, cli *clientv3.Client, opts ...Option) *Discoverer {
	t.Helper()
	d, err := New(cli, append([]Option{WithProgressInterval(200 * time.Millisecond), WithBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func watchT(t testing.TB, d *Discoverer, service string) *Cache {
	t.Helper()
	c, err := d.Watch(service)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
