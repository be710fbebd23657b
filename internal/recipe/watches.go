package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errWatch marks a watch that failed or closed: the caller re-reads and
// watches again rather than giving up.
var errWatch = errors.New("watch failed")

// deletions watches for the deletion of some keys with one etcd watch over
// the smallest key range that holds them all, from one revision. One
// watch, not one per key, so that its events arrive in revision order: a
// delete of our own key is never seen after a later delete of a blocker.
// Deletes of other keys in the range are ignored by the caller.
//
// The watch asks for its created notification, whose header carries the
// store revision at creation. If that is below from, no write landed since
// from-1, and the server registered the watch as synced: events reach it
// at once. Otherwise the server may have filed it as unsynced, to be caught
// up by a loop that runs every 100 ms.
type deletions struct {
	from    int64
	ch      clientv3.WatchChan
	cancel  context.CancelFunc
	created int64 // store revision at creation; 0 until created
}

// watchDeletions starts watching keys for deletion from revision from, or,
// with from 0, from the moment the server registers the watch: such a watch
// is always synced, and its created header says where it starts.
// The watch requires an etcd leader, so a member cut off from its cluster
// fails it instead of leaving it silent.
func watchDeletions(ctx context.Context, cli *clientv3.Client, from int64, keys ...string) *deletions {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	lo, hi := slices.Min(keys), slices.Max(keys)
	opts := []clientv3.OpOption{clientv3.WithFilterPut(), clientv3.WithCreatedNotify()}
	if from > 0 {
		opts = append(opts, clientv3.WithRev(from))
	}
	if hi != lo {
		opts = append(opts, clientv3.WithRange(hi+"\x00"))
	}
	return &deletions{from: from, ch: cli.Watch(ctx, lo, opts...), cancel: cancel}
}

// take digests one response: it returns the keys it reports deleted, in
// order, or an error wrapping errWatch if the watch ended.
func (d *deletions) take(resp clientv3.WatchResponse, ok bool) (deleted []string, err error) {
	if !ok {
		return nil, fmt.Errorf("%w: channel closed", errWatch)
	}
	if err := resp.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errWatch, err)
	}
	if resp.Created {
		d.created = resp.Header.Revision
	}
	for _, ev := range resp.Events {
		if ev.Type == mvccpb.DELETE {
			deleted = append(deleted, string(ev.Kv.Key))
		}
	}
	return deleted, nil
}

// synced says no write landed between revision from-1 and the watch's
// creation. Call it once created.
func (d *deletions) synced() bool { return d.created < d.from }

// current says no write landed after revision after before a watch started
// "now" (from 0) was created, so together with a read at after it misses
// nothing. etcd reads the header revision after registering the watch.
func (d *deletions) current(after int64) bool { return d.created <= after }

// close cancels the watch.
func (d *deletions) close() { d.cancel() }
