package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/session"
)

// A candidate cut off from etcd (by a reset or a black hole) just as it
// enqueues, its session granted already, keeps campaigning on fresh
// sessions until its context ends, and leaves nothing behind once etcd
// answers again; a candidate that reaches etcd leads meanwhile.
func TestCandidateCutOffAsItEnqueues(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl = 2 * time.Second
	for _, o := range recipetest.Outages[:2] {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			m, direct, proxy, cut := cutCandidate(t, "enqueue", ttl)
			mend := o.Start(t, proxy, m)
			err := recipetest.Bounded(t, "Campaign", 2*ttl, func(ctx context.Context) error {
				_, err := cut.Campaign(ctx, "cut")
				return err
			})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			other := newElection(t, direct, "enqueue", election.WithTTL(ttl))
			l, err := other.Campaign(testCtx(t), "other")
			require.NoError(t, err, "a candidate that reaches etcd leads meanwhile")
			mend()
			require.Eventually(t, func() bool { return candidates(t, direct, "enqueue") == 1 }, ttl+time.Second, 10*time.Millisecond,
				"the cut-off candidate's key is gone once etcd answers")
			require.NoError(t, l.Err())
			require.NoError(t, l.Resign(testCtx(t)))
			require.NoError(t, cut.Close())
			recipetest.RequireNoKeys(t, direct, keys.ElectionPrefix(keys.DefaultNamespace, "enqueue"), ttl)
		})
	}
}

// A partition that begins as etcd answers a candidate's put: the key is
// written, its answer held, and etcd stays out of reach past the 2 s a
// failed campaign spends at once on taking the key back. The key goes as
// soon as etcd answers again, long before the session's TTL would take
// it, so the next candidate leads; and the Election campaigns again
// afterwards.
func TestFailedCampaignTakesItsKeyBackOnceEtcdAnswers(t *testing.T) {
	t.Parallel()                 // with the package's other fault tests, after its serial ones
	const ttl = 30 * time.Second // outlives the partition
	_, direct, proxy, cut := cutCandidate(t, "heldreply", ttl)

	proxy.PauseReplies()
	ctx, cancel := context.WithCancel(testCtx(t))
	res := campaignAsync(t, ctx, cut, "cut", nil)
	awaitCandidates(t, direct, "heldreply", 1) // written; the answer is held
	proxy.Pause()
	cancel()
	r := receive(t, res, 10*time.Second, "the cancelled campaign")
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, 1, candidates(t, direct, "heldreply"), "etcd was out of reach for the clean-up")

	proxy.Restore()
	mended := time.Now()
	require.Eventually(t, func() bool { return candidates(t, direct, "heldreply") == 0 }, 5*time.Second, 10*time.Millisecond,
		"the key is taken back once etcd answers")
	t.Logf("the key went %v after etcd answered again (TTL %v)", time.Since(mended).Round(time.Millisecond), ttl)
	other := newElection(t, direct, "heldreply")
	l, err := other.Campaign(testCtx(t), "other")
	require.NoError(t, err)
	require.NoError(t, l.Resign(testCtx(t)))
	again, err := cut.Campaign(testCtx(t), "cut")
	require.NoError(t, err, "the Election campaigns again")
	require.NoError(t, again.Resign(testCtx(t)))
	require.NoError(t, cut.Close())
}

// cutCandidate returns a member, a client of it, a proxy to it and an
// Election name whose client goes through the proxy, on sessions of ttl
// with one granted: its campaign's first request is its put.
func cutCandidate(t *testing.T, name string, ttl time.Duration) (*etcdtest.Member, *clientv3.Client, *etcdtest.Proxy, *election.Election) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	cli := etcdtest.NewClient(t, proxy.Endpoint())
	mgr, err := session.NewManager(cli, session.WithTTL(ttl))
	require.NoError(t, err)
	t.Cleanup(func() { mgr.Close() })
	_, err = mgr.Session(testCtx(t))
	require.NoError(t, err)
	return m, m.Client(), proxy, newElection(t, cli, name, election.WithSessionManager(mgr))
}
