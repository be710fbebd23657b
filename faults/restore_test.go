package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// etcd restored from a snapshot taken before the registration: the lease
// and the keys are gone and revisions jump ahead. Everything comes back on
// a new lease, and the registrar's watch still catches later deletions.
func TestRegistrarAfterEtcdRestoredFromSnapshot(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	m := embeddedtest.Start(t)
	dir := t.TempDir()
	snap := filepath.Join(dir, "snap.db")
	f, err := os.Create(snap)
	require.NoError(t, err)
	_, err = m.Server().Snapshot(ctx, f)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	cli := etcdtest.NewClient(t, m.Endpoints()...)
	r, err := registry.New(cli, registry.WithTTL(2*time.Second))
	require.NoError(t, err)
	defer r.Close()
	ids := []string{"i0", "i1", "i2", "i3", "i4"}
	for _, id := range ids {
		require.NoError(t, r.Register(ctx, roster.Instance{Service: "users", ID: id, Addr: "10.0.0.1:8080"}))
	}
	old := r.Status().Lease

	m.Stop()
	opts := []embedded.Option{
		embedded.WithName("restored"),
		embedded.WithDataDir(filepath.Join(dir, "restored")),
		embedded.WithPeerAddr(etcdtest.FreeAddr(t)),
		embedded.WithClientAddr(strings.TrimPrefix(m.Endpoints()[0], "http://")),
	}
	require.NoError(t, embedded.Restore(snap, opts...))
	srv, err := embedded.Start(ctx, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	plain := etcdtest.NewClient(t, srv.Endpoints()...)

	start := time.Now()
	require.Eventually(t, func() bool {
		st := r.Status()
		return st.Healthy && st.Lease != old && allUnder(t, plain, "users", ids, st.Lease)
	}, 10*time.Second, 5*time.Millisecond, "every instance back on the restored cluster")
	took := time.Since(start)
	t.Logf("all %d instances back %v after the restored etcd was ready", len(ids), took.Round(time.Millisecond))
	assert.Less(t, took, 2*time.Second)

	_, err = plain.Delete(ctx, "/roster/services/users/"+ids[0])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := plain.Get(ctx, "/roster/services/users/"+ids[0])
		return err == nil && len(resp.Kvs) == 1
	}, 2*time.Second, 5*time.Millisecond, "a later deletion is still seen")
	require.NoError(t, r.Shutdown(ctx))
	resp, err := plain.Get(ctx, "/roster/services/users/"+ids[1])
	require.NoError(t, err)
	assert.Empty(t, resp.Kvs, "Close revoked the lease")
}

// allUnder reports whether every instance is present under lease and the
// lease is alive, as a plain client sees it.
func allUnder(t *testing.T, cli *clientv3.Client, service string, ids []string, lease clientv3.LeaseID) bool {
	t.Helper()
	if lease == 0 {
		return false
	}
	ctx := ctxFor(t, time.Second)
	resp, err := cli.Get(ctx, "/roster/services/"+service+"/", clientv3.WithPrefix())
	if err != nil {
		return false
	}
	have := map[string]int64{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = kv.Lease
	}
	for _, id := range ids {
		if have["/roster/services/"+service+"/"+id] != int64(lease) {
			return false
		}
	}
	ttl, err := cli.TimeToLive(ctx, lease)
	return err == nil && ttl.TTL > 0
}
