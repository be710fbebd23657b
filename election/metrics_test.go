package election_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
)

// After a hand-over is-leader flips on both candidates; every state change
// is counted and logged once, and keep-alives are measured but not logged.
func TestMetricsAndLogsFollowLeadership(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	direct := m.Client()
	name := attribute.String("name", "metrics")
	type candidate struct {
		e    *election.Election
		m    *recipetest.Meter
		logs *recipetest.Records
	}
	var cs [2]candidate
	for i := range cs {
		cs[i].m, cs[i].logs = recipetest.NewMeter(t), &recipetest.Records{}
		cs[i].e = newElection(t, m.Client(), "metrics", election.WithTTL(2*time.Second),
			election.WithMeterProvider(cs[i].m.Provider()), election.WithLogger(cs[i].logs.Logger()))
	}
	a, b := cs[0], cs[1]
	leader := func(c candidate) float64 {
		v, ok := c.m.Value("roster.election.leader", name)
		require.True(t, ok, "is-leader has a series from the start")
		return v
	}
	count := func(c candidate, metric string, attrs ...attribute.KeyValue) float64 {
		v, _ := c.m.Value(metric, append(attrs, name)...)
		return v
	}
	require.Zero(t, leader(a))
	require.Zero(t, leader(b))

	la, err := a.e.Campaign(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 1.0, leader(a))
	res := campaignAsync(t, ctx, b.e, "b", nil)
	awaitCandidates(t, direct, "metrics", 2)
	// Long enough for a few keep-alives of each lease (every TTL/3).
	session := func(c candidate, metric string) float64 { v, _ := c.m.Value(metric); return v }
	require.Eventually(t, func() bool { return session(a, "roster.session.keepalive.duration") >= 3 }, 5*time.Second, 10*time.Millisecond)
	require.Positive(t, session(a, "roster.session.deadline.remaining"))
	require.NoError(t, la.Resign(ctx))
	lb := receive(t, res, 5*time.Second, "hand-over").l
	require.NotNil(t, lb)

	require.Zero(t, leader(a), "a stopped leading")
	require.Equal(t, 1.0, leader(b), "b leads")
	require.Equal(t, 1.0, count(a, "roster.election.changes", attribute.String("change", "gained")))
	require.Equal(t, 1.0, count(a, "roster.election.changes", attribute.String("change", "resigned")))
	require.Equal(t, 1.0, count(a, "roster.election.tenure"))
	require.Equal(t, 1.0, count(b, "roster.election.campaign.duration"))

	// A loss: the leader key deleted from outside.
	_, err = direct.Delete(ctx, lb.Key())
	require.NoError(t, err)
	requireDone(t, lb, 5*time.Second)
	// Done is closed first, so that the loss is known at once; the record
	// of it follows on the goroutine that noticed it.
	require.Eventually(t, func() bool {
		return leader(b) == 0 && count(b, "roster.election.changes", attribute.String("change", "lost")) == 1 &&
			len(b.logs.All()) == 2
	}, time.Second, time.Millisecond, "the loss is recorded and logged once")
	_, err = lb.Do(ctx, clientv3.OpPut("/t/x", "late"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	require.Equal(t, 1.0, count(b, "roster.election.fenced.refused"))

	require.Equal(t, []string{"election: leadership gained", "election: leadership ended"}, a.logs.All(),
		"one record per state change, none per keep-alive")
	require.Equal(t, []string{"election: leadership gained", "election: leadership lost"}, b.logs.All())
}
