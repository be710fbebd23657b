package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/internal/etcdtest"
)

// gatewayNode is one gateway of the README's three-gateway recipe.
type gatewayNode struct {
	name, peer, etcd, http string
	args                   []string
	p                      *proc
}

func (n *gatewayNode) base() string { return "http://" + n.http }

// threeGateways lays out the recipe on free ports: each gateway embeds one
// member of a three-member cluster and runs one demo worker.
func threeGateways(t *testing.T) []*gatewayNode {
	nodes := make([]*gatewayNode, 3)
	var initial []string
	for i := range nodes {
		nodes[i] = &gatewayNode{name: fmt.Sprintf("g%d", i+1), peer: etcdtest.FreeAddr(t), etcd: etcdtest.FreeAddr(t), http: etcdtest.FreeAddr(t)}
		initial = append(initial, nodes[i].name+"=http://"+nodes[i].peer)
	}
	for _, n := range nodes {
		n.args = []string{"-name", n.name, "-peer", n.peer, "-etcd-listen", n.etcd, "-listen", n.http,
			"-cluster", strings.Join(initial, ","), "-workers", "1", "-ttl", workerTTL.String()}
	}
	return nodes
}

// memberNames lists the cluster's members as the member at endpoint sees
// them.
func memberNames(t *testing.T, endpoint string) []string {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range ml.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// servesAll waits until the gateway routes to the three workers (one per
// gateway) and a request through it is answered.
func servesAll(t *testing.T, n *gatewayNode, within time.Duration) {
	t.Helper()
	d := &demo{t: t, httpAddr: n.http}
	want := []string{"g1-worker-1", "g2-worker-1", "g3-worker-1"}
	d.waitStatus(within, n.name+" routes to the workers of all three gateways", func(st gatewayStatus) bool {
		in := st.instances("worker")
		for _, id := range want {
			if in[id] != "serving" {
				return false
			}
		}
		return st.Etcd.Healthy && len(st.Etcd.Members) == 3
	})
	seen := map[string]bool{}
	deadline := time.Now().Add(within)
	for len(seen) < 3 && time.Now().Before(deadline) {
		id, err := get(n.base() + "/svc/worker/hello")
		require.NoError(t, err, "GET through %s", n.name)
		seen[id] = true
	}
	require.Len(t, seen, 3, "requests through %s reached %v", n.name, seen)
}

// The README's three gateways form one cluster, run workers and serve
// traffic. A gateway killed with SIGKILL and started again with the same
// command rejoins from its data dir (./data/<name> by default); one whose
// data is lost says to use -replace, and with it is replaced in one step:
// the stale member removed, a new one added, which catches up.
func TestThreeGatewaysKillRestartReplace(t *testing.T) {
	gw, _ := build(t)
	dir := t.TempDir() // the gateways' working dir: their data goes in ./data/<name>
	nodes := threeGateways(t)
	for _, n := range nodes {
		n.p = startIn(t, dir, n.name, gw, n.args...)
	}
	for _, n := range nodes {
		n.p.await(`gateway \S+ serving at`, 60*time.Second)
	}
	for _, n := range nodes {
		require.DirExists(t, filepath.Join(dir, "data", n.name, "member"), "cluster mode keeps the data by default")
	}
	require.Equal(t, []string{"g1", "g2", "g3"}, memberNames(t, nodes[0].etcd))
	for _, n := range nodes {
		servesAll(t, n, 20*time.Second)
	}

	// kill -9 of g2, then the same command again: it rejoins.
	g2 := nodes[1]
	g2.p.kill()
	began := time.Now()
	g2.p = startIn(t, dir, g2.name, gw, g2.args...)
	g2.p.await(`gateway \S+ serving at`, 30*time.Second)
	t.Logf("g2 killed and started again with the same command: serving after %v", time.Since(began).Round(time.Millisecond))
	require.Equal(t, []string{"g1", "g2", "g3"}, memberNames(t, g2.etcd), "g2 rejoined as itself")
	servesAll(t, g2, 20*time.Second)
	servesAll(t, nodes[0], 20*time.Second)

	// g3 loses its data: the same command explains, -replace replaces it.
	g3 := nodes[2]
	g3.p.kill()
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "data", g3.name)))
	lost := startIn(t, dir, g3.name+"-lost", gw, g3.args...)
	require.Equal(t, 1, lost.wait(60*time.Second), "a member started on lost data fails")
	out := strings.Join(lost.output(), "\n")
	t.Logf("g3 started on lost data:\n%s", out)
	require.Contains(t, out, "-replace")

	began = time.Now()
	g3.p = startIn(t, dir, g3.name, gw, append(g3.args, "-replace")...)
	g3.p.await(`gateway \S+ serving at`, 60*time.Second)
	t.Logf("g3 replaced after its data was lost: serving after %v", time.Since(began).Round(time.Millisecond))
	g3.p.await(`removing the stale member g3`, time.Second)
	require.Equal(t, []string{"g1", "g2", "g3"}, memberNames(t, g3.etcd))
	servesAll(t, g3, 20*time.Second)
	servesAll(t, nodes[0], 20*time.Second)

	for _, n := range nodes {
		require.Zero(t, n.p.stop(30*time.Second), "%s exit code", n.name)
	}
}
