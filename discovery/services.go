package discovery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/stream"
	"github.com/rosterkit/roster/internal/watch"
)

// A service is listed while it has at least one instance key, a key
// <namespace>/services/<service>/<id> with valid names; values are not
// read.

// Services returns the services registered under the namespace now,
// sorted, from one consistent read. Each request is bounded by twice the
// progress interval (at least 5 s) besides ctx.
func (d *Discoverer) Services(ctx context.Context) ([]string, error) {
	if d == nil {
		return nil, ErrClosed
	}
	if ctx == nil {
		ctx = context.Background()
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case d.client.Ctx().Err() != nil:
		return nil, errClientClosed
	}
	prefix := keys.ServicesPrefix(d.cfg.namespace)
	end := clientv3.GetPrefixRangeEnd(prefix)
	key, rev := prefix, int64(0)
	seen := make(map[string]struct{})
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(d.cfg.pageSize)), clientv3.WithKeysOnly()}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), max(2*d.cfg.progressInterval, 5*time.Second))
		resp, err := d.client.Get(rctx, key, opts...)
		cancel()
		if err != nil {
			if d.client.Ctx().Err() != nil {
				return nil, errClientClosed
			}
			return nil, fmt.Errorf("discovery: list services: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if svc, _, ok := keys.ParseInstanceKey(d.cfg.namespace, string(kv.Key)); ok {
				seen[svc] = struct{}{}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	names := make([]string, 0, len(seen))
	for s := range seen {
		names = append(names, s)
	}
	slices.Sort(names)
	return names, nil
}

// WatchServices returns a live view of the services registered under the
// namespace, kept current by one list and watch of all their keys, with the
// guarantees of a Cache: no change missed, staleness reported within about
// twice the progress interval. Close it when done.
func (d *Discoverer) WatchServices() (*ServiceSet, error) {
	if d == nil {
		return nil, ErrClosed
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return nil, ErrClosed
	case d.client.Ctx().Err() != nil:
		return nil, errClientClosed
	}
	s := &ServiceSet{d: d, counts: make(map[string]int), changes: stream.New(mergeServiceChanges)}
	s.list.Store(&ServiceList{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.f = watch.Start(watch.Config{
		Client:   d.client,
		Prefix:   keys.ServicesPrefix(d.cfg.namespace),
		What:     "services of " + d.cfg.namespace,
		Interval: d.cfg.progressInterval,
		Backoff:  backoff.Backoff{Min: d.cfg.backoffMin, Max: d.cfg.backoffMax},
		PageSize: int64(d.cfg.pageSize),
		KeysOnly: true,
		Stale:    ErrStale,
		Closed:   ErrClosed,
		Probe:    d.probe,
	}, (*setHandler)(s))
	d.sets[s] = struct{}{}
	return s, nil
}

// ServiceSet is a live view of the services registered under a
// Discoverer's namespace, from Discoverer.WatchServices. Its methods are
// those of a Cache, and safe for concurrent use.
type ServiceSet struct {
	d       *Discoverer
	f       *watch.Follower
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
	list    atomic.Pointer[ServiceList]
	changes *stream.Stream[ServiceChange]
	pubMu   sync.Mutex

	counts map[string]int // instance keys per service; owned by the Follower's loop
	synced bool
	state  errState // owned by SetErr
}

// ServiceList is an immutable list of services, as of an etcd revision.
// A nil *ServiceList is empty.
type ServiceList struct {
	names    []string // sorted
	rev      int64
	syncedAt time.Time
}

// Names returns the services, sorted, in a new slice.
func (l *ServiceList) Names() []string {
	if l == nil {
		return nil
	}
	return slices.Clone(l.names)
}

// Len is the number of services.
func (l *ServiceList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.names)
}

// Contains reports whether service is listed.
func (l *ServiceList) Contains(service string) bool {
	if l == nil {
		return false
	}
	_, ok := slices.BinarySearch(l.names, service)
	return ok
}

// Revision is the etcd revision the list is complete at.
func (l *ServiceList) Revision() int64 {
	if l == nil {
		return 0
	}
	return l.rev
}

// SyncedAt is when the list was last confirmed against etcd.
func (l *ServiceList) SyncedAt() time.Time {
	if l == nil {
		return time.Time{}
	}
	return l.syncedAt
}

// Synced reports whether the list comes from etcd.
func (l *ServiceList) Synced() bool { return !l.SyncedAt().IsZero() }

// Age is how long ago the list was last confirmed; zero before the first
// sync.
func (l *ServiceList) Age() time.Duration {
	if !l.Synced() {
		return 0
	}
	return time.Since(l.syncedAt)
}

// ServiceChange is how the set of services changed, each list sorted. The
// first of every ServiceSet.Changes channel lists every service as Added,
// once synced; a slow reader gets the changes it missed merged.
type ServiceChange struct {
	// List is the list the change leads to.
	List    *ServiceList
	Added   []string
	Removed []string
}

// Snapshot returns the current list with one atomic load.
func (s *ServiceSet) Snapshot() *ServiceList {
	if s == nil {
		return nil
	}
	return s.list.Load()
}

// WaitSynced waits until the set has been listed once, as Cache.WaitSynced.
func (s *ServiceSet) WaitSynced(ctx context.Context) error {
	if s == nil {
		return ErrClosed
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return waitSynced(ctx, s.ctx, s.d.client.Ctx(), s.f, "services")
}

// Err says why the list may be out of date, as Cache.Err.
func (s *ServiceSet) Err() error {
	if s == nil {
		return ErrClosed
	}
	return s.f.Err()
}

// Changes returns a channel of the changes of the set, as Cache.Changes.
func (s *ServiceSet) Changes(ctx context.Context) <-chan ServiceChange {
	if s == nil || s.ctx.Err() != nil {
		ch := make(chan ServiceChange)
		close(ch)
		return ch
	}
	if ctx == nil {
		ctx = context.Background()
	}
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	context.AfterFunc(sctx, func() { stop() })
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	return s.changes.Subscribe(sctx, func() []ServiceChange {
		l := s.list.Load()
		if !l.Synced() {
			return nil
		}
		return []ServiceChange{{List: l, Added: slices.Clone(l.names)}}
	})
}

// Close stops the watch, closes the Changes channels and waits. It is
// idempotent and always returns nil; Snapshot keeps the last list.
func (s *ServiceSet) Close() error {
	if s == nil {
		return nil
	}
	s.d.mu.Lock()
	delete(s.d.sets, s)
	s.d.mu.Unlock()
	s.stop()
	return nil
}

func (s *ServiceSet) stop() {
	s.once.Do(func() {
		s.cancel()
		s.f.Stop()
		s.changes.Close()
	})
}

// setHandler is the watch.Handler of a ServiceSet, kept off its API.
type setHandler ServiceSet

func (s *setHandler) service(key []byte) (string, bool) {
	svc, _, ok := keys.ParseInstanceKey(s.d.cfg.namespace, string(key))
	return svc, ok
}

// Reset recounts the instance keys of every service.
func (s *setHandler) Reset(kvs []*mvccpb.KeyValue, rev int64) {
	counts := make(map[string]int)
	for _, kv := range kvs {
		if svc, ok := s.service(kv.Key); ok {
			counts[svc]++
		}
	}
	old := s.counts
	s.counts = counts
	var ch ServiceChange
	for svc := range counts {
		if old[svc] == 0 {
			ch.Added = append(ch.Added, svc)
		}
	}
	for svc := range old {
		if counts[svc] == 0 {
			ch.Removed = append(ch.Removed, svc)
		}
	}
	first := !s.synced
	s.synced = true
	s.update(rev, &ch, first)
	if !first {
		s.d.log.Info("discovery: services re-listed", obs.KeyRevision, rev, "services", len(counts))
	}
}

// Apply counts created and deleted instance keys.
func (s *setHandler) Apply(evs []*clientv3.Event, rev int64) {
	var ch ServiceChange
	for _, ev := range evs {
		svc, ok := s.service(ev.Kv.Key)
		if !ok {
			continue
		}
		switch {
		case ev.IsCreate():
			if s.counts[svc]++; s.counts[svc] == 1 {
				ch.Added = toggle(ch.Added, &ch.Removed, svc)
			}
		case ev.Type == mvccpb.DELETE:
			if s.counts[svc]--; s.counts[svc] <= 0 {
				delete(s.counts, svc)
				ch.Removed = toggle(ch.Removed, &ch.Added, svc)
			}
		}
	}
	s.update(rev, &ch, false)
}

// toggle adds svc to list unless it is in other, from which it is then
// removed instead: a service that went and came back in one batch did not
// change.
func toggle(list []string, other *[]string, svc string) []string {
	if i := slices.Index(*other, svc); i >= 0 {
		*other = slices.Delete(*other, i, i+1)
		return list
	}
	return append(list, svc)
}

// Confirm records that the list is current as of rev.
func (s *setHandler) Confirm(rev int64) { s.update(rev, nil, false) }

// SetErr logs the list's changes of state, and ends the subscriptions
// once the etcd client is closed.
func (s *setHandler) SetErr(err error) {
	if err != nil && isClosed(err) {
		s.changes.Close()
		return
	}
	s.state.set(s.d.log, err, "view", "services")
}

// update publishes a list at rev with the change, when there is one.
func (s *setHandler) update(rev int64, ch *ServiceChange, force bool) {
	old := s.list.Load()
	l := &ServiceList{names: old.names, rev: rev, syncedAt: time.Now()}
	if ch == nil || (len(ch.Added) == 0 && len(ch.Removed) == 0 && !force) {
		s.list.Store(l)
		return
	}
	names := make([]string, 0, len(s.counts))
	for svc := range s.counts {
		names = append(names, svc)
	}
	slices.Sort(names)
	slices.Sort(ch.Added)
	slices.Sort(ch.Removed)
	l.names = names
	ch.List = l
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.list.Store(l)
	s.changes.Publish(*ch)
}

// mergeServiceChanges folds a reader's undelivered changes into one.
func mergeServiceChanges(q []ServiceChange, c ServiceChange) []ServiceChange {
	if len(q) == 0 {
		return append(q, c)
	}
	p := &q[0]
	added, removed := slices.Clone(p.Added), slices.Clone(p.Removed)
	for _, svc := range c.Added {
		added = toggle(added, &removed, svc)
	}
	for _, svc := range c.Removed {
		removed = toggle(removed, &added, svc)
	}
	slices.Sort(added)
	slices.Sort(removed)
	q[0] = ServiceChange{List: c.List, Added: added, Removed: removed}
	return q
}
