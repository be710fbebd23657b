package election

import (
	"time"

	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// An Option configures an Election.
type Option func(*options)

type options struct {
	ns  string
	mgr *session.Manager
	ttl time.Duration
}

// WithNamespace puts the election under ns instead of keys.DefaultNamespace.
func WithNamespace(ns string) Option { return func(o *options) { o.ns = ns } }

// WithSessionManager makes the election ride on m's sessions, so that the
// elections and locks of one process share a lease. The caller keeps
// ownership of m: Close does not close it. Elections sharing a Manager must
// have distinct names, since a lease has one key per election: New returns
// ErrSharedName for a second open one.
func WithSessionManager(m *session.Manager) Option { return func(o *options) { o.mgr = m } }

// WithTTL sets the lease TTL of the election's own sessions (default
// DefaultTTL). A candidate that dies hands over within about the TTL; a
// leader cut off from etcd learns of it a margin before the TTL. Ignored
// with WithSessionManager.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// DefaultTTL is the lease TTL when neither WithTTL nor WithSessionManager is
// given.
const DefaultTTL = 10 * time.Second

func newOptions(opts []Option) options {
	o := options{ns: keys.DefaultNamespace, ttl: DefaultTTL}
	for _, f := range opts {
		f(&o)
	}
	return o
}
