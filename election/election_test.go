package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

func TestNewValidates(t *testing.T) {
	cli := etcdtest.Start(t).Client()
	_, err := election.New(cli, "a/b")
	require.ErrorIs(t, err, roster.ErrInvalidName)
	_, err = election.New(cli, "")
	require.ErrorIs(t, err, roster.ErrInvalidName)
	_, err = election.New(cli, "ok", election.WithNamespace("no-slash"))
	require.ErrorIs(t, err, roster.ErrInvalidName)
	_, err = election.New(cli, "ok", election.WithTTL(time.Second))
	require.ErrorIs(t, err, session.ErrInvalidTTL)
	_, err = election.New(nil, "ok")
	require.Error(t, err)
}

func TestCampaignLeadProclaimResign(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	e := newElection(t, cli, "jobs", election.WithTTL(5*time.Second))
	_, err := e.Leader(ctx)
	require.ErrorIs(t, err, election.ErrNoLeader)

	l, err := e.Campaign(ctx, "v1")
	require.NoError(t, err)
	require.NoError(t, l.Err())
	require.Equal(t, keys.LeaseKey(keys.ElectionPrefix(keys.DefaultNamespace, "jobs"), int64(l.Lease())), l.Key())
	ld, err := e.Leader(ctx)
	require.NoError(t, err)
	require.True(t, ld.Elected())
	require.Equal(t, election.Leader{Key: l.Key(), Value: "v1", Token: l.Token(), Lease: l.Lease(), Revision: ld.Revision}, ld)

	require.NoError(t, l.Proclaim(ctx, "v2"))
	ld, err = e.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "v2", ld.Value)
	require.Equal(t, l.Token(), ld.Token, "proclaim keeps the fencing token")

	_, err = e.Campaign(ctx, "again")
	require.ErrorIs(t, err, election.ErrBusy, "one candidate campaigns once at a time")

	require.NoError(t, l.Resign(ctx))
	requireDone(t, l, 0)
	require.ErrorIs(t, l.Err(), election.ErrResigned)
	require.NoError(t, l.Resign(ctx), "idempotent")
	require.ErrorIs(t, l.Proclaim(ctx, "v3"), election.ErrNotLeader)
	_, err = e.Leader(ctx)
	require.ErrorIs(t, err, election.ErrNoLeader)

	// Lost or resigned, the candidate may campaign again, and gets a newer token.
	l2, err := e.Campaign(ctx, "v4")
	require.NoError(t, err)
	require.Greater(t, l2.Token(), l.Token())
}

func TestFencedWrites(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	e := newElection(t, cli, "fence")
	l, err := e.Campaign(ctx, "")
	require.NoError(t, err)

	_, err = l.Do(ctx, clientv3.OpPut("/t/out", "1"))
	require.NoError(t, err)
	resp, err := l.Txn(ctx).If(clientv3.Compare(clientv3.Value("/t/out"), "=", "1")).
		Then(clientv3.OpPut("/t/out", "2")).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)

	// Someone deletes the leader key: etcd rejects the writes, whatever the
	// leader believes.
	_, err = m.Client().Delete(ctx, l.Key())
	require.NoError(t, err)
	raw, err := cli.Txn(ctx).If(l.Guard()).Then(clientv3.OpPut("/t/out", "stale")).Commit()
	require.NoError(t, err)
	require.False(t, raw.Succeeded)
	_, err = l.Do(ctx, clientv3.OpPut("/t/out", "stale"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	_, err = l.Txn(ctx).Then(clientv3.OpPut("/t/out", "stale")).Commit()
	require.ErrorIs(t, err, election.ErrNotLeader)
	got, err := cli.Get(ctx, "/t/out")
	require.NoError(t, err)
	require.Equal(t, "2", string(got.Kvs[0].Value))
}

func TestCloseResignsAndRefuses(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	e, err := election.New(cli, "closing")
	require.NoError(t, err)
	l, err := e.Campaign(ctx, "")
	require.NoError(t, err)
	obs := e.Observe(ctx)
	require.True(t, receive(t, obs, 5*time.Second, "first state").Elected())

	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "idempotent")
	requireDone(t, l, 0)
	require.ErrorIs(t, l.Err(), election.ErrClosed)
	require.False(t, keyExists(t, cli, l.Key()))
	_, ok := <-obs
	require.False(t, ok, "observers end with the election")
	_, err = e.Campaign(ctx, "")
	require.ErrorIs(t, err, election.ErrClosed)
	_, open := <-e.Observe(ctx)
	require.False(t, open)
}

func TestCloseStopsCampaign(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	leader := newElection(t, cli, "close-wait")
	_, err := leader.Campaign(ctx, "")
	require.NoError(t, err)
	e, err := election.New(cli, "close-wait")
	require.NoError(t, err)
	res := campaignAsync(t, ctx, e, "", nil)
	awaitCandidates(t, cli, "close-wait", 2)
	require.NoError(t, e.Close())
	r := receive(t, res, 5*time.Second, "campaign")
	require.ErrorIs(t, r.err, election.ErrClosed)
	require.Equal(t, 1, candidates(t, cli, "close-wait"))
}

// A shared Manager carries elections (and locks) of one process on one
// lease, and is not closed by the election.
func TestSharedSessionManager(t *testing.T) {
	ctx := testCtx(t)
	cli := etcdtest.Start(t).Client()
	mgr, err := session.NewManager(cli, session.WithTTL(5*time.Second))
	require.NoError(t, err)
	defer mgr.Close()
	a := newElection(t, cli, "a", election.WithSessionManager(mgr))
	b := newElection(t, cli, "b", election.WithSessionManager(mgr))
	la, err := a.Campaign(ctx, "")
	require.NoError(t, err)
	lb, err := b.Campaign(ctx, "")
	require.NoError(t, err)
	require.Equal(t, la.Lease(), lb.Lease())
	require.NoError(t, a.Close())
	s, err := mgr.Session(ctx)
	require.NoError(t, err)
	require.Equal(t, la.Lease(), s.Lease(), "the manager's session outlives the election")
	require.NoError(t, lb.Err())

	// A second open Election of one name on the Manager would share its key
	// and lead beside the first: refused until the first is closed.
	_, err = election.New(cli, "b", election.WithSessionManager(mgr))
	require.ErrorIs(t, err, session.ErrNameInUse)
	own, err := election.New(cli, "b") // its own sessions: no clash
	require.NoError(t, err)
	require.NoError(t, own.Close())
	require.NoError(t, b.Close())
	again := newElection(t, cli, "b", election.WithSessionManager(mgr))
	require.NoError(t, again.Close())
}

func TestCampaignCancelledLeavesNoKey(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a := newElection(t, m.Client(), "cancel")
	_, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	b := newElection(t, m.Client(), "cancel")
	bctx, cancel := context.WithCancel(ctx)
	res := campaignAsync(t, bctx, b, "b", nil)
	awaitCandidates(t, m.Client(), "cancel", 2)
	cancel()
	r := receive(t, res, 5*time.Second, "cancelled campaign")
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, 1, candidates(t, m.Client(), "cancel"), "the cancelled campaign withdrew its key")

	// The candidate can campaign again afterwards.
	campaignAsync(t, ctx, b, "b", nil)
	awaitCandidates(t, m.Client(), "cancel", 2)
}
