package lock

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/rosterkit/roster/session"
)

// leaseErr explains a write that etcd refused because the lease is gone:
// a renewal ends the session now, and its error is returned.
func leaseErr(ctx context.Context, s *session.Session, err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		_ = s.Renew(ctx)
		if serr := s.Err(); serr != nil {
			return serr
		}
	}
	return err
}
