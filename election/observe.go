package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/recipe"
	"github.com/rosterkit/roster/internal/stream"
	"github.com/rosterkit/roster/internal/watch"
)

// maxPending is how many undelivered states Observe keeps for a reader
// that falls behind; beyond that the oldest are dropped, never the latest.
const maxPending = 16

// Observe returns a channel of the election's states: the current one, then
// every change of leader or of its value, including "nobody leads" (an
// empty Key). A reader that falls behind skips the oldest states but always
// gets the latest. A state Observe cannot confirm within twice its progress
// interval is delivered again with Err set, and again without once
// confirmed. The channel is closed when ctx ends, the Election is closed or
// its client is closed.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	if !e.start() {
		ch := make(chan Leader)
		close(ch)
		return ch
	}
	ctx, cancel := e.bind(ctx)
	o := &observer{out: stream.New(mergeLeaders)}
	ch := o.out.Subscribe(ctx, nil)
	f := watch.Start(watch.Config{
		Client:   e.cli,
		Prefix:   e.prefix,
		What:     fmt.Sprintf("election %q", e.name),
		Interval: e.opts.progress,
		Backoff:  e.opts.backoff(),
		Stale:    ErrStale,
		Closed:   recipe.ErrClientClosed,
	}, o)
	go func() {
		defer e.wg.Done()
		defer cancel()
		select {
		case <-ctx.Done():
		case <-f.Done(): // the client was closed
		}
		f.Stop()
		o.out.Close()
	}()
	return ch
}

// mergeLeaders queues a state for a reader: a state of the same leader as
// the last one queued replaces it (a staleness change), others are added,
// at most maxPending.
func mergeLeaders(q []Leader, l Leader) []Leader {
	if n := len(q); n > 0 && q[n-1].same(l) {
		q[n-1] = l
		return q
	}
	return stream.Bounded[Leader](maxPending)(q, l)
}

// observer keeps the candidate list of one election and publishes every
// change of its leader. Reset and Apply come from the follower's loop,
// SetErr also from its watchdog.
type observer struct {
	out *stream.Stream[Leader]

	mu      sync.Mutex
	kvs     map[string]*mvccpb.KeyValue
	last    Leader // the last state published, Err aside
	started bool
	stale   error
}

// hooks let this package's tests act at the moment the follower lists or
// reports an error: a fault injected there lands exactly at that transition.
type hooks struct {
	reset  func()
	setErr func(error)
}

var testHooks atomic.Pointer[hooks]

func (o *observer) Reset(kvs []*mvccpb.KeyValue, rev int64) {
	o.mu.Lock()
	o.kvs = make(map[string]*mvccpb.KeyValue, len(kvs))
	for _, kv := range kvs {
		o.kvs[string(kv.Key)] = kv
	}
	o.changed(rev)
	o.mu.Unlock()
	if h := testHooks.Load(); h != nil && h.reset != nil {
		h.reset()
	}
}

// Apply applies events one revision at a time, so that each transition is
// seen, even within one watch response.
func (o *observer) Apply(evs []*clientv3.Event, _ int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
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

func (o *observer) Confirm(int64) {}

// SetErr publishes the last state again when it turns stale, and when it is
// confirmed again. Other errors of the follower's loop (a failed watch it
// is about to mend) are not staleness, unless they last: the watchdog then
// reports them.
func (o *observer) SetErr(err error) {
	if h := testHooks.Load(); h != nil && h.setErr != nil {
		h.setErr(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil && !errors.Is(err, roster.ErrStale):
		return
	case err == nil && o.stale == nil:
		return
	}
	o.stale = err
	l := o.last
	l.Err = err
	o.out.Publish(l)
}

// changed publishes the state at rev if it differs from the last one.
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
	if o.started && cur.same(o.last) && o.stale == nil {
		return
	}
	o.started, o.last = true, cur
	// A new state comes from etcd: it is confirmed, whatever the watchdog
	// said before. The follower clears its error right after.
	o.stale = nil
	o.out.Publish(cur)
}
