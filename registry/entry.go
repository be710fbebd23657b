package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
)

// entry is one instance the registrar keeps registered.
//
// Writes of one entry are serialized by its lock, so a user's Update and
// the recovery loop's re-put cannot interleave and leave a stale value.
// The other fields are guarded by Registrar.mu.
type entry struct {
	key         string
	service, id string
	lock        chan struct{} // a mutex that waits with a context

	inst roster.Instance
	val  string

	// registered is set by the first successful write; until then the
	// entry is a Register in progress, which holds the lock.
	registered bool
	// removed is set when the entry leaves the map: a holder of a stale
	// pointer must look it up again.
	removed bool
	// zombie is set, on an entry not registered, to the lease of a first
	// write that got no reply: the key may exist under it, and is deleted.
	zombie clientv3.LeaseID

	// drain is set while an operator asks for the instance to be drained,
	// for reason; inst keeps the status the application gave it, val has
	// the one written. dirty says val changed since it was last written.
	// notify says the application is still to be told of a change of
	// drain, once it is written.
	drain  bool
	reason string
	dirty  bool
	notify bool

	// lease is the lease the value is known to be written under, 0 if the
	// key is known to be gone or taken; rev is the revision of our last
	// write, so that watch events older than it are ignored.
	lease clientv3.LeaseID
	rev   int64
	// gone is set when a watch saw the key deleted by someone else;
	// reported when EventLost was sent for it.
	gone     bool
	reported bool
	lostAt   time.Time // when reported
	// conflict is set while another owner holds the key; conflictLease is
	// the lease we tried under, so a new lease tries again.
	conflict      error
	conflictLease clientv3.LeaseID

	// foreign is the revision of the latest change of the key by someone
	// else (or by a write of ours given up on, landing late) that the watch
	// reported, and foreignKV what it left (nil for a deletion). A write
	// whose reply comes after such a report must not record itself as the
	// key's latest state: see wroteLocked.
	foreign   int64
	foreignKV *mvccpb.KeyValue
	// pending is the value of our write in flight, so that the watch tells
	// it from a late write of ours that was given up on; deleting is set
	// while Deregister's delete is in flight.
	pending  string
	deleting bool
}

func newEntry(key, service, id string) *entry {
	return &entry{key: key, service: service, id: id, lock: make(chan struct{}, 1)}
}

// acquire locks e, giving up when ctx ends or abort is closed.
func (e *entry) acquire(ctx context.Context, abort <-chan struct{}) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-abort:
		return errAborted
	}
}

// errAborted reports a lock given up because the lease it was for ended.
var errAborted = errors.New("registry: lease ended while waiting")

func (e *entry) unlock() { <-e.lock }

// inPlace reports whether the entry's value is known to be in etcd under
// lease.
func (e *entry) inPlace(lease clientv3.LeaseID) bool {
	return e.lease == lease && e.lease != 0 && e.conflict == nil
}

// stale reports whether the recovery loop should write the entry under
// lease: it is not in place or its value changed, and it is not waiting for
// another owner to free the key (which the watch reports) unless lease is
// new since.
func (e *entry) stale(lease clientv3.LeaseID) bool {
	if e.removed || (e.inPlace(lease) && !e.dirty) {
		return false
	}
	return e.conflict == nil || e.conflictLease != lease
}

// effective is the instance as written: as the application gave it, but
// draining while an operator asks for it.
func (e *entry) effective() roster.Instance {
	inst := e.inst
	if e.drain {
		inst.Status = roster.StatusDraining
	}
	return inst
}

// lookup returns the entry of key, creating it if create is set and there
// is none; fresh reports a created entry, which is returned locked.
func (r *Registrar) lookup(key, service, id string, create bool) (e *entry, fresh bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, ErrClosed
	}
	if e := r.entries[key]; e != nil {
		return e, false, nil
	}
	if !create {
		return nil, false, fmt.Errorf("%w: %s/%s", ErrNotRegistered, service, id)
	}
	e = newEntry(key, service, id)
	e.lock <- struct{}{}
	r.entries[key] = e
	r.services[service]++
	r.watchLocked(service, 0)
	if d := r.drains[service]; d == nil {
		r.followDrainsLocked(service)
	} else {
		e.reason, e.drain = d.ids[id], hasKey(d.ids, id)
	}
	return e, true, nil
}

// dropLocked removes e from the registrar and stops its service's watch if
// e was the last instance of the service.
func (r *Registrar) dropLocked(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	delete(r.entries, e.key)
	if e.registered {
		r.count--
		r.registeredLocked(e.service, -1)
	}
	if r.services[e.service]--; r.services[e.service] <= 0 {
		delete(r.services, e.service)
		if w := r.watches[e.service]; w != nil {
			w.stop()
			delete(r.watches, e.service)
		}
		if d := r.drains[e.service]; d != nil && !r.closed {
			// Not here when closed: Close stops every follower itself.
			delete(r.drains, e.service)
			r.wg.Go(d.f.Stop)
		}
	}
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// wroteLocked records that e's value was written under lease at rev.
func (r *Registrar) wroteLocked(e *entry, lease clientv3.LeaseID, rev int64) {
	// Writes of one entry are serialized, so rev is its latest; it is not
	// maxed with the previous one because a cluster restored from a
	// snapshot may count revisions anew.
	e.lease, e.rev = lease, rev
	r.seen = max(r.seen, rev)
	later, kv := e.foreign > rev, e.foreignKV
	e.foreign, e.foreignKV = 0, nil
	if later {
		// Someone deleted or took the key after this write, and the watch
		// said so before the write's reply arrived: that is the key's state.
		switch {
		case kv == nil:
			e.lease, e.gone, e.conflict = 0, true, nil
			r.setHealthLocked(false, fmt.Errorf("registry: %s deleted", e.key))
		case r.owned[clientv3.LeaseID(kv.Lease)]:
			e.lease = 0 // a late write of ours: written over
		default:
			r.conflictLocked(e, duplicate(e.key, kv), lease)
		}
		r.poke()
		return
	}
	e.gone, e.conflict = false, nil
	if e.reported {
		e.reported = false
		r.keyRestoredLocked(e, time.Since(e.lostAt))
		r.emit(Event{Kind: EventRestored, Service: e.service, ID: e.id, Lease: lease})
	}
}

// conflictLocked records that another owner holds e's key; found under
// lease. It is reported once per conflict.
func (r *Registrar) conflictLocked(e *entry, err error, lease clientv3.LeaseID) {
	again := e.conflict != nil
	e.lease, e.conflict, e.conflictLease = 0, err, lease
	r.setHealthLocked(false, err)
	if !again {
		r.conflictLoggedLocked(e, err)
		r.emit(Event{Kind: EventError, Service: e.service, ID: e.id, Lease: lease, Err: err})
	}
}
