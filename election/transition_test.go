package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
			m := etcdtest.Start(t)
			direct := m.Client()
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			mgr, err := session.NewManager(cli, session.WithTTL(ttl))
			require.NoError(t, err)
			t.Cleanup(func() { mgr.Close() })
			_, err = mgr.Session(testCtx(t)) // granted: the campaign's first request is its put
			require.NoError(t, err)
			cut := newElection(t, cli, "enqueue", election.WithSessionManager(mgr))

			mend := o.Start(t, proxy, m)
			err = recipetest.Bounded(t, "Campaign", 2*ttl, func(ctx context.Context) error {
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
