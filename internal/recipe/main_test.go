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

func TestMain(m *testing.M) { etcdtest.Main(m) }

const prefix = "/t/q/"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSession starts a session on cli, closed when the test ends.
func newSession(t *testing.T, cli *clientv3.Client, opts ...session.Option) *session.Session {
	t.Helper()
	s, err := session.New(testCtx(t), cli, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// participant is one client with its own session in the queue.
type participant struct {
	cli *clientv3.Client
	s   *session.Session
	q   recipe.Queue
	e   recipe.Entry
}

func join(t *testing.T, cli *clientv3.Client, value string, opts ...session.Option) *participant {
	t.Helper()
	p := &participant{cli: cli, s: newSession(t, cli, opts...), q: recipe.Queue{Client: cli, Prefix: prefix}}
	var err error
	p.e, err = p.q.Enqueue(testCtx(t), p.s, value)
	require.NoError(t, err)
	return p
}

type waitResult struct {
	rev int64
	err error
}

// waitAsync runs Wait in a goroutine the test waits for.
func waitAsync(t *testing.T, ctx context.Context, p *participant, r recipe.Rule) <-chan waitResult {
	ch := make(chan waitResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rev, err := p.q.Wait(ctx, p.s, p.e, r)
		ch <- waitResult{rev, err}
	}()
	t.Cleanup(func() { <-done })
	return ch
}

func receive(t *testing.T, ch <-chan waitResult, within time.Duration) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("Wait did not return within %v", within)
		return waitResult{}
	}
}

func requireWaiting(t *testing.T, p *participant, r recipe.Rule) {
	t.Helper()
	turn, _, err := p.q.Check(testCtx(t), p.e, r)
	require.NoError(t, err)
	require.False(t, turn, "%s should not have its turn", p.e.Key)
}

func requireTurn(t *testing.T, p *participant, r recipe.Rule) {
	t.Helper()
	turn, _, err := p.q.Check(testCtx(t), p.e, r)
	require.NoError(t, err)
	require.True(t, turn, "%s should have its turn", p.e.Key)
}

// release deletes p's key and returns the revision of the delete.
func release(t *testing.T, p *participant) int64 {
	t.Helper()
	resp, err := p.cli.Txn(testCtx(t)).
		If(clientv3.Compare(clientv3.CreateRevision(p.e.Key), "=", p.e.Rev)).
		Then(clientv3.OpDelete(p.e.Key)).Commit()
	require.NoError(t, err)
	require.True(t, resp.Succeeded)
	return resp.Header.Revision
}

func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	require.NoError(t, err)
	return len(resp.Kvs) == 1
}
