package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// The registrar watches the prefix of every service it registered, so it
// learns within a round trip, not at the next renewal, when one of its
// keys is deleted (by a person, a script, a revoke of its lease) or
// overwritten by another owner. Deletions poke the run loop, which renews
// the lease to tell "lease gone" from "key gone" and writes back what is
// missing. Keys of other instances and foreign keys are ignored.

// A service's watch: stop ends it; created is closed once etcd confirmed
// it, so that a service's first write waits for a watch that will see
// every change after it, and sees them at once (a watch from a past
// revision is caught up by etcd only every 100 ms until it is current).
type serviceWatch struct {
	stop    context.CancelFunc
	created chan struct{}
}

// watchLocked starts watching service, unless it is watched already: from
// the revision after rev, or from now if rev is 0. r.mu must be held.
func (r *Registrar) watchLocked(service string, rev int64) {
	if r.closed || r.watches[service] != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	w := &serviceWatch{stop: cancel, created: make(chan struct{})}
	if rev > 0 {
		close(w.created)
		rev++
	}
	r.watches[service] = w
	r.wg.Add(1)
	go r.watch(ctx, service, rev, w.created)
}

// watchCreated waits until service's watch is established.
func (r *Registrar) watchCreated(ctx context.Context, service string) error {
	r.mu.Lock()
	w := r.watches[service]
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	select {
	case <-w.created:
		return nil
	case <-r.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("registry: watching %s: %w", service, ctx.Err())
	}
}

// rewatch restarts every watch at revision from, after a new lease's
// writes, when etcd's revisions went backwards (a restore from a snapshot):
// a surviving watch would wait for a revision that means something else
// now.
func (r *Registrar) rewatch(from int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = from
	for _, service := range slices.Collect(maps.Keys(r.watches)) {
		r.watches[service].stop()
		delete(r.watches, service)
		r.watchLocked(service, from-1)
	}
}

// watch follows one service's prefix until ctx ends, resuming after
// failures without a gap: from the next revision when the watch broke, and
// from a fresh read of the prefix when that revision was compacted. rev 0
// is "from now"; created is closed once the first watch is established.
func (r *Registrar) watch(ctx context.Context, service string, rev int64, created chan struct{}) {
	defer r.wg.Done()
	prefix := keys.ServicePrefix(r.opts.ns, service)
	bo := r.opts.backoff
	for {
		next, err := r.follow(ctx, prefix, rev, created)
		if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
			return // closed, or the client is: nothing more to read
		}
		if next > rev {
			bo.Reset()
		}
		rev = next
		if errors.Is(err, rpctypes.ErrCompacted) {
			// A failed re-read keeps rev, so the next watch fails the same
			// way and the re-read is tried again; watching from "now"
			// instead would skip what happened meanwhile.
			if next, err := r.resync(ctx, service, prefix); err == nil {
				rev = next
				continue
			}
		}
		if backoff.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// follow passes the events of one watch on prefix from rev (0: from now,
// closing created once established) to observe, and returns the revision
// to resume from when the watch ends.
func (r *Registrar) follow(ctx context.Context, prefix string, rev int64, created chan struct{}) (int64, error) {
	// A member cut off from its cluster would keep the watch open but
	// silent; requiring a leader makes it fail instead.
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithRev(rev)}
	if rev == 0 {
		opts = append(opts, clientv3.WithCreatedNotify())
	}
	for resp := range r.cli.Watch(ctx, prefix, opts...) {
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if resp.Created {
			if rev == 0 {
				rev = resp.Header.Revision + 1
				close(created)
			}
			continue
		}
		for _, ev := range resp.Events {
			r.observe(ev)
			rev = ev.Kv.ModRevision + 1
		}
	}
	return rev, errors.New("registry: watch closed")
}

// seenRev returns the highest revision the registrar has seen from etcd.
func (r *Registrar) seenRev() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen
}

// observe acts on one event under a watched prefix.
func (r *Registrar) observe(ev *clientv3.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = max(r.seen, ev.Kv.ModRevision)
	put := ev.Type != clientv3.EventTypeDelete
	e := r.entries[string(ev.Kv.Key)]
	if e == nil {
		r.orphanLocked(string(ev.Kv.Key), ev.Kv, put)
		return
	}
	if ev.Kv.ModRevision <= e.rev {
		return // older than our last write
	}
	if (put && r.ownLocked(e, ev.Kv)) || (!put && e.deleting) {
		return // our write, seen before its reply
	}
	// Remembered for a write of ours in flight, whose reply would
	// otherwise record it as the latest state (wroteLocked).
	if ev.Kv.ModRevision > e.foreign {
		e.foreign, e.foreignKV = ev.Kv.ModRevision, nil
		if put {
			e.foreignKV = ev.Kv
		}
	}
	if !e.registered {
		return // its first write is in flight
	}
	switch {
	case !put:
		e.lease, e.gone, e.conflict = 0, true, nil
		r.setHealthLocked(false, fmt.Errorf("registry: %s deleted", e.key))
	case r.owned[clientv3.LeaseID(ev.Kv.Lease)]:
		// A write of ours that its caller gave up on (an Update that got
		// no reply, held by a partition) landed after the value kept was
		// written back, or under a lease we left: written over.
		e.lease = 0
	default:
		var lease clientv3.LeaseID
		if r.sess != nil {
			lease = r.sess.Lease()
		}
		r.conflictLocked(e, duplicate(e.key, ev.Kv), lease)
	}
	r.poke()
}

// orphanLocked notes a key with no instance behind it that one of our
// leases holds: a write given up on that landed after its key was cleaned
// up (see bury). The run loop deletes it, if it is still that write.
func (r *Registrar) orphanLocked(key string, kv *mvccpb.KeyValue, put bool) {
	switch {
	case put && kv.Lease != 0 && r.owned[clientv3.LeaseID(kv.Lease)]:
		r.orphans[key] = kv.ModRevision
		r.poke()
	case !put:
		delete(r.orphans, key)
	}
}

// sweep deletes the orphans noted by the watch, each only if the key is
// still the write that was noted.
func (r *Registrar) sweep(s *session.Session) error {
	r.mu.Lock()
	orphans := maps.Clone(r.orphans)
	r.mu.Unlock()
	if len(orphans) == 0 {
		return nil
	}
	ctx, cancel := opContext(r.ctx, s)
	defer cancel()
	for key, rev := range orphans {
		_, err := r.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return fmt.Errorf("registry: delete %s, left by a write that got no reply: %w", key, err)
		}
		r.mu.Lock()
		if r.orphans[key] == rev {
			delete(r.orphans, key)
		}
		r.mu.Unlock()
	}
	return nil
}

// ownLocked reports whether kv is e as the registrar wrote it, or is
// writing it: under the current lease, with its value.
func (r *Registrar) ownLocked(e *entry, kv *mvccpb.KeyValue) bool {
	if r.sess == nil || kv.Lease != int64(r.sess.Lease()) {
		return false
	}
	v := string(kv.Value)
	return v == e.val || (e.pending != "" && v == e.pending)
}

// resync reads service's prefix after the watch fell too far behind, marks
// our entries that are missing or taken, and returns the revision to watch
// from.
func (r *Registrar) resync(ctx context.Context, service, prefix string) (int64, error) {
	resp, err := r.cli.Get(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	found := make(map[string]int, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		found[string(kv.Key)] = i
	}
	at := resp.Header.Revision
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = max(r.seen, at)
	for _, kv := range resp.Kvs {
		if r.entries[string(kv.Key)] == nil {
			r.orphanLocked(string(kv.Key), kv, true)
		}
	}
	for _, e := range r.entries {
		if e.service != service || !e.registered || e.rev > at {
			continue
		}
		i, ok := found[e.key]
		switch {
		case !ok:
			// Gone, or freed by the owner that held it: either way ours
			// to write back.
			e.lease, e.gone, e.conflict = 0, true, nil
		case e.lease != 0 && resp.Kvs[i].Lease == int64(e.lease) && string(resp.Kvs[i].Value) == e.val:
		case r.owned[clientv3.LeaseID(resp.Kvs[i].Lease)]:
			e.lease = 0 // on an older lease of ours: move it
		default:
			var lease clientv3.LeaseID
			if r.sess != nil {
				lease = r.sess.Lease()
			}
			r.conflictLocked(e, duplicate(e.key, resp.Kvs[i]), lease)
		}
	}
	r.poke()
	return at + 1, nil
}
