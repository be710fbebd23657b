package recipe_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

// cutQueue is a queue whose client reaches etcd through a proxy, with an
// entry of a 30 s session in it, and a direct client to check etcd's view.
type cutQueue struct {
	proxy  *etcdtest.Proxy
	direct *clientv3.Client
	s      *session.Session
	q      recipe.Queue
	e      recipe.Entry
}

func newCutQueue(t *testing.T, sw *recipe.Sweeper) *cutQueue {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	cli := etcdtest.NewClient(t, proxy.Endpoint())
	c := &cutQueue{proxy: proxy, direct: m.Client(), s: newSession(t, cli, session.WithTTL(30*time.Second)),
		q: recipe.Queue{Client: cli, Prefix: prefix, Sweeper: sw}}
	t.Cleanup(proxy.Restore) // before the session closes
	var err error
	c.e, err = c.q.Enqueue(testCtx(t), c.s, "x")
	require.NoError(t, err)
	return c
}

// pendingSweep is a cut queue whose entry's withdrawal etcd did not
// answer: its Sweeper goes on with it, and etcd stays out of reach.
func pendingSweep(t *testing.T) (*recipe.Sweeper, *cutQueue) {
	sw := recipe.NewSweeper()
	c := newCutQueue(t, sw)
	c.proxy.Pause()
	require.NoError(t, c.q.Withdraw(c.s, c.e), "handed to the sweeper")
	return sw, c
}

func (c *cutQueue) keys(t *testing.T) int {
	resp, err := c.direct.Get(testCtx(t), c.e.Key, clientv3.WithCountOnly())
	require.NoError(t, err)
	return int(resp.Count)
}

// A withdrawal etcd does not answer goes on in the background: Withdraw
// returns, a put of the same key waits for it, and the key goes as soon as
// etcd answers.
func TestWithdrawIsSweptOnceEtcdAnswers(t *testing.T) {
	sw, c := pendingSweep(t)
	require.Equal(t, 1, c.keys(t), "etcd did not get the delete")

	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	sent := false
	_, err := recipe.Put(ctx, c.s, c.q.Client, c.e.Key, sw, func(context.Context) (*clientv3.TxnResponse, error) {
		sent = true
		return nil, nil
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, sent, "a put of the key waits for its sweep")
	require.ErrorIs(t, sw.Wait(ctx, c.e.Key), context.DeadlineExceeded)

	c.proxy.Restore()
	require.NoError(t, sw.Wait(testCtx(t), c.e.Key))
	require.Zero(t, c.keys(t), "swept")
	require.NoError(t, sw.Wait(testCtx(t), "/another/key"), "nothing pending")
	start := time.Now()
	sw.Close(testCtx(t))
	sw.Close(testCtx(t))
	require.Less(t, time.Since(start), time.Second)
}

// Close waits for the pending sweeps until its context ends, then stops
// them; a closed Sweeper takes no more, and the error is Withdraw's again.
func TestSweeperCloseStopsWhatEtcdNeverAnswers(t *testing.T) {
	sw, c := pendingSweep(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	sw.Close(ctx)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, 200*time.Millisecond, "it waited for the sweep")
	require.Less(t, took, time.Second, "and stopped it when its context ended")
	require.NoError(t, sw.Wait(testCtx(t), c.e.Key), "nothing pending")
	require.Error(t, c.q.Withdraw(c.s, c.e), "refused once closed")
	require.Equal(t, 1, c.keys(t))
}

// A sweep ends with its session, whose lease takes the key.
func TestSweepEndsWithTheSession(t *testing.T) {
	sw, c := pendingSweep(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	_ = c.s.Shutdown(ctx) // ends it; the revoke is not answered
	require.NoError(t, sw.Wait(testCtx(t), c.e.Key), "the sweep ended")
	start := time.Now()
	sw.Close(testCtx(t))
	require.Less(t, time.Since(start), 100*time.Millisecond)
}

// Without a Sweeper a withdrawal etcd does not answer fails, as before;
// a nil Sweeper waits for nothing and closes.
func TestWithdrawWithoutSweeper(t *testing.T) {
	c := newCutQueue(t, nil)
	c.proxy.Pause()
	require.Error(t, c.q.Withdraw(c.s, c.e))
	var sw *recipe.Sweeper
	require.NoError(t, sw.Wait(testCtx(t), c.e.Key))
	sw.Close(testCtx(t))
}
