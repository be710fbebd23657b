package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// Registrar keeps service instances registered in etcd under one lease and
// restores them, without being asked, whenever etcd loses them. It is safe
// for concurrent use.
type Registrar struct {
	cli  *clientv3.Client
	opts options
	ev   *events

	ctx    context.Context // cancelled by Close: stops run and the watches
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // closed by the first call that needs a lease
	kick   chan struct{} // asks run to look at the entries again

	mu       sync.Mutex
	closed   bool
	started  bool
	entries  map[string]*entry
	count    int                           // registered entries
	services map[string]int                // entries per service
	watches  map[string]context.CancelFunc // one watch per service
	sess     *session.Session              // current lease; nil before the first
	changed  chan struct{}                 // closed when sess is replaced
	old      []*session.Session            // ended sessions not yet closed
	owned    map[clientv3.LeaseID]bool     // leases of ours that may still exist
	health   health
	seen     int64 // highest revision seen from etcd, to tell when it went backwards

	closeOnce sync.Once
	closeErr  error
}

// New returns a Registrar that writes through cli. It grants no lease until
// the first Register. Close it to revoke the lease and stop its goroutines;
// cli stays the caller's to close, after the Registrar.
func New(cli *clientv3.Client, opts ...Option) (*Registrar, error) {
	if cli == nil {
		return nil, errors.New("registry: nil client")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	r := &Registrar{
		cli:      cli,
		opts:     o,
		ev:       newEvents(),
		wake:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		entries:  make(map[string]*entry),
		services: make(map[string]int),
		watches:  make(map[string]context.CancelFunc),
		changed:  make(chan struct{}),
		owned:    make(map[clientv3.LeaseID]bool),
		health:   health{ok: true, since: time.Now()},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Register writes inst under the registrar's lease, granting the lease on
// first use, and keeps it registered until Deregister or Close. Registering
// an instance this registrar already holds updates it in place.
//
// It fails with an error wrapping ErrDuplicate if another owner (another
// registrar's live lease, or a key without a lease) holds the same service
// and ID: two processes cannot overwrite each other. Invalid instances are
// refused with the errors of roster.Instance.Validate. While the lease is
// being restored Register waits for the new one, up to ctx; if it returns
// an error the instance is not registered (or, for an update, keeps its
// previous value). A write that got no reply may have landed all the same:
// a new instance's key is then deleted again (or, if etcd cannot be reached
// for that, goes with the lease), and an update is written back over.
func (r *Registrar) Register(ctx context.Context, inst roster.Instance) error {
	val, err := roster.EncodeInstance(inst)
	if err != nil {
		return fmt.Errorf("registry: register: %w", err)
	}
	return r.apply(ctx, inst.Service, inst.ID, true, func(*entry) (roster.Instance, error) { return inst, nil }, string(val))
}

// Update replaces the value of an instance this registrar holds (address,
// metadata, weight, status) in one write under the same key and lease, so
// watchers see one change and never a gap. It fails with ErrNotRegistered
// for an instance that is not registered here.
func (r *Registrar) Update(ctx context.Context, inst roster.Instance) error {
	val, err := roster.EncodeInstance(inst)
	if err != nil {
		return fmt.Errorf("registry: update: %w", err)
	}
	return r.apply(ctx, inst.Service, inst.ID, false, func(*entry) (roster.Instance, error) { return inst, nil }, string(val))
}

// Drain marks an instance StatusDraining: it stays registered while it
// finishes the work it has, but discovery stops picking it for new work.
// It is the first step of a graceful shutdown: Drain, wait for in-flight
// work to finish, then Deregister or Close.
func (r *Registrar) Drain(ctx context.Context, service, id string) error {
	return r.apply(ctx, service, id, false, func(e *entry) (roster.Instance, error) {
		inst := e.inst
		inst.Status = roster.StatusDraining
		return inst, nil
	}, "")
}

// Deregister deletes an instance's key now and stops keeping it
// registered. A key that another owner has taken over meanwhile is left
// alone. If etcd cannot be reached the instance stays registered and the
// error says why; try again, or Close.
func (r *Registrar) Deregister(ctx context.Context, service, id string) error {
	key, err := r.key(service, id)
	if err != nil {
		return err
	}
	for {
		e, _, err := r.lookup(key, service, id, false)
		if err != nil {
			return err
		}
		if err := e.acquire(ctx, nil); err != nil {
			return fmt.Errorf("registry: deregister %s/%s: %w", service, id, err)
		}
		r.mu.Lock()
		removed, s := e.removed, r.sess
		r.mu.Unlock()
		if removed { // deregistered meanwhile
			e.unlock()
			continue
		}
		if s == nil { // never written: nothing to delete
			r.mu.Lock()
			r.dropLocked(e)
			r.mu.Unlock()
			e.unlock()
			return nil
		}
		lease := s.Lease()
		err = release(clientv3.WithRequireLeader(ctx), r.cli, key, lease, r.owns)
		if err == nil {
			r.mu.Lock()
			r.dropLocked(e)
			r.mu.Unlock()
			r.poke() // health may have changed
		}
		e.unlock()
		if err != nil {
			return fmt.Errorf("registry: deregister %s/%s: %w", service, id, err)
		}
		return nil
	}
}

// Instances returns the instances this registrar keeps registered, sorted
// by service and ID.
func (r *Registrar) Instances() []roster.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]roster.Instance, 0, r.count)
	for _, e := range r.entries {
		if e.registered {
			inst := e.inst
			inst.Metadata = maps.Clone(inst.Metadata)
			out = append(out, inst)
		}
	}
	slices.SortFunc(out, func(a, b roster.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Events delivers what happens to the registrar: instances registered,
// the lease or a key lost, everything restored, failed attempts. Reading it
// is optional. The registrar never waits for the reader: when 64 events
// are unread the oldest is dropped, so a slow reader misses history but
// not the latest news. Status gives the current state at any time. The
// channel is closed by Close.
func (r *Registrar) Events() <-chan Event { return r.ev.ch }

// Close deregisters every instance at once by revoking the lease, rather
// than leaving them to expire after the TTL, and stops the registrar's
// goroutines, waiting for them. ctx bounds the revoke, and so does the
// TTL, after which an unrenewed lease has expired anyway; if etcd cannot
// be reached Close tries once more, for at most two seconds, then gives up
// and returns the error: the instances then expire with the lease. It is
// idempotent and later calls return the first call's result. The client is
// not closed.
func (r *Registrar) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cancel()
		r.wg.Wait()
		r.closeErr = r.revokeAll(ctx)
		r.mu.Lock()
		for _, e := range r.entries {
			e.removed = true // a Deregister finishing now must not count it again
		}
		clear(r.entries)
		r.count = 0
		r.setHealthLocked(false, ErrClosed)
		r.mu.Unlock()
		r.ev.close()
	})
	return r.closeErr
}

// poke asks the run loop to look at the entries again.
func (r *Registrar) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// key validates a service and ID and returns their key.
func (r *Registrar) key(service, id string) (string, error) {
	if err := roster.ValidateName("service", service); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	if err := roster.ValidateName("instance ID", id); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	return keys.InstanceKey(r.opts.ns, service, id), nil
}
