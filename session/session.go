package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/obs"
)

const (
	// retryInterval is how soon a failed keep-alive is tried again: often
	// enough to renew within the margin once etcd is back, rarely enough to
	// be cheap.
	retryInterval = 250 * time.Millisecond

	// A grant or a revoke is sent again every retryMin..retryMax while no
	// attempt has been answered, without cancelling attempts in flight
	// (each bounded by attemptTimeout, at most maxInFlight at once): one
	// that is merely slow still counts, and one stuck on a member whose
	// leader just died does not delay the next (see backoff.Hedge).
	retryMin       = 50 * time.Millisecond
	retryMax       = 250 * time.Millisecond
	attemptTimeout = 2 * time.Second
	maxInFlight    = 16

	// lostRevokeTTLs is how long, in TTLs after a presumed loss, the lease
	// is revoked again and again while etcd does not answer. A new etcd
	// leader extends every lease by about a TTL, so until then the lease may
	// still exist and keep its keys in everyone's way.
	lostRevokeTTLs = 3
)

// errClientClosed is why nothing more can be sent: the user closed the
// etcd client.
var errClientClosed = fmt.Errorf("etcd client closed: %w", roster.ErrClosed)

// Session is one etcd lease kept alive until Close, until etcd says it is
// gone, or until its local deadline passes without an acknowledged renewal.
type Session struct {
	cli  *clientv3.Client
	id   clientv3.LeaseID
	opts options
	in   *instruments

	// The deadline is kept as an offset from base, a time with a
	// monotonic clock reading, so that a step of the wall clock (NTP)
	// neither extends nor cuts short the time a lease is believed held.
	base     time.Time
	deadline atomic.Int64 // nanoseconds after base; only moves forward

	ctx     context.Context // renewals; cancelled by Close
	cancel  context.CancelFunc
	release context.Context // the revocation after a loss; cancelled at Close's bound
	stopRel context.CancelFunc
	wg      sync.WaitGroup
	fin     chan struct{} // closed when run returns

	endOnce sync.Once
	done    chan struct{}
	err     atomic.Pointer[error]
	revoked atomic.Bool // etcd answered a revoke: the lease is gone

	closeOnce sync.Once
	closeErr  error
}

// New grants a lease and keeps it alive in the background.
func New(ctx context.Context, cli *clientv3.Client, opts ...Option) (*Session, error) {
	if cli == nil {
		return nil, fmt.Errorf("session: %w", roster.ErrNilClient)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.inst == nil {
		o.inst = newInstruments(o)
	}
	if cli.Ctx().Err() != nil {
		return nil, fmt.Errorf("session: grant lease: %w", errClientClosed)
	}
	s := &Session{cli: cli, opts: o, in: o.inst, base: time.Now(), done: make(chan struct{}), fin: make(chan struct{})}
	if err := s.grant(ctx); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.release, s.stopRel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// grant obtains the lease. Every attempt asks for one lease ID of our
// choosing, so attempts sent again while unanswered (see revoke) grant one
// lease at most, and one whose answer was lost is known. Its deadline is
// dated from the first attempt's send time, the earliest etcd can have
// granted it; a grant slow to answer (sent while etcd had no leader, say)
// may leave it close or past, and the lease is then renewed at once, so that
// a new session never starts out presumed lost.
func (s *Session) grant(ctx context.Context) error {
	s.id = clientv3.LeaseID(rand.Int64N(math.MaxInt64-1) + 1)
	req := &pb.LeaseGrantRequest{ID: int64(s.id), TTL: int64(s.opts.ttl / time.Second)}
	leases := clientv3.RetryLeaseClient(s.cli)
	first := time.Now()
	type granted struct {
		sent time.Time // of the attempt etcd applied, or of the first
		ttl  int64
	}
	g, err := backoff.Hedge(ctx, backoff.Backoff{Min: retryMin, Max: retryMax}, maxInFlight,
		func(ctx context.Context) (granted, error) {
			ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), attemptTimeout)
			defer cancel()
			sent := time.Now()
			resp, err := leases.LeaseGrant(ctx, req)
			switch {
			case err == nil:
				return granted{sent, resp.TTL}, nil
			case errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist):
				// An earlier attempt was applied and its answer is late or
				// lost. (Another holder of a random 63-bit ID is not a risk
				// worth a round trip.)
				return granted{first, req.TTL}, nil
			}
			return granted{}, err
		},
		func(_ granted, err error) bool { return err == nil || final(err) || s.cli.Ctx().Err() != nil }, nil)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			return fmt.Errorf("session: grant lease: %w (last attempt: %w)", cause, rpctypes.Error(err))
		}
		return fmt.Errorf("session: grant lease: %w", rpctypes.Error(err))
	}
	s.extend(g.sent, g.ttl)
	if time.Until(s.Deadline()) >= s.opts.interval {
		return nil
	}
	sent := time.Now()
	ka, err := s.cli.KeepAliveOnce(clientv3.WithRequireLeader(ctx), s.id)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), min(s.opts.ttl, 2*time.Second))
		defer cancel()
		_ = s.revoke(rctx) // if it fails, the lease expires by itself
		return fmt.Errorf("session: renew a lease granted late: %w", err)
	}
	s.extend(sent, ka.TTL)
	return nil
}

// Lease is the session's lease ID, to attach keys with clientv3.WithLease.
func (s *Session) Lease() clientv3.LeaseID { return s.id }

// TTL is the lease's time to live.
func (s *Session) TTL() time.Duration { return s.opts.ttl }

// Client is the client the session renews its lease through.
func (s *Session) Client() *clientv3.Client { return s.cli }

// Deadline is the moment the lease is presumed lost unless renewed before:
// the send time of the last acknowledged renewal plus the TTL, less the
// margin.
func (s *Session) Deadline() time.Time { return s.base.Add(time.Duration(s.deadline.Load())) }

// Done is closed when the session has ended; Err says why. A deadline that
// passed is noticed here too, not only by the session's timer, so a process
// that resumes after a pause (GC, SIGSTOP, a stopped VM) sees the loss
// before it acts.
func (s *Session) Done() <-chan struct{} {
	s.expireIfDue()
	return s.done
}

// Err is nil while the session is alive, then ErrExpired or ErrLeaseGone
// (both wrap roster.ErrLost) or ErrClosed.
func (s *Session) Err() error {
	s.expireIfDue()
	return s.loadErr()
}

func (s *Session) loadErr() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// expireIfDue ends the session if its deadline has passed.
func (s *Session) expireIfDue() {
	if s.err.Load() == nil && time.Now().After(s.Deadline()) {
		s.end(ErrExpired)
	}
}

// Renew renews the lease now rather than at the next interval, for a holder
// that saw a sign of trouble (its key deleted, say). It returns the
// session's error if the session ended.
func (s *Session) Renew(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
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

// Close stops renewing and revokes the lease, so that its keys go now
// rather than after the TTL. It waits for the session's goroutines, at most
// about a TTL, and is idempotent. A failed revoke is returned; the lease
// then expires by itself.
func (s *Session) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ttl)
	defer cancel()
	return s.shutdown(ctx)
}

// Shutdown is Close bounded by ctx as well as by the TTL.
func (s *Session) Shutdown(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.ttl)
	defer cancel()
	return s.shutdown(ctx)
}

func (s *Session) shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		live := s.end(ErrClosed)
		s.cancel()
		stop := context.AfterFunc(ctx, s.stopRel) // bounds a revocation after a loss
		s.wg.Wait()
		stop()
		s.stopRel()
		if !live || s.cli.Ctx().Err() != nil {
			// Lost before: the revocation, if one was due, has run. Or the
			// client is closed: nothing can be sent, the lease expires.
			return
		}
		if err := s.revoke(ctx); err != nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func (s *Session) run() {
	defer s.wg.Done()
	defer close(s.fin)
	s.keepAlive()
	if errors.Is(s.Err(), ErrExpired) {
		s.revokeLost()
	}
}

// keepAlive renews the lease until the session ends.
func (s *Session) keepAlive() {
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

// finished says the session's goroutine has returned.
func (s *Session) finished() bool {
	select {
	case <-s.fin:
		return true
	default:
		return false
	}
}

// revokeLost revokes a lease presumed lost. It may still exist in etcd (a
// new etcd leader extends every lease), and then its keys still block the
// next holder: they go as soon as etcd answers.
func (s *Session) revokeLost() {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.release, lostRevokeTTLs*s.opts.ttl)
	defer cancel()
	lease := slog.String(obs.KeyLease, fmt.Sprintf("%x", int64(s.id)))
	if err := s.revoke(ctx); err != nil {
		s.in.log.Warn("session: lease presumed lost could not be revoked; it expires by itself",
			lease, slog.Duration("tried", time.Since(start)), slog.Any(obs.KeyErr, err))
		return
	}
	s.in.log.Info("session: lease presumed lost revoked", lease, slog.Duration("after", time.Since(start)))
}

// revoke revokes the lease, sending the request again while none has been
// answered, until ctx ends. A lease etcd no longer has counts as revoked.
func (s *Session) revoke(ctx context.Context) error {
	if s.revoked.Load() {
		return nil
	}
	if s.cli.Ctx().Err() != nil {
		return fmt.Errorf("session: revoke lease %x: %w", int64(s.id), errClientClosed)
	}
	_, err := backoff.Hedge(ctx, backoff.Backoff{Min: retryMin, Max: retryMax}, maxInFlight,
		func(ctx context.Context) (struct{}, error) {
			ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), attemptTimeout)
			defer cancel()
			_, err := s.cli.Revoke(ctx, s.id)
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				err = nil
			}
			return struct{}{}, err
		},
		func(_ struct{}, err error) bool { return err == nil || final(err) || s.cli.Ctx().Err() != nil }, nil)
	switch {
	case err == nil:
		s.revoked.Store(true)
		return nil
	case s.cli.Ctx().Err() != nil:
		return fmt.Errorf("session: revoke lease %x: %w", int64(s.id), errClientClosed)
	case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
		return fmt.Errorf("session: revoke lease %x: no answer from etcd: %w (last attempt: %w)", int64(s.id), ctx.Err(), err)
	}
	return fmt.Errorf("session: revoke lease %x: %w", int64(s.id), err)
}

// final says a revoke failed for a reason that trying again cannot mend.
func final(err error) bool {
	switch status.Code(rpctypes.Error(err)) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return false
}

// renew sends one keep-alive. The request is bounded by the local deadline:
// an answer after it would come too late to matter.
func (s *Session) renew(ctx context.Context) error {
	if s.cli.Ctx().Err() != nil {
		return fmt.Errorf("session: keep-alive: %w", errClientClosed)
	}
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
	now := time.Now()
	s.in.renewed(now.Sub(sent), s.Deadline().Sub(now))
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

// end ends the session with err, unless it ended already, and reports
// whether this call ended it.
func (s *Session) end(err error) (ended bool) {
	s.endOnce.Do(func() {
		ended = true
		s.err.Store(&err)
		close(s.done)
		if errors.Is(err, ErrClosed) {
			return
		}
		expired := errors.Is(err, ErrExpired)
		s.in.lost(expired)
		s.in.log.Warn("session: lease lost", slog.String(obs.KeyLease, fmt.Sprintf("%x", int64(s.id))),
			slog.Duration("ttl", s.opts.ttl), slog.Any(obs.KeyErr, err))
	})
	return ended
}
