package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/keys"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newElection returns a candidate over cli, closed when the test ends.
func newElection(t *testing.T, cli *clientv3.Client, name string, opts ...election.Option) *election.Election {
	t.Helper()
	e, err := election.New(cli, name, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

type campaignResult struct {
	l *election.Leadership
	// otherDone is whether the leadership passed to campaignAsync had
	// already ended when this campaign returned.
	otherDone bool
	at        time.Time
	err       error
}

// campaignAsync campaigns in a goroutine the test waits for. If watch is
// not nil, the result records whether it had ended by the time the
// campaign returned.
func campaignAsync(t *testing.T, ctx context.Context, e *election.Election, value string, watch *election.Leadership) <-chan campaignResult {
	ch := make(chan campaignResult, 1)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		l, err := e.Campaign(ctx, value)
		r := campaignResult{l: l, at: time.Now(), err: err}
		if watch != nil {
			select {
			case <-watch.Done():
				r.otherDone = true
			default:
			}
		}
		ch <- r
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ch
}

func receive[T any](t *testing.T, ch <-chan T, within time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("%s: nothing within %v", what, within)
		var zero T
		return zero
	}
}

func requireDone(t *testing.T, l *election.Leadership, within time.Duration) {
	t.Helper()
	select {
	case <-l.Done():
		return
	default:
	}
	select {
	case <-l.Done():
	case <-time.After(within):
		t.Fatalf("leadership still on after %v", within)
	}
}

// candidates counts the keys in an election.
func candidates(t *testing.T, cli *clientv3.Client, name string) int {
	t.Helper()
	resp, err := cli.Get(testCtx(t), keys.ElectionPrefix(keys.DefaultNamespace, name), clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return int(resp.Count)
}

// awaitCandidates waits until the election has n keys.
func awaitCandidates(t *testing.T, cli *clientv3.Client, name string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return candidates(t, cli, name) == n }, 10*time.Second, time.Millisecond,
		"waiting for %d candidates", n)
}

func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	resp, err := cli.Get(testCtx(t), key)
	require.NoError(t, err)
	return len(resp.Kvs) == 1
}
