package etcdtest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// get reads key through cli within d and returns the error.
func get(cli *clientv3.Client, key string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := cli.Get(ctx, key)
	return err
}

func TestProxy(t *testing.T) {
	m := etcdtest.Start(t)
	ctx := ctxT(t, 60*time.Second)
	direct := m.Client()
	_, err := direct.Put(ctx, "k", "v")
	require.NoError(t, err)

	p := etcdtest.NewProxy(t, m.Endpoints()[0])
	proxied := etcdtest.NewClient(t, p.Endpoint())
	require.NoError(t, get(proxied, "k", 5*time.Second), "the proxy forwards")

	t.Run("Pause", func(t *testing.T) {
		p.Pause()
		err := get(proxied, "k", 500*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "a paused proxy holds requests")
		require.NoError(t, get(direct, "k", 5*time.Second), "others still reach etcd")
		p.Restore()
		require.NoError(t, get(proxied, "k", 10*time.Second), "held connections resume")
	})

	t.Run("Cut", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wch := proxied.Watch(wctx, "k", clientv3.WithCreatedNotify())
		require.True(t, (<-wch).Created)

		p.Cut()
		require.Error(t, get(proxied, "k", 500*time.Millisecond), "a cut proxy passes nothing")
		require.NoError(t, get(direct, "k", 5*time.Second), "others still reach etcd")

		p.Restore()
		require.Eventually(t, func() bool { return get(proxied, "k", time.Second) == nil },
			30*time.Second, 50*time.Millisecond, "the client reconnects after Restore")
		// The watch was carried over to a new connection. (clientv3 resumes a
		// watch that saw no event at the revision it was created at, not
		// after it, so the put before the watch may be delivered again.)
		_, err := direct.Put(ctx, "k", "after-cut")
		require.NoError(t, err)
		for got := false; !got; {
			select {
			case resp := <-wch:
				require.NoError(t, resp.Err())
				for _, ev := range resp.Events {
					got = got || string(ev.Kv.Value) == "after-cut"
				}
			case <-ctx.Done():
				t.Fatal("watch not resumed")
			}
		}
	})

	t.Run("Delay", func(t *testing.T) {
		const d = 100 * time.Millisecond
		p.Delay(d)
		start := time.Now()
		require.NoError(t, get(proxied, "k", 5*time.Second))
		require.GreaterOrEqual(t, time.Since(start), 2*d, "a round trip crosses the delay both ways")
		p.Restore()
		start = time.Now()
		require.NoError(t, get(proxied, "k", 5*time.Second))
		require.Less(t, time.Since(start), 2*d, "Restore removes the delay (bytes queued before it still wait theirs)")
	})

	p.Close()
	p.Close() // idempotent
}

// A paused member process keeps its connections open and answers nothing,
// past a lease's TTL; resumed, it serves again with its data.
func TestMemberPause(t *testing.T) {
	m := etcdtest.Start(t)
	ctx := ctxT(t, 60*time.Second)
	cli := m.Client()
	_, err := cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	m.Pause()
	err = get(cli, "k", 500*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a paused member holds requests")
	require.True(t, m.Running())
	m.Resume()
	require.NoError(t, get(cli, "k", 10*time.Second), "it serves again once resumed")
	m.Pause()
	m.Stop() // resumes it to let it act on SIGTERM
	require.False(t, m.Running())
}

func TestMemberStopKillRestart(t *testing.T) {
	m := etcdtest.Start(t)
	ctx := ctxT(t, 60*time.Second)
	cli := m.Client()
	_, err := cli.Put(ctx, "k", "v")
	require.NoError(t, err)
	endpoint := m.Endpoints()[0]

	for _, stop := range []func(){m.Stop, m.Kill} {
		stop()
		require.False(t, m.Running())
		require.Error(t, get(cli, "k", 300*time.Millisecond), "a stopped member serves nothing")
		m.Restart()
		require.Equal(t, endpoint, m.Endpoints()[0], "back on the same address")
		resp, err := cli.Get(ctx, "k")
		require.NoError(t, err, "the old client reconnects")
		require.Equal(t, "v", string(resp.Kvs[0].Value), "data survived")
	}
}

func TestClusterLeader(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	first := c.Leader()
	for _, m := range c.Members {
		st, err := c.Client().Status(ctx, m.Endpoints()[0])
		require.NoError(t, err)
		require.Equal(t, first.ID(), st.Leader, "every member names the leader")
	}
	first.Kill()
	second := c.Leader()
	require.NotEqual(t, first, second, "a running member leads")
	_, err := c.Client().Put(ctx, "k", "v")
	require.NoError(t, err)
}

var echo = etcdtest.Role("echo", func(args []string, in *bufio.Scanner, out io.Writer) error {
	for in.Scan() {
		fmt.Fprintln(out, args[0]+in.Text())
	}
	return nil
})

// A paused child answers nothing until it is resumed, then answers what it
// was sent meanwhile.
func TestChildPauseResume(t *testing.T) {
	c := etcdtest.StartChild(t, echo, "re:")
	c.Send("a")
	require.Equal(t, "re:a", c.Line(10*time.Second))
	c.Pause()
	c.Send("b")
	select {
	case <-time.After(300 * time.Millisecond):
	case l := <-c.Lines():
		t.Fatalf("a paused child answered %q", l)
	}
	c.Resume()
	require.Equal(t, "re:b", c.Line(10*time.Second))
	c.Kill()
	c.Kill() // idempotent
}

// Watchers counts the watches a member serves: one more once a client's
// watch is registered, one fewer once it is cancelled; -1 once the member
// is stopped.
func TestMemberWatchers(t *testing.T) {
	m := etcdtest.Start(t)
	require.Equal(t, 0, m.Watchers())
	ctx, cancel := context.WithCancel(ctxT(t, 30*time.Second))
	cli := m.Client()
	w := cli.Watch(ctx, "k", clientv3.WithCreatedNotify())
	created := <-w
	require.True(t, created.Created, "the watch is registered")
	require.Equal(t, 1, m.Watchers())
	cancel()
	for range w {
	}
	require.Eventually(t, func() bool { return m.Watchers() == 0 }, 10*time.Second, 5*time.Millisecond)
	m.Stop()
	require.Equal(t, -1, m.Watchers())
}
