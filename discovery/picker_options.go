package discovery

import "time"

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
	// maxRingPoints caps a ring's size, so a very large service costs at
	// most a few tens of megabytes; instances then get fewer points each.
	maxRingPoints = 1 << 21
)

// PickerOption configures a picker.
type PickerOption func(*pickerConfig)

type pickerConfig struct {
	filter     Filter
	ejectAfter int
	ejectFor   time.Duration
	now        func() time.Time
	vnodes     int
}

func newPickerConfig(opts []PickerOption) pickerConfig {
	c := pickerConfig{
		ejectAfter: DefaultEjectAfter,
		ejectFor:   DefaultEjectFor,
		now:        time.Now,
		vnodes:     DefaultVirtualNodes,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.vnodes <= 0 {
		c.vnodes = DefaultVirtualNodes
	}
	return c
}

// WithFilter restricts picking to instances f accepts, e.g.
// MatchMetadata(map[string]string{"zone": "eu-1"}). Instances that are not
// serving (draining) are never picked, whatever the filter.
func WithFilter(f Filter) PickerOption { return func(c *pickerConfig) { c.filter = f } }

// WithEjection sets passive health checking: after failures consecutive
// calls reported failed through Picked.Done, the instance is not picked
// for cooldown. The last usable instance is never ejected. failures <= 0
// turns ejection off.
func WithEjection(failures int, cooldown time.Duration) PickerOption {
	return func(c *pickerConfig) { c.ejectAfter, c.ejectFor = failures, cooldown }
}

// WithClock replaces time.Now for ejection timing, for tests.
func WithClock(now func() time.Time) PickerOption { return func(c *pickerConfig) { c.now = now } }

// WithVirtualNodes sets how many ring points each instance gets in a
// ConsistentHash (default DefaultVirtualNodes). More points spread keys
// more evenly at the cost of memory and rebuild time.
func WithVirtualNodes(n int) PickerOption { return func(c *pickerConfig) { c.vnodes = n } }
