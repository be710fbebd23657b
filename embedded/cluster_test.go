package embedded_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// TestCluster runs one three-member cluster through its life: a member
// joining and leaving, the leader stopped and killed, quorum lost. The steps
// share the cluster and run in order.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := embeddedtest.StartCluster(t, 3)
	ctx := ctxT(t, 90*time.Second)
	cli := c.Client()
	put(t, ctx, cli, "before", "1")

	t.Run("Status", func(t *testing.T) {
		lead := c.Leader().Server().ID()
		leaders := 0
		for _, m := range c.Members {
			s := m.Server()
			require.NoError(t, s.Healthy(ctx), s.Name())
			st := s.Status()
			require.Equal(t, 3, st.Members)
			require.Equal(t, lead, st.Leader)
			require.Positive(t, st.RaftTerm)
			if st.IsLeader {
				leaders++
			}
			require.Len(t, s.Members(), 3)
		}
		require.Equal(t, 1, leaders)
	})

	t.Run("JoinAndLeave", func(t *testing.T) {
		// A member that cannot start is taken out of the cluster again.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		_, err = embedded.Join(ctx, cli, embedded.WithName("clash"), embedded.WithPeerAddr(l.Addr().String()))
		l.Close()
		require.ErrorIs(t, err, embedded.ErrPortInUse)
		for _, m := range c.Members {
			require.Eventually(t, func() bool { return len(m.Server().Members()) == 3 },
				10*time.Second, 10*time.Millisecond, "%s still lists the member that failed to join", m.Server().Name())
		}

		joined, err := embedded.Join(ctx, cli,
			embedded.WithName("joiner"), embedded.WithDataDir(filepath.Join(t.TempDir(), "joiner")))
		require.NoError(t, err)
		t.Cleanup(func() { joined.Close() })

		only := etcdtest.NewClient(t, joined.Endpoints()...)
		requireValue(t, ctx, only, "before", "1", clientv3.WithSerializable())
		requireValue(t, ctx, only, "before", "1")
		for _, m := range c.Members {
			require.Eventually(t, func() bool { return slices.Contains(names(m.Server()), "joiner") },
				10*time.Second, 10*time.Millisecond, "%s sees the new member", m.Server().Name())
		}
		require.Len(t, joined.Members(), 4)
		removed, err := joined.Removed(ctx)
		require.NoError(t, err)
		require.False(t, removed, "its peers list the member")

		require.NoError(t, joined.Leave(ctx))
		select {
		case <-joined.Done():
		case <-ctx.Done():
			t.Fatal("left member still running")
		}
		removed, err = joined.Removed(ctx)
		require.NoError(t, err)
		require.True(t, removed, "a member that left is removed")
		for _, m := range c.Members {
			require.Eventually(t, func() bool { return len(m.Server().Members()) == 3 },
				10*time.Second, 10*time.Millisecond, "%s still lists the member that left", m.Server().Name())
			require.NotContains(t, names(m.Server()), "joiner")
		}
		put(t, ctx, cli, "after-leave", "1")
	})

	for _, tc := range []struct {
		name string
		stop func(*embeddedtest.Member)
	}{
		{"LeaderStopped", (*embeddedtest.Member).Stop},
		{"LeaderKilled", (*embeddedtest.Member).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := c.Leader()
			w := startWriter(t, etcdtest.NewClient(t, othersEndpoints(c, old)...), "during-"+tc.name)
			w.awaitWriteAfter(t, time.Now())
			start := time.Now()
			tc.stop(old)
			stopped := time.Now()
			w.awaitWriteAfter(t, stopped)
			gap, writes := w.stop()
			t.Logf("%s: stop took %v; %d writes through the other two, longest gap between successful writes %v",
				tc.name, stopped.Sub(start), writes, gap)
			require.Less(t, gap, 20*time.Second)
			require.NotEqual(t, old.Server().ID(), c.Leader().Server().ID(), "a new leader")

			old.Restart()
			only := etcdtest.NewClient(t, old.Endpoints()...)
			resp, err := cli.Get(ctx, "during-"+tc.name)
			require.NoError(t, err)
			require.Len(t, resp.Kvs, 1)
			// The restarted member caught up with what was written without it.
			requireValue(t, ctx, only, "during-"+tc.name, string(resp.Kvs[0].Value))
		})
	}

	t.Run("QuorumLostIsUnhealthy", func(t *testing.T) {
		c.Members[0].Stop()
		c.Members[1].Kill()
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		require.ErrorIs(t, c.Members[2].Server().Healthy(hctx), embedded.ErrUnhealthy)
		// Whether it was removed, nobody is left to say.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		removed, err := c.Members[2].Server().Removed(rctx)
		require.Error(t, err)
		require.False(t, removed)
	})
}

// putTimeout bounds each of writer's puts: a proposal dropped during a
// leader change is never answered, so this is the resolution of the gap.
const putTimeout = 250 * time.Millisecond

// writer puts increasing values to one key without pause, and keeps the
// longest time between two successful puts: how long writes were unavailable.
type writer struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	last   time.Time // of the last successful put
	maxGap time.Duration
	writes int
}

func startWriter(t *testing.T, cli *clientv3.Client, key string) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			pctx, pcancel := context.WithTimeout(ctx, putTimeout)
			_, err := cli.Put(pctx, key, strconv.Itoa(i))
			pcancel()
			if err == nil {
				w.succeeded(time.Now())
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *writer) succeeded(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() {
		w.maxGap = max(w.maxGap, at.Sub(w.last))
	}
	w.last = at
	w.writes++
}

// awaitWriteAfter waits until a put that started after t0 succeeded.
func (w *writer) awaitWriteAfter(t *testing.T, t0 time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.last.After(t0.Add(putTimeout)) // so it started after t0
	}, 30*time.Second, 5*time.Millisecond, "no write succeeded")
}

func (w *writer) stop() (maxGap time.Duration, writes int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxGap, w.writes
}

func othersEndpoints(c *embeddedtest.Cluster, not *embeddedtest.Member) []string {
	var eps []string
	for _, m := range c.Members {
		if m != not {
			eps = append(eps, m.Endpoints()...)
		}
	}
	return eps
}

func names(s *embedded.Server) []string {
	var out []string
	for _, m := range s.Members() {
		out = append(out, m.Name)
	}
	return out
}

// TestStaticCluster bootstraps a cluster as separate processes would: three
// Start calls with their own names and the same member list and token. All
// three enable auth with the same password at the same time, as three
// processes of one deployment would.
func TestStaticCluster(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	var members []embedded.Member
	for _, name := range []string{"a", "b", "c"} {
		members = append(members, embedded.Member{Name: name, PeerURL: "http://" + etcdtest.FreeAddr(t)})
	}
	dir := t.TempDir()
	servers := make([]*embedded.Server, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			servers[i], errs[i] = embedded.Start(ctx,
				embedded.WithName(m.Name),
				embedded.WithDataDir(filepath.Join(dir, m.Name)),
				embedded.WithCluster("static-test", members...),
				embedded.WithAuth("s3cret"))
		})
	}
	wg.Wait()
	for _, s := range servers {
		if s != nil {
			defer s.Abort()
		}
	}
	for _, err := range errs {
		require.NoError(t, err)
	}

	for i, s := range servers {
		require.Equal(t, members[i].PeerURL, s.PeerURL(), "the peer address comes from the member list")
		require.Len(t, s.Members(), 3)
	}
	cfg, err := servers[0].ClientConfig()
	require.NoError(t, err)
	cfg.Endpoints = servers[2].Endpoints()
	cli, err := clientv3.New(cfg)
	require.NoError(t, err)
	defer cli.Close()
	put(t, ctx, cli, "k", "v")
	requireValue(t, ctx, cli, "k", "v")
	anon := etcdtest.NewClient(t, servers[1].Endpoints()...)
	_, err = anon.Get(ctx, "k")
	requirePermissionError(t, err)
}

// A whole cluster shut down at once, as a deployment's processes are: the
// leader's peers are stopping too and cannot take over, and etcd's own
// hand-over would wait out its 7 s request timeout. Close bounds the
// attempt by an election timeout instead.
func TestClusterClosesTogether(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 60*time.Second)
	servers, err := embedded.StartCluster(ctx, 3)
	require.NoError(t, err)
	var leader *embedded.Server
	require.Eventually(t, func() bool {
		for _, s := range servers {
			if s.IsLeader() {
				leader = s
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader")

	start := time.Now()
	took := make([]time.Duration, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			assert.NoError(t, s.Close())
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	t.Logf("closed together in %v (leader %s)", took, leader.Name())
	for i, s := range servers {
		require.Less(t, took[i], 5*time.Second, "%s took as long as etcd's own leadership hand-over", s.Name())
	}
}

// TestRemovedHearsPastABlackHole gives the cluster a learner whose peer
// address accepts connections and never answers, ordered before every
// other peer: Removed still hears from the others at once.
func TestRemovedHearsPastABlackHole(t *testing.T) {
	t.Parallel()
	c := embeddedtest.StartCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	cli := c.Client()
	least := uint64(1<<64 - 1)
	for _, m := range c.Members {
		least = min(least, m.Server().ID())
	}
	var learner uint64
	for range 50 { // etcd picks the ID; keep one that sorts first
		hole := blackHole(t) // a removed member's address may not return
		var resp *clientv3.MemberAddResponse
		require.Eventually(t, func() bool {
			// Refused until every member has been connected for 5 s.
			var err error
			resp, err = cli.MemberAddAsLearner(ctx, []string{"http://" + hole})
			require.True(t, err == nil || errors.Is(err, rpctypes.ErrUnhealthy), "%v", err)
			return err == nil
		}, 20*time.Second, 100*time.Millisecond)
		if resp.Member.ID < least {
			learner = resp.Member.ID
			break
		}
		_, err := cli.MemberRemove(ctx, resp.Member.ID)
		require.NoError(t, err)
	}
	require.NotZero(t, learner, "no learner ID sorted before the members'")
	t.Cleanup(func() { _, _ = cli.MemberRemove(context.Background(), learner) })
	for _, m := range c.Members {
		require.Eventually(t, func() bool { return len(m.Server().Members()) == 4 },
			10*time.Second, 10*time.Millisecond, "%s lists the learner", m.Server().Name())
		start := time.Now()
		removed, err := m.Server().Removed(ctx)
		took := time.Since(start)
		require.NoError(t, err)
		require.False(t, removed)
		require.Less(t, took, 3*time.Second, "%s waited on the black hole", m.Server().Name())
		t.Logf("%s: answered in %v", m.Server().Name(), took.Round(time.Millisecond))
	}
}

// blackHole returns the address of a listener that accepts connections,
// reads what they send and never answers, until the test ends.
func blackHole(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, conn) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}
