package discovery

import (
	"context"
	"fmt"
	"slices"
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

// converge bounds how long a cache may take to reflect etcd in tests.
const converge = 20 * time.Second

// fastProgress keeps staleness checks short in tests.
var fastProgress = WithProgressInterval(200 * time.Millisecond)

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newDiscoverer(t testing.TB, cli *clientv3.Client, opts ...Option) *Discoverer {
	t.Helper()
	d, err := New(cli, append([]Option{fastProgress, WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func watch(t testing.TB, d *Discoverer, service string) *Cache {
	t.Helper()
	c, err := d.Watch(service)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func inst(service, id string) roster.Instance {
	return roster.Instance{Service: service, ID: id, Addr: "10.0.0.1:" + fmt.Sprint(1000+len(id))}
}

func put(t testing.TB, cli *clientv3.Client, in roster.Instance, opts ...clientv3.OpOption) int64 {
	t.Helper()
	v, err := roster.EncodeInstance(in)
	require.NoError(t, err)
	resp, err := cli.Put(testContext(t), keys.InstanceKey(keys.DefaultNamespace, in.Service, in.ID), string(v), opts...)
	require.NoError(t, err)
	return resp.Header.Revision
}

func del(t testing.TB, cli *clientv3.Client, service, id string) {
	t.Helper()
	_, err := cli.Delete(testContext(t), keys.InstanceKey(keys.DefaultNamespace, service, id))
	require.NoError(t, err)
}

// truth reads a service with a plain Get and keeps the valid instances:
// what every cache must converge to.
func truth(t testing.TB, cli *clientv3.Client, service string) []roster.Instance {
	t.Helper()
	resp, err := cli.Get(testContext(t), keys.ServicePrefix(keys.DefaultNamespace, service), clientv3.WithPrefix())
	require.NoError(t, err)
	var out []roster.Instance
	for _, kv := range resp.Kvs {
		svc, id, ok := keys.ParseInstanceKey(keys.DefaultNamespace, string(kv.Key))
		if !ok || svc != service {
			continue
		}
		if in, err := roster.DecodeInstance(svc, id, kv.Value); err == nil {
			out = append(out, in)
		}
	}
	return out
}

func ids(insts []roster.Instance) []string {
	out := make([]string, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.ID)
	}
	return out
}

// requireConverges waits until the cache holds exactly what a plain Get
// of etcd returns.
func requireConverges(t testing.TB, c *Cache, cli *clientv3.Client) {
	t.Helper()
	var want, got []roster.Instance
	deadline := time.Now().Add(converge)
	for {
		want = truth(t, cli, c.Service())
		got = c.Snapshot().Instances
		if equalInstances(want, got) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	missing, ghosts := setDiff(ids(want), ids(got)), setDiff(ids(got), ids(want))
	require.Failf(t, "cache did not converge", "missing %v, ghosts %v (err %v)", missing, ghosts, c.Err())
}

func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, converge, 5*time.Millisecond, append([]any{msg}, args...)...)
}

// staticSource is a Source over a fixed set of instances, for picker
// tests that need no etcd.
type staticSource struct{ snap atomic.Pointer[Snapshot] }

func (s *staticSource) Snapshot() *Snapshot { return s.snap.Load() }

func (s *staticSource) set(insts ...roster.Instance) {
	insts = slices.Clone(insts)
	slices.SortFunc(insts, byID)
	s.snap.Store(&Snapshot{Service: "svc", Revision: 1, SyncedAt: time.Now(), Instances: insts})
}

func newStatic(insts ...roster.Instance) *staticSource {
	s := &staticSource{}
	s.set(insts...)
	return s
}

func nInstances(n int) []roster.Instance {
	out := make([]roster.Instance, n)
	for i := range out {
		out[i] = roster.Instance{Service: "svc", ID: fmt.Sprintf("i%05d", i), Addr: fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1)}
	}
	return out
}

type rosterInstance = roster.Instance

var encode = roster.EncodeInstance

func instKey(service, id string) string { return keys.InstanceKey(keys.DefaultNamespace, service, id) }
