package discovery

import "errors"

// Sentinel errors, usable with errors.Is.
var (
	// ErrNoInstances is returned by pickers when the cache holds no
	// instance that is serving and passes the picker's filter. It is not
	// caused by ejection: a picker never ejects its last instance.
	ErrNoInstances = errors.New("discovery: no instances available")

	// ErrClosed is returned by calls on a Cache, Subscription or
	// Discoverer that has been closed.
	ErrClosed = errors.New("discovery: closed")

	// ErrStale reports that a cache's watch went silent: neither events
	// nor progress notifications arrived although etcd had moved on, so the
	// cache restarted it. Cache.Err returns it (wrapped) until the cache is
	// current again.
	ErrStale = errors.New("discovery: watch stale")
)
