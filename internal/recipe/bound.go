package recipe

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rosterkit/roster/session"
)

// bound returns a context that is also cancelled when the session ends, so
// that a request stuck behind a partition gives up at the session's
// deadline rather than at the caller's. stop releases it, and with it the
// goroutine that ties the two; it does not wait for that goroutine, which
// would put a wake-up on the hand-over's path.
func bound(ctx context.Context, s *session.Session) (bctx context.Context, stop context.CancelFunc) {
	bctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-bctx.Done():
		}
	}()
	return bctx, cancel
}

// unanswered says a clean-up request failed for want of an answer, so it
// may be sent again later.
func unanswered(err error) bool {
	return err != nil && (Transient(err) || errors.Is(err, context.DeadlineExceeded) ||
		status.Code(err) == codes.DeadlineExceeded)
}

// explain replaces a cancellation caused by the session's end with the
// session's error, when the caller's own ctx is still live.
func explain(ctx context.Context, s *session.Session, err error) error {
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.Canceled) {
		return err
	}
	if serr := s.Err(); serr != nil {
		return serr
	}
	return err
}

// Put runs txn, a transaction that may put key under the session's lease,
// on a context that also ends with the session, so that a put stuck behind
// a partition gives up at the session's deadline. On failure it cleans up
// a put that may have been applied without its answer arriving: one whose
// context ended while it was in flight, or whose connection failed under
// it (Abandon, and sw if etcd does not answer that; needless once the
// session has ended, since the key goes with the lease). It first waits
// for sw's sweep of key, if one is pending, so that the sweep cannot
// delete the key it puts. It returns the session's error when the session
// is why it failed: ended meanwhile, or etcd saying the lease is gone.
func Put(ctx context.Context, s *session.Session, cli *clientv3.Client, key string, sw *Sweeper,
	txn func(context.Context) (*clientv3.TxnResponse, error)) (*clientv3.TxnResponse, error) {
	bctx, stop := bound(ctx, s)
	defer stop()
	if err := sw.Wait(bctx, key); err != nil {
		return nil, explain(ctx, s, err)
	}
	resp, err := txn(bctx)
	if err == nil {
		return resp, nil
	}
	if s.Err() == nil && (bctx.Err() != nil || Transient(err)) {
		if aerr := Abandon(cli, key, s.Lease()); unanswered(aerr) {
			sw.sweep(s, key, func(ctx context.Context) error { return abandon(ctx, cli, key, s.Lease()) })
		}
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		_ = s.Renew(ctx) // ends the session: etcd has just said the lease is gone
		if serr := s.Err(); serr != nil {
			return nil, serr
		}
	}
	return nil, explain(ctx, s, err)
}
