package registry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/etcdtest"
)

// The watch may report someone else's change of a key before the reply to
// our own, earlier, write of it arrives. Recording that write must not
// undo what the watch said: here the events are handed to observe directly,
// between the write and the recording of its reply, as a slow reply would
// have them.
func TestWatchNewsOutranksALateWriteReply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := etcdtest.Start(t).Client()
	r, err := New(cli, WithTTL(30*time.Second))
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Register(ctx, roster.Instance{Service: "svc", ID: "a", Addr: "10.0.0.1:80"}))
	key := "/roster/services/svc/a"

	r.mu.Lock()
	e := r.entries[key]
	lease, rev := e.lease, e.rev
	r.mu.Unlock()

	// Deleted by someone at rev+10, reported before our write at rev+1.
	r.observe(&clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 10}})
	r.mu.Lock()
	r.wroteLocked(e, lease, rev+1)
	gone, inPlace := e.gone, e.inPlace(lease)
	r.mu.Unlock()
	require.True(t, gone, "the deletion reported after our write stands")
	require.False(t, inPlace)

	// A first registration in flight: taken by another lease meanwhile.
	fresh, created, err := r.lookup("/roster/services/svc/b", "svc", "b", true)
	require.NoError(t, err)
	require.True(t, created)
	r.observe(&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{
		Key: []byte("/roster/services/svc/b"), ModRevision: rev + 20, CreateRevision: rev + 20, Lease: 0x7777}})
	r.mu.Lock()
	fresh.registered = true
	r.wroteLocked(fresh, lease, rev+15)
	conflict := fresh.conflict
	r.dropLocked(fresh)
	r.mu.Unlock()
	fresh.unlock()
	require.ErrorIs(t, conflict, ErrDuplicate, "the other owner's later write stands")

	// An older foreign change does not outrank a later write of ours.
	r.observe(&clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 30}})
	r.mu.Lock()
	r.wroteLocked(e, lease, rev+31)
	inPlace = e.inPlace(lease)
	r.mu.Unlock()
	require.True(t, inPlace)
}

// A write of ours whose caller gave up on it (an Update that got no reply
// because a partition held it) may land after the value kept was written
// back. The watch must not take it for our own write just because it
// carries our lease: it is written over. Our write in flight, and the value
// written, are ours.
func TestALateWriteOfOursIsWrittenOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := etcdtest.Start(t).Client()
	r, err := New(cli, WithTTL(30*time.Second))
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Register(ctx, roster.Instance{Service: "svc", ID: "a", Addr: "10.0.0.1:80"}))
	key := "/roster/services/svc/a"

	r.mu.Lock()
	e := r.entries[key]
	lease, rev, val := e.lease, e.rev, e.val
	r.mu.Unlock()
	late := `{"v":1,"addr":"10.0.0.1:80","weight":7}`

	// The value written, under our lease: ours.
	r.observe(&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 1, Lease: int64(lease), Value: []byte(val)}})
	r.mu.Lock()
	require.True(t, e.inPlace(lease))
	// The value of our write in flight: ours too.
	e.pending = late
	r.mu.Unlock()
	r.observe(&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 2, Lease: int64(lease), Value: []byte(late)}})
	r.mu.Lock()
	require.True(t, e.inPlace(lease))
	e.pending = ""
	r.mu.Unlock()

	// Any other value under our lease: a late write, to be written over.
	r.observe(&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 3, Lease: int64(lease), Value: []byte(late)}})
	r.mu.Lock()
	require.False(t, e.inPlace(lease), "a late write of ours is not in place")
	require.NoError(t, e.conflict, "nor another owner's")
	r.mu.Unlock()
	until := time.Now().Add(5 * time.Second)
	for {
		resp, err := cli.Get(ctx, key)
		require.NoError(t, err)
		if len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == val && r.Status().Healthy {
			break // written over with the value kept
		}
		require.True(t, time.Now().Before(until), "the kept value written back")
		time.Sleep(5 * time.Millisecond) // polling etcd
	}

	// The same, reported before the reply of a later write of ours.
	r.mu.Lock()
	rev = e.rev
	r.mu.Unlock()
	r.observe(&clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev + 10, Lease: int64(lease), Value: []byte(late)}})
	r.mu.Lock()
	r.wroteLocked(e, lease, rev+5)
	require.False(t, e.inPlace(lease), "the late write came after ours")
	require.NoError(t, e.conflict)
	r.mu.Unlock()
}
