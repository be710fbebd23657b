package registry

import (
	"fmt"
	"time"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// Defaults for the options.
const (
	// DefaultTTL is the lease TTL when WithTTL is not given: a dead process
	// disappears from discovery at most this long after its last renewal.
	DefaultTTL = 10 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the pause between recovery
	// attempts while etcd cannot be reached. The cap is low so a registrar
	// is back within about a second of etcd; raise it with WithBackoff for
	// fleets large enough that their retries would load a recovering etcd.
	DefaultRetryMin = 50 * time.Millisecond
	DefaultRetryMax = time.Second
)

// An Option configures a Registrar.
type Option func(*options)

type options struct {
	ttl     time.Duration
	ns      string
	backoff backoff.Backoff
}

// WithTTL sets the TTL of the registrar's lease, rounded up to whole
// seconds. The default is DefaultTTL; less than session.MinTTL is refused.
// A shorter TTL removes a crashed process sooner and costs more renewals.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithNamespace sets the key namespace, "/roster" by default. Discovery
// must use the same one.
func WithNamespace(ns string) Option { return func(o *options) { o.ns = ns } }

// WithBackoff sets the jittered exponential pause between recovery
// attempts while etcd cannot be reached: from min, doubling, up to max.
// Zero or negative values keep DefaultRetryMin and DefaultRetryMax; a max
// below min is raised to min.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) {
		if min > 0 {
			o.backoff.Min = min
		}
		if max > 0 {
			o.backoff.Max = max
		}
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{
		ttl:     DefaultTTL,
		ns:      keys.DefaultNamespace,
		backoff: backoff.Backoff{Min: DefaultRetryMin, Max: DefaultRetryMax},
	}
	for _, f := range opts {
		f(&o)
	}
	if o.ttl == 0 {
		o.ttl = DefaultTTL
	}
	if err := session.ValidateTTL(o.ttl); err != nil {
		return o, fmt.Errorf("registry: %w", err)
	}
	if err := keys.ValidateNamespace(o.ns); err != nil {
		return o, fmt.Errorf("registry: %w", err)
	}
	o.backoff.Max = max(o.backoff.Max, o.backoff.Min)
	return o, nil
}
