package session

import (
	"fmt"
	"time"
)

const (
	// DefaultTTL is the lease TTL when WithTTL is not given.
	DefaultTTL = 10 * time.Second
	// MinTTL is the shortest TTL accepted. etcd raises shorter TTLs to its own
	// minimum (1.5 election timeouts, 1.5 s by default), which would silently
	// differ from what the caller asked for.
	MinTTL = 2 * time.Second
	// minMargin keeps a short TTL's margin above timer and scheduling delays
	// (GC pauses, a starved CPU) that postpone noticing the deadline.
	minMargin = 500 * time.Millisecond
)

// An Option configures a Session or Manager.
type Option func(*options)

type options struct {
	ttl      time.Duration
	margin   time.Duration
	interval time.Duration
}

// WithTTL sets the lease TTL, rounded up to whole seconds (etcd's unit). The
// default is DefaultTTL; less than MinTTL is refused.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithMargin sets how long before the computed expiry the lease is presumed
// lost. The default is a fifth of the TTL, at least 500 ms.
func WithMargin(m time.Duration) Option { return func(o *options) { o.margin = m } }

// WithKeepAliveInterval sets how often the lease is renewed. The default is a
// third of the TTL, as in etcd, so two renewals in a row may fail unnoticed.
// It must be shorter than the TTL less the margin.
func WithKeepAliveInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

func newOptions(opts []Option) (options, error) {
	o := options{ttl: DefaultTTL}
	for _, f := range opts {
		f(&o)
	}
	if o.ttl < MinTTL {
		return o, fmt.Errorf("%w: %v is below the minimum %v", ErrInvalidTTL, o.ttl, MinTTL)
	}
	o.ttl = (o.ttl + time.Second - 1).Truncate(time.Second)
	if o.margin <= 0 {
		o.margin = max(o.ttl/5, minMargin)
	}
	if o.margin >= o.ttl/2 {
		return o, fmt.Errorf("%w: margin %v must be under half the TTL %v", ErrInvalidTTL, o.margin, o.ttl)
	}
	if o.interval <= 0 {
		o.interval = o.ttl / 3
	}
	if o.interval >= o.ttl-o.margin {
		// The first renewal would come after the deadline it renews.
		return o, fmt.Errorf("%w: keep-alive interval %v must be under the TTL %v less the margin %v",
			ErrInvalidTTL, o.interval, o.ttl, o.margin)
	}
	return o, nil
}

// ValidateTTL reports whether ttl is usable as a session TTL.
func ValidateTTL(ttl time.Duration) error {
	_, err := newOptions([]Option{WithTTL(ttl)})
	return err
}
