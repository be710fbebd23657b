package election_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/session"
)

// runAsync runs e.Run in a goroutine; the returned stop cancels it and
// returns Run's error.
func runAsync(t *testing.T, e *election.Election, value string,
	work func(context.Context, *election.Leadership) error, opts ...election.RunOption) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx, value, work, opts...) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = receive(t, errc, 10*time.Second, "Run to return")
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

type leading struct {
	lease clientv3.LeaseID
	rev   int64
	ctx   context.Context
}

// Run leads, is deposed when its session expires behind a partition (the
// work's context says so), and once back in touch leads again on a new
// lease. Callbacks report each step.
func TestRunRecampaignsOnNewSessionAfterExpiry(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	e := newElection(t, etcdtest.NewClient(t, proxy.Endpoint()), "run", election.WithTTL(2*time.Second))

	leads := make(chan leading, 4)
	stopped := make(chan error, 4)
	started := make(chan int64, 4)
	stop := runAsync(t, e, "me", func(ctx context.Context, l *election.Leadership) error {
		leads <- leading{l.Lease(), l.Token(), ctx}
		<-ctx.Done()
		return ctx.Err()
	},
		election.OnStartedLeading(func(l *election.Leadership) { started <- l.Token() }),
		election.OnStoppedLeading(func(err error) { stopped <- err }))

	first := receive(t, leads, 5*time.Second, "first leadership")
	require.Equal(t, first.rev, receive(t, started, time.Second, "started callback"))
	proxy.Pause()
	select {
	case <-first.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("work not cancelled after the session expired")
	}
	require.ErrorIs(t, context.Cause(first.ctx), session.ErrExpired)
	proxy.Restore()
	require.ErrorIs(t, receive(t, stopped, 5*time.Second, "stopped callback"), session.ErrExpired)

	second := receive(t, leads, 10*time.Second, "second leadership")
	require.NotEqual(t, first.lease, second.lease, "a fresh session")
	require.Greater(t, second.rev, first.rev)

	require.ErrorIs(t, stop(), context.Canceled)
	require.ErrorIs(t, receive(t, stopped, 5*time.Second, "stopped on cancel"), election.ErrResigned)
	require.Equal(t, 0, candidates(t, m.Client(), "run"), "released on cancel")
}

// Two runners: when the leader's work returns, it resigns and the other
// takes over at once, while the first campaigns again behind it.
// OnNewLeader follows every change.
func TestRunHandsOverWhenWorkReturns(t *testing.T) {
	m := etcdtest.Start(t)
	release := make(chan struct{})
	aLeads, bLeads := make(chan int64, 4), make(chan int64, 4)
	var calls atomic.Int32
	var mu sync.Mutex
	var seenByA []string
	runAsync(t, newElection(t, m.Client(), "handover"), "a", func(ctx context.Context, l *election.Leadership) error {
		aLeads <- l.Token()
		if calls.Add(1) == 1 {
			<-release // one job, then done
			return nil
		}
		<-ctx.Done()
		return nil
	}, election.OnNewLeader(func(l election.Leader) {
		mu.Lock()
		seenByA = append(seenByA, l.Value)
		mu.Unlock()
	}))
	aRev := receive(t, aLeads, 5*time.Second, "a leads")

	runAsync(t, newElection(t, m.Client(), "handover"), "b", func(ctx context.Context, l *election.Leadership) error {
		bLeads <- l.Token()
		<-ctx.Done()
		return nil
	})
	awaitCandidates(t, m.Client(), "handover", 2)
	close(release)
	bRev := receive(t, bLeads, 5*time.Second, "b leads after a's work returned")
	require.Greater(t, bRev, aRev)
	awaitCandidates(t, m.Client(), "handover", 2) // a queued again, behind b
	select {
	case <-aLeads:
		t.Fatal("a leads again while b leads")
	default:
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(seenByA, []string{"", "a", "b"}) || slices.Equal(seenByA, []string{"a", "b"})
	}, 5*time.Second, 10*time.Millisecond, "OnNewLeader saw a, then b")
}

// Work that fails while leading ends Run with its error, after resigning.
func TestRunReturnsWorkError(t *testing.T) {
	m := etcdtest.Start(t)
	e := newElection(t, m.Client(), "failing")
	boom := errors.New("boom")
	err := e.Run(testCtx(t), "x", func(ctx context.Context, l *election.Leadership) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, 0, candidates(t, m.Client(), "failing"))
}
