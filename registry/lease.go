package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// retire revokes the leases of the sessions that ended, now that no
// instance is left on them, and closes the sessions, in the background: a
// revoke may wait for etcd. A lease whose revoke fails stays owned and is
// revoked again at Close.
func (r *Registrar) retire() {
	r.mu.Lock()
	old := r.old
	r.old = nil
	r.mu.Unlock()
	for _, s := range old {
		r.retiring.Go(func() {
			ctx, cancel := context.WithTimeout(r.ctx, r.opts.ttl)
			_, err := r.cli.Revoke(ctx, s.Lease())
			cancel()
			_ = s.Close()
			if err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
				r.mu.Lock()
				delete(r.owned, s.Lease())
				r.mu.Unlock()
			}
		})
	}
}

// revokeAll revokes every lease of ours and closes the sessions, all at
// once, within ctx: the caller bounds it by the TTL, since a lease that
// could not be renewed for a TTL has expired by itself.
func (r *Registrar) revokeAll(ctx context.Context) error {
	r.mu.Lock()
	sessions := r.old
	if r.sess != nil {
		sessions = append(sessions, r.sess)
	}
	r.old = nil
	leases := slices.Collect(maps.Keys(r.owned))
	r.mu.Unlock()
	if len(leases) > 0 && r.cli.Ctx().Err() != nil {
		for _, s := range sessions {
			_ = s.Close() // returns at once: nothing can be sent
		}
		r.retiring.Wait()
		return fmt.Errorf("registry: cannot revoke: %w; the lease expires after its TTL", errClientClosed)
	}
	errs := make([]error, len(leases))
	var wg sync.WaitGroup
	for i, l := range leases {
		wg.Go(func() {
			_, err := r.cli.Revoke(ctx, l)
			if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				errs[i] = fmt.Errorf("registry: revoke lease %x: %w; its instances expire with it", int64(l), err)
			}
		})
	}
	for _, s := range sessions {
		wg.Go(func() { _ = s.Shutdown(ctx) }) // stops its renewals; bounded by the caller too
	}
	wg.Wait()
	r.retiring.Wait()
	return errors.Join(errs...)
}
