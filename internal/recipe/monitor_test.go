package recipe_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/session"
)

var errTestStop = errors.New("stopped by test")

func requireDone(t *testing.T, m *recipe.Monitor, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-m.Done():
		return
	default:
	}
	select {
	case <-m.Done():
	case <-timer.C:
		t.Fatalf("monitor still alive after %v", within)
	}
}

func monitor(t *testing.T, p *participant, from int64) *recipe.Monitor {
	m := recipe.NewMonitor(p.s, p.e.Key, p.e.Rev, from, nil)
	t.Cleanup(func() { m.Stop(errTestStop) })
	return m
}

func TestMonitorEndsWhenKeyDeleted(t *testing.T) {
	m := etcdtest.Start(t)
	p := join(t, m.Client(), "")
	mon := monitor(t, p, p.e.Header+1)
	require.NoError(t, mon.Err())
	release(t, p)
	requireDone(t, mon, 5*time.Second)
	require.ErrorIs(t, mon.Err(), recipe.ErrKeyDeleted)
	require.NoError(t, p.s.Err(), "the lease itself is fine")
}

// A revoked lease deletes the key; the monitor then renews the session at
// once, so the session learns long before its next scheduled renewal.
func TestMonitorRevokedLeaseEndsSessionAtOnce(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	p := join(t, m.Client(), "", session.WithTTL(30*time.Second))
	mon := monitor(t, p, p.e.Header+1)
	_, err := m.Client().Revoke(ctx, p.s.Lease())
	require.NoError(t, err)
	requireDone(t, mon, 5*time.Second)
	select {
	case <-p.s.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("session not ended 3 s after its lease was revoked (next renewal due in 10 s)")
	}
	require.ErrorIs(t, p.s.Err(), session.ErrLeaseGone)
}

// Compaction past the monitor's start revision fails its watch; that is
// not a loss. The monitor reads the key, watches again, and still sees a
// later delete.
func TestMonitorSurvivesCompaction(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	cli := m.Client()
	p := join(t, cli, "")
	var last int64
	for range 5 {
		resp, err := cli.Put(ctx, "/t/other", "x")
		require.NoError(t, err)
		last = resp.Header.Revision
	}
	_, err := cli.Compact(ctx, last)
	require.NoError(t, err)

	mon := monitor(t, p, p.e.Header+1) // compacted away
	require.Never(t, func() bool {
		select {
		case <-mon.Done():
			return true
		default:
			return false
		}
	}, 500*time.Millisecond, 10*time.Millisecond, "compaction is not a loss")
	release(t, p)
	requireDone(t, mon, 5*time.Second)
	require.ErrorIs(t, mon.Err(), recipe.ErrKeyDeleted)
}

// Cut off from etcd, the monitor reports the loss at the session's local
// deadline, while the server still holds the key for the lease.
func TestMonitorEndsAtSessionDeadlineBeforeServerExpiry(t *testing.T) {
	m := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	p := join(t, etcdtest.NewClient(t, proxy.Endpoint()), "", session.WithTTL(2*time.Second))
	mon := monitor(t, p, p.e.Header+1)
	proxy.Pause()
	requireDone(t, mon, 5*time.Second)
	require.ErrorIs(t, mon.Err(), session.ErrExpired)
	require.True(t, keyExists(t, m.Client(), p.e.Key), "the server has not expired the lease yet")
	proxy.Restore()
}

func TestMonitorStop(t *testing.T) {
	m := etcdtest.Start(t)
	p := join(t, m.Client(), "")
	mon := recipe.NewMonitor(p.s, p.e.Key, p.e.Rev, p.e.Header+1, nil)
	mon.Stop(errTestStop)
	mon.Stop(errors.New("second stop")) // idempotent; the first cause stays
	requireDone(t, mon, 0)
	require.ErrorIs(t, mon.Err(), errTestStop)
	require.True(t, keyExists(t, m.Client(), p.e.Key), "stopping a monitor does not release")
}

// End closes Done before returning, without waiting for the goroutines;
// a release then deletes, and Stop waits.
func TestMonitorEndThenStop(t *testing.T) {
	m := etcdtest.Start(t)
	p := join(t, m.Client(), "")
	mon := recipe.NewMonitor(p.s, p.e.Key, p.e.Rev, p.e.Header+1, nil)
	mon.End(errTestStop)
	requireDone(t, mon, 0)
	require.ErrorIs(t, mon.Err(), errTestStop)
	release(t, p)
	mon.Stop(errors.New("later cause"))
	require.ErrorIs(t, mon.Err(), errTestStop, "the first cause stays")
}

func TestMonitorOfAlreadyDeletedKey(t *testing.T) {
	m := etcdtest.Start(t)
	p := join(t, m.Client(), "")
	release(t, p)
	// Started from before the delete, it must still see it.
	mon := monitor(t, p, p.e.Header+1)
	requireDone(t, mon, 5*time.Second)
	require.ErrorIs(t, mon.Err(), recipe.ErrKeyDeleted)
}
