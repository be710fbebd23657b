package election_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// An observer whose client is black-holed reports its state stale within
// twice its progress interval, whatever it was waiting for when the pause
// began: its first list, the watch's creation right after its first state,
// the re-list after a compaction, or a quiet watch. Once etcd answers again
// the state is delivered fresh.
func TestObserveReportsStaleAtEveryTransition(t *testing.T) {
	const interval = 300 * time.Millisecond
	m := etcdtest.Start(t)
	direct := m.Client()
	ctx := testCtx(t)
	const name = "stale"
	leader := newElection(t, direct, name)
	l, err := leader.Campaign(ctx, "v")
	require.NoError(t, err)

	faults := []struct {
		name string
		arm  func(p *etcdtest.Proxy) (paused <-chan time.Time, disarm func())
	}{
		{"during the first list", func(p *etcdtest.Proxy) (<-chan time.Time, func()) {
			p.Pause()
			return at(time.Now()), func() {}
		}},
		{"right after the first state, as the watch is created", func(p *etcdtest.Proxy) (<-chan time.Time, func()) {
			ch := make(chan time.Time, 1)
			var once sync.Once
			return ch, election.SetObserveHooks(func() { once.Do(func() { p.Pause(); ch <- time.Now() }) }, nil)
		}},
		{"during the re-list after a compaction", func(p *etcdtest.Proxy) (<-chan time.Time, func()) {
			// etcd compacts between the first list and the watch's
			// creation, so the watch fails and the observer lists again;
			// the pause begins as that list does.
			ch := make(chan time.Time, 1)
			var compact, pause sync.Once
			return ch, election.SetObserveHooks(func() {
				compact.Do(func() {
					_, err := direct.Put(ctx, "/stale/x", "1")
					require.NoError(t, err)
					resp, err := direct.Put(ctx, "/stale/x", "2")
					require.NoError(t, err)
					_, err = direct.Compact(ctx, resp.Header.Revision)
					require.NoError(t, err)
				})
			}, func(err error) {
				if errors.Is(err, rpctypes.ErrCompacted) {
					pause.Do(func() { p.Pause(); ch <- time.Now() })
				}
			})
		}},
		{"in steady state", nil},
	}
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			var worst time.Duration
			for trial := range 10 {
				proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
				e, err := election.New(etcdtest.NewClient(t, proxy.Endpoint()), name, election.WithProgressInterval(interval))
				require.NoError(t, err)
				var paused <-chan time.Time
				disarm := func() {}
				if fault.arm != nil {
					paused, disarm = fault.arm(proxy)
				}
				octx, cancel := context.WithCancel(ctx)
				states := e.Observe(octx)
				if paused == nil {
					first := receive(t, states, 5*time.Second, "first state")
					require.NoError(t, first.Err)
					proxy.Pause()
					paused = at(time.Now())
				}
				began := receive(t, paused, 5*time.Second, "the pause")
				stale := awaitState(t, states, 4*interval, func(s election.Leader) bool { return s.Err != nil })
				took := time.Since(began)
				disarm()
				require.ErrorIs(t, stale.Err, election.ErrStale)
				require.ErrorIs(t, stale.Err, roster.ErrStale)
				require.LessOrEqual(t, took, 2*interval, "trial %d: stale reported %v after the pause", trial, took)
				worst = max(worst, took)

				proxy.Restore()
				fresh := awaitState(t, states, 10*time.Second, func(s election.Leader) bool { return s.Err == nil })
				require.Equal(t, l.Key(), fresh.Key, "trial %d: fresh again, with the leader", trial)
				cancel()
				require.NoError(t, e.Close())
			}
			t.Logf("%s: stale reported at most %v after the pause (progress interval %v, 10 trials)",
				fault.name, worst.Round(time.Millisecond), interval)
		})
	}
}

func at(t time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// awaitState returns the first state ok accepts, failing t if none comes
// within d.
func awaitState(t *testing.T, states <-chan election.Leader, d time.Duration, ok func(election.Leader) bool) election.Leader {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case s, open := <-states:
			require.True(t, open, "Observe ended")
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("no such state within %v", d)
		}
	}
}
