package session

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
)

var (
	// ErrInvalidTTL reports a TTL etcd cannot honour, or a margin or
	// keep-alive interval that does not fit within the TTL. It wraps
	// roster.ErrInvalidOption.
	ErrInvalidTTL = fmt.Errorf("session: invalid TTL: %w", roster.ErrInvalidOption)

	// ErrExpired means no keep-alive was acknowledged before the local
	// deadline: the lease may have expired on the server, so whatever it
	// guarded must be presumed lost. It wraps roster.ErrLost.
	ErrExpired = fmt.Errorf("session: lease presumed expired: no keep-alive acknowledged before the local deadline: %w", roster.ErrLost)

	// ErrLeaseGone means etcd answered that the lease does not exist: it was
	// revoked by someone, expired, or lost with the cluster's data. It wraps
	// roster.ErrLost.
	ErrLeaseGone = fmt.Errorf("session: lease no longer exists in etcd: %w", roster.ErrLost)

	// ErrClosed means the session or manager was closed by its owner. It
	// wraps roster.ErrClosed, not roster.ErrLost.
	ErrClosed = fmt.Errorf("session: %w", roster.ErrClosed)

	// ErrNameInUse is returned by Manager.Claim for a name already claimed:
	// two elections or locks of one name on one lease would share a key.
	ErrNameInUse = errors.New("session: name already in use on this manager")
)
