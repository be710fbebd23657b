package watch_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/watch"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

var (
	errStale  = fmt.Errorf("test: %w", roster.ErrStale)
	errClosed = fmt.Errorf("test: %w", roster.ErrClosed)
)

// state is a Handler that keeps the prefix as a map and lets a test act at
// the moment each callback runs: a fault injected there lands exactly at
// that transition.
type state struct {
	mu      sync.Mutex
	kvs     map[string]string
	rev     int64
	err     error
	onReset func()
	onErr   func(error)
}

func newState() *state { return &state{kvs: map[string]string{}} }

func (s *state) Reset(kvs []*mvccpb.KeyValue, rev int64) {
	s.mu.Lock()
	s.kvs = map[string]string{}
	for _, kv := range kvs {
		s.kvs[string(kv.Key)] = string(kv.Value)
	}
	s.rev = rev
	hook := s.onReset
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (s *state) Apply(evs []*clientv3.Event, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if ev.Type == clientv3.EventTypeDelete {
			delete(s.kvs, string(ev.Kv.Key))
		} else {
			s.kvs[string(ev.Kv.Key)] = string(ev.Kv.Value)
		}
	}
	s.rev = rev
}

func (s *state) Confirm(rev int64) {
	s.mu.Lock()
	s.rev = rev
	s.mu.Unlock()
}

func (s *state) SetErr(err error) {
	s.mu.Lock()
	s.err = err
	hook := s.onErr
	s.mu.Unlock()
	if hook != nil && err != nil {
		hook(err)
	}
}

func (s *state) snapshot() (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.kvs), s.err
}

func start(t *testing.T, cli *clientv3.Client, h watch.Handler, interval time.Duration) *watch.Follower {
	f := watch.Start(watch.Config{
		Client: cli, Prefix: "/p/", What: "prefix /p/", Interval: interval,
		Backoff: backoff.Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		Stale:   errStale, Closed: errClosed, PageSize: 3,
	}, h)
	t.Cleanup(f.Stop)
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requireWatching waits until the follower has listed and a put made now
// reaches the handler through its watch.
func requireWatching(t *testing.T, f *watch.Follower, s *state, cli *clientv3.Client) {
	t.Helper()
	select {
	case <-f.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("not synced within 10 s")
	}
	_, err := cli.Put(ctxT(t), "/p/warm", time.Now().String())
	require.NoError(t, err)
	requireMatches(t, s, cli)
}

// requireMatches waits until the handler holds what a plain Get returns.
func requireMatches(t *testing.T, s *state, cli *clientv3.Client) {
	t.Helper()
	var want, got map[string]string
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, gerr := cli.Get(ctxT(t), "/p/", clientv3.WithPrefix())
		require.NoError(t, gerr)
		want = map[string]string{}
		for _, kv := range resp.Kvs {
			want[string(kv.Key)] = string(kv.Value)
		}
		if got, err = s.snapshot(); maps.Equal(want, got) && err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	t.Fatalf("state did not converge: want %v, got %v (err %v)", want, got, err)
}

func TestFollowsListThenWatch(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx := ctxT(t)
	for i := range 10 { // more than one page
		_, err := cli.Put(ctx, fmt.Sprintf("/p/k%02d", i), "v")
		require.NoError(t, err)
	}
	s := newState()
	f := start(t, etcdtest.NewClient(t, m.Endpoints()...), s, time.Second)
	select {
	case <-f.Synced():
	case <-ctx.Done():
		t.Fatal("not synced")
	}
	requireMatches(t, s, cli)
	_, err := cli.Delete(ctx, "/p/k03")
	require.NoError(t, err)
	_, err = cli.Put(ctx, "/p/k99", "new")
	require.NoError(t, err)
	requireMatches(t, s, cli)
	require.Equal(t, uint64(1), f.Lists())
}

func TestRelistsAfterCompaction(t *testing.T) {
	m := etcdtest.Start(t)
	cli := m.Client()
	ctx := ctxT(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	s := newState()
	f := start(t, etcdtest.NewClient(t, proxy.Endpoint()), s, time.Second)
	requireWatching(t, f, s, cli)
	proxy.Cut()
	var rev int64
	for i := range 5 {
		resp, err := cli.Put(ctx, fmt.Sprintf("/p/c%d", i), "v")
		require.NoError(t, err)
		rev = resp.Header.Revision
	}
	_, err := cli.Compact(ctx, rev)
	require.NoError(t, err)
	proxy.Restore()
	requireMatches(t, s, cli)
	require.GreaterOrEqual(t, f.Lists(), uint64(2), "re-listed after the compaction")
}

// The fault starts at the worst moments: while the first list is in flight,
// right after the list while the watch is being created, during the re-list
// after a compaction, and in steady state. Whatever call is blocked, the
// state is reported stale within twice the progress interval.
func TestStaleWithinTwoIntervalsAtEveryTransition(t *testing.T) {
	const interval = 300 * time.Millisecond
	m := etcdtest.Start(t)
	direct := m.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := direct.Put(ctx, "/p/a", "v")
	require.NoError(t, err)

	faults := []struct {
		name string
		arm  func(t *testing.T, p *etcdtest.Proxy, s *state) (paused <-chan time.Time)
	}{
		{"during the first list", func(t *testing.T, p *etcdtest.Proxy, s *state) <-chan time.Time {
			p.Pause()
			return closedAt(time.Now())
		}},
		{"while the watch is created", func(t *testing.T, p *etcdtest.Proxy, s *state) <-chan time.Time {
			at := make(chan time.Time, 1)
			var once sync.Once
			s.onReset = func() { once.Do(func() { p.Pause(); at <- time.Now() }) }
			return at
		}},
		{"during the re-list after a compaction", func(t *testing.T, p *etcdtest.Proxy, s *state) <-chan time.Time {
			// etcd compacts between the list and the watch's creation, so
			// the watch fails with ErrCompacted and the follower re-lists;
			// the fault starts as that re-list begins.
			at := make(chan time.Time, 1)
			var compact, pause sync.Once
			s.onReset = func() {
				compact.Do(func() {
					// Two writes: the watch starts at the revision after
					// the list, which a compaction at the second removes.
					_, err := direct.Put(ctx, "/p/b", "1")
					require.NoError(t, err)
					resp, err := direct.Put(ctx, "/p/b", "2")
					require.NoError(t, err)
					_, err = direct.Compact(ctx, resp.Header.Revision)
					require.NoError(t, err)
				})
			}
			s.onErr = func(err error) {
				if errors.Is(err, rpctypes.ErrCompacted) {
					pause.Do(func() { p.Pause(); at <- time.Now() })
				}
			}
			return at
		}},
		{"in steady state", nil},
	}
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			var worst time.Duration
			for trial := range 10 {
				proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
				cli := etcdtest.NewClient(t, proxy.Endpoint())
				s := newState()
				var paused <-chan time.Time
				if fault.arm != nil {
					paused = fault.arm(t, proxy, s)
				}
				f := start(t, cli, s, interval)
				if paused == nil { // in steady state
					requireWatching(t, f, s, direct)
					proxy.Pause()
					paused = closedAt(time.Now())
				}
				var at time.Time
				select {
				case at = <-paused:
				case <-ctx.Done():
					t.Fatal("the fault never started")
				}
				took := waitStale(t, s, at, 4*interval)
				worst = max(worst, took)
				require.LessOrEqual(t, took, 2*interval, "trial %d: stale reported %v after the pause", trial, took)
				proxy.Restore()
				requireMatches(t, s, direct)
				f.Stop()
			}
			t.Logf("%s: stale reported at most %v after the pause (interval %v, 10 trials)", fault.name, worst.Round(time.Millisecond), interval)
		})
	}
}

func closedAt(t time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- t
	return ch
}

// waitStale waits until the handler was told the state is stale and returns
// how long after since that was.
func waitStale(t *testing.T, s *state, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	for time.Since(since) < within {
		if _, err := s.snapshot(); errors.Is(err, roster.ErrStale) && errors.Is(err, errStale) {
			return time.Since(since)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	_, err := s.snapshot()
	t.Fatalf("not reported stale within %v of the pause (err %v)", within, err)
	return 0
}

// An idle follower on a healthy etcd is never reported stale.
func TestIdleIsNotStale(t *testing.T) {
	const interval = 200 * time.Millisecond
	m := etcdtest.Start(t)
	s := newState()
	start(t, m.Client(), s, interval)
	requireMatches(t, s, m.Client())
	deadline := time.Now().Add(10 * interval)
	for time.Now().Before(deadline) {
		_, err := s.snapshot()
		require.NoError(t, err, "idle and healthy")
		time.Sleep(5 * time.Millisecond) // sampling over a fixed window
	}
}

func TestClientClosedEndsTheFollower(t *testing.T) {
	m := etcdtest.Start(t)
	cli := etcdtest.NewClient(t, m.Endpoints()...)
	s := newState()
	f := start(t, cli, s, time.Second)
	requireMatches(t, s, m.Client())
	require.NoError(t, cli.Close())
	select {
	case <-f.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the follower still runs 5 s after its client closed")
	}
	require.ErrorIs(t, f.Err(), errClosed)
}
