package discovery_test

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// rawConsumer is the baseline of the benchmarks: what a hand-written cache
// does with clientv3 alone. One Get of the prefix, every value decoded
// into a map, then a watch from the next revision applying each event. It
// has no paging, no compaction handling, no staleness check, no snapshot
// and no subscribers.
type rawConsumer struct {
	service string
	prefix  string
	cancel  context.CancelFunc
	done    chan struct{}
	stopped chan struct{}
	seen    chan seen // each applied watch response, if not nil

	mu   sync.Mutex
	byID map[string]roster.Instance
	rev  int64
}

// seen is a revision a consumer has applied, and when.
type seen struct {
	rev int64
	at  time.Time
}

func startRaw(ctx context.Context, cli *clientv3.Client, service string, seenCh chan seen) (*rawConsumer, error) {
	r := &rawConsumer{service: service, prefix: keys.ServicePrefix(keys.DefaultNamespace, service), seen: seenCh, done: make(chan struct{}), stopped: make(chan struct{})}
	resp, err := cli.Get(ctx, r.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	r.byID = make(map[string]roster.Instance, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		r.put(kv)
	}
	r.rev = resp.Header.Revision
	wctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	wch := cli.Watch(clientv3.WithRequireLeader(wctx), r.prefix, clientv3.WithPrefix(),
		clientv3.WithRev(r.rev+1), clientv3.WithCreatedNotify())
	if w := <-wch; w.Err() != nil {
		cancel()
		return nil, w.Err()
	}
	go func() {
		defer close(r.done)
		for resp := range wch {
			r.mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					delete(r.byID, strings.TrimPrefix(string(ev.Kv.Key), r.prefix))
				} else {
					r.put(ev.Kv)
				}
				r.rev = ev.Kv.ModRevision
			}
			rev := r.rev
			r.mu.Unlock()
			if r.seen != nil && len(resp.Events) > 0 {
				select {
				case r.seen <- seen{rev, time.Now()}:
				case <-r.stopped:
				}
			}
		}
	}()
	return r, nil
}

func (r *rawConsumer) put(kv *mvccpb.KeyValue) {
	id := strings.TrimPrefix(string(kv.Key), r.prefix)
	if in, err := roster.DecodeInstance(r.service, id, kv.Value); err == nil {
		r.byID[id] = in
	}
}

func (r *rawConsumer) stop() {
	close(r.stopped)
	r.cancel()
	<-r.done
}
