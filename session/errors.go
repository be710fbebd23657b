package session

import "errors"

var (
	// ErrInvalidTTL is returned for a TTL etcd cannot honour, or a margin or
	// keep-alive interval that does not fit within the TTL.
	ErrInvalidTTL = errors.New("session: invalid TTL")
	// ErrExpired means no keep-alive was acknowledged in time: the lease may
	// have expired on the server, so whatever it guarded must be presumed lost.
	ErrExpired = errors.New("session: lease presumed expired: no keep-alive acknowledged before the local deadline")
	// ErrLeaseGone means etcd answered that the lease does not exist: it was
	// revoked by someone, expired, or lost with the cluster's data.
	ErrLeaseGone = errors.New("session: lease no longer exists in etcd")
	// ErrClosed means the session or manager was closed by its owner.
	ErrClosed = errors.New("session: closed")
)
