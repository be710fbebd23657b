package roster

import "time"

// Defaults shared by every package, so that one option means the same
// everywhere it exists. An option given its zero value takes the default.
const (
	// DefaultNamespace is the key namespace when WithNamespace is not given
	// or is given "".
	DefaultNamespace = "/roster"

	// DefaultTTL is the lease TTL of registrations, elections and locks: a
	// process that dies frees what it held within about this long.
	DefaultTTL = 10 * time.Second

	// MinTTL is the shortest TTL accepted. etcd raises shorter TTLs to its
	// own minimum (1.5 election timeouts, 1.5 s by default), which would
	// silently differ from what was asked for.
	MinTTL = 2 * time.Second

	// DefaultBackoffMin and DefaultBackoffMax bound the jittered exponential
	// backoff of every retry loop: re-registering, re-listing, re-campaigning
	// while etcd is unreachable.
	DefaultBackoffMin = 50 * time.Millisecond
	DefaultBackoffMax = 2 * time.Second

	// DefaultProgressInterval is how long a watch (a discovery cache, a
	// service listing, an election's Observe) may stay silent before it
	// checks with etcd that it is still current. Staleness is reported
	// within about twice this interval.
	DefaultProgressInterval = 5 * time.Second

	// MinProgressInterval is the shortest progress interval accepted.
	MinProgressInterval = 10 * time.Millisecond
)
