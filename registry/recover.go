package registry

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

// run owns the lease. From the first Register until Close it keeps a live
// session, and whenever the session ends (presumed expired, revoked, lost
// with etcd's data) or a key of ours goes missing, it grants a new lease if
// needed and writes back every instance not in place, pausing with
// jittered backoff while etcd cannot be reached.
func (r *Registrar) run() {
	defer r.wg.Done()
	select {
	case <-r.wake:
	case <-r.ctx.Done():
		return
	}
	bo := r.opts.backoff
	var (
		s      *session.Session
		lost   bool      // EventLost sent, EventRestored not yet
		lostAt time.Time // when
		old    int64     // the lease lost
		from   int64     // lowest revision written back since the loss
		before int64     // the highest revision seen when the loss was noticed
	)
	for r.ctx.Err() == nil {
		if s == nil || s.Err() != nil {
			if s != nil && !lost {
				lost, lostAt, old = true, time.Now(), int64(s.Lease())
				before = r.seenRev()
				r.lose(s)
			}
			if r.cli.Ctx().Err() != nil {
				r.fail(fmt.Errorf("registry: %w", errClientClosed)) // for good: wait for Close
				<-r.ctx.Done()
				return
			}
			next, err := r.grant()
			if r.ctx.Err() != nil {
				if next != nil {
					r.publish(next) // Close revokes it
				}
				return
			}
			if err != nil {
				r.fail(err)
				r.pause(&bo, nil)
				continue
			}
			s = next
			r.publish(s)
		}
		rev, err := r.reconcile(s)
		if lost && rev > 0 && (from == 0 || rev < from) {
			from = rev
		}
		if err != nil {
			if s.Err() == nil && r.ctx.Err() == nil {
				r.fail(err)
				r.pause(&bo, s)
			}
			continue
		}
		bo.Reset()
		r.failing = false
		if lost {
			if from > 0 && from <= before {
				// etcd counts revisions anew (restored from a snapshot):
				// the watches wait for revisions that mean something
				// else now. Otherwise they are kept: they saw every
				// change since before the loss and will see every one
				// after the restore, without the gap a new watch has
				// until etcd has caught it up.
				r.rewatch(from)
			}
			lost, from = false, 0
			r.leaseRestored(old, int64(s.Lease()), r.Status().Instances, time.Since(lostAt))
			r.emit(Event{Kind: EventRestored, Lease: s.Lease()})
		}
		r.retire()
		r.idle(s)
	}
}

// lose reports that s ended.
func (r *Registrar) lose(s *session.Session) {
	err := lostErr(int64(s.Lease()), s.Err())
	r.mu.Lock()
	r.setHealthLocked(false, err)
	r.mu.Unlock()
	r.leaseLost(int64(s.Lease()), err)
	r.emit(Event{Kind: EventLost, Lease: s.Lease(), Err: err})
}

// fail reports a failed attempt that will be retried.
func (r *Registrar) fail(err error) {
	r.mu.Lock()
	r.setHealthLocked(false, err)
	r.mu.Unlock()
	if !r.failing {
		r.failing = true
		r.unreachable(err)
	}
	r.emit(Event{Kind: EventError, Err: err})
}

// pause waits before the next attempt, or until Close, or until s ends.
func (r *Registrar) pause(bo *backoff.Backoff, s *session.Session) {
	var done <-chan struct{}
	if s != nil {
		done = s.Done()
	}
	t := time.NewTimer(bo.Next())
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	case <-done:
	}
}

// idle waits until there is something to do: s ended, Close, or a poke.
// A poke about a deleted key first renews the lease, to learn at once
// whether the whole lease is gone (then s ends) or only the key.
func (r *Registrar) idle(s *session.Session) {
	tick := time.NewTicker(renewCheck(r.opts.ttl))
	defer tick.Stop()
	for {
		r.countRenewals(s)
		select {
		case <-r.ctx.Done():
			return
		case <-s.Done():
			return
		case <-r.kick:
			r.checkDeleted(s)
			r.countRenewals(s)
			return
		case <-tick.C:
		}
	}
}

// checkDeleted tells a lost lease from keys deleted one by one, and reports
// the latter.
func (r *Registrar) checkDeleted(s *session.Session) {
	r.mu.Lock()
	var deleted []*entry
	for _, e := range r.entries {
		if e.gone && !e.reported && !e.removed {
			deleted = append(deleted, e)
		}
	}
	r.mu.Unlock()
	if len(deleted) == 0 {
		return
	}
	ctx, cancel := opContext(r.ctx, s)
	err := s.Renew(ctx)
	cancel()
	if err != nil {
		return // lease gone (s ended) or etcd unreachable: the loop goes on
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range deleted {
		if e.gone && !e.removed {
			e.reported, e.lostAt = true, time.Now()
			err := fmt.Errorf("registry: %s: %w", e.key, ErrKeyDeleted)
			r.setHealthLocked(false, err)
			r.keyLostLocked(e, err)
			r.emit(Event{Kind: EventLost, Service: e.service, ID: e.id, Lease: s.Lease(), Err: err})
		}
	}
}

// reconcile writes every entry that is not in place under s, then updates
// the health. It returns the lowest revision it wrote at (0 if none), and
// an error if etcd could not be written.
func (r *Registrar) reconcile(s *session.Session) (int64, error) {
	lease := s.Lease()
	r.mu.Lock()
	var todo, zombies []*entry
	for _, e := range r.entries {
		switch {
		case e.registered && e.stale(lease):
			todo = append(todo, e)
		case !e.registered && e.zombie != 0 && !e.removed:
			zombies = append(zombies, e)
		}
	}
	r.mu.Unlock()
	for _, e := range zombies {
		if err := r.bury(s, e); err != nil {
			return 0, err
		}
	}
	if err := r.sweep(s); err != nil {
		return 0, err
	}
	var from int64
	for start := 0; start < len(todo); start += batch {
		rev, err := r.rewrite(s, todo[start:min(start+batch, len(todo))])
		if rev > 0 && (from == 0 || rev < from) {
			from = rev
		}
		if err != nil {
			return from, err
		}
	}
	r.settle(s)
	return from, nil
}

// bury deletes the key of a zombie entry (see unsure), if it is still
// held by one of our leases, and drops the entry.
func (r *Registrar) bury(s *session.Session, e *entry) error {
	ctx, cancel := opContext(r.ctx, s)
	defer cancel()
	if err := e.acquire(ctx, s.Done()); err != nil {
		return fmt.Errorf("registry: restore: %w", err)
	}
	defer e.unlock()
	r.mu.Lock()
	z := e.zombie
	if e.registered || e.removed {
		z = 0 // registered since, or gone
	}
	r.mu.Unlock()
	if z == 0 {
		return nil
	}
	if err := release(ctx, r.cli, e.key, z, r.owns); err != nil {
		return fmt.Errorf("registry: delete %s after a write that got no reply: %w", e.key, err)
	}
	r.mu.Lock()
	if !e.registered && e.zombie == z {
		r.dropLocked(e)
	}
	r.mu.Unlock()
	return nil
}

// rewrite writes a batch of entries under s in one transaction, holding
// their locks so that no user write interleaves. It returns the lowest
// revision written at.
func (r *Registrar) rewrite(s *session.Session, part []*entry) (int64, error) {
	ctx, cancel := opContext(r.ctx, s)
	defer cancel()
	var held []*entry
	defer func() {
		for _, e := range held {
			e.unlock()
		}
	}()
	for _, e := range part {
		// A user's write may hold e while it waits for a lease newer than
		// s: give up as soon as s ends, or both would wait.
		if err := e.acquire(ctx, s.Done()); err != nil {
			return 0, fmt.Errorf("registry: restore: %w", err)
		}
		held = append(held, e)
	}
	lease := s.Lease()
	var (
		ws []write
		es []*entry
	)
	r.mu.Lock()
	for _, e := range held {
		if e.registered && e.stale(lease) {
			ws = append(ws, write{key: e.key, val: e.val})
			es = append(es, e)
			e.pending = e.val
		}
	}
	r.mu.Unlock()
	if len(ws) == 0 {
		return 0, nil
	}
	res, err := writeAll(ctx, r.cli, ws, lease, r.owns)
	r.mu.Lock()
	for _, e := range es {
		e.pending = ""
	}
	r.mu.Unlock()
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.Renew(ctx) // ends s with ErrLeaseGone
		}
		return 0, fmt.Errorf("registry: restore: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var from int64
	for i, e := range es {
		if res[i].err != nil {
			r.conflictLocked(e, res[i].err, lease)
			continue
		}
		r.wroteLocked(e, lease, res[i].rev)
		if e.val == ws[i].val {
			e.dirty = false
			r.toldLocked(e)
		} // else changed while written: written again next

		if from == 0 || res[i].rev < from {
			from = res[i].rev
		}
	}
	return from, nil
}

// settle sets the health from the entries: healthy when every registered
// one is in place under s.
func (r *Registrar) settle(s *session.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lease := s.Lease()
	var bad error
	for _, e := range r.entries {
		if e.registered && !e.inPlace(lease) {
			bad = e.conflict
			if bad == nil {
				bad = fmt.Errorf("registry: %s not yet written back", e.key)
			}
			break
		}
	}
	if bad == nil {
		bad = s.Err()
	}
	r.setHealthLocked(bad == nil, bad)
}
