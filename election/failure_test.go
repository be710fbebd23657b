package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
)

// Every blocking call returns within its bound, with an error that says
// what failed, while etcd does not answer, and nothing is left behind: no
// goroutine (the package's leak check), no key, no lease.
func TestBlockingCallsFailInBound(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl, wait, progress = 4 * time.Second, 500 * time.Millisecond, 200 * time.Millisecond
	for _, o := range recipetest.Outages {
		t.Run(o.Name, func(t *testing.T) {
			t.Parallel()
			m := etcdtest.Start(t)
			observer := m.Client()
			name := "outage-" + map[string]string{"black hole": "hole", "reset": "reset", "member stopped": "stopped"}[o.Name]
			proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
			cli := etcdtest.NewClient(t, proxy.Endpoint())
			leader, err := election.New(cli, name, election.WithTTL(ttl))
			require.NoError(t, err)
			other, err := election.New(cli, name, election.WithTTL(ttl), election.WithProgressInterval(progress))
			require.NoError(t, err)
			l, err := leader.Campaign(testCtx(t), "v")
			require.NoError(t, err)
			states := other.Observe(testCtx(t))
			require.True(t, receive(t, states, 5*time.Second, "first state").Elected())

			mend := o.Start(t, proxy, m)
			// The leader's calls first, while its session still lives.
			recipetest.Bounded(t, "Proclaim", wait, func(ctx context.Context) error { return l.Proclaim(ctx, "v2") })
			recipetest.Bounded(t, "Resign", wait, func(ctx context.Context) error { return l.Resign(ctx) })
			requireDone(t, l, 0)
			stale := receive(t, states, 4*progress, "stale state")
			require.ErrorIs(t, stale.Err, election.ErrStale)
			require.ErrorIs(t, stale.Err, roster.ErrStale)
			require.Equal(t, l.Key(), stale.Key, "the last confirmed state, delivered again")

			recipetest.Bounded(t, "Leader", wait, func(ctx context.Context) error { _, err := other.Leader(ctx); return err })
			recipetest.Bounded(t, "Campaign", wait, func(ctx context.Context) error { _, err := other.Campaign(ctx, "w"); return err })
			err = recipetest.Bounded(t, "Run", wait, func(ctx context.Context) error {
				return other.Run(ctx, "w", func(context.Context, *election.Leadership) error { return nil })
			})
			require.ErrorIs(t, err, context.DeadlineExceeded)
			start := time.Now()
			_ = leader.Shutdown(shortCtx(t, wait))
			require.Less(t, time.Since(start), wait+time.Second, "Shutdown is bounded by its context")
			start = time.Now()
			_ = other.Close()
			require.Less(t, time.Since(start), ttl+time.Second, "Close is bounded by the TTL")
			_, open := <-states
			require.False(t, open, "Observe ends with the Election")

			mend()
			recipetest.RequireNoKeys(t, observer, keys.ElectionPrefix(keys.DefaultNamespace, name), ttl+2*time.Second)
			recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
		})
	}
	t.Run("client closed", func(t *testing.T) {
		t.Parallel()
		m := etcdtest.Start(t)
		observer := m.Client()
		cli := etcdtest.NewClient(t, m.Endpoints()...)
		e, err := election.New(cli, "closed-client", election.WithTTL(ttl))
		require.NoError(t, err)
		l, err := e.Campaign(testCtx(t), "v")
		require.NoError(t, err)
		states := e.Observe(testCtx(t))
		receive(t, states, 5*time.Second, "first state")
		require.NoError(t, cli.Close())
		start := time.Now()
		_, err = e.Leader(context.Background())
		require.ErrorIs(t, err, roster.ErrClosed)
		require.ErrorContains(t, err, "client closed")
		require.Error(t, l.Proclaim(context.Background(), "v2"))
		require.ErrorIs(t, l.Resign(context.Background()), roster.ErrClosed)
		require.NoError(t, e.Close())
		_, err = e.Campaign(context.Background(), "v")
		require.ErrorIs(t, err, election.ErrClosed)
		for range states { // closed promptly: the client, then the Election, ended it
		}
		require.Less(t, time.Since(start), time.Second, "a closed client fails at once")

		other := newElection(t, m.Client(), "closed-client-2")
		cli2 := etcdtest.NewClient(t, m.Endpoints()...)
		e2, err := election.New(cli2, other.Name(), election.WithTTL(ttl))
		require.NoError(t, err)
		require.NoError(t, cli2.Close())
		_, err = e2.Campaign(context.Background(), "v")
		require.ErrorIs(t, err, roster.ErrClosed)
		require.NoError(t, e2.Close())
		recipetest.RequireNoLeases(t, observer, ttl+2*time.Second)
	})
}

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
