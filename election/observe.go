package election

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
)

// maxPending is how many undelivered states Observe keeps for a reader
// that falls behind; beyond that the oldest are dropped, never the latest.
const maxPending = 16

// Observe returns a channel of the election's states: first the current
// one, then every change of leader or of the leader's value, in order,
// including "nobody leads" (a Leader with an empty Key). A reader that
// keeps up sees every change; one that falls behind by more than a few
// states skips the oldest undelivered ones but always gets the latest.
//
// Observe follows the whole candidate list, so it knows who leads next the
// moment a leader goes. When its watch fails (compaction, a member without
// a leader, a broken connection) it reads the election again and goes on.
// The channel is closed when ctx is done or the Election is closed.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	ch := make(chan Leader)
	if !e.start() {
		close(ch)
		return ch
	}
	ctx, cancel := e.bind(ctx)
	go func() {
		defer e.wg.Done()
		defer cancel()
		defer close(ch)
		o := &observer{cli: e.cli, prefix: e.prefix, out: ch}
		o.run(ctx)
	}()
	return ch
}

// observer keeps the candidate list of one election and queues every
// change of its leader for delivery.
type observer struct {
	cli     *clientv3.Client
	prefix  string
	out     chan<- Leader
	kvs     map[string]*mvccpb.KeyValue
	last    Leader // the last state queued
	started bool
	pending []Leader
}

func (o *observer) run(ctx context.Context) {
	bo := backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		rev, err := o.list(ctx)
		if err == nil {
			bo.Reset()
			o.follow(ctx, rev)
		}
		o.deliverFor(ctx, bo.Next())
	}
}

// list reads every candidate and queues the resulting state if it changed.
func (o *observer) list(ctx context.Context) (int64, error) {
	resp, err := o.cli.Get(clientv3.WithRequireLeader(ctx), o.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	o.kvs = make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		o.kvs[string(kv.Key)] = kv
	}
	o.changed(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// follow applies the watch from rev+1 until it fails, delivering states
// meanwhile.
func (o *observer) follow(ctx context.Context, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := o.cli.Watch(wctx, o.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		var out chan<- Leader
		var head Leader
		if len(o.pending) > 0 {
			out, head = o.out, o.pending[0]
		}
		select {
		case out <- head:
			o.pending = o.pending[1:]
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return
			}
			o.apply(resp.Events)
		case <-ctx.Done():
			return
		}
	}
}

// apply applies events one revision at a time, so that each transition is
// seen, even within one watch response.
func (o *observer) apply(evs []*clientv3.Event) {
	for i := 0; i < len(evs); {
		rev := evs[i].Kv.ModRevision
		for ; i < len(evs) && evs[i].Kv.ModRevision == rev; i++ {
			key := string(evs[i].Kv.Key)
			if evs[i].Type == mvccpb.DELETE {
				delete(o.kvs, key)
			} else {
				o.kvs[key] = evs[i].Kv
			}
		}
		o.changed(rev)
	}
}

// changed queues the state at rev if it differs from the last one queued.
func (o *observer) changed(rev int64) {
	var lead *mvccpb.KeyValue
	for _, kv := range o.kvs {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	cur := Leader{Revision: rev}
	if lead != nil {
		cur = leaderOf(lead, rev)
	}
	if o.started && cur.same(o.last) {
		return
	}
	o.started, o.last = true, cur
	o.pending = append(o.pending, cur)
	if n := len(o.pending); n > maxPending {
		o.pending = append(o.pending[:0], o.pending[n-maxPending:]...)
	}
}

// deliverFor keeps delivering queued states for d, or until ctx is done.
func (o *observer) deliverFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		var out chan<- Leader
		var head Leader
		if len(o.pending) > 0 {
			out, head = o.out, o.pending[0]
		}
		select {
		case out <- head:
			o.pending = o.pending[1:]
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
