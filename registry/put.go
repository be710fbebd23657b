package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/session"
)

// A write from the API (Register, Update, Drain) locks its entry, waits
// for a live lease, and writes once; if the lease turns out to be gone it
// waits for the recovery loop's next lease and writes again.

// apply writes the value next computes into the entry of service/id, with
// the entry locked. create allows a new entry; val is next's value encoded,
// or "" to encode it here.
func (r *Registrar) apply(ctx context.Context, service, id string, create bool, next func(*entry) (roster.Instance, error), val string) error {
	key, err := r.key(service, id)
	if err != nil {
		return err
	}
	for {
		e, fresh, err := r.lookup(key, service, id, create)
		if err != nil {
			return err
		}
		if !fresh { // a fresh entry is returned locked
			if err := e.acquire(ctx, nil); err != nil {
				return fmt.Errorf("registry: %s/%s: %w", service, id, err)
			}
		}
		r.mu.Lock()
		removed, registered := e.removed, e.registered
		r.mu.Unlock()
		if removed { // deregistered meanwhile: start over
			e.unlock()
			continue
		}
		if !create && !registered { // a Register that failed
			e.unlock()
			return fmt.Errorf("%w: %s/%s", ErrNotRegistered, service, id)
		}
		err = r.put(ctx, e, next, val)
		if err != nil {
			r.mu.Lock()
			if !e.registered && e.zombie == 0 {
				r.dropLocked(e) // nothing of it in etcd
			}
			r.mu.Unlock()
		}
		e.unlock()
		return err
	}
}

// put writes an entry the caller holds locked under the live lease.
func (r *Registrar) put(ctx context.Context, e *entry, next func(*entry) (roster.Instance, error), val string) error {
	inst, err := next(e)
	if err != nil {
		return err
	}
	if val == "" {
		b, err := roster.EncodeInstance(inst)
		if err != nil {
			return fmt.Errorf("registry: %s: %w", e.key, err)
		}
		val = string(b)
	}
	r.mu.Lock()
	first := !e.registered
	r.mu.Unlock()
	if first {
		// The first write waits for what must see it: the operator's drain
		// requests, and the watch of the service's keys.
		r.start()
		if err := r.drainsSynced(ctx, e.service); err != nil {
			return err
		}
		if err := r.watchCreated(ctx, e.service); err != nil {
			return err
		}
	}
	for {
		s, err := r.liveSession(ctx)
		if err != nil {
			return err
		}
		lease := s.Lease()
		r.mu.Lock()
		drained, wval := e.drain, val
		if drained {
			draining := inst
			draining.Status = roster.StatusDraining
			if b, err := roster.EncodeInstance(draining); err == nil {
				wval = string(b)
			}
		}
		inPlace := e.registered && e.inPlace(lease)
		unchanged := inPlace && e.val == wval && !e.dirty
		if unchanged {
			inst.Metadata = maps.Clone(inst.Metadata)
			e.inst = inst
		} else {
			e.pending = wval
		}
		r.mu.Unlock()
		if unchanged {
			return nil
		}
		octx, cancel := opContext(ctx, s)
		w := write{key: e.key, val: wval}
		if inPlace {
			w.from = lease // an update: one comparison, of the lease
		}
		res, err := writeAll(octx, r.cli, []write{w}, lease, r.owns)
		cancel()
		r.mu.Lock()
		e.pending = ""
		r.mu.Unlock()
		if err != nil {
			if r.sessionEnded(ctx, s, err) {
				continue // wait for the new lease and write again
			}
			r.unsure(e, lease)
			return fmt.Errorf("registry: write %s: %w", e.key, err)
		}
		r.mu.Lock()
		if r.closed { // the lease is revoked or about to be
			r.mu.Unlock()
			return ErrClosed
		}
		if err := res[0].err; err != nil {
			if e.registered { // someone took our key
				r.conflictLocked(e, err, lease)
			}
			r.mu.Unlock()
			return err
		}
		first := !e.registered
		inst.Metadata = maps.Clone(inst.Metadata) // the caller may reuse its map
		e.inst, e.val, e.registered, e.zombie, e.dirty = inst, wval, true, 0, false
		r.wroteLocked(e, lease, res[0].rev)
		if first {
			r.count++
			r.registeredLocked(e.service, 1)
			r.emit(Event{Kind: EventRegistered, Service: e.service, ID: e.id, Lease: lease})
			e.notify = e.drain
		}
		if e.drain != drained { // an operator's request came meanwhile
			r.revalueLocked(e)
		}
		if !e.dirty {
			r.toldLocked(e)
		}
		r.mu.Unlock()
		return nil
	}
}

// sessionEnded reports whether a write with s failed because s ended (or
// just did: etcd says the lease is gone), so the caller should wait for the
// next lease rather than fail.
func (r *Registrar) sessionEnded(ctx context.Context, s *session.Session, err error) bool {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.Renew(ctx) // ends s with ErrLeaseGone
	}
	return s.Err() != nil && ctx.Err() == nil
}

// liveSession returns the current lease's session, waiting while there is
// none (before the first grant, or while one is being restored).
func (r *Registrar) liveSession(ctx context.Context) (*session.Session, error) {
	for {
		if r.cli.Ctx().Err() != nil {
			return nil, fmt.Errorf("registry: %w", errClientClosed)
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, ErrClosed
		}
		s, changed, herr := r.sess, r.changed, r.health.err
		r.startLocked()
		r.mu.Unlock()
		if s != nil && s.Err() == nil {
			return s, nil
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return nil, ErrClosed
		case <-ctx.Done():
			if herr != nil {
				return nil, fmt.Errorf("registry: no live lease: %w (last error: %v)", ctx.Err(), herr)
			}
			return nil, fmt.Errorf("registry: no live lease: %w", ctx.Err())
		}
	}
}

// start wakes the run loop: a lease is needed.
func (r *Registrar) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startLocked()
}

func (r *Registrar) startLocked() {
	if !r.started {
		r.started = true
		close(r.wake)
	}
}

// opContext bounds an etcd call made under s: it fails fast when the
// member has no leader, and gives up when s is presumed lost, since a
// write under a lost lease is worthless.
func opContext(ctx context.Context, s *session.Session) (context.Context, context.CancelFunc) {
	return context.WithDeadline(clientv3.WithRequireLeader(ctx), s.Deadline())
}

// unsure handles a write of e, held locked, that got no reply: etcd may
// have applied it all the same. An update's entry is marked not in place,
// so that the recovery loop writes back the value the registrar kept,
// which is what a failed Update promises. A first registration's entry is
// kept as a zombie, not registered, whose key the recovery loop deletes
// (see bury), so that a failed Register leaves nothing behind even if its
// write lands late.
func (r *Registrar) unsure(e *entry, lease clientv3.LeaseID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.registered {
		e.lease = 0
	} else {
		e.zombie = lease
	}
	r.poke()
}
