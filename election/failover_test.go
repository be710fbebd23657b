package election_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe/recipetest"
	"github.com/rosterkit/roster/session"
)

// After the Raft leader is killed, a leadership given up during the Raft
// election must not block the next leader until etcd expires its lease:
// fenced writes resume within a second of the new Raft leader. Three
// candidates on clients of every member; whoever leads writes until it
// loses. ROSTER_LONG=1 measures 20 kills.
func TestFencedWritesResumeAfterRaftLeaderKill(t *testing.T) {
	t.Parallel() // with the package's other fault tests, after its serial ones
	const ttl = 2 * time.Second
	c := etcdtest.StartCluster(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	tl := &recipetest.Timeline{}
	for i := range 3 {
		who := fmt.Sprintf("c%d", i)
		cli := etcdtest.NewClient(t, c.Endpoints()...)
		mgr, err := session.NewManager(cli, session.WithTTL(ttl), session.WithLogger(tl.Logger(who)))
		require.NoError(t, err)
		t.Cleanup(func() { mgr.Close() })
		e := newElection(t, cli, "failover", election.WithSessionManager(mgr))
		wg.Go(func() {
			_ = e.Run(ctx, who, func(ctx context.Context, l *election.Leadership) error {
				tl.Mark(who, "elected")
				for ctx.Err() == nil {
					wctx, cancel := context.WithTimeout(ctx, recipetest.WriteTimeout)
					_, err := l.Do(wctx, clientv3.OpPut("/failover/election", who))
					cancel()
					if err == nil {
						tl.Accepted(who)
					}
					recipetest.Pace(ctx, 20*time.Millisecond)
				}
				tl.Mark(who, fmt.Sprintf("leadership over: %v", l.Err()))
				return nil
			})
		})
	}
	var rs []recipetest.Result
	for trial := range recipetest.Trials() {
		r := recipetest.KillLeader(t, c, tl)
		t.Logf("trial %d: new Raft leader after %v, fenced writes %v after it:%s", trial,
			r.NewLeader.Round(time.Millisecond), r.Resume.Round(time.Millisecond), r.Timeline)
		rs = append(rs, r)
	}
	recipetest.Report(t, "election", ttl, rs)
}
