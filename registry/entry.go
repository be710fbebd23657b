package registry

import (
	"context"

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

	// lease is the lease the value is known to be written under, 0 if the
	// key is known to be gone or taken; rev is the revision of our last
	// write, so that watch events older than it are ignored.
	lease clientv3.LeaseID
	rev   int64
	// gone is set when a watch saw the key deleted by someone else;
	// reported when EventLost was sent for it.
	gone     bool
	reported bool
	// conflict is set while another owner holds the key; conflictLease is
	// the lease we tried under, so a new lease tries again.
	conflict      error
	conflictLease clientv3.LeaseID
}

func newEntry(key, service, id string) *entry {
	return &entry{key: key, service: service, id: id, lock: make(chan struct{}, 1)}
}

func (e *entry) acquire(ctx context.Context) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *entry) unlock() { <-e.lock }

// inPlace reports whether the entry's value is known to be in etcd under
// lease.
func (e *entry) inPlace(lease clientv3.LeaseID) bool {
	return e.lease == lease && e.lease != 0 && e.conflict == nil
}

// stale reports whether the recovery loop should write the entry under
// lease: it is not in place, and it is not waiting for another owner to
// free the key (which the watch reports) unless lease is new since.
func (e *entry) stale(lease clientv3.LeaseID) bool {
	if e.removed || e.inPlace(lease) {
		return false
	}
	return e.conflict == nil || e.conflictLease != lease
}
