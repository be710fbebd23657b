package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Three copies of the gateway binary, each embedding one etcd member, form
// one Raft cluster: the single-binary cluster use.
func TestThreeGatewaysFormOneCluster(t *testing.T) {
	gw, wk := build(t)
	type node struct{ name, peer, etcd, http string }
	nodes := make([]node, 3)
	var initial []string
	for i := range nodes {
		nodes[i] = node{name: fmt.Sprintf("g%d", i+1), peer: etcdtest.FreeAddr(t), etcd: etcdtest.FreeAddr(t), http: etcdtest.FreeAddr(t)}
		initial = append(initial, nodes[i].name+"=http://"+nodes[i].peer)
	}
	procs := make([]*proc, 3)
	for i, n := range nodes {
		procs[i] = start(t, n.name, gw, "-listen", n.http, "-etcd-listen", n.etcd,
			"-data-dir", t.TempDir(), "-name", n.name, "-peer", n.peer,
			"-cluster", strings.Join(initial, ","))
	}
	for _, p := range procs {
		p.await(`gateway serving at`, 60*time.Second)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{nodes[0].etcd}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	members, err := cli.MemberList(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range members.Members {
		names = append(names, m.Name)
	}
	require.ElementsMatch(t, []string{"g1", "g2", "g3"}, names)

	// A worker talking to the first member is routable through the third
	// gateway: they share one replicated store.
	d := &demo{t: t, wk: wk, etcdAddr: nodes[0].etcd, httpAddr: nodes[2].http, workers: map[string]*proc{}}
	d.startWorker("shared")
	d.waitStatus(10*time.Second, "worker seen by the third gateway", func(st gatewayStatus) bool { return !without(st, "shared") })
	_, err = get(d.base() + "/svc/worker/hello")
	require.NoError(t, err)

	require.Zero(t, d.workers["shared"].stop(15*time.Second))
	for _, p := range procs {
		require.Zero(t, p.stop(20*time.Second), "%s exit code", p.name)
	}
}
