package election_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
)

type seen struct {
	key, value string
}

func state(l election.Leader) seen { return seen{l.Key, l.Value} }

// Every transition, "nobody leads" included, arrives in order, even when
// the reader only reads after they all happened.
func TestObserveEveryTransitionInOrder(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	obs := newElection(t, m.Client(), "watched").Observe(ctx)
	require.Equal(t, seen{}, state(receive(t, obs, 5*time.Second, "initial state")), "nobody leads yet")

	a := newElection(t, m.Client(), "watched")
	b := newElection(t, m.Client(), "watched")
	la, err := a.Campaign(ctx, "a1")
	require.NoError(t, err)
	require.NoError(t, la.Proclaim(ctx, "a2"))
	res := campaignAsync(t, ctx, b, "b", nil)
	awaitCandidates(t, m.Client(), "watched", 2) // b queued: no change of leader
	require.NoError(t, la.Resign(ctx))
	r := receive(t, res, 5*time.Second, "b's campaign")
	require.NoError(t, r.err)
	require.NoError(t, r.l.Resign(ctx))

	want := []seen{{la.Key(), "a1"}, {la.Key(), "a2"}, {r.l.Key(), "b"}, {}}
	var got []seen
	var last int64
	for range want {
		l := receive(t, obs, 5*time.Second, "transition")
		require.Greater(t, l.Revision, last, "revisions grow")
		last = l.Revision
		got = append(got, state(l))
	}
	require.Equal(t, want, got)
	select {
	case l := <-obs:
		t.Fatalf("unexpected state %+v", l)
	default:
	}
}

// An observer whose connection breaks while the election moves on and
// etcd compacts the history it missed reads the election again and
// reports the latest state; etcd's Observe closes its channel instead.
func TestObserveSurvivesCompaction(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	obs := newElection(t, etcdtest.NewClient(t, proxy.Endpoint()), "compacted").Observe(ctx)
	require.Equal(t, seen{}, state(receive(t, obs, 5*time.Second, "initial state")))

	proxy.Cut()
	a := newElection(t, m.Client(), "compacted")
	la, err := a.Campaign(ctx, "v0")
	require.NoError(t, err)
	for _, v := range []string{"v1", "v2", "v3"} {
		require.NoError(t, la.Proclaim(ctx, v))
	}
	ld, err := a.Leader(ctx)
	require.NoError(t, err)
	_, err = m.Client().Compact(ctx, ld.Revision)
	require.NoError(t, err)
	proxy.Restore()

	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-obs:
			require.True(t, ok, "the observer must not give up")
			if state(l) == (seen{la.Key(), "v3"}) {
				// And it keeps following.
				require.NoError(t, la.Resign(ctx))
				for {
					l := receive(t, obs, 5*time.Second, "after resign")
					if !l.Elected() {
						return
					}
				}
			}
		case <-deadline:
			t.Fatal("the observer never caught up after compaction")
		}
	}
}

// A slow reader is not left behind: it gets the latest state.
func TestObserveSlowReaderGetsLatest(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	obs := newElection(t, m.Client(), "slow").Observe(ctx)
	require.Equal(t, seen{}, state(receive(t, obs, 5*time.Second, "initial state")))
	a := newElection(t, m.Client(), "slow")
	la, err := a.Campaign(ctx, "v0")
	require.NoError(t, err)
	const n = 40 // more than the observer keeps for a reader that falls behind
	for i := range n {
		require.NoError(t, la.Proclaim(ctx, string(rune('a'+i%26))+string(rune('0'+i/26))))
	}
	ld, err := a.Leader(ctx)
	require.NoError(t, err)
	var got []election.Leader
	for {
		l := receive(t, obs, 5*time.Second, "state")
		got = append(got, l)
		if l.Revision == ld.Revision {
			break
		}
	}
	require.Less(t, len(got), n, "the reader that fell behind skipped old states")
	require.Equal(t, ld.Value, got[len(got)-1].Value)
	for i := 1; i < len(got); i++ {
		require.Greater(t, got[i].Revision, got[i-1].Revision, "still in order")
	}
}
