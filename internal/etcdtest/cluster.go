package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cluster is a multi-member cluster of member processes started for a test.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// StartCluster bootstraps an n-member cluster for t. flags are extra
// roster-etcd flags for every member.
func StartCluster(t testing.TB, n int, flags ...string) *Cluster {
	t.Helper()
	bin := binary(t)
	var err error
	for range 3 { // a free port may be taken before etcd binds it
		var c *Cluster
		if c, err = tryStartCluster(t, bin, n, flags); err == nil {
			return c
		}
		if !portClash(err) {
			break
		}
	}
	t.Fatalf("etcdtest: start cluster: %v", err)
	return nil
}

var clusters atomic.Int64 // clusters started by this process

func tryStartCluster(t testing.TB, bin string, n int, flags []string) (*Cluster, error) {
	dir := t.TempDir()
	clients, peers := make([]string, n), make([]string, n)
	var initial []string
	for i := range n {
		clients[i], peers[i] = FreeAddr(t), FreeAddr(t)
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, peers[i]))
	}
	// A token of its own: members of two clusters that meet on a reused
	// peer port refuse each other instead of joining.
	token := fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), clusters.Add(1))
	c := &Cluster{t: t}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		c.Members = append(c.Members, &Member{t: t, p: &process{
			name:      name,
			clientURL: "http://" + clients[i],
			logPath:   filepath.Join(dir, name+".log"),
			args: append([]string{bin,
				"--name", name,
				"--data-dir", filepath.Join(dir, name),
				"--listen-client-urls", "http://" + clients[i],
				"--listen-peer-urls", "http://" + peers[i],
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-token", token,
				"--log-level", "warn",
			}, flags...),
		}})
	}
	errs := make([]error, n)
	for i, m := range c.Members {
		errs[i] = m.p.start()
	}
	if err := errors.Join(errs...); err != nil {
		c.killAll()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() { errs[i] = m.p.awaitServing(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.killAll()
		return nil, err
	}
	t.Cleanup(c.killAll)
	return c, nil
}

// killAll stops every member at once: a test's data has no need of an
// orderly shutdown.
func (c *Cluster) killAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(m.kill)
	}
	wg.Wait()
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoints()...)
	}
	return eps
}

// Client returns a client of every member, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	return NewClient(c.t, c.Endpoints()...)
}

// Leader waits until the running members agree on a Raft leader and returns
// it.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		if m := c.agreedLeader(); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond) // polling the members' own view
	}
	c.t.Fatalf("etcdtest: no leader within %v", StartTimeout)
	return nil
}

// agreedLeader returns the member every running, unpaused member names as
// leader, or nil.
func (c *Cluster) agreedLeader() *Member {
	var lead uint64
	var leader *Member
	for _, m := range c.Members {
		if !m.Running() || m.p.isPaused() {
			continue
		}
		st := m.status()
		if st == nil || st.Leader == 0 || (lead != 0 && st.Leader != lead) {
			return nil
		}
		lead = st.Leader
		if st.Header.MemberId == st.Leader {
			leader = m
		}
	}
	return leader
}

// Follower waits for a Raft leader and returns a member that is not it.
func (c *Cluster) Follower() *Member {
	c.t.Helper()
	leader := c.Leader()
	for _, m := range c.Members {
		if m != leader {
			return m
		}
	}
	c.t.Fatal("etcdtest: a one-member cluster has no follower")
	return nil
}

// EndpointsExcept are the client URLs of every member but m: a client of
// the majority when m is cut off.
func (c *Cluster) EndpointsExcept(m *Member) []string {
	var eps []string
	for _, o := range c.Members {
		if o != m {
			eps = append(eps, o.Endpoints()...)
		}
	}
	return eps
}
