package registry

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
)

// An Option configures a Registrar. A zero value means the default; a
// negative or out-of-range one makes New fail with an error wrapping
// roster.ErrInvalidOption.
type Option func(*options)

type options struct {
	ttl        time.Duration
	ns         string
	bmin, bmax time.Duration
	logger     *slog.Logger
	meters     metric.MeterProvider

	backoff backoff.Backoff // from bmin and bmax
}

// maxTTL is etcd's longest lease TTL.
const maxTTL = 9_000_000_000 * time.Second

// WithTTL sets the TTL of the registrar's lease, rounded up to whole
// seconds: how long a crashed process stays listed. The default is
// roster.DefaultTTL; below roster.MinTTL is refused.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithNamespace sets the key namespace, roster.DefaultNamespace by default.
// Discovery must use the same one.
func WithNamespace(ns string) Option { return func(o *options) { o.ns = ns } }

// WithBackoff bounds the jittered exponential pause between attempts while
// etcd cannot be reached. The defaults are roster.DefaultBackoffMin and
// roster.DefaultBackoffMax; a max below min is refused.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.bmin, o.bmax = min, max }
}

// WithLogger logs the registrar's state changes to l: a lease lost or
// restored, a key lost or restored, a conflict, a drain requested. nil
// discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider records the registrar's metrics with mp; nil means
// OpenTelemetry's global provider, a no-op until one is installed.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meters = mp }
}

func newOptions(opts []Option) (options, error) {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	switch {
	case o.ttl == 0:
		o.ttl = roster.DefaultTTL
	case o.ttl < 0:
		return o, invalid("WithTTL(%v): negative", o.ttl)
	case o.ttl < roster.MinTTL:
		return o, invalid("WithTTL(%v): below the minimum %v", o.ttl, roster.MinTTL)
	case o.ttl > maxTTL:
		return o, invalid("WithTTL(%v): above etcd's maximum %v", o.ttl, maxTTL)
	}
	o.ttl = (o.ttl + time.Second - 1).Truncate(time.Second)
	if o.ns == "" {
		o.ns = roster.DefaultNamespace
	}
	if err := keys.ValidateNamespace(o.ns); err != nil {
		return o, fmt.Errorf("registry: %w: WithNamespace: %w", roster.ErrInvalidOption, err)
	}
	if o.bmin < 0 || o.bmax < 0 {
		return o, invalid("WithBackoff(%v, %v): negative", o.bmin, o.bmax)
	}
	if o.bmin > 0 && o.bmax > 0 && o.bmax < o.bmin {
		return o, invalid("WithBackoff(%v, %v): max below min", o.bmin, o.bmax)
	}
	if o.bmin == 0 {
		o.bmin = roster.DefaultBackoffMin
	}
	if o.bmax == 0 {
		o.bmax = max(roster.DefaultBackoffMax, o.bmin)
	}
	o.backoff = backoff.Backoff{Min: o.bmin, Max: max(o.bmax, o.bmin)}
	return o, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("registry: %w: "+format, append([]any{roster.ErrInvalidOption}, args...)...)
}
