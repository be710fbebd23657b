package discovery

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// Defaults of the Discoverer options.
const (
	// DefaultPageSize is how many keys one Get of a list reads, so that a
	// large service does not need one huge response. Not much fewer: etcd
	// counts the keys after each page, so small pages make a large list
	// slow.
	DefaultPageSize = 25000
)

// Option configures a Discoverer. A zero value means the default; a
// negative or otherwise impossible one makes New fail with an error
// wrapping roster.ErrInvalidOption.
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

type config struct {
	namespace        string
	progressInterval time.Duration
	backoffMin       time.Duration
	backoffMax       time.Duration
	pageSize         int
	logger           *slog.Logger
	meterProvider    metric.MeterProvider
}

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("discovery: %w: %s", roster.ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	if c.namespace == "" {
		c.namespace = keys.DefaultNamespace
	}
	if err := keys.ValidateNamespace(c.namespace); err != nil {
		return c, fmt.Errorf("discovery: %w", err)
	}
	switch {
	case c.progressInterval == 0:
		c.progressInterval = roster.DefaultProgressInterval
	case c.progressInterval < roster.MinProgressInterval:
		return c, invalid("WithProgressInterval(%v): below %v", c.progressInterval, roster.MinProgressInterval)
	}
	if c.backoffMin < 0 || c.backoffMax < 0 {
		return c, invalid("WithBackoff(%v, %v): negative", c.backoffMin, c.backoffMax)
	}
	if c.backoffMin > 0 && c.backoffMax > 0 && c.backoffMax < c.backoffMin {
		return c, invalid("WithBackoff(%v, %v): max below min", c.backoffMin, c.backoffMax)
	}
	if c.backoffMin == 0 {
		c.backoffMin = roster.DefaultBackoffMin
	}
	if c.backoffMax == 0 {
		c.backoffMax = max(roster.DefaultBackoffMax, c.backoffMin)
	}
	c.backoffMin = min(c.backoffMin, c.backoffMax) // WithBackoff(0, max) with a max below the default min
	switch {
	case c.pageSize == 0:
		c.pageSize = DefaultPageSize
	case c.pageSize < 0:
		return c, invalid("WithPageSize(%d): negative", c.pageSize)
	}
	return c, nil
}

// WithNamespace sets the key namespace the registry writes under;
// "" means roster.DefaultNamespace.
func WithNamespace(ns string) Option { return option(func(c *config) { c.namespace = ns }) }

// WithProgressInterval sets how long a watch may stay silent before the
// cache makes sure it is current (default roster.DefaultProgressInterval, at
// least roster.MinProgressInterval). Staleness is reported within about
// twice the interval, at the cost of one small read per idle interval per
// followed service. See the package doc.
func WithProgressInterval(d time.Duration) Option {
	return option(func(c *config) { c.progressInterval = d })
}

// WithBackoff bounds the jittered exponential pause between attempts to
// list again while etcd is unreachable (roster.DefaultBackoffMin and
// roster.DefaultBackoffMax).
func WithBackoff(min, max time.Duration) Option {
	return option(func(c *config) { c.backoffMin, c.backoffMax = min, max })
}

// WithPageSize sets how many keys one Get reads while listing
// (DefaultPageSize).
func WithPageSize(n int) Option { return option(func(c *config) { c.pageSize = n }) }
