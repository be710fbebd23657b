package embeddedtest

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/embedded"
)

// StartTimeout bounds how long a member may take to become ready.
const StartTimeout = 30 * time.Second

// Member is an embedded member started for a test. It can be stopped, killed and
// restarted on its data dir and addresses.
type Member struct {
	t    testing.TB
	opts []embedded.Option // fixed name, data dir and addresses

	mu  sync.Mutex
	srv *embedded.Server
}

// Start starts a single-member cluster for t.
func Start(t testing.TB, opts ...embedded.Option) *Member {
	t.Helper()
	opts = append([]embedded.Option{embedded.WithDataDir(t.TempDir())}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	s, err := embedded.Start(ctx, opts...)
	if err != nil {
		t.Fatalf("embeddedtest: start member: %v", err)
	}
	return adopt(t, s, opts)
}

// adopt wraps a started server, pinning its addresses so that a restart
// comes back where clients expect it.
func adopt(t testing.TB, s *embedded.Server, opts []embedded.Option) *Member {
	pinned := append(append([]embedded.Option(nil), opts...),
		embedded.WithName(s.Name()),
		embedded.WithDataDir(s.DataDir()),
		embedded.WithClientAddr(hostport(s.Endpoints()[0])),
		embedded.WithPeerAddr(hostport(s.PeerURL())),
	)
	m := &Member{t: t, opts: pinned, srv: s}
	t.Cleanup(func() { m.Server().Close() })
	return m
}

// Server is the member's current server (a new one after Restart).
func (m *Member) Server() *embedded.Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// Endpoints are the member's client URLs.
func (m *Member) Endpoints() []string { return m.Server().Endpoints() }

// Client returns a new client of this member, closed when the test ends. It
// is configured by the server (embedded.Server.ClientConfig): with TLS and
// root credentials when the member has them.
func (m *Member) Client() *clientv3.Client {
	m.t.Helper()
	return newClient(m.t, m.Server(), m.Endpoints())
}

// newClient returns a client of endpoints configured like s's own clients.
func newClient(t testing.TB, s *embedded.Server, endpoints []string) *clientv3.Client {
	t.Helper()
	cfg, err := s.ClientConfig()
	if err != nil {
		t.Fatalf("embeddedtest: client config: %v", err)
	}
	cfg.Endpoints = endpoints
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("embeddedtest: client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Stop closes the member gracefully, keeping its data.
func (m *Member) Stop() {
	m.t.Helper()
	if err := m.Server().Close(); err != nil {
		m.t.Fatalf("embeddedtest: stop %s: %v", m.Server().Name(), err)
	}
}

// Kill stops the member as a crash would, keeping its data.
func (m *Member) Kill() {
	m.t.Helper()
	if err := m.Server().Abort(); err != nil {
		m.t.Fatalf("embeddedtest: kill %s: %v", m.Server().Name(), err)
	}
}

// Restart starts the member again on its data dir and addresses, stopping it
// first if it still runs. It returns once the member serves clients.
func (m *Member) Restart() {
	m.t.Helper()
	m.Server().Close()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	s, err := embedded.Start(ctx, m.opts...)
	if err != nil {
		m.t.Fatalf("embeddedtest: restart: %v", err)
	}
	m.mu.Lock()
	m.srv = s
	m.mu.Unlock()
}

func hostport(u string) string {
	for i := 0; i+2 < len(u); i++ {
		if u[i:i+3] == "://" {
			return u[i+3:]
		}
	}
	return u
}
