package session

import (
	"context"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Manager shares one live Session among many users, such as the elections
// and locks of one process, so that they all ride on a single lease, and
// grants a new Session once the current one has ended.
type Manager struct {
	cli  *clientv3.Client
	opts []Option

	mu     sync.Mutex
	cur    *Session
	closed bool
}

// NewManager returns a Manager whose sessions are created with opts. It
// grants nothing until the first call to Session.
func NewManager(cli *clientv3.Client, opts ...Option) (*Manager, error) {
	if _, err := newOptions(opts); err != nil {
		return nil, err
	}
	return &Manager{cli: cli, opts: opts}, nil
}

// Session returns the current live session, granting a new lease if there
// is none or the last one has ended.
func (m *Manager) Session(ctx context.Context) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.cur != nil && m.cur.Err() == nil {
		return m.cur, nil
	}
	if m.cur != nil {
		m.cur.Close() // ended already: stops its goroutine, revokes if still there
	}
	s, err := New(ctx, m.cli, m.opts...)
	if err != nil {
		return nil, err
	}
	m.cur = s
	return s, nil
}

// Close closes the current session, revoking its lease, and refuses further
// calls to Session. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.cur == nil {
		return nil
	}
	err := m.cur.Close()
	m.cur = nil
	return err
}
