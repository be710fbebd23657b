package registry

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/stream"
	"github.com/rosterkit/roster/session"
)

// Registrar keeps service instances registered in etcd under one lease and
// restores them, unasked, whenever etcd loses them. It is safe for
// concurrent use.
type Registrar struct {
	cli  *clientv3.Client
	opts options
	ev   *stream.Stream[Event]
	log  *slog.Logger
	in   *instruments

	ctx      context.Context // cancelled by Close: stops run and the watches
	cancel   context.CancelFunc
	wg       sync.WaitGroup // run and the watches
	retiring sync.WaitGroup // revokes of replaced leases
	wake     chan struct{}  // closed by the first call that needs a lease
	kick     chan struct{}  // asks run to look at the entries again

	mu       sync.Mutex
	closed   bool
	started  bool
	entries  map[string]*entry
	count    int                       // registered entries
	services map[string]int            // entries per service
	watches  map[string]*serviceWatch  // one watch per service
	drains   map[string]*drains        // operators' requests, per service
	sess     *session.Session          // current lease; nil before the first
	changed  chan struct{}             // closed when sess is replaced
	old      []*session.Session        // ended sessions not yet closed
	owned    map[clientv3.LeaseID]bool // leases of ours that may still exist
	orphans  map[string]int64          // keys of ours with no entry: their revision
	health   health
	seen     int64 // highest revision seen from etcd, to tell when it went backwards

	// Owned by run: the session whose renewals are counted, and its
	// deadline when last looked at.
	renewing *session.Session
	renewed  time.Time
	failing  bool // an attempt failed since the last success: logged once

	closeOnce sync.Once
	closeErr  error
}

// New returns a Registrar that writes through cli. It grants no lease until
// the first Register. Close it to remove its instances at once; cli stays
// the caller's to close, after the Registrar.
func New(cli *clientv3.Client, opts ...Option) (*Registrar, error) {
	if cli == nil {
		return nil, fmt.Errorf("registry: %w", roster.ErrNilClient)
	}
	if cctx := cli.Ctx(); cctx == nil {
		return nil, fmt.Errorf("registry: %w: not made by clientv3.New", roster.ErrNilClient)
	} else if cctx.Err() != nil {
		return nil, fmt.Errorf("registry: %w", errClientClosed)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	r := &Registrar{
		cli:      cli,
		opts:     o,
		ev:       stream.New(stream.Bounded[Event](eventBuffer)),
		wake:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		entries:  make(map[string]*entry),
		services: make(map[string]int),
		watches:  make(map[string]*serviceWatch),
		drains:   make(map[string]*drains),
		log:      obs.Logger(o.logger),
		in:       newInstruments(o.meters),
		changed:  make(chan struct{}),
		owned:    make(map[clientv3.LeaseID]bool),
		orphans:  make(map[string]int64),
		health:   health{ok: true, since: time.Now()},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// Register writes inst under the registrar's lease, granting the lease on
// first use, and keeps it registered until Deregister or Close. Registering
// an instance this registrar holds already updates it.
//
// Another owner of the same service and ID makes it fail with ErrDuplicate;
// an invalid instance with the errors of roster.Instance.Validate. If it
// fails, the instance is not registered (an update keeps its old value).
func (r *Registrar) Register(ctx context.Context, inst roster.Instance) error {
	val, err := roster.EncodeInstance(inst)
	if err != nil {
		return fmt.Errorf("registry: register: %w", err)
	}
	return r.apply(orBackground(ctx), inst.Service, inst.ID, true, func(*entry) (roster.Instance, error) { return inst, nil }, string(val))
}

// Update replaces the value of an instance this registrar holds in one
// write, so that watchers never see it missing. It fails with
// ErrNotRegistered for an instance not registered here.
func (r *Registrar) Update(ctx context.Context, inst roster.Instance) error {
	val, err := roster.EncodeInstance(inst)
	if err != nil {
		return fmt.Errorf("registry: update: %w", err)
	}
	return r.apply(orBackground(ctx), inst.Service, inst.ID, false, func(*entry) (roster.Instance, error) { return inst, nil }, string(val))
}

// Drain marks an instance roster.StatusDraining: discovery stops picking it
// while it finishes its work. Then Deregister or Close.
func (r *Registrar) Drain(ctx context.Context, service, id string) error {
	return r.apply(orBackground(ctx), service, id, false, func(e *entry) (roster.Instance, error) {
		inst := e.inst
		inst.Status = roster.StatusDraining
		return inst, nil
	}, "")
}

// Deregister deletes an instance's key now and stops keeping it registered.
// If etcd cannot be reached the instance stays registered and the error
// says why.
func (r *Registrar) Deregister(ctx context.Context, service, id string) error {
	ctx = orBackground(ctx)
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
		if r.cli.Ctx().Err() != nil {
			e.unlock()
			return fmt.Errorf("registry: deregister %s/%s: %w", service, id, errClientClosed)
		}
		r.mu.Lock()
		e.deleting = true
		r.mu.Unlock()
		err = release(clientv3.WithRequireLeader(ctx), r.cli, key, s.Lease(), r.owns)
		r.mu.Lock()
		e.deleting = false
		if err == nil {
			r.dropLocked(e)
		} else {
			e.lease = 0 // the delete may have landed: written back
		}
		r.poke() // health may have changed
		r.mu.Unlock()
		e.unlock()
		if err != nil {
			return fmt.Errorf("registry: deregister %s/%s: %w", service, id, err)
		}
		return nil
	}
}

// Instances returns the instances this registrar keeps registered, sorted
// by service and ID, as they are written (draining while an operator asks).
func (r *Registrar) Instances() []roster.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]roster.Instance, 0, r.count)
	for _, e := range r.entries {
		if e.registered {
			inst := e.effective()
			inst.Metadata = maps.Clone(inst.Metadata)
			out = append(out, inst)
		}
	}
	slices.SortFunc(out, func(a, b roster.Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Events returns a new channel of what happens to the registrar from now
// on. The registrar never waits for a reader: one that falls behind loses
// the oldest events, never the newest. The channel is closed when ctx ends
// or the registrar is closed.
func (r *Registrar) Events(ctx context.Context) <-chan Event {
	return r.ev.Subscribe(orBackground(ctx), nil)
}

// emit delivers an event to every Events channel.
func (r *Registrar) emit(e Event) {
	e.Time = time.Now()
	r.ev.Publish(e)
}

// Close removes every instance at once by revoking the lease, and stops the
// registrar's goroutines. It waits for etcd at most about the TTL, after
// which an unrenewed lease has expired anyway; then it returns the error,
// and the instances go with the lease. It is idempotent; the client is not
// closed.
func (r *Registrar) Close() error { return r.Shutdown(context.Background()) }

// Shutdown is Close bounded by ctx as well as by the TTL.
func (r *Registrar) Shutdown(ctx context.Context) error {
	r.closeOnce.Do(func() { r.closeErr = r.shutdown(orBackground(ctx)) })
	return r.closeErr
}

func (r *Registrar) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ttl)
	defer cancel()
	r.mu.Lock()
	r.closed = true
	followers := slices.Collect(maps.Values(r.drains))
	r.mu.Unlock()
	r.cancel()
	for _, d := range followers {
		d.f.Stop()
	}
	r.wg.Wait()
	err := r.revokeAll(ctx)
	r.mu.Lock()
	for _, e := range r.entries {
		e.removed = true // a Deregister finishing now must not count it again
		if e.registered {
			r.registeredLocked(e.service, -1)
		}
	}
	clear(r.entries)
	r.count = 0
	r.setHealthLocked(false, ErrClosed)
	r.mu.Unlock()
	r.ev.Close()
	return err
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

// orBackground returns ctx, or context.Background() for a nil one.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
