package session

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
)

// minMargin keeps a short TTL's margin above timer and scheduling delays
// (GC pauses, a starved CPU) that postpone noticing the deadline.
const minMargin = 500 * time.Millisecond

// An Option configures a Session or Manager. A zero value means the
// default; a negative one is an error wrapping roster.ErrInvalidOption.
type Option func(*options)

type options struct {
	ttl      time.Duration
	margin   time.Duration
	interval time.Duration
	logger   *slog.Logger
	meters   metric.MeterProvider
	inst     *instruments // set by a Manager, so its sessions share instruments
}

// WithTTL sets the lease TTL, rounded up to whole seconds (etcd's unit).
// The default is roster.DefaultTTL; below roster.MinTTL is refused.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithMargin sets how long before the computed expiry the lease is presumed
// lost. The default is a fifth of the TTL, at least 500 ms.
func WithMargin(m time.Duration) Option { return func(o *options) { o.margin = m } }

// WithKeepAliveInterval sets how often the lease is renewed. The default is
// a third of the TTL, as in etcd. It must be shorter than the TTL less the
// margin.
func WithKeepAliveInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithLogger logs the session's state changes (lease lost, revoked after a
// loss) to l; never one record per keep-alive. nil discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider records the session's metrics with mp; nil means
// OpenTelemetry's global provider.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meters = mp } }

func newOptions(opts []Option) (options, error) {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	switch {
	case o.ttl < 0:
		return o, fmt.Errorf("%w: WithTTL(%v) is negative", ErrInvalidTTL, o.ttl)
	case o.margin < 0:
		return o, fmt.Errorf("%w: WithMargin(%v) is negative", ErrInvalidTTL, o.margin)
	case o.interval < 0:
		return o, fmt.Errorf("%w: WithKeepAliveInterval(%v) is negative", ErrInvalidTTL, o.interval)
	case o.ttl == 0:
		o.ttl = roster.DefaultTTL
	case o.ttl < roster.MinTTL:
		return o, fmt.Errorf("%w: WithTTL(%v) is below the minimum %v", ErrInvalidTTL, o.ttl, roster.MinTTL)
	}
	o.ttl = (o.ttl + time.Second - 1).Truncate(time.Second)
	if o.margin == 0 {
		o.margin = max(o.ttl/5, minMargin)
	}
	if o.margin >= o.ttl/2 {
		return o, fmt.Errorf("%w: margin %v must be under half the TTL %v", ErrInvalidTTL, o.margin, o.ttl)
	}
	if o.interval == 0 {
		o.interval = o.ttl / 3
	}
	if o.interval >= o.ttl-o.margin {
		// The first renewal would come after the deadline it renews.
		return o, fmt.Errorf("%w: keep-alive interval %v must be under the TTL %v less the margin %v",
			ErrInvalidTTL, o.interval, o.ttl, o.margin)
	}
	return o, nil
}

// ValidateTTL reports whether ttl is usable as a session TTL: zero (the
// default) or at least roster.MinTTL.
func ValidateTTL(ttl time.Duration) error {
	_, err := newOptions([]Option{WithTTL(ttl)})
	return err
}
