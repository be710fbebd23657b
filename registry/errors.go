package registry

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
)

var (
	// ErrDuplicate means another owner holds the instance's key: another
	// registrar's live lease (a second process started with the same service
	// and ID, most likely) or a key without a lease. It is never
	// overwritten.
	ErrDuplicate = errors.New("registry: instance registered by another owner")

	// ErrNotRegistered means the instance is not registered by this
	// registrar.
	ErrNotRegistered = errors.New("registry: instance not registered here")

	// ErrClosed means the registrar was closed. It wraps roster.ErrClosed.
	ErrClosed = fmt.Errorf("registry: %w", roster.ErrClosed)

	// ErrKeyDeleted is the cause in an EventLost for one instance: someone
	// else deleted its key. It wraps roster.ErrLost.
	ErrKeyDeleted = fmt.Errorf("registry: key deleted by someone else: %w", roster.ErrLost)
)

// errClientClosed means the etcd client was closed under the registrar:
// nothing can be sent any more.
var errClientClosed = fmt.Errorf("etcd client closed: %w", roster.ErrClosed)

// lostErr is the cause of a lease loss as an EventLost and Status report
// it: it wraps roster.ErrLost and the session's error.
func lostErr(lease int64, cause error) error {
	if errors.Is(cause, roster.ErrLost) {
		return fmt.Errorf("registry: lease %x: %w", lease, cause)
	}
	return fmt.Errorf("registry: lease %x: %w: %w", lease, roster.ErrLost, cause)
}
