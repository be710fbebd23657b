package registry

import "errors"

var (
	// ErrDuplicate means another owner holds the instance's key: another
	// registrar's live lease (most likely a second process started with the
	// same service and ID), or a key written without a lease. The registrar
	// never overwrites it; the error names the holding lease.
	ErrDuplicate = errors.New("registry: instance registered by another owner")

	// ErrNotRegistered means the instance is not registered by this
	// registrar.
	ErrNotRegistered = errors.New("registry: instance not registered here")

	// ErrClosed means the registrar was closed.
	ErrClosed = errors.New("registry: registrar closed")
)
