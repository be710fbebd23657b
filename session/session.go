package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// retryInterval is how soon a failed keep-alive is tried again: often enough
// to renew within the margin once etcd is back, rarely enough to be cheap.
const retryInterval = 250 * time.Millisecond

// Session is one etcd lease kept alive until Close, until etcd says it is
// gone, or until its local deadline passes without an acknowledged renewal.
type Session struct {
	cli  *clientv3.Client
	id   clientv3.LeaseID
	opts options

	// The deadline is kept as an offset from base, a time with a
	// monotonic clock reading, so that a step of the wall clock (NTP)
	// neither extends nor cuts short the time a lease is believed held.
	base     time.Time
	deadline atomic.Int64 // nanoseconds after base; only moves forward

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	endOnce sync.Once
	done    chan struct{}
	err     atomic.Pointer[error]

	closeOnce sync.Once
	closeErr  error
}

// New grants a lease and keeps it alive in the background.
func New(ctx context.Context, cli *clientv3.Client, opts ...Option) (*Session, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &Session{cli: cli, opts: o, base: time.Now(), done: make(chan struct{})}
	if err := s.grant(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// grant obtains the lease. A Grant that was slow to answer (sent while etcd
// had no leader, say) leaves a deadline counted from its send time, possibly
// already close or past; the lease is then renewed at once, so that a new
// session never starts out presumed lost.
func (s *Session) grant(ctx context.Context) error {
	sent := time.Now()
	resp, err := s.cli.Grant(ctx, int64(s.opts.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("session: grant lease: %w", err)
	}
	s.id = resp.ID
	s.extend(sent, resp.TTL)
	if time.Until(s.Deadline()) >= s.opts.interval {
		return nil
	}
	sent = time.Now()
	ka, err := s.cli.KeepAliveOnce(clientv3.WithRequireLeader(ctx), s.id)
	if err != nil {
		s.revokeQuietly()
		return fmt.Errorf("session: renew a lease granted late: %w", err)
	}
	s.extend(sent, ka.TTL)
	return nil
}

// revokeQuietly gives back a lease the session will not use; if that fails,
// the lease expires by itself.
func (s *Session) revokeQuietly() {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.opts.ttl, 2*time.Second))
	defer cancel()
	_, _ = s.cli.Revoke(ctx, s.id)
}

// Lease is the session's lease ID, to attach keys with clientv3.WithLease.
func (s *Session) Lease() clientv3.LeaseID { return s.id }

// TTL is the lease's time to live.
func (s *Session) TTL() time.Duration { return s.opts.ttl }

// Client is the client the session renews its lease through.
func (s *Session) Client() *clientv3.Client { return s.cli }

// Deadline is the moment the lease is presumed lost unless renewed before:
// the send time of the last acknowledged renewal plus the TTL, less the margin.
func (s *Session) Deadline() time.Time { return s.base.Add(time.Duration(s.deadline.Load())) }

// Done is closed when the session has ended; Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is nil while the session is alive, then ErrExpired, ErrLeaseGone or
// ErrClosed (possibly wrapped).
func (s *Session) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Renew renews the lease now instead of at the next interval, for a holder
// that saw a sign of trouble (its key deleted, say) and wants to know at once
// whether the lease still exists. It returns the session's error if it ended.
func (s *Session) Renew(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	if err := s.renew(ctx); err != nil {
		if e := s.Err(); e != nil {
			return e
		}
		return err
	}
	return nil
}

// Close stops renewing and revokes the lease, so that every key attached to
// it disappears now rather than after the TTL. It waits for the background
// renewal to stop; it is idempotent. A failed revoke is returned, and the
// lease then expires by itself, as it does when the client is closed already.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.end(ErrClosed)
		s.cancel()
		s.wg.Wait()
		if s.cli.Ctx().Err() != nil {
			return // the client is closed: nothing can be sent; the lease expires by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(s.opts.ttl, 2*time.Second))
		defer cancel()
		if _, err := s.cli.Revoke(ctx, s.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			s.closeErr = fmt.Errorf("session: revoke lease %x: %w", int64(s.id), err)
		}
	})
	return s.closeErr
}

func (s *Session) run() {
	defer s.wg.Done()
	next := time.NewTimer(s.opts.interval)
	defer next.Stop()
	lost := time.NewTimer(time.Until(s.Deadline()))
	defer lost.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.done:
			return
		case <-lost.C:
			if d := time.Until(s.Deadline()); d > 0 {
				lost.Reset(d) // renewed since the timer was set
				continue
			}
			s.end(ErrExpired)
			return
		case <-next.C:
			wait := s.opts.interval
			if err := s.renew(s.ctx); err != nil {
				wait = retryInterval
			}
			next.Reset(wait)
		}
	}
}

// renew sends one keep-alive. The request is bounded by the local deadline:
// an answer after it would come too late to matter.
func (s *Session) renew(ctx context.Context) error {
	ctx, cancel := context.WithDeadline(clientv3.WithRequireLeader(ctx), s.Deadline())
	defer cancel()
	sent := time.Now()
	resp, err := s.cli.KeepAliveOnce(ctx, s.id)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		s.end(ErrLeaseGone)
		return ErrLeaseGone
	case err != nil:
		if time.Now().After(s.Deadline()) {
			s.end(ErrExpired)
			return ErrExpired
		}
		return fmt.Errorf("session: keep-alive: %w", err)
	}
	s.extend(sent, resp.TTL)
	return nil
}

func (s *Session) extend(sent time.Time, ttlSeconds int64) {
	d := int64(sent.Sub(s.base) + time.Duration(ttlSeconds)*time.Second - s.opts.margin)
	for {
		cur := s.deadline.Load()
		if d <= cur || s.deadline.CompareAndSwap(cur, d) {
			return
		}
	}
}

func (s *Session) end(err error) {
	s.endOnce.Do(func() {
		s.err.Store(&err)
		close(s.done)
	})
}
