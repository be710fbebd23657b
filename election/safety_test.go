package election_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/session"
)

type interval struct {
	who        int
	start, end time.Time
	rev        int64
}

// Candidates on separate clients take turns; every leadership is recorded
// from Campaign's return to just before Resign, and no two may overlap.
func TestOneLeaderAtATime(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	const n, rounds = 4, 8
	var (
		mu        sync.Mutex
		intervals []interval
		wg        sync.WaitGroup
	)
	for i := range n {
		e := newElection(t, m.Client(), "turns", election.WithTTL(5*time.Second))
		wg.Go(func() {
			for range rounds {
				l, err := e.Campaign(ctx, fmt.Sprint(i))
				if err != nil {
					t.Errorf("candidate %d: %v", i, err)
					return
				}
				start := time.Now()
				// The leader's work: a fenced write that must succeed.
				if _, err := l.Do(ctx, clientv3.OpPut("/t/leader", fmt.Sprint(i))); err != nil {
					t.Errorf("candidate %d: fenced write while leading: %v", i, err)
				}
				if err := l.Err(); err != nil {
					t.Errorf("candidate %d: lost while leading: %v", i, err)
				}
				end := time.Now()
				if err := l.Resign(ctx); err != nil {
					t.Errorf("candidate %d: resign: %v", i, err)
				}
				mu.Lock()
				intervals = append(intervals, interval{who: i, start: start, end: end, rev: l.Token()})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, intervals, n*rounds)
	checkNoOverlap(t, intervals)
}

func checkNoOverlap(t *testing.T, intervals []interval) {
	t.Helper()
	slices.SortFunc(intervals, func(a, b interval) int { return a.start.Compare(b.start) })
	for i := 1; i < len(intervals); i++ {
		prev, cur := intervals[i-1], intervals[i]
		require.True(t, prev.end.Before(cur.start),
			"leaders %d and %d overlap: [%v, %v] and [%v, …]", prev.who, cur.who,
			prev.start.Format(time.StampMicro), prev.end.Format(time.StampMicro), cur.start.Format(time.StampMicro))
		require.Greater(t, cur.rev, prev.rev, "fencing tokens grow with every leadership")
	}
}

// A leader whose process dies (its client closed, no resign) is followed
// once its lease expires: within TTL + 1 s.
func TestCrashedLeaderHandsOverWithinTTL(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	const ttl = 2 * time.Second
	acli := etcdtest.NewClient(t, m.Endpoints()...)
	a := newElection(t, acli, "crash", election.WithTTL(ttl))
	_, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	b := newElection(t, m.Client(), "crash", election.WithTTL(ttl))
	res := campaignAsync(t, ctx, b, "b", nil)
	awaitCandidates(t, m.Client(), "crash", 2)

	killed := time.Now()
	require.NoError(t, acli.Close())
	r := receive(t, res, 10*time.Second, "campaign after crash")
	require.NoError(t, r.err)
	took := r.at.Sub(killed)
	t.Logf("crash hand-over: %v (TTL %v)", took.Round(time.Millisecond), ttl)
	require.Less(t, took, ttl+time.Second)
}

// Acceptance: a leader cut off from etcd (its connection held, as in a
// partition) learns that it lost before any other candidate wins, in every
// trial; its fenced writes are then rejected.
func TestPartitionedLeaderLearnsFirst(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	trials := 5
	if os.Getenv("ROSTER_LONG") == "1" {
		trials = 20
	}
	m := etcdtest.Start(t)
	var lead []time.Duration
	for trial := range trials {
		lead = append(lead, partitionTrial(t, m, fmt.Sprintf("part%d", trial)))
	}
	slices.Sort(lead)
	t.Logf("%d trials: the deposed leader knew %v (min) … %v (max) before the next leader won",
		trials, lead[0].Round(time.Millisecond), lead[len(lead)-1].Round(time.Millisecond))
}

func partitionTrial(t *testing.T, m *etcdtest.Member, name string) time.Duration {
	ctx := testCtx(t)
	const ttl = 2 * time.Second
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	a := newElection(t, etcdtest.NewClient(t, proxy.Endpoint()), name, election.WithTTL(ttl))
	la, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	var lostAt time.Time
	lostc := make(chan struct{})
	go func() {
		<-la.Done()
		lostAt = time.Now()
		close(lostc)
	}()

	b := newElection(t, m.Client(), name, election.WithTTL(ttl))
	c := newElection(t, m.Client(), name, election.WithTTL(ttl))
	bres := campaignAsync(t, ctx, b, "b", la)
	cres := campaignAsync(t, ctx, c, "c", la)
	awaitCandidates(t, m.Client(), name, 3)

	proxy.Pause()
	var won campaignResult
	select {
	case won = <-bres:
	case won = <-cres:
	case <-time.After(10 * time.Second):
		t.Fatal("no candidate won within 10 s of the partition")
	}
	require.NoError(t, won.err)
	require.True(t, won.otherDone, "%s: the new leader won while the old one still believed it led", name)
	<-lostc
	require.ErrorIs(t, la.Err(), session.ErrExpired)
	require.Greater(t, won.l.Token(), la.Token())

	// Back in touch, the deposed leader's writes are refused: by itself,
	// and by etcd when it is asked.
	proxy.Restore()
	requireFencedOut(t, m.Client(), la, won.l, name)

	a.Close()
	b.Close()
	c.Close()
	return won.at.Sub(lostAt)
}

// Someone deletes the leader's key: the leader is told, the next candidate
// leads.
func TestLeaderKeyDeleted(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	a := newElection(t, m.Client(), "deleted")
	la, err := a.Campaign(ctx, "a")
	require.NoError(t, err)
	b := newElection(t, m.Client(), "deleted")
	res := campaignAsync(t, ctx, b, "b", nil)
	awaitCandidates(t, m.Client(), "deleted", 2)

	_, err = m.Client().Delete(ctx, la.Key())
	require.NoError(t, err)
	requireDone(t, la, 5*time.Second)
	require.ErrorIs(t, la.Err(), election.ErrKeyDeleted)
	r := receive(t, res, 5*time.Second, "next campaign")
	require.NoError(t, r.err)
	ld, err := a.Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "b", ld.Value)

	// The deposed candidate may campaign again; it queues behind b.
	res = campaignAsync(t, context.Background(), a, "a", nil)
	awaitCandidates(t, m.Client(), "deleted", 2)
	require.NoError(t, r.l.Resign(ctx))
	r = receive(t, res, 5*time.Second, "a again")
	require.NoError(t, r.err)
	require.Greater(t, r.l.Token(), la.Token())
}

// requireFencedOut checks that the deposed leader old can no longer write:
// its own Do refuses, and etcd refuses its fenced transaction when another
// client sends it; the current leader's write lands.
func requireFencedOut(t *testing.T, cli *clientv3.Client, old, current *election.Leadership, name string) {
	t.Helper()
	ctx := testCtx(t)
	_, err := old.Do(ctx, clientv3.OpPut("/t/"+name, "stale"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	raw, err := cli.Txn(ctx).If(old.Guard()).Then(clientv3.OpPut("/t/"+name, "stale")).Commit()
	require.NoError(t, err)
	require.False(t, raw.Succeeded, "etcd rejects the deposed leader's fenced write")
	_, err = current.Do(ctx, clientv3.OpPut("/t/"+name, "fresh"))
	require.NoError(t, err)
}
