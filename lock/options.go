package lock

import (
	"fmt"
	"time"

	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/session"
)

// DefaultTTL is the lease TTL of a lock's own session, as etcdctl lock
// uses: a holder that dies frees the lock within about this long.
const DefaultTTL = 10 * time.Second

// An Option configures a Mutex, Semaphore or RWMutex.
type Option func(*config)

type config struct {
	namespace string
	ttl       time.Duration
	sessions  *session.Manager
}

// WithNamespace sets the key namespace (default "/roster"). It must pass
// the namespace rules: start with '/', not end with one.
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithTTL sets the TTL of the lease the lock's own session keeps alive
// (default DefaultTTL, at least session.MinTTL). A shorter TTL frees the
// lock of a dead holder sooner, and makes a holder that cannot reach etcd
// give up sooner.
func WithTTL(ttl time.Duration) Option { return func(c *config) { c.ttl = ttl } }

// WithSessionManager makes the lock take its sessions from m, shared with
// other locks and elections, instead of keeping a session of its own. The
// lock does not close m. It cannot be combined with WithTTL: m's sessions
// have their own.
func WithSessionManager(m *session.Manager) Option { return func(c *config) { c.sessions = m } }

func newConfig(opts []Option) (config, error) {
	c := config{namespace: keys.DefaultNamespace}
	for _, o := range opts {
		o(&c)
	}
	if err := keys.ValidateNamespace(c.namespace); err != nil {
		return c, err
	}
	switch {
	case c.sessions != nil && c.ttl != 0:
		return c, fmt.Errorf("%w: WithTTL and WithSessionManager together", ErrInvalidOption)
	case c.sessions != nil:
		return c, nil
	case c.ttl == 0:
		c.ttl = DefaultTTL
	}
	if err := session.ValidateTTL(c.ttl); err != nil {
		return c, err
	}
	return c, nil
}
