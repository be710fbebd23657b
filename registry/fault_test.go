package registry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/registry"
)

// registerN registers n instances of service and returns their IDs.
func registerN(t *testing.T, r *registry.Registrar, service string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%03d", i)
		require.NoError(t, r.Register(testCtx(t), instance(service, ids[i])))
	}
	return ids
}

// allUnder reports whether every instance is present under lease and the
// lease is alive, as a plain client sees it.
func allUnder(t *testing.T, cli *clientv3.Client, service string, ids []string, lease clientv3.LeaseID) bool {
	t.Helper()
	if lease == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/roster/services/"+service+"/", clientv3.WithPrefix())
	if err != nil {
		return false
	}
	have := map[string]int64{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = kv.Lease
	}
	for _, id := range ids {
		if have[key(service, id)] != int64(lease) {
			return false
		}
	}
	ttl, err := cli.TimeToLive(ctx, lease)
	return err == nil && ttl.TTL > 0
}

// until polls cond every 5 ms and returns how long it took to hold, failing
// the test after within.
func until(t *testing.T, within time.Duration, cond func() bool, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond) // polling etcd, not synchronizing
	}
	return time.Since(start)
}

// Acceptance 2: a process that stops renewing without revoking (its client
// closed, as in a crash) disappears within the TTL, and the registrar says
// "lost" before etcd deletes the key.
func TestKeyGoneWithinTTLWhenRenewalsStop(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	dying, err := clientv3.New(clientv3.Config{Endpoints: m.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	r := newRegistrar(t, dying, registry.WithTTL(testTTL))
	require.NoError(t, r.Register(ctx, instance("users", "a")))

	require.NoError(t, dying.Close())
	closed := time.Now()
	gone := until(t, testTTL+time.Second, func() bool { return get(t, plain, "users", "a") == nil }, "key gone after renewals stopped")
	goneAt := closed.Add(gone)
	t.Logf("key gone %v after the client closed (TTL %v)", gone.Round(time.Millisecond), testTTL)

	lost := waitEvent(t, r, registry.EventLost, time.Second)
	t.Logf("registrar reported lost %v before etcd deleted the key", goneAt.Sub(lost.Time).Round(time.Millisecond))
	assert.True(t, lost.Time.Before(goneAt), "lost reported no later than the server's expiry")
	assert.False(t, r.Status().Healthy)
}

// Acceptance 3a: another client revokes the lease.
func TestRestoredAfterLeaseRevokedByAnother(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	ids := registerN(t, r, "users", 5)
	old := r.Status().Lease

	start := time.Now()
	_, err := plain.Revoke(ctx, old)
	require.NoError(t, err)
	took := until(t, 5*time.Second, func() bool {
		st := r.Status()
		return st.Lease != old && allUnder(t, plain, "users", ids, st.Lease)
	}, "restored under a new lease")
	t.Logf("restored %d instances under a new lease %v after the revoke", len(ids), took.Round(time.Millisecond))
	assert.Less(t, took, time.Second)

	lost := waitEvent(t, r, registry.EventLost, time.Second)
	assert.Equal(t, old, lost.Lease)
	assert.Empty(t, lost.Service, "the lease, not one key")
	restored := waitEvent(t, r, registry.EventRestored, time.Second)
	assert.Equal(t, r.Status().Lease, restored.Lease)
	assert.True(t, restored.Time.Sub(start) < time.Second)
	until(t, time.Second, func() bool { return r.Status().Healthy }, "healthy again")
}

// Acceptance 3b: another client deletes one key.
func TestRestoredAfterKeyDeletedByAnother(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	ids := registerN(t, r, "users", 3)
	lease := r.Status().Lease

	_, err := plain.Delete(ctx, key("users", ids[1]))
	require.NoError(t, err)
	took := until(t, 5*time.Second, func() bool { return get(t, plain, "users", ids[1]) != nil }, "key written back")
	t.Logf("deleted key back after %v", took.Round(time.Millisecond))
	assert.Less(t, took, time.Second)
	assert.True(t, allUnder(t, plain, "users", ids, lease), "same lease: only the key was lost")

	lost := waitEvent(t, r, registry.EventLost, time.Second)
	assert.Equal(t, ids[1], lost.ID)
	restored := waitEvent(t, r, registry.EventRestored, time.Second)
	assert.Equal(t, ids[1], restored.ID)
	until(t, time.Second, func() bool { return r.Status().Healthy }, "healthy again")
	assert.Equal(t, lease, r.Status().Lease)
}

// Acceptance 4: etcd stopped for longer than the TTL, then restarted on its
// data: every instance is back under a live lease without any call.
func TestRestoredAfterEtcdRestart(t *testing.T) {
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client(), registry.WithTTL(testTTL))
	ids := registerN(t, r, "users", 20)
	old := r.Status().Lease

	m.Stop()
	stopped := time.Now()
	waitEvent(t, r, registry.EventLost, 2*testTTL)
	assert.False(t, r.Status().Healthy)
	t.Logf("lost reported %v after the stop", time.Since(stopped).Round(time.Millisecond))
	<-time.After(time.Until(stopped.Add(testTTL + 500*time.Millisecond))) // the outage outlasts the TTL

	m.Restart()
	ready := time.Now()
	took := until(t, 10*time.Second, func() bool {
		st := r.Status()
		return st.Healthy && allUnder(t, plain, "users", ids, st.Lease)
	}, "every instance back under a live lease")
	t.Logf("outage %v; all %d instances back %v after etcd was ready", ready.Sub(stopped).Round(time.Millisecond), len(ids), took.Round(time.Millisecond))
	assert.Less(t, took, 2*time.Second)
	restored := waitEvent(t, r, registry.EventRestored, time.Second)
	assert.NotEqual(t, old, restored.Lease)
	// etcd restores the old lease with a fresh TTL; the registrar moved its
	// keys off it and revokes it.
	until(t, 5*time.Second, func() bool { return !leaseAlive(t, plain, old) }, "old lease revoked")
}

// A partition: the registrar reports the loss on its own clock before etcd
// expires the lease, then restores everything when the network heals.
func TestPartitionReportsLostThenRestores(t *testing.T) {
	m := etcdtest.Start(t)
	plain := m.Client()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	r := newRegistrar(t, etcdtest.NewClient(t, proxy.Endpoint()), registry.WithTTL(testTTL))
	ids := registerN(t, r, "users", 3)
	old := r.Status().Lease

	proxy.Pause()
	lost := waitEvent(t, r, registry.EventLost, 3*testTTL)
	assert.Equal(t, old, lost.Lease)
	assert.False(t, r.Status().Healthy)
	gone := until(t, 3*testTTL, func() bool { return get(t, plain, "users", ids[0]) == nil }, "etcd expires the lease")
	t.Logf("lost reported, then etcd expired the lease %v later", gone.Round(time.Millisecond))

	proxy.Restore()
	healed := time.Now()
	took := until(t, 10*time.Second, func() bool {
		st := r.Status()
		return st.Healthy && allUnder(t, plain, "users", ids, st.Lease)
	}, "restored after the partition")
	t.Logf("restored %v after the partition healed", took.Round(time.Millisecond))
	restored := waitEvent(t, r, registry.EventRestored, time.Second)
	assert.True(t, restored.Time.After(healed))
}

// Someone else writes over one of our keys with their own lease: the
// registrar does not fight, reports it, and takes the key back once it is
// free again.
func TestTakenKeyIsReportedNotClobbered(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	ids := registerN(t, r, "users", 2)
	lease := r.Status().Lease

	grant, err := plain.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = plain.Put(ctx, key("users", ids[0]), `{"v":1,"addr":"10.6.6.6:1"}`, clientv3.WithLease(grant.ID))
	require.NoError(t, err)

	ev := waitEvent(t, r, registry.EventError, 2*time.Second)
	assert.ErrorIs(t, ev.Err, registry.ErrDuplicate)
	assert.Equal(t, ids[0], ev.ID)
	until(t, time.Second, func() bool { return !r.Status().Healthy }, "unhealthy while the key is taken")
	assert.ErrorIs(t, r.Status().Err, registry.ErrDuplicate)
	assert.Equal(t, int64(grant.ID), get(t, plain, "users", ids[0]).Lease, "not clobbered")
	assert.Equal(t, int64(lease), get(t, plain, "users", ids[1]).Lease, "the others untouched")

	_, err = plain.Revoke(ctx, grant.ID) // the other owner goes away
	require.NoError(t, err)
	until(t, 2*time.Second, func() bool { return allUnder(t, plain, "users", ids, lease) }, "taken back once free")
	until(t, time.Second, func() bool { return r.Status().Healthy }, "healthy again")
}

// The watch falls behind a compaction while the registrar is cut off, and a
// key of ours was deleted meanwhile: the registrar re-reads its services
// and writes the key back.
func TestDeletionDuringCutAndCompactionIsRepaired(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	r := newRegistrar(t, etcdtest.NewClient(t, proxy.Endpoint()), registry.WithTTL(30*time.Second))
	ids := registerN(t, r, "users", 3)
	lease := r.Status().Lease

	proxy.Cut()
	_, err := plain.Delete(ctx, key("users", ids[2]))
	require.NoError(t, err)
	compactNow(t, plain)
	proxy.Restore()

	took := until(t, 10*time.Second, func() bool { return allUnder(t, plain, "users", ids, lease) }, "deleted key written back")
	t.Logf("repaired %v after the cut ended", took.Round(time.Millisecond))
	lost := waitEvent(t, r, registry.EventLost, time.Second)
	assert.Equal(t, ids[2], lost.ID, "found by re-reading the service, reported as one key lost")
	until(t, 2*time.Second, func() bool { return r.Status().Healthy }, "healthy")
}

// A key held by another owner is freed while the registrar's watch is cut
// and etcd compacts past it: re-reading the service must see the key free
// and take it back, not keep waiting for a deletion it missed.
func TestConflictFreedDuringCutAndCompactionIsTakenBack(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	proxy := etcdtest.NewProxy(t, m.Endpoints()[0])
	r := newRegistrar(t, etcdtest.NewClient(t, proxy.Endpoint()), registry.WithTTL(30*time.Second))
	ids := registerN(t, r, "users", 2)
	lease := r.Status().Lease

	other, err := plain.Grant(ctx, 60)
	require.NoError(t, err)
	_, err = plain.Put(ctx, key("users", ids[0]), `{"v":1,"addr":"10.6.6.6:1"}`, clientv3.WithLease(other.ID))
	require.NoError(t, err)
	waitEvent(t, r, registry.EventError, 5*time.Second)

	proxy.Cut()
	_, err = plain.Revoke(ctx, other.ID)
	require.NoError(t, err)
	compactNow(t, plain)
	proxy.Restore()

	until(t, 10*time.Second, func() bool { return allUnder(t, plain, "users", ids, lease) }, "freed key taken back")
	until(t, 2*time.Second, func() bool { return r.Status().Healthy }, "healthy")
}

// Instances near the value size limit are written back after a lease loss
// in transactions that stay under etcd's request size limit.
func TestLargeInstancesAreRestoredInBatchesEtcdAccepts(t *testing.T) {
	ctx := testCtx(t)
	m := etcdtest.Start(t)
	plain := m.Client()
	r := newRegistrar(t, m.Client())
	var ids []string
	for i := range 64 {
		in := instance("big", fmt.Sprintf("i%03d", i))
		in.Metadata = map[string]string{}
		for k := range 14 {
			in.Metadata[fmt.Sprintf("k%02d", k)] = strings.Repeat("x", 1000)
		}
		require.NoError(t, r.Register(ctx, in))
		ids = append(ids, in.ID)
	}
	old := r.Status().Lease
	_, err := plain.Revoke(ctx, old)
	require.NoError(t, err)
	until(t, 10*time.Second, func() bool {
		st := r.Status()
		return st.Lease != old && allUnder(t, plain, "big", ids, st.Lease)
	}, "64 instances of 14 KB restored under a new lease")
}

// compactNow compacts etcd up to a write made now, so that no watch can
// resume from before it.
func compactNow(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := testCtx(t)
	resp, err := cli.Put(ctx, "/elsewhere", "x")
	require.NoError(t, err)
	_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
}
