package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/stream"
	"github.com/rosterkit/roster/internal/watch"
)

// watcher keeps one service's view current, for every Cache handle of the
// service on a Discoverer. internal/watch lists and watches the prefix
// without a gap; watcher is its Handler: it decodes, keeps the persistent
// snapshot and publishes what each list or watch response changed.
type watcher struct {
	d       *Discoverer
	service string
	prefix  string
	f       *watch.Follower
	refs    int // guarded by d.mu

	snap    atomic.Pointer[Snapshot]
	changes *stream.Stream[Change]
	// pubMu orders publishing (a snapshot and its Change) against the
	// first item of a new subscription, so they neither overlap nor gap.
	pubMu   sync.Mutex
	skipped atomic.Uint64
	serving atomic.Int64 // instances by status, for metrics
	other   atomic.Int64

	// Owned by the Follower's loop.
	bad    map[string]struct{} // keys skipped now
	dec    roster.Decoder
	synced bool

	state errState // owned by SetErr
	attrs watcherAttrs
}

func newWatcher(d *Discoverer, service string) *watcher {
	w := &watcher{
		d:       d,
		service: service,
		prefix:  keys.ServicePrefix(d.cfg.namespace, service),
		changes: stream.New(mergeChanges),
		bad:     make(map[string]struct{}),
		attrs:   newWatcherAttrs(service),
	}
	w.snap.Store(&Snapshot{service: service})
	w.f = watch.Start(watch.Config{
		Client:   d.client,
		Prefix:   w.prefix,
		What:     fmt.Sprintf("service %q", service),
		Interval: d.cfg.progressInterval,
		Backoff:  backoff.Backoff{Min: d.cfg.backoffMin, Max: d.cfg.backoffMax},
		PageSize: int64(d.cfg.pageSize),
		Stale:    ErrStale,
		Closed:   ErrClosed,
		Probe:    d.probe,
	}, w)
	return w
}

// stop ends the watch and every subscription, and waits for them.
func (w *watcher) stop() {
	w.f.Stop()
	w.changes.Close()
}

// first is a new subscription's first item: the whole view, once synced.
func (w *watcher) first() []Change {
	s := w.snap.Load()
	if !s.Synced() {
		return nil
	}
	return []Change{{Snapshot: s, Added: s.instances()}}
}

func (w *watcher) publish(s *Snapshot, c *Change) {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	w.snap.Store(s)
	if c != nil {
		c.Snapshot = s
		w.changes.Publish(*c)
	}
}

// id returns the instance ID of a key under the prefix, or false for a key
// that cannot be one.
func (w *watcher) id(key []byte) (string, bool) { return keys.InstanceID(w.prefix, key) }

// decode turns one key and value into an item, counting what is skipped.
func (w *watcher) decode(id string, kv *mvccpb.KeyValue) (*item, bool) {
	inst, err := w.dec.Decode(w.service, id, kv.Value)
	if err != nil {
		w.skipped.Add(1)
		return nil, false
	}
	return &item{inst: inst, rev: kv.ModRevision}, true
}

// Reset replaces the view with a complete list of the prefix, reporting
// the difference: the first sync, and every re-list after the watch
// failed. Values whose revision did not change are not decoded again.
func (w *watcher) Reset(kvs []*mvccpb.KeyValue, rev int64) {
	old := w.snap.Load()
	bad := make(map[string]struct{})
	items := make([]*item, 0, len(kvs))
	cur := newCursor(old.root)
	for _, kv := range kvs {
		id, ok := w.id(kv.Key)
		if !ok {
			bad[string(kv.Key)] = struct{}{}
			w.skipped.Add(1)
			continue
		}
		// etcd lists in key order, which is ID order: walk the old view
		// alongside.
		for it := cur.item(); it != nil && it.inst.ID < id; it = cur.item() {
			cur.next()
		}
		prev := cur.item()
		if prev != nil && prev.inst.ID != id {
			prev = nil
		}
		if prev != nil && prev.rev == kv.ModRevision {
			items = append(items, prev)
			continue
		}
		it, ok := w.decode(id, kv)
		if !ok {
			bad[string(kv.Key)] = struct{}{}
			continue
		}
		if prev != nil && same(prev, it) {
			it = prev
		}
		items = append(items, it)
	}
	if !slices.IsSortedFunc(items, func(a, b *item) int { return strings.Compare(a.inst.ID, b.inst.ID) }) {
		// Not etcd's order: sort, and keep the last of equal IDs.
		slices.SortStableFunc(items, func(a, b *item) int { return strings.Compare(a.inst.ID, b.inst.ID) })
		out := items[:0]
		for k, it := range items {
			if k+1 == len(items) || items[k+1].inst.ID != it.inst.ID {
				out = append(out, it)
			}
		}
		items = out
	}

	var ch Change
	var serving, other int64
	diffList(old.root, items, func(o, n *item) {
		switch {
		case o == nil:
			ch.Added = append(ch.Added, n.inst)
		case n == nil:
			ch.Removed = append(ch.Removed, o.inst)
		case !same(o, n):
			ch.Updated = append(ch.Updated, n.inst)
		}
	})
	for _, it := range items {
		if it.inst.Serving() {
			serving++
		} else {
			other++
		}
	}
	root := old.root
	if n := ch.size(); !w.synced || n > len(items)/8 {
		root = build(items)
	} else if n > 0 {
		e := newEditor(root)
		for k := range ch.Removed {
			e.remove(ch.Removed[k].ID)
		}
		for _, list := range [2][]roster.Instance{ch.Added, ch.Updated} {
			for k := range list {
				e.put(lookupSorted(items, list[k].ID))
			}
		}
		root = e.root
	}
	w.bad = bad
	w.serving.Store(serving)
	w.other.Store(other)
	s := &Snapshot{service: w.service, root: root, rev: rev, syncedAt: time.Now(), skipped: len(bad)}
	first := !w.synced
	w.synced = true
	if first || ch.size() > 0 {
		w.publish(s, &ch)
	} else {
		w.publish(s, nil)
	}
	if first {
		w.d.log.Debug("discovery: cache synced", obs.KeyService, w.service, obs.KeyRevision, rev, "instances", len(items))
	} else {
		w.d.log.Info("discovery: cache re-listed", obs.KeyService, w.service, obs.KeyRevision, rev,
			"instances", len(items), "added", len(ch.Added), "updated", len(ch.Updated), "removed", len(ch.Removed))
	}
}

// diffList is diff between a tree and a sorted list of items.
func diffList(a *node, items []*item, fn func(old, cur *item)) {
	c := newCursor(a)
	for x := c.item(); x != nil || len(items) > 0; x = c.item() {
		switch {
		case len(items) == 0 || (x != nil && x.inst.ID < items[0].inst.ID):
			fn(x, nil)
			c.next()
		case x == nil || items[0].inst.ID < x.inst.ID:
			fn(nil, items[0])
			items = items[1:]
		default:
			if x != items[0] {
				fn(x, items[0])
			}
			c.next()
			items = items[1:]
		}
	}
}

func lookupSorted(items []*item, id string) *item {
	i, _ := slices.BinarySearchFunc(items, id, func(it *item, id string) int { return strings.Compare(it.inst.ID, id) })
	return items[i]
}

// Apply applies the events of one or more watch responses, in order, and
// publishes what they changed, merged per instance.
func (w *watcher) Apply(evs []*clientv3.Event, rev int64) {
	old := w.snap.Load()
	e := newEditor(old.root)
	var b batch
	for _, ev := range evs {
		id, ok := w.id(ev.Kv.Key)
		if !ok {
			if ev.Type == mvccpb.PUT {
				w.bad[string(ev.Kv.Key)] = struct{}{}
				w.skipped.Add(1)
			} else {
				delete(w.bad, string(ev.Kv.Key))
			}
			continue
		}
		prev := lookup(e.root, id)
		switch ev.Type {
		case mvccpb.PUT:
			it, ok := w.decode(id, ev.Kv)
			if !ok {
				// A valid instance overwritten with garbage is gone, as a
				// fresh list would say.
				w.bad[string(ev.Kv.Key)] = struct{}{}
				if prev != nil {
					e.remove(id)
					b.note(id, prev, nil)
				}
				continue
			}
			delete(w.bad, string(ev.Kv.Key))
			if prev != nil && same(prev, it) {
				continue
			}
			e.put(it)
			b.note(id, prev, it)
		case mvccpb.DELETE:
			delete(w.bad, string(ev.Kv.Key))
			if prev != nil {
				e.remove(id)
				b.note(id, prev, nil)
			}
		}
	}
	ch := b.change()
	for _, r := range b.recs {
		if r.before != nil {
			w.count(&r.before.inst, -1)
		}
		if r.after != nil {
			w.count(&r.after.inst, +1)
		}
	}
	s := &Snapshot{service: w.service, root: e.root, rev: rev, syncedAt: time.Now(), skipped: len(w.bad)}
	if ch.size() > 0 {
		w.publish(s, &ch)
	} else {
		w.publish(s, nil)
	}
}

func (w *watcher) count(in *roster.Instance, d int64) {
	if in.Serving() {
		w.serving.Add(d)
	} else {
		w.other.Add(d)
	}
}

// Confirm records that the view is current as of rev.
func (w *watcher) Confirm(rev int64) {
	old := w.snap.Load()
	w.snap.Store(&Snapshot{service: w.service, root: old.root, rev: rev, syncedAt: time.Now(), skipped: old.skipped})
}

// SetErr is told why the view may be out of date, or nil once it is
// current again. Once the etcd client was closed nothing more can come, so
// the subscriptions end.
func (w *watcher) SetErr(err error) {
	if err != nil && isClosed(err) {
		w.d.log.Info("discovery: cache ended: etcd client closed", obs.KeyService, w.service)
		w.changes.Close()
		return
	}
	w.state.set(w.d.log, err, obs.KeyService, w.service)
}

func isClosed(err error) bool { return errors.Is(err, ErrClosed) }

// errState logs a view's changes of state: failing (stale, or restarting
// its watch) and current again, once each; repeated failures in between
// only at debug level.
type errState struct {
	failing time.Time // zero while current
}

func (s *errState) set(log *slog.Logger, err error, attrs ...any) {
	if err == nil {
		if !s.failing.IsZero() {
			log.Info("discovery: view current again", append(attrs, "after", time.Since(s.failing).Round(time.Millisecond))...)
			s.failing = time.Time{}
		}
		return
	}
	level, msg := slog.LevelWarn, "discovery: view restarting its watch"
	if errors.Is(err, roster.ErrStale) {
		msg = "discovery: view stale"
	}
	if !s.failing.IsZero() {
		level = slog.LevelDebug // still failing: said already
	} else {
		s.failing = time.Now()
	}
	log.Log(context.Background(), level, msg, append(attrs, obs.KeyErr, err)...)
}

// batch collects what a series of events did to each instance, from the
// item before the first to the item after the last.
type batch struct {
	recs []rec
	idx  map[string]int
}

type rec struct {
	id            string
	before, after *item
}

func (b *batch) note(id string, before, after *item) {
	if b.idx == nil && len(b.recs) >= 8 {
		b.idx = make(map[string]int, 16)
		for i, r := range b.recs {
			b.idx[r.id] = i
		}
	}
	if b.idx != nil {
		if i, ok := b.idx[id]; ok {
			b.recs[i].after = after
			return
		}
		b.idx[id] = len(b.recs)
	} else {
		for i := range b.recs {
			if b.recs[i].id == id {
				b.recs[i].after = after
				return
			}
		}
	}
	b.recs = append(b.recs, rec{id, before, after})
}

func (b *batch) change() Change {
	var c Change
	for _, r := range b.recs {
		switch {
		case r.before == nil && r.after != nil:
			c.Added = append(c.Added, r.after.inst)
		case r.before != nil && r.after == nil:
			c.Removed = append(c.Removed, r.before.inst)
		case r.before != nil && !same(r.before, r.after):
			c.Updated = append(c.Updated, r.after.inst)
		}
	}
	for _, list := range [3][]roster.Instance{c.Added, c.Updated, c.Removed} {
		slices.SortFunc(list, func(a, b roster.Instance) int { return strings.Compare(a.ID, b.ID) })
	}
	return c
}
