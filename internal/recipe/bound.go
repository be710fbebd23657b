package recipe

import (
	"context"
	"errors"

	"github.com/rosterkit/roster/session"
)

// bound returns a context that is also cancelled when the session ends, so
// that a request stuck behind a partition gives up at the session's
// deadline rather than at the caller's. stop releases it and waits for the
// goroutine that ties the two.
func bound(ctx context.Context, s *session.Session) (bctx context.Context, stop func()) {
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-s.Done():
			cancel()
		case <-bctx.Done():
		}
	}()
	return bctx, func() {
		cancel()
		<-done
	}
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
