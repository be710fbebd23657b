package discovery

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrNoInstances is returned by pickers when the cache holds no
	// instance that is serving and passes the picker's filter. It is not
	// caused by ejection: a picker never ejects its last instance.
	ErrNoInstances = errors.New("discovery: no instances available")

	// ErrClosed is returned by calls on a closed Discoverer, Cache or
	// ServiceSet, and by those whose etcd client was closed. It wraps
	// roster.ErrClosed.
	ErrClosed = fmt.Errorf("discovery: %w", roster.ErrClosed)

	// ErrStale is wrapped by Cache.Err and ServiceSet.Err while the view
	// could not be confirmed against etcd within its bound (about twice
	// the progress interval): etcd, or the path to it, does not answer.
	// The last view is served meanwhile. It wraps roster.ErrStale.
	ErrStale = fmt.Errorf("discovery: %w", roster.ErrStale)
)
