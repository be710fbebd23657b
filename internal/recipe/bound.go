package recipe

import (
	"context"
	"errors"

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
