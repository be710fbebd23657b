package election_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

// etcd's own concurrency.Election (what etcdctl elect runs), given
// keys.ElectionPfx, and roster's candidates share one election: each sees
// the other lead, and leadership passes both ways.
func TestInteropWithEtcdElection(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	s, err := concurrency.NewSession(m.Client(), concurrency.WithTTL(10))
	require.NoError(t, err)
	defer s.Close()
	theirs := concurrency.NewElection(s, keys.ElectionPfx(keys.DefaultNamespace, "mixed"))
	ours := newElection(t, m.Client(), "mixed")
	obs := ours.Observe(ctx)
	require.False(t, receive(t, obs, 5*time.Second, "initial").Elected())

	// They lead; we see it, and wait behind them.
	require.NoError(t, theirs.Campaign(ctx, "theirs"))
	ld, err := ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, theirs.Key(), ld.Key)
	require.Equal(t, "theirs", ld.Value)
	require.Equal(t, theirs.Rev(), ld.Token)
	require.Equal(t, s.Lease(), ld.Lease)
	require.Equal(t, "theirs", receive(t, obs, 5*time.Second, "their leadership").Value)

	res := campaignAsync(t, ctx, ours, "ours", nil)
	awaitCandidates(t, m.Client(), "mixed", 2)
	require.NoError(t, theirs.Resign(ctx))
	r := receive(t, res, 5*time.Second, "our campaign")
	require.NoError(t, r.err)
	require.Equal(t, "ours", receive(t, obs, 5*time.Second, "our leadership").Value)

	// We lead; they see it, and wait behind us.
	got, err := theirs.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, r.l.Key(), string(got.Kvs[0].Key))
	require.Equal(t, "ours", string(got.Kvs[0].Value))

	theirsWon := make(chan error, 1)
	go func() { theirsWon <- theirs.Campaign(ctx, "theirs again") }()
	awaitCandidates(t, m.Client(), "mixed", 2)
	select {
	case err := <-theirsWon:
		t.Fatalf("their campaign returned while we lead: %v", err)
	default:
	}
	require.NoError(t, r.l.Resign(ctx))
	require.NoError(t, receive(t, theirsWon, 5*time.Second, "their campaign"))
	ld, err = ours.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "theirs again", ld.Value)
	require.Equal(t, "theirs again", receive(t, obs, 5*time.Second, "their leadership again").Value)
}
