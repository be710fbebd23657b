package election

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// An Option configures an Election. A zero value means the default; a
// negative one is an error wrapping roster.ErrInvalidOption.
type Option func(*options)

type options struct {
	ns       string
	mgr      *session.Manager
	ttl      time.Duration
	boMin    time.Duration
	boMax    time.Duration
	progress time.Duration
	logger   *slog.Logger
	meters   metric.MeterProvider
}

// WithNamespace puts the election under ns (default roster.DefaultNamespace).
func WithNamespace(ns string) Option { return func(o *options) { o.ns = ns } }

// WithSessionManager makes the election ride on m's sessions, so that the
// elections and locks of one process share a lease. The caller keeps m:
// Close does not close it. A second open Election of one name on m is
// refused (session.ErrNameInUse).
func WithSessionManager(m *session.Manager) Option { return func(o *options) { o.mgr = m } }

// WithTTL sets the lease TTL of the election's own sessions (default
// roster.DefaultTTL): a dead leader is followed within about the TTL. It
// contradicts WithSessionManager, whose sessions have their own.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithBackoff bounds the pauses between failed campaigns, in Campaign and
// Run, and between Observe's failed reads (default roster.DefaultBackoffMin
// and roster.DefaultBackoffMax).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.boMin, o.boMax = min, max }
}

// WithProgressInterval sets how long Observe's watch may stay silent before
// it checks that it is current (default roster.DefaultProgressInterval, at
// least roster.MinProgressInterval). Observe reports a state it cannot
// confirm within about twice the interval as stale (Leader.Err).
func WithProgressInterval(d time.Duration) Option { return func(o *options) { o.progress = d } }

// WithLogger logs leadership gained and lost, with the cause; nil discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider records the election's metrics with mp; nil means
// OpenTelemetry's global provider.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meters = mp } }

func newOptions(opts []Option) (options, error) {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.ns == "" {
		o.ns = roster.DefaultNamespace
	}
	if err := keys.ValidateNamespace(o.ns); err != nil {
		return o, fmt.Errorf("election: %w", err)
	}
	switch {
	case o.ttl != 0 && o.mgr != nil:
		return o, fmt.Errorf("election: %w: WithTTL(%v) and WithSessionManager together: the manager's sessions have their own TTL",
			roster.ErrInvalidOption, o.ttl)
	case o.boMin < 0 || o.boMax < 0:
		return o, fmt.Errorf("election: %w: WithBackoff(%v, %v): negative", roster.ErrInvalidOption, o.boMin, o.boMax)
	case o.boMax != 0 && o.boMax < o.boMin:
		return o, fmt.Errorf("election: %w: WithBackoff(%v, %v): max below min", roster.ErrInvalidOption, o.boMin, o.boMax)
	case o.progress < 0 || (o.progress > 0 && o.progress < roster.MinProgressInterval):
		return o, fmt.Errorf("election: %w: WithProgressInterval(%v): below %v", roster.ErrInvalidOption, o.progress, roster.MinProgressInterval)
	}
	if o.boMin == 0 {
		o.boMin = roster.DefaultBackoffMin
	}
	if o.boMax == 0 {
		o.boMax = max(roster.DefaultBackoffMax, o.boMin)
	}
	if o.progress == 0 {
		o.progress = roster.DefaultProgressInterval
	}
	return o, nil
}

func (o options) backoff() backoff.Backoff { return backoff.Backoff{Min: o.boMin, Max: o.boMax} }
