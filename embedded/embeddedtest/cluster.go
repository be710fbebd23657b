package embeddedtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
)

// Cluster is a multi-member cluster started for a test.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// StartCluster bootstraps an n-member cluster for t.
func StartCluster(t testing.TB, n int, opts ...embedded.Option) *Cluster {
	t.Helper()
	opts = append([]embedded.Option{embedded.WithDataDir(t.TempDir())}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	servers, err := embedded.StartCluster(ctx, n, opts...)
	if err != nil {
		t.Fatalf("embeddedtest: start cluster: %v", err)
	}
	var members []embedded.Member
	for _, s := range servers {
		members = append(members, embedded.Member{Name: s.Name(), PeerURL: s.PeerURL()})
	}
	c := &Cluster{t: t}
	for _, s := range servers {
		c.Members = append(c.Members, adopt(t, s, append(opts, embedded.WithCluster("", members...))))
	}
	// Runs before the members' own cleanups, which then find them closed.
	t.Cleanup(c.abortAll)
	return c
}

// abortAll stops every member at once: a graceful Close of a cluster member
// takes about a second (etcd drains its peer connections), and a test's
// data has no need of an orderly shutdown.
func (c *Cluster) abortAll() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(func() { m.Server().Abort() })
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

// Client returns a client of every member, closed when the test ends,
// configured like Member.Client.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	return newClient(c.t, c.Members[0].Server(), c.Endpoints())
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
		time.Sleep(10 * time.Millisecond) // polling the members' own view
	}
	c.t.Fatalf("embeddedtest: no leader within %v", StartTimeout)
	return nil
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
	c.t.Fatal("embeddedtest: a one-member cluster has no follower")
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

func (c *Cluster) agreedLeader() *Member {
	var lead uint64
	var leader *Member
	for _, m := range c.Members {
		s := m.Server()
		select {
		case <-s.Done():
			continue
		default:
		}
		l := s.Leader()
		if l == 0 || (lead != 0 && l != lead) {
			return nil
		}
		lead = l
		if s.ID() == l {
			leader = m
		}
	}
	return leader
}

// Isolate cuts m off from every other running member, in both directions,
// while it keeps running and serving clients: a network partition between
// peers. Heal undoes it. The cut is etcd's own: each side's raft transport
// drops the messages for the other.
func (c *Cluster) Isolate(m *Member) { c.peerLinks(m, cutPeer) }

// Heal reconnects m to every other member after Isolate.
func (c *Cluster) Heal(m *Member) { c.peerLinks(m, mendPeer) }

func (c *Cluster) peerLinks(m *Member, f func(from, to *embedded.Server)) {
	for _, o := range c.Members {
		if o == m {
			continue
		}
		f(m.Server(), o.Server())
		f(o.Server(), m.Server())
	}
}

func cutPeer(from, to *embedded.Server) {
	from.Etcd().Server.CutPeer(types.ID(to.ID()))
}

func mendPeer(from, to *embedded.Server) {
	from.Etcd().Server.MendPeer(types.ID(to.ID()))
}
