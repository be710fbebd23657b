package lock

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// An Option configures a Mutex, Semaphore or RWMutex. A zero value means
// the default; a negative one is an error wrapping roster.ErrInvalidOption.
type Option func(*config)

type config struct {
	namespace string
	ttl       time.Duration
	sessions  *session.Manager
	logger    *slog.Logger
	meters    metric.MeterProvider
}

// WithNamespace sets the key namespace (default roster.DefaultNamespace).
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithTTL sets the lease TTL of the lock's own session (default
// roster.DefaultTTL, at least roster.MinTTL): a dead holder frees the lock
// within about the TTL. It contradicts WithSessionManager.
func WithTTL(ttl time.Duration) Option { return func(c *config) { c.ttl = ttl } }

// WithSessionManager makes the lock take its sessions from m, shared with
// other locks and elections. The caller keeps m: Close does not close it. A
// second open lock of one kind and name on m is refused
// (session.ErrNameInUse).
func WithSessionManager(m *session.Manager) Option { return func(c *config) { c.sessions = m } }

// WithLogger logs holds lost, with the cause; nil discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider records the lock's metrics with mp; nil means
// OpenTelemetry's global provider.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.meters = mp } }

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.namespace == "" {
		c.namespace = roster.DefaultNamespace
	}
	if err := keys.ValidateNamespace(c.namespace); err != nil {
		return c, fmt.Errorf("lock: %w", err)
	}
	if c.sessions != nil && c.ttl != 0 {
		return c, fmt.Errorf("lock: %w: WithTTL(%v) and WithSessionManager together: the manager's sessions have their own TTL",
			roster.ErrInvalidOption, c.ttl)
	}
	if err := session.ValidateTTL(c.ttl); err != nil {
		return c, fmt.Errorf("lock: %w", err)
	}
	return c, nil
}
