package worker

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// A worker registers, leads, serves its critical section with a fencing
// token, and on Shutdown leaves nothing behind: no key, no lease, no
// goroutine (TestMain checks the last).
func TestWorkerLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := etcdtest.Start(t).Client()
	w, err := Start(ctx, Config{Client: cli, ID: "w1", TTL: 2 * time.Second})
	require.NoError(t, err)

	resp, err := cli.Get(ctx, "/roster/services/worker/w1")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "registered")
	require.Eventually(t, w.Leading, 10*time.Second, 10*time.Millisecond, "leads as the only candidate")

	for want := int64(1); want <= 2; want++ {
		r, err := http.Post("http://"+w.Addr()+"/critical", "", nil)
		require.NoError(t, err)
		var body struct{ Token, Counter int64 }
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		r.Body.Close()
		require.Equal(t, http.StatusOK, r.StatusCode)
		require.Positive(t, body.Token)
		require.Equal(t, want, body.Counter)
	}

	require.NoError(t, w.Shutdown(ctx))
	resp, err = cli.Get(ctx, "/roster/", clientv3.WithPrefix())
	require.NoError(t, err)
	for _, kv := range resp.Kvs {
		require.NotContains(t, string(kv.Key), "/services/", "instance key left behind")
		require.NotContains(t, string(kv.Key), "/elections/", "candidate key left behind")
		require.NotContains(t, string(kv.Key), "/locks/", "lock key left behind")
	}
	leases, err := cli.Leases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases.Leases, "leases left behind")
}
