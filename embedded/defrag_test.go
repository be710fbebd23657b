package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
)

// fragment writes about n bytes in 256 KiB values, deletes them and
// compacts, leaving that much of the members' files free. bolt counts the
// pages a compaction freed only once later writes commit: small writes
// follow until every running member of ms counts them.
func fragment(t testing.TB, ctx context.Context, cli *clientv3.Client, n int, ms ...*embeddedtest.Member) {
	t.Helper()
	val := strings.Repeat("f", 256<<10)
	for i := range n / len(val) {
		put(t, ctx, cli, fmt.Sprintf("/fragment/%d", i), val)
	}
	del, err := cli.Delete(ctx, "/fragment/", clientv3.WithPrefix())
	require.NoError(t, err)
	_, err = cli.Compact(ctx, del.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		put(t, ctx, cli, "/fragmented", "")
		for _, m := range ms {
			s := m.Server()
			select {
			case <-s.Done():
				continue
			default:
			}
			if st := s.Status(); st.DBSize-st.DBSizeInUse < int64(n/2) && st.Defrag.Start.IsZero() {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "the members count the free pages")
}

// testPolicy looks often and calls 4 MiB of free pages worth a
// defragmentation.
var testPolicy = embedded.DefragPolicy{CheckInterval: 100 * time.Millisecond, MinFreeBytes: 4 << 20}

func TestDefragSingleMember(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	m := embeddedtest.Start(t, embedded.WithDefragPolicy(testPolicy), embedded.WithLogger(slog.New(h)))
	ctx := ctxT(t, 60*time.Second)
	cli := m.Client()
	put(t, ctx, cli, "kept", "1")
	fragment(t, ctx, cli, 8<<20, m)
	require.Eventually(t, func() bool { return m.Server().Status().Defrag.Count == 1 }, 30*time.Second, 10*time.Millisecond)

	st := m.Server().Status()
	require.Greater(t, st.Defrag.SizeBefore, int64(8<<20))
	require.Less(t, st.Defrag.SizeAfter, st.Defrag.SizeBefore/4, "the file shrank")
	require.False(t, st.Defrag.End.Before(st.Defrag.Start))
	require.NoError(t, st.Defrag.Err)
	require.Contains(t, st.Defrag.Reason, "unused")
	requireValue(t, ctx, cli, "kept", "1")
	require.Equal(t, 1, h.count("defragmentation started"))
	require.Equal(t, 1, h.count("defragmentation finished"))
	require.True(t, h.has("defragmentation finished", "name", m.Server().Name()))
}

// TestDefragCluster runs the policy on three members. Under a steady stream
// of writes every member defragments once, one at a time as their own
// Status tells, the leader last, and writes never stop for a second. Then,
// while one member is down, nobody defragments until it is back.
func TestDefragCluster(t *testing.T) {
	t.Parallel()
	c := embeddedtest.StartCluster(t, 3, embedded.WithDefragPolicy(testPolicy))
	ctx := ctxT(t, 90*time.Second)
	cli := c.Client()
	// Data to copy: a defragmentation then takes a while.
	val := strings.Repeat("k", 64<<10)
	for i := range 64 {
		put(t, ctx, cli, fmt.Sprintf("/kept/%d", i), val)
	}

	var (
		mu      sync.Mutex
		last    = time.Now()
		longest time.Duration
		gapEnd  time.Time
		writes  int
	)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	measuring := true
	wg.Go(func() {
		for i := 0; wctx.Err() == nil; i++ {
			pctx, cancel := context.WithTimeout(wctx, 2*time.Second)
			_, err := cli.Put(pctx, "/steady", fmt.Sprint(i))
			cancel()
			if err == nil {
				now := time.Now()
				mu.Lock()
				if measuring && now.Sub(last) > longest {
					longest, gapEnd = now.Sub(last), now
				}
				last = now
				writes++
				mu.Unlock()
			}
		}
	})
	// A baseline: the same writes, before there is anything to defragment.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return writes >= 200
	}, 30*time.Second, 10*time.Millisecond)
	mu.Lock()
	baseline := longest
	mu.Unlock()
	fragment(t, ctx, cli, 12<<20, c.Members...)
	mu.Lock()
	last, longest, writes = time.Now(), 0, 0 // from here on the policy acts
	mu.Unlock()
	defragged := func(n int, ms ...*embeddedtest.Member) func() bool {
		return func() bool {
			for _, m := range ms {
				if m.Server().Status().Defrag.Count < n {
					return false
				}
			}
			return true
		}
	}
	require.Eventually(t, defragged(1, c.Members...), 60*time.Second, 10*time.Millisecond, "every member defragments")
	// A second round, which must not come, would start within a few looks.
	require.Never(t, func() bool {
		for _, m := range c.Members {
			if defragged(2, m)() {
				return true
			}
		}
		return false
	}, 10*testPolicy.CheckInterval, 10*time.Millisecond, "a member defragments twice")
	mu.Lock()
	measuring = false
	mu.Unlock()

	var runs []embedded.DefragStatus
	for _, m := range c.Members {
		st := m.Server().Status()
		require.Equal(t, 1, st.Defrag.Count, "%s defragments once", st.Name)
		require.NoError(t, st.Defrag.Err)
		require.False(t, st.Defrag.End.IsZero())
		t.Logf("%s: %v .. %v (%v), %d -> %d bytes", st.Name, st.Defrag.Start.Format("15:04:05.000"),
			st.Defrag.End.Format("15:04:05.000"), st.Defrag.End.Sub(st.Defrag.Start).Round(time.Millisecond),
			st.Defrag.SizeBefore, st.Defrag.SizeAfter)
		runs = append(runs, st.Defrag)
	}
	for i := range runs {
		for j := range runs {
			if i != j {
				a, b := runs[i], runs[j]
				require.True(t, a.End.Before(b.Start) || b.End.Before(a.Start), "two members defragmented at once")
			}
		}
	}
	var leaders int
	for _, ld := range runs {
		require.False(t, ld.HandedOver, "a short defragmentation is not worth a leadership transfer")
		if !ld.AsLeader {
			continue
		}
		leaders++
		for _, r := range runs {
			if r != ld {
				require.True(t, r.End.Before(ld.Start), "the leader goes last")
			}
		}
	}
	require.Equal(t, 1, leaders, "one member was the leader when its turn came")
	mu.Lock()
	t.Logf("%d writes while the members defragmented; longest gap between successful writes %v, ending at %v (before: %v)",
		writes, longest.Round(time.Millisecond), gapEnd.Format("15:04:05.000"), baseline.Round(time.Millisecond))
	require.Less(t, longest, time.Second, "longest gap between successful writes")
	mu.Unlock()

	down := c.Follower()
	down.Kill()
	var up []*embeddedtest.Member
	for _, m := range c.Members {
		if m != down {
			up = append(up, m)
		}
	}
	// Written through a member that stays up: clientv3 does not retry a Put
	// whose connection broke, and a client of every member may have been
	// about to use the one killed.
	fragment(t, ctx, up[0].Client(), 12<<20, c.Members...)
	for _, m := range up {
		require.Eventually(t, func() bool {
			return strings.Contains(m.Server().Status().Defrag.Waiting, "does not answer")
		}, 20*time.Second, 10*time.Millisecond, "%s waits for the member that is down: %+v", m.Server().Name(), m.Server().Status().Defrag)
	}
	require.Never(t, defragged(2, up[0]), 20*testPolicy.CheckInterval, 10*time.Millisecond, "a member defragments while another is down")
	require.Never(t, defragged(2, up[1]), testPolicy.CheckInterval, 10*time.Millisecond, "a member defragments while another is down")
	down.Restart()
	require.Eventually(t, defragged(2, up...), 60*time.Second, 10*time.Millisecond, "the members defragment once all are back")
}
