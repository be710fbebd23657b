package discovery

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/rosterkit/roster"
)

// Defaults of the picker options.
const (
	// DefaultEjectAfter is how many consecutive failed calls eject an
	// instance from picking.
	DefaultEjectAfter = 5
	// DefaultEjectFor is how long an ejected instance stays out.
	DefaultEjectFor = 30 * time.Second
	// DefaultVirtualNodes is how many points each instance has on a
	// ConsistentHash ring.
	DefaultVirtualNodes = 100
	// MaxVirtualNodes is the most points per instance WithVirtualNodes
	// accepts.
	MaxVirtualNodes = 10000
)

// PickerOption configures a picker. A zero value means the default; a
// negative or otherwise impossible one makes the constructor fail with an
// error wrapping roster.ErrInvalidOption.
type PickerOption interface{ applyPicker(*pickerConfig) }

type pickerOption func(*pickerConfig)

func (f pickerOption) applyPicker(c *pickerConfig) { f(c) }

type pickerConfig struct {
	filter     Filter
	ejectAfter int
	ejectFor   time.Duration
	noEject    bool
	now        func() time.Time
	vnodes     int

	logger        *slog.Logger
	loggerSet     bool
	meterProvider metric.MeterProvider
	meterSet      bool
}

func newPickerConfig(kind string, opts []PickerOption) (pickerConfig, error) {
	var c pickerConfig
	for _, o := range opts {
		if o != nil {
			o.applyPicker(&c)
		}
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("discovery: %s: %w: %s", kind, roster.ErrInvalidOption, fmt.Sprintf(format, args...))
	}
	if c.ejectAfter < 0 || c.ejectFor < 0 {
		return c, invalid("WithEjection(%d, %v): negative", c.ejectAfter, c.ejectFor)
	}
	if c.ejectAfter == 0 {
		c.ejectAfter = DefaultEjectAfter
	}
	if c.ejectFor == 0 {
		c.ejectFor = DefaultEjectFor
	}
	if c.noEject {
		c.ejectAfter = 0
	}
	switch {
	case c.vnodes == 0:
		c.vnodes = DefaultVirtualNodes
	case c.vnodes < 0 || c.vnodes > MaxVirtualNodes:
		return c, invalid("WithVirtualNodes(%d): outside 1..%d", c.vnodes, MaxVirtualNodes)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// WithFilter restricts picking to instances f accepts, e.g.
// MatchMetadata(map[string]string{"zone": "eu-1"}). Instances that are not
// serving (draining) are never picked, whatever the filter.
func WithFilter(f Filter) PickerOption { return pickerOption(func(c *pickerConfig) { c.filter = f }) }

// WithEjection sets passive health checking: after failures consecutive
// calls reported failed through Picked.Done (DefaultEjectAfter), the
// instance is not picked for cooldown (DefaultEjectFor). The last usable
// instance is never ejected.
func WithEjection(failures int, cooldown time.Duration) PickerOption {
	return pickerOption(func(c *pickerConfig) { c.ejectAfter, c.ejectFor = failures, cooldown })
}

// WithoutEjection turns outlier ejection off.
func WithoutEjection() PickerOption { return pickerOption(func(c *pickerConfig) { c.noEject = true }) }

// WithClock replaces time.Now for ejection timing, for tests.
func WithClock(now func() time.Time) PickerOption {
	return pickerOption(func(c *pickerConfig) { c.now = now })
}

// WithVirtualNodes sets how many ring points each instance gets in a
// ConsistentHash (DefaultVirtualNodes). More points spread keys more
// evenly; each costs about 20 bytes, and work when its instance comes or
// goes.
func WithVirtualNodes(n int) PickerOption {
	return pickerOption(func(c *pickerConfig) { c.vnodes = n })
}

// TelemetryOption is an option of both a Discoverer and a picker.
type TelemetryOption struct {
	d func(*config)
	p func(*pickerConfig)
}

func (o TelemetryOption) apply(c *config)             { o.d(c) }
func (o TelemetryOption) applyPicker(c *pickerConfig) { o.p(c) }

// WithLogger sets where a Discoverer logs its views' changes of state
// (re-listed, stale, current again), or a picker its ejections; nil
// discards them. A picker over a Cache logs where its Discoverer does,
// unless given its own.
func WithLogger(l *slog.Logger) TelemetryOption {
	return TelemetryOption{
		d: func(c *config) { c.logger = l },
		p: func(c *pickerConfig) { c.logger, c.loggerSet = l, true },
	}
}

// WithMeterProvider sets where a Discoverer's or a picker's metrics go;
// nil means OpenTelemetry's global provider. A picker over a Cache uses
// its Discoverer's, unless given its own.
func WithMeterProvider(mp metric.MeterProvider) TelemetryOption {
	return TelemetryOption{
		d: func(c *config) { c.meterProvider = mp },
		p: func(c *pickerConfig) { c.meterProvider, c.meterSet = mp, true },
	}
}
