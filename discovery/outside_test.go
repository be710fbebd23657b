package discovery_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/internal/keys"
)

// Helpers of the tests that use only the package's exported API.

// within bounds how long a cache may take to reflect etcd in tests.
const within = 20 * time.Second

// interval is the progress interval of the tests' caches.
const interval = 200 * time.Millisecond

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// discoverer returns a Discoverer with short intervals, closed after the
// test.
func discoverer(t testing.TB, cli *clientv3.Client, opts ...discovery.Option) *discovery.Discoverer {
	t.Helper()
	d, err := discovery.New(cli, append([]discovery.Option{
		discovery.WithProgressInterval(interval),
		discovery.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
	}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

func cache(t testing.TB, d *discovery.Discoverer, service string) *discovery.Cache {
	t.Helper()
	c, err := d.Watch(service)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func instance(service, id string) roster.Instance {
	return roster.Instance{Service: service, ID: id, Addr: fmt.Sprintf("10.0.0.1:%d", 1000+len(id))}
}

func putInstance(t testing.TB, cli *clientv3.Client, in roster.Instance, opts ...clientv3.OpOption) int64 {
	t.Helper()
	v, err := roster.EncodeInstance(in)
	require.NoError(t, err)
	resp, err := cli.Put(ctxT(t), keys.InstanceKey(keys.DefaultNamespace, in.Service, in.ID), string(v), opts...)
	require.NoError(t, err)
	return resp.Header.Revision
}

func deleteInstance(t testing.TB, cli *clientv3.Client, service, id string) int64 {
	t.Helper()
	resp, err := cli.Delete(ctxT(t), keys.InstanceKey(keys.DefaultNamespace, service, id))
	require.NoError(t, err)
	return resp.Header.Revision
}

// registerMany writes n instances of service in transactions of 128 puts
// (etcd's default limit of operations per transaction).
func registerMany(t testing.TB, cli *clientv3.Client, service string, n int) {
	t.Helper()
	var ops []clientv3.Op
	flush := func() {
		_, err := cli.Txn(ctxT(t)).Then(ops...).Commit()
		require.NoError(t, err)
		ops = ops[:0]
	}
	for i := range n {
		in := instanceN(i)
		in.Service = service
		v, err := roster.EncodeInstance(in)
		require.NoError(t, err)
		ops = append(ops, clientv3.OpPut(keys.InstanceKey(keys.DefaultNamespace, service, in.ID), string(v)))
		if len(ops) == 128 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// instanceN is the i-th instance registerMany writes, of service "svc".
func instanceN(i int) roster.Instance {
	return roster.Instance{Service: "svc", ID: fmt.Sprintf("i%06d", i), Addr: fmt.Sprintf("10.%d.%d.%d:8080", i>>16, (i>>8)&255, i&255),
		Weight: 1 + i%10, Metadata: map[string]string{"zone": fmt.Sprint("z", i%3), "version": "1.2.3"}}
}

// truth reads a service with a plain Get and keeps the valid instances:
// what every cache must converge to.
func truth(t testing.TB, cli *clientv3.Client, service string) []roster.Instance {
	t.Helper()
	resp, err := cli.Get(ctxT(t), keys.ServicePrefix(keys.DefaultNamespace, service), clientv3.WithPrefix())
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

func all(s *discovery.Snapshot) []roster.Instance { return slices.Collect(s.All()) }

func equalInstances(a, b []roster.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y roster.Instance) bool {
		return x.Service == y.Service && x.ID == y.ID && x.Addr == y.Addr && x.Weight == y.Weight &&
			x.Status == y.Status && fmt.Sprint(x.Metadata) == fmt.Sprint(y.Metadata)
	})
}

// requireConverges waits until the cache holds exactly what a plain Get of
// etcd returns.
func requireConverges(t testing.TB, c *discovery.Cache, cli *clientv3.Client) {
	t.Helper()
	var want, got []roster.Instance
	deadline := time.Now().Add(within)
	for {
		want = truth(t, cli, c.Service())
		got = all(c.Snapshot())
		if equalInstances(want, got) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	require.Failf(t, "cache did not converge", "want %v, got %v (err %v)", ids(want), ids(got), c.Err())
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, within, 5*time.Millisecond, append([]any{msg}, args...)...)
}

// next receives from ch within the deadline.
func next[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "channel closed")
		return v
	case <-time.After(within):
		t.Fatal("nothing received")
		panic("unreachable")
	}
}

// closed waits until ch is closed, draining it.
func closed[T any](t testing.TB, ch <-chan T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("channel still open after %v", d)
		}
	}
}
