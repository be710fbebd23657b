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
	"github.com/rosterkit/roster/internal/keys"
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

// converge bounds how long a cache may take to reflect etcd in tests.
const converge = 20 * time.Second

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

func put(t testing.TB, cli *clientv3.Client, in roster.Instance) int64 {
	t.Helper()
	v, err := roster.EncodeInstance(in)
	require.NoError(t, err)
	resp, err := cli.Put(testContext(t), keys.InstanceKey(keys.DefaultNamespace, in.Service, in.ID), string(v))
	require.NoError(t, err)
	return resp.Header.Revision
}

func del(t testing.TB, cli *clientv3.Client, service, id string) {
	t.Helper()
	_, err := cli.Delete(testContext(t), keys.InstanceKey(keys.DefaultNamespace, service, id))
	require.NoError(t, err)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, converge, 5*time.Millisecond, append([]any{msg}, args...)...)
}
