package rostergrpc

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
)

// DefaultResolveInterval is the shortest time between two checks that
// ResolveNow asks for.
const DefaultResolveInterval = time.Second

// An Option configures a ResolverBuilder or a Health. A zero value means
// the default; a negative one makes the constructor fail with an error
// wrapping roster.ErrInvalidOption.
type Option func(*config)

type config struct {
	logger          *slog.Logger
	meterProvider   metric.MeterProvider
	resolveInterval time.Duration
}

// WithLogger sets where state changes are logged: a resolver's view ending
// or coming back, a health status changing, and, through the resolver, the
// balancers' ejections. nil discards them.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMeterProvider sets where the balancers' pickers on the resolver's
// connections record their metrics (discovery's picker metrics); nil means
// OpenTelemetry's global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithResolveInterval sets the shortest time between two checks that
// ResolveNow asks for (DefaultResolveInterval): gRPC asks on every failed
// connection.
func WithResolveInterval(d time.Duration) Option {
	return func(c *config) { c.resolveInterval = d }
}

func newConfig(what string, opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	switch {
	case c.resolveInterval == 0:
		c.resolveInterval = DefaultResolveInterval
	case c.resolveInterval < 0:
		return c, fmt.Errorf("rostergrpc: %s: %w: WithResolveInterval(%v): negative", what, roster.ErrInvalidOption, c.resolveInterval)
	}
	return c, nil
}
