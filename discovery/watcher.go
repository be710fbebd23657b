package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
)

// maxDrain bounds how many queued watch responses are folded into one
// snapshot, so a continuous stream of events still publishes regularly.
const maxDrain = 256

// minRequestTimeout is the least time a list or progress check may take
// before it is abandoned and retried; large services need a few seconds to
// list, and a request stuck on a partitioned member must not hang.
const minRequestTimeout = 5 * time.Second

// watcher keeps one service's view current. It is shared by every Cache
// handle of that service on a Discoverer and owns one goroutine, run, which
// alone writes the loop-owned fields below.
type watcher struct {
	client  *clientv3.Client
	cfg     config
	service string
	prefix  string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	synced chan struct{} // closed after the first successful list

	snap atomic.Pointer[Snapshot]
	err  atomic.Pointer[errBox]

	lists    atomic.Uint64
	restarts atomic.Uint64
	skipped  atomic.Uint64

	subMu sync.Mutex
	subs  map[*Subscription]struct{}

	refs int // guarded by the Discoverer's mu

	// Owned by run.
	rev        int64               // the view is complete up to rev
	bad        map[string]struct{} // keys currently skipped
	syncedOnce bool
}

type errBox struct{ err error }

func newWatcher(client *clientv3.Client, cfg config, service string) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{
		client:  client,
		cfg:     cfg,
		service: service,
		prefix:  keys.ServicePrefix(cfg.namespace, service),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		synced:  make(chan struct{}),
		subs:    make(map[*Subscription]struct{}),
		bad:     make(map[string]struct{}),
	}
	w.snap.Store(&Snapshot{Service: service})
	return w
}

// stop ends the loop and waits for it.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (w *watcher) requestTimeout() time.Duration {
	return max(2*w.cfg.progressInterval, minRequestTimeout)
}

// run lists the service, then follows it with a watch; whenever the watch
// ends (compaction, a broken stream, lost leader, silence) it lists again
// and diffs, backing off while etcd is unreachable. The last good view is
// served throughout.
func (w *watcher) run() {
	defer close(w.done)
	bo := backoff.Backoff{Min: w.cfg.retryMin, Max: w.cfg.retryMax}
	for {
		err := w.list()
		heard := false
		if err == nil {
			w.setErr(nil)
			heard, err = w.follow()
		}
		if w.ctx.Err() != nil {
			return
		}
		if w.client.Ctx().Err() != nil {
			// The user closed the client: nothing can be read any more.
			w.setErr(fmt.Errorf("%w: etcd client closed", ErrClosed))
			return
		}
		w.setErr(err)
		w.restarts.Add(1)
		if heard {
			bo.Reset()
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // the list that follows is the remedy; no reason to wait
		}
		if backoff.Sleep(w.ctx, bo.Next()) != nil {
			return
		}
	}
}

// list reads the whole service at one revision, in pages, and publishes it
// as the new view.
func (w *watcher) list() error {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(w.ctx), w.requestTimeout())
	defer cancel()
	w.lists.Add(1)
	end := clientv3.GetPrefixRangeEnd(w.prefix)
	key := w.prefix
	var (
		rev   int64
		insts []roster.Instance
	)
	bad := make(map[string]struct{})
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(w.cfg.pageSize)}
		if rev != 0 {
			// Later pages read the same revision as the first, so the
			// pages form one consistent view.
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := w.client.Get(ctx, key, opts...)
		if err != nil {
			return fmt.Errorf("discovery: list %q: %w", w.service, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			if inst, ok := w.decode(k, kv.Value); ok {
				insts = append(insts, inst)
			} else {
				bad[k] = struct{}{}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	// etcd returns keys in byte order and all share the prefix, so the
	// instances are already sorted by ID; sorting again is a cheap check.
	if !slices.IsSortedFunc(insts, byID) {
		slices.SortFunc(insts, byID)
	}
	cur := w.snap.Load().Instances
	changed := !equalInstances(cur, insts)
	if !changed && cur != nil {
		insts = cur // keep the slice identity: pickers skip unchanged views
	}
	w.bad = bad
	w.rev = rev
	w.publish(insts, changed || !w.syncedOnce)
	return nil
}

// follow watches the service from the revision after the list, applying
// events, until the watch fails or goes silent. heard says whether the
// watch delivered anything, which tells a flapping connection from a
// working one for the retry backoff.
func (w *watcher) follow() (heard bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(w.ctx))
	var progress sync.WaitGroup
	defer progress.Wait()
	defer cancel()

	wch := w.client.Watch(wctx, w.prefix, clientv3.WithPrefix(),
		clientv3.WithRev(w.rev+1), clientv3.WithProgressNotify())

	tick := time.NewTicker(max(w.cfg.progressInterval/2, time.Millisecond))
	defer tick.Stop()
	lastHeard := time.Now()
	requested := false // a progress notification was asked for and not yet seen
	var requesting atomic.Bool

	for {
		select {
		case <-w.ctx.Done():
			return heard, nil
		case resp, ok := <-wch:
			if !ok {
				return heard, errors.New("discovery: watch channel closed")
			}
			changes := make(map[string]*roster.Instance)
			if err := w.absorb(&resp, changes); err != nil {
				return heard, err
			}
			// Fold whatever else is already queued into the same snapshot.
		drain:
			for range maxDrain {
				select {
				case resp, ok := <-wch:
					if !ok {
						w.commit(changes)
						return true, errors.New("discovery: watch channel closed")
					}
					if err := w.absorb(&resp, changes); err != nil {
						w.commit(changes)
						return true, err
					}
				default:
					break drain
				}
			}
			w.commit(changes)
			heard, requested, lastHeard = true, false, time.Now()
		case <-tick.C:
			if time.Since(lastHeard) < w.cfg.progressInterval {
				continue
			}
			if requested {
				return heard, fmt.Errorf("%w: no watch response within %v of a progress request", ErrStale, w.cfg.progressInterval)
			}
			rev, err := w.currentRevision(wctx)
			if err != nil {
				return heard, fmt.Errorf("%w: progress check: %w", ErrStale, err)
			}
			if rev <= w.rev {
				// Nothing at all was written since the view's revision,
				// so the view is current.
				lastHeard = time.Now()
				w.publish(w.snap.Load().Instances, false)
				continue
			}
			// etcd moved on: the watch must say how far it got. (Asking
			// before a write would get no answer: etcd answers only once
			// its revision reaches the watch's start revision.)
			requested = true
			if requesting.CompareAndSwap(false, true) {
				progress.Go(func() {
					defer requesting.Store(false)
					_ = w.client.RequestProgress(wctx) // an error shows as silence
				})
			}
		}
	}
}

// currentRevision reads etcd's revision with a linearizable request, which
// succeeds only through a member that is part of a quorum.
func (w *watcher) currentRevision(ctx context.Context) (int64, error) {
	// The read is tiny: if it takes longer than the interval, the member
	// is in trouble and the watch is restarted, which costs one list.
	ctx, cancel := context.WithTimeout(ctx, w.cfg.progressInterval)
	defer cancel()
	resp, err := w.client.Get(ctx, w.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// absorb records one watch response's events in changes (ID → new
// instance, nil for removed) and advances the revision.
func (w *watcher) absorb(resp *clientv3.WatchResponse, changes map[string]*roster.Instance) error {
	if err := resp.Err(); err != nil {
		return fmt.Errorf("discovery: watch %q: %w", w.service, err)
	}
	if resp.Canceled {
		return fmt.Errorf("discovery: watch %q canceled: %s", w.service, resp.CancelReason)
	}
	if resp.IsProgressNotify() {
		// Progress responses come only once every event up to their
		// revision has been sent.
		w.rev = max(w.rev, resp.Header.Revision)
		return nil
	}
	for _, ev := range resp.Events {
		key := string(ev.Kv.Key)
		// Event batches may carry a header revision beyond their last
		// event while more events are pending, so only event revisions
		// advance the view.
		w.rev = max(w.rev, ev.Kv.ModRevision)
		_, id, isInstanceKey := keys.ParseInstanceKey(w.cfg.namespace, key)
		isInstanceKey = isInstanceKey && strings.HasPrefix(key, w.prefix)
		switch ev.Type {
		case mvccpb.Event_PUT:
			if inst, ok := w.decode(key, ev.Kv.Value); ok {
				delete(w.bad, key)
				changes[inst.ID] = &inst
				continue
			}
			w.bad[key] = struct{}{}
			if isInstanceKey {
				// A valid instance overwritten with garbage is gone, as
				// a fresh list would say.
				changes[id] = nil
			}
		case mvccpb.Event_DELETE:
			delete(w.bad, key)
			if isInstanceKey {
				changes[id] = nil
			}
		}
	}
	return nil
}

// commit merges changes into the view and publishes it.
func (w *watcher) commit(changes map[string]*roster.Instance) {
	cur := w.snap.Load().Instances
	next, changed := merge(cur, changes)
	w.publish(next, changed)
}

// decode turns one key/value under the prefix into an instance, counting
// anything that is not one.
func (w *watcher) decode(key string, value []byte) (roster.Instance, bool) {
	svc, id, ok := keys.ParseInstanceKey(w.cfg.namespace, key)
	if !ok || svc != w.service {
		w.skipped.Add(1)
		return roster.Instance{}, false
	}
	inst, err := roster.DecodeInstance(svc, id, value)
	if err != nil {
		w.skipped.Add(1)
		return roster.Instance{}, false
	}
	return inst, true
}

// publish stores a new snapshot of insts at the current revision and, if
// the instances changed, wakes the subscribers.
func (w *watcher) publish(insts []roster.Instance, changed bool) {
	s := &Snapshot{
		Service:   w.service,
		Revision:  w.rev,
		SyncedAt:  time.Now(),
		Instances: insts,
		Skipped:   len(w.bad),
	}
	w.snap.Store(s)
	if !w.syncedOnce {
		w.syncedOnce = true
		close(w.synced)
	}
	if changed {
		w.subMu.Lock()
		for sub := range w.subs {
			sub.wake()
		}
		w.subMu.Unlock()
	}
}

func (w *watcher) setErr(err error) {
	if err == nil {
		if w.err.Load() != nil {
			w.err.Store(nil)
		}
		return
	}
	w.err.Store(&errBox{err})
}

// addSub registers s, unless its cache handle is closed: Cache.Close
// removes its subscriptions under the same lock, after marking itself
// closed, so none is left behind.
func (w *watcher) addSub(s *Subscription) {
	w.subMu.Lock()
	defer w.subMu.Unlock()
	select {
	case <-s.c.closed:
	default:
		w.subs[s] = struct{}{}
	}
}

func (w *watcher) removeSub(s *Subscription) {
	w.subMu.Lock()
	delete(w.subs, s)
	w.subMu.Unlock()
}

// merge applies changes (ID → new instance, nil for removed) to the sorted
// cur and returns the new sorted slice, or cur itself when nothing changed,
// so that unchanged views keep their identity.
func merge(cur []roster.Instance, changes map[string]*roster.Instance) ([]roster.Instance, bool) {
	if len(changes) == 0 {
		return cur, false
	}
	ids := slices.Sorted(maps.Keys(changes))
	out := make([]roster.Instance, 0, len(cur)+len(ids))
	changed := false
	i, j := 0, 0
	for i < len(cur) || j < len(ids) {
		switch {
		case j == len(ids) || (i < len(cur) && cur[i].ID < ids[j]):
			out = append(out, cur[i])
			i++
		case i < len(cur) && cur[i].ID == ids[j]:
			if c := changes[ids[j]]; c != nil {
				out = append(out, *c)
				changed = changed || !equalInstance(&cur[i], c)
			} else {
				changed = true
			}
			i++
			j++
		default: // an ID not in cur
			if c := changes[ids[j]]; c != nil {
				out = append(out, *c)
				changed = true
			}
			j++
		}
	}
	if !changed {
		return cur, false
	}
	return out, true
}

func byID(a, b roster.Instance) int { return strings.Compare(a.ID, b.ID) }

func equalInstance(a, b *roster.Instance) bool {
	return a.Service == b.Service && a.ID == b.ID && a.Addr == b.Addr &&
		a.Weight == b.Weight && a.Status == b.Status && maps.Equal(a.Metadata, b.Metadata)
}

func equalInstances(a, b []roster.Instance) bool {
	return slices.EqualFunc(a, b, func(x, y roster.Instance) bool { return equalInstance(&x, &y) })
}
