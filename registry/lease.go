package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/session"
)

// The registrar's leases: the current one, those it lost but that may
// still exist in etcd (a presumed expiry is not a certain one), and their
// revocation.

// owns reports whether lease is one of this registrar's leases.
func (r *Registrar) owns(lease clientv3.LeaseID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owned[lease]
}

// grant starts a session on a new lease. One attempt may wait up to a TTL
// for etcd to answer, while the client reconnects.
func (r *Registrar) grant() (*session.Session, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.ttl)
	var wg sync.WaitGroup
	wg.Go(func() { r.nudge(ctx) })
	s, err := session.New(clientv3.WithRequireLeader(ctx), r.cli, session.WithTTL(r.opts.ttl))
	cancel()
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	return s, nil
}

// nudge makes the client retry its connection at the registrar's backoff
// pace until ctx ends. gRPC's own reconnect backoff grows to two minutes,
// so after an outage of a few seconds the client would otherwise find etcd
// back only seconds after it was, which the requests waiting for a
// connection (the grant) would wait out.
func (r *Registrar) nudge(ctx context.Context) {
	conn := r.cli.ActiveConnection()
	if conn == nil {
		return
	}
	bo := r.opts.backoff
	for backoff.Sleep(ctx, bo.Next()) == nil {
		if conn.GetState() == connectivity.TransientFailure {
			conn.ResetConnectBackoff()
		}
	}
}

// publish makes s the current session, waking writers waiting for a lease.
func (r *Registrar) publish(s *session.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sess != nil {
		r.old = append(r.old, r.sess)
	}
	r.sess = s
	r.owned[s.Lease()] = true
	close(r.changed)
	r.changed = make(chan struct{})
}

// retire closes the sessions that ended, revoking their leases now that no
// instance is left on them. A lease whose revoke fails stays owned and is
// revoked again at Close.
func (r *Registrar) retire() {
	r.mu.Lock()
	old := r.old
	r.old = nil
	r.mu.Unlock()
	for _, s := range old {
		err := s.Close()
		r.mu.Lock()
		if err == nil {
			delete(r.owned, s.Lease())
		}
		r.mu.Unlock()
	}
}

// revokeAll revokes every lease of ours, with ctx, and closes the sessions.
// The revokes are also bounded by the TTL: the client waits for a
// connection as long as it is allowed to, and once a TTL has passed
// without renewals the leases have expired by themselves.
func (r *Registrar) revokeAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ttl)
	defer cancel()
	r.mu.Lock()
	sessions := r.old
	if r.sess != nil {
		sessions = append(sessions, r.sess)
	}
	r.old = nil
	leases := make([]clientv3.LeaseID, 0, len(r.owned))
	for l := range r.owned {
		leases = append(leases, l)
	}
	r.mu.Unlock()
	var errs []error
	revoked := make(map[clientv3.LeaseID]bool)
	if err := r.cli.Ctx().Err(); err != nil {
		// A closed client retries until the deadline, in vain.
		errs = append(errs, fmt.Errorf("registry: cannot revoke: client closed; the lease expires after its TTL"))
		leases = nil
	}
	for _, l := range leases {
		_, err := r.cli.Revoke(ctx, l)
		if err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
			revoked[l] = true
		} else {
			errs = append(errs, fmt.Errorf("registry: revoke lease %x: %w", int64(l), err))
		}
	}
	for _, s := range sessions {
		// Stops its goroutine; its own revoke fails as ours did.
		_ = s.Close()
	}
	return errors.Join(errs...)
}
