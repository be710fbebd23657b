package discovery

import (
	"time"

	"github.com/rosterkit/roster/internal/keys"
)

// Defaults of the Discoverer options.
const (
	// DefaultProgressInterval is how long a cache's watch may stay silent
	// before the cache checks that it is still current. Staleness is
	// bounded by about twice this interval.
	DefaultProgressInterval = 5 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the backoff between
	// attempts to re-list while etcd is unreachable.
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
	// DefaultPageSize is how many keys one Get of the initial list reads,
	// so a large service does not need one huge response.
	DefaultPageSize = 5000
)

// Option configures a Discoverer.
type Option func(*config)

type config struct {
	namespace        string
	progressInterval time.Duration
	retryMin         time.Duration
	retryMax         time.Duration
	pageSize         int64
}

func newConfig(opts []Option) config {
	c := config{
		namespace:        keys.DefaultNamespace,
		progressInterval: DefaultProgressInterval,
		retryMin:         DefaultRetryMin,
		retryMax:         DefaultRetryMax,
		pageSize:         DefaultPageSize,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.progressInterval <= 0 {
		c.progressInterval = DefaultProgressInterval
	}
	if c.retryMin <= 0 {
		c.retryMin = DefaultRetryMin
	}
	if c.retryMax < c.retryMin {
		c.retryMax = max(c.retryMin, DefaultRetryMax)
	}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	return c
}

// WithNamespace sets the key namespace the registry writes under
// (default "/roster"). It must pass keys.ValidateNamespace rules: start
// with '/', not end with one.
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithProgressInterval sets how long a watch may stay silent before the
// cache verifies it is current: it reads the store revision with a
// linearizable Get and, if etcd moved on, asks the watch for a progress
// notification; a watch that still says nothing one interval later is
// restarted. The interval therefore bounds how stale a cache can be
// without knowing it (about twice the interval), at the cost of one small
// read per idle interval per service. Non-positive values mean
// DefaultProgressInterval.
//
// Progress requests go to the client's watch stream for contexts made
// with clientv3.WithRequireLeader, and etcd answers them on every watch of
// that stream: your own watches on the same client with such a context
// may see extra progress notifications (WatchResponse.IsProgressNotify).
func WithProgressInterval(d time.Duration) Option {
	return func(c *config) { c.progressInterval = d }
}

// WithRetryBackoff bounds the jittered exponential backoff between
// attempts to re-list a service while etcd is unreachable.
func WithRetryBackoff(minDelay, maxDelay time.Duration) Option {
	return func(c *config) { c.retryMin, c.retryMax = minDelay, maxDelay }
}

// WithPageSize sets how many keys one Get reads while listing a service.
func WithPageSize(n int) Option { return func(c *config) { c.pageSize = int64(n) } }
