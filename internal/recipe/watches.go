package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errWatch marks a watch that failed or closed: the caller re-reads and
// watches again rather than giving up.
var errWatch = errors.New("watch failed")

// watches waits for the deletion of some keys: one etcd watch per key,
// all from the same revision, their responses merged into notes.
//
// Every watch asks for its created notification, whose header carries the
// store revision at creation. If that is below from, no write landed since
// from-1, and the server registered the watch as synced: events reach it at
// once. Otherwise the server may have filed it as unsynced, to be caught up
// by a loop that runs every 100 ms.
type watches struct {
	from    int64
	notes   chan note
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pending int   // created notifications not yet seen
	created int64 // highest store revision among them
}

type note struct {
	key    string
	resp   clientv3.WatchResponse
	closed bool
}

// watchDeletes starts watching keys for deletion from revision from. The
// watches require an etcd leader, so a member cut off from its cluster
// fails them instead of leaving them silent.
func watchDeletes(ctx context.Context, cli *clientv3.Client, from int64, keys ...string) *watches {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w := &watches{from: from, notes: make(chan note), cancel: cancel, pending: len(keys)}
	for _, k := range keys {
		wch := cli.Watch(ctx, k, clientv3.WithRev(from), clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
		w.wg.Go(func() { w.forward(ctx, k, wch) })
	}
	return w
}

func (w *watches) forward(ctx context.Context, key string, wch clientv3.WatchChan) {
	for {
		resp, ok := <-wch
		select {
		case w.notes <- note{key: key, resp: resp, closed: !ok}:
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
	}
}

// take digests one note: it returns the key whose deletion it reports, if
// any, or an error wrapping errWatch if that watch ended.
func (w *watches) take(n note) (deleted string, err error) {
	if n.closed {
		return "", fmt.Errorf("%w: %s: channel closed", errWatch, n.key)
	}
	if err := n.resp.Err(); err != nil {
		return "", fmt.Errorf("%w: %s: %w", errWatch, n.key, err)
	}
	if n.resp.Created {
		w.pending--
		w.created = max(w.created, n.resp.Header.Revision)
	}
	for _, ev := range n.resp.Events {
		if ev.Type == mvccpb.DELETE {
			return n.key, nil
		}
	}
	return "", nil
}

// established says every watch has been created; synced, that no write
// landed between revision from-1 and their creation.
func (w *watches) established() bool { return w.pending == 0 }
func (w *watches) synced() bool      { return w.created < w.from }

// close cancels the watches and waits for their forwarders.
func (w *watches) close() {
	w.cancel()
	w.wg.Wait()
}
