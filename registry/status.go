package registry

import (
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Status is a registrar's state at one moment, for health checks: serve
// Healthy (and Err) from a /healthz handler.
type Status struct {
	// Healthy is true when every registered instance is in etcd under a
	// live lease, as far as the registrar knows. It is false while the
	// lease is lost or being restored, while a key deleted by someone else
	// is being written again, while another owner holds one of the keys,
	// and after Close.
	Healthy bool
	// Err says why the registrar is not healthy; nil when it is.
	Err error
	// Since is when Healthy last changed.
	Since time.Time
	// Lease is the live lease, 0 while there is none.
	Lease clientv3.LeaseID
	// Deadline is when the lease is presumed lost unless a renewal is
	// acknowledged before: the send time of the last acknowledged renewal
	// plus the TTL, less a safety margin. Zero while there is no lease.
	Deadline time.Time
	// Instances is the number of registered instances.
	Instances int
}

// health is the registrar's view of itself, kept by the recovery loop.
type health struct {
	ok    bool
	err   error
	since time.Time
}

// Status returns the registrar's current state.
func (r *Registrar) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Healthy: r.health.ok, Err: r.health.err, Since: r.health.since, Instances: r.count}
	if s := r.sess; s != nil && !r.closed {
		if err := s.Err(); err != nil {
			// Lost since the recovery loop last looked: say so now.
			if st.Healthy {
				st.Healthy, st.Err, st.Since = false, err, time.Now()
			}
		} else {
			st.Lease, st.Deadline = s.Lease(), s.Deadline()
		}
	}
	return st
}

// setHealthLocked records a change of health; r.mu must be held.
func (r *Registrar) setHealthLocked(ok bool, err error) {
	if ok {
		err = nil
	}
	if ok != r.health.ok {
		r.health.since = time.Now()
	}
	r.health.ok, r.health.err = ok, err
}
