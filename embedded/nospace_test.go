package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/embedded/embeddedtest"
)

// fillUntilNoSpace writes values of size bytes under keys from key(i) until
// the cluster refuses one for want of space, and returns how many it took.
func fillUntilNoSpace(t testing.TB, ctx context.Context, cli *clientv3.Client, size int, key func(int) string) int {
	t.Helper()
	val := strings.Repeat("n", size)
	for i := 0; ; i++ {
		_, err := cli.Put(ctx, key(i), val)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			return i
		}
		require.NoError(t, err)
	}
}

// fillUntilUnrecoverable writes values of size under key(0), key(1), …
// until s finds that the data does not fit under its quota, and returns
// how many writes were accepted. etcd's quota counts the file, free pages
// included, so a fill can be refused while the data would fit once
// defragmented: s then rightly recovers, and the fill goes on.
func fillUntilUnrecoverable(t testing.TB, ctx context.Context, cli *clientv3.Client, s *embedded.Server, size int, key func(int) string) int {
	t.Helper()
	val := strings.Repeat("n", size)
	n := 0
	var failed error
	require.Eventually(t, func() bool {
		if s.Status().NoSpace.Unrecoverable != nil {
			return true
		}
		_, err := cli.Put(ctx, key(n), val)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, rpctypes.ErrNoSpace):
			failed = err
			return true
		}
		return false
	}, 60*time.Second, 10*time.Millisecond, "%d writes; %+v", n, s.Status())
	require.NoError(t, failed)
	return n
}

// awaitWritable waits until a write is accepted again.
func awaitWritable(t testing.TB, ctx context.Context, cli *clientv3.Client, d time.Duration, h *recordingHandler) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, func() bool {
		_, err := cli.Put(ctx, "/writable", "")
		return err == nil
	}, d, 20*time.Millisecond, "writes accepted again; log: %v", h.dump())
	return time.Since(start)
}

// TestNoSpaceRecovered fills a three-member cluster's quota with history:
// one key written over and over, auto-compaction off. The leader compacts,
// has every member defragmented and disarms, with no one asking.
func TestNoSpaceRecovered(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	c := embeddedtest.StartCluster(t, 3, embedded.WithQuotaBackendBytes(8<<20), embedded.WithAutoCompaction(0),
		embedded.WithLogger(slog.New(h)))
	ctx := ctxT(t, 90*time.Second)
	cli := c.Client()
	n := fillUntilNoSpace(t, ctx, cli, 256<<10, func(int) string { return "/history" })
	t.Logf("NOSPACE after %d writes of 256 KiB", n)
	took := awaitWritable(t, ctx, cli, 30*time.Second, h)
	t.Logf("writable again %v after the first refused write", took.Round(time.Millisecond))

	requireValue(t, ctx, cli, "/history", strings.Repeat("n", 256<<10))
	alarms, err := cli.AlarmList(ctx)
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms)
	// The alarm is disarmed before the recovery is counted.
	require.Eventually(t, func() bool { return h.count("NOSPACE recovered") == 1 }, 5*time.Second, 10*time.Millisecond,
		"one recovery logged; log: %v", h.dump())
	recoveries := 0
	for _, m := range c.Members {
		st := m.Server().Status()
		recoveries += st.NoSpace.Recoveries
		require.Less(t, st.DBSize, int64(4<<20), "%s was defragmented", st.Name)
		require.Eventually(t, func() bool { return m.Server().Healthy(ctx) == nil }, 10*time.Second, 10*time.Millisecond)
		require.False(t, m.Server().Status().NoSpace.Alarm)
	}
	require.Equal(t, 1, recoveries, "the leader recovered, once")
	require.Equal(t, 3, h.count("NOSPACE alarm raised: writes are refused"), "each member logs the alarm")
	require.Eventually(t, func() bool { return h.count("NOSPACE alarm cleared") == 3 }, 10*time.Second, 10*time.Millisecond)
}

// TestNoSpaceAlarmRaisedDuringRecovery raises a second member's NOSPACE
// alarm while the leader recovers from the first, as a write that member
// applied just before the first alarm does. The one recovery disarms both:
// no alarm is left once it is logged, and no second recovery follows.
func TestNoSpaceAlarmRaisedDuringRecovery(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	c := embeddedtest.StartCluster(t, 3, embedded.WithLogger(slog.New(h)))
	ctx := ctxT(t, 60*time.Second)
	cli := c.Client()
	raise := func(m *embeddedtest.Member) {
		_, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{
			Action: pb.AlarmRequest_ACTIVATE, MemberID: m.Server().ID(), Alarm: pb.AlarmType_NOSPACE})
		require.NoError(t, err)
	}
	raise(c.Members[0])
	require.Eventually(t, func() bool { return h.count("NOSPACE recovery started") == 1 }, 10*time.Second, time.Millisecond)
	raise(c.Members[1])
	require.Eventually(t, func() bool { return h.count("NOSPACE recovered") == 1 }, 30*time.Second, time.Millisecond,
		"log: %v", h.dump())
	alarms, err := cli.AlarmList(ctx)
	require.NoError(t, err)
	require.Empty(t, alarms.Alarms, "the recovery disarmed the alarm raised while it ran")
	awaitWritable(t, ctx, cli, 5*time.Second, h)
	require.Never(t, func() bool { return h.count("NOSPACE recovery started") > 1 }, 2*time.Second, 10*time.Millisecond,
		"a second recovery")
}

// TestNoSpaceUnrecoverable fills the quota with live keys: compaction and
// defragmentation cannot help. The member says so once, keeps refusing
// writes without trying again and again, and recovers once keys are deleted.
func TestNoSpaceUnrecoverable(t *testing.T) {
	t.Parallel()
	h := &recordingHandler{}
	m := embeddedtest.Start(t, embedded.WithQuotaBackendBytes(4<<20), embedded.WithLogger(slog.New(h)),
		embedded.WithDefragPolicy(embedded.DefragPolicy{CheckInterval: 100 * time.Millisecond}))
	ctx := ctxT(t, 90*time.Second)
	cli := m.Client()
	key := func(i int) string { return fmt.Sprintf("/live/%03d", i) }
	s := m.Server()
	n := fillUntilUnrecoverable(t, ctx, cli, s, 128<<10, key)
	// The recoveries of a fill stopped early by free pages.
	started, recovered := h.count("NOSPACE recovery started"), h.count("NOSPACE recovered")
	recoveries := s.Status().NoSpace.Recoveries
	t.Logf("%d writes of 128 KiB; %d recoveries on the way, from free pages", n, recoveries)
	err := s.Healthy(ctx)
	require.ErrorIs(t, err, embedded.ErrUnhealthy)
	require.ErrorIs(t, err, embedded.ErrNoSpace)
	require.ErrorIs(t, s.Status().NoSpace.Unrecoverable, embedded.ErrNoSpace)
	require.Contains(t, err.Error(), "delete keys or raise the quota")
	t.Logf("Healthy: %v", err)

	// No thrashing: while nothing changes, no new attempt, no disarm.
	require.Never(t, func() bool {
		return h.count("NOSPACE recovery started") > started || h.count("NOSPACE unrecoverable: the data does not fit under the quota") > 1
	}, 2*time.Second, 20*time.Millisecond)
	_, err = cli.Put(ctx, "/more", "x")
	require.ErrorIs(t, err, rpctypes.ErrNoSpace, "writes are still refused")
	require.True(t, s.Status().NoSpace.Alarm)

	// Deletes are allowed under NOSPACE; with room made, the member
	// recovers by itself.
	for i := range n * 3 / 4 {
		_, err := cli.Delete(ctx, key(i))
		require.NoError(t, err)
	}
	awaitWritable(t, ctx, cli, 30*time.Second, h)
	// The alarm is disarmed before the recovery is counted.
	require.Eventually(t, func() bool { return h.count("NOSPACE recovered") == recovered+1 }, 5*time.Second, 10*time.Millisecond)
	st := s.Status()
	require.Equal(t, recoveries+1, st.NoSpace.Recoveries)
	require.NoError(t, st.NoSpace.Unrecoverable)
}

// TestNoSpaceKeepHistory fills the quota with history while recovery must
// keep it: defragmentation alone cannot help, and the member says so.
func TestNoSpaceKeepHistory(t *testing.T) {
	t.Parallel()
	m := embeddedtest.Start(t, embedded.WithQuotaBackendBytes(4<<20), embedded.WithAutoCompaction(0),
		embedded.WithNoSpaceRecovery(embedded.NoSpaceRecovery{KeepHistory: true}))
	ctx := ctxT(t, 90*time.Second)
	cli := m.Client()
	first, err := cli.Put(ctx, "/history", "first")
	require.NoError(t, err)
	fillUntilUnrecoverable(t, ctx, cli, m.Server(), 128<<10, func(int) string { return "/history" })
	requireValue(t, ctx, cli, "/history", "first", clientv3.WithRev(first.Header.Revision))
}
