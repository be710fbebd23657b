package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// Faults that need the server's internals: a member cut off from its peers
// by its own raft transport while it keeps serving its clients.

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func putInstance(t *testing.T, cli *clientv3.Client, service, id string) {
	t.Helper()
	v, err := roster.EncodeInstance(roster.Instance{Service: service, ID: id, Addr: "10.0.0.1:8080"})
	require.NoError(t, err)
	_, err = cli.Put(ctxFor(t, 10*time.Second), "/roster/services/"+service+"/"+id, string(v))
	require.NoError(t, err)
}

// requireCacheMatches waits until the cache holds the IDs a plain Get of
// etcd returns.
func requireCacheMatches(t *testing.T, c *discovery.Cache, cli *clientv3.Client) {
	t.Helper()
	var want, got []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cli.Get(ctxFor(t, 5*time.Second), "/roster/services/"+c.Service()+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		require.NoError(t, err)
		want = want[:0]
		for _, kv := range resp.Kvs {
			want = append(want, string(kv.Key[len("/roster/services/"+c.Service()+"/"):]))
		}
		got = got[:0]
		for in := range c.Snapshot().All() {
			got = append(got, in.ID)
		}
		if slices.Equal(want, got) {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("cache did not converge: etcd %v, cache %v (err %v)", want, got, c.Err())
}

// The member a cache reads from keeps running but is cut off from its
// peers, so it can serve only stale data. The staleness check is set to a
// minute, so only the watch's leader requirement can get the cache off that
// member within the bound: etcd cancels such watches once the member has had
// no leader for a few election timeouts.
func TestCacheLeavesAnIsolatedMember(t *testing.T) {
	cl := embeddedtest.StartCluster(t, 3)
	pinned := cl.Follower()
	writer := etcdtest.NewClient(t, cl.EndpointsExcept(pinned)...)
	for i := range 5 {
		putInstance(t, writer, "svc", fmt.Sprintf("n%d", i))
	}
	cli := etcdtest.NewClient(t, pinned.Endpoints()...)
	d, err := discovery.New(cli, discovery.WithProgressInterval(time.Minute))
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	c, err := d.Watch("svc")
	require.NoError(t, err)
	require.NoError(t, c.WaitSynced(ctxFor(t, 10*time.Second)))
	requireCacheMatches(t, c, writer)
	cli.SetEndpoints(cl.Endpoints()...)

	cl.Isolate(pinned)
	start := time.Now()
	_, err = writer.Delete(ctxFor(t, 10*time.Second), "/roster/services/svc/n0")
	require.NoError(t, err)
	putInstance(t, writer, "svc", "n9")
	requireCacheMatches(t, c, writer)
	t.Logf("cache converged through the majority %v after its member was isolated", time.Since(start).Round(time.Millisecond))
	assert.Positive(t, c.Stats().Restarts, "the watch on the isolated member ended")

	cl.Heal(pinned)
	for i := range 5 {
		putInstance(t, writer, "svc", fmt.Sprintf("k%d", i))
	}
	requireCacheMatches(t, c, writer)
}

// The partition is between etcd members instead of between the leader and
// its member: the leader's client still reaches its member, but that member
// is cut off from its peers. The leader must still know it lost before a
// candidate on the majority side wins, and its fenced write must be
// refused once the member is back.
func TestLeaderOnIsolatedMemberLearnsFirst(t *testing.T) {
	cl := embeddedtest.StartCluster(t, 3)
	for trial := range 3 {
		isolatedMemberTrial(t, cl, fmt.Sprintf("iso%d", trial))
	}
}

func isolatedMemberTrial(t *testing.T, cl *embeddedtest.Cluster, name string) {
	ctx := ctxFor(t, 60*time.Second)
	const ttl = 2 * time.Second
	pinned := cl.Follower()
	others := etcdtest.NewClient(t, cl.EndpointsExcept(pinned)...)
	a, err := election.New(etcdtest.NewClient(t, pinned.Endpoints()...), name, election.WithTTL(ttl))
	require.NoError(t, err)
	defer a.Close()
	la, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	lost := make(chan time.Time, 1)
	go func() {
		<-la.Done()
		lost <- time.Now()
	}()
	b, err := election.New(others, name, election.WithTTL(ttl))
	require.NoError(t, err)
	defer b.Close()
	type won struct {
		l         *election.Leadership
		at        time.Time
		otherDone bool
		err       error
	}
	bres := make(chan won, 1)
	go func() {
		l, err := b.Campaign(ctx, "b")
		w := won{l: l, at: time.Now(), err: err}
		select {
		case <-la.Done():
			w.otherDone = true
		default:
		}
		bres <- w
	}()
	require.Eventually(t, func() bool {
		resp, err := others.Get(ctx, "/roster/elections/"+name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err == nil && resp.Count == 2
	}, 10*time.Second, time.Millisecond, "waiting for 2 candidates")

	cl.Isolate(pinned)
	isolated := time.Now()
	var w won
	select {
	case w = <-bres:
	case <-time.After(15 * time.Second):
		t.Fatal("no candidate won within 15 s of the isolation")
	}
	require.NoError(t, w.err)
	require.True(t, w.otherDone, "%s: the new leader won while the old one still believed it led", name)
	require.Greater(t, w.l.Token(), la.Token())
	t.Logf("%s: the old leader knew %v before the new one won (%v after the isolation)", name,
		w.at.Sub(<-lost).Round(time.Millisecond), w.at.Sub(isolated).Round(time.Millisecond))

	cl.Heal(pinned)
	// The deposed leader can no longer write: its own Do refuses, and etcd
	// refuses its fenced transaction when another client sends it; the
	// current leader's write lands.
	_, err = la.Do(ctx, clientv3.OpPut("/t/"+name, "stale"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	raw, err := others.Txn(ctx).If(la.Guard()).Then(clientv3.OpPut("/t/"+name, "stale")).Commit()
	require.NoError(t, err)
	require.False(t, raw.Succeeded, "etcd rejects the deposed leader's fenced write")
	_, err = w.l.Do(ctx, clientv3.OpPut("/t/"+name, "fresh"))
	require.NoError(t, err)
}
